"""A level of theory: a name the Fidelity parser understands plus every program setting.

``Level("mp2/cc-pvdz")`` resolves the program (tblite for GFN1/GFN2-xTB, PySCF for everything
else), checks that the program knows the method and basis, and fills in every setting that changes
the numbers (convergence thresholds, frozen core, density fitting, grids), so a label's settings
are complete and two labels with the same :attr:`Level.key` are comparable.

What the program backends share with the level (:func:`spin_of`, :class:`NotConverged`) lives here
too, so that they depend on this module only; running a level is :mod:`workbench.qm.levels`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from importlib import metadata

import numpy as np

from ..data.fidelity import Fidelity, canonical_name

XTB_METHODS = {"gfn1-xtb": "GFN1-xTB", "gfn2-xtb": "GFN2-xTB"}
WAVEFUNCTION_METHODS = ("hf", "mp2", "ccsd", "ccsd(t)")

#: Settings of each program, with defaults. Keys listed in ``RUN_ONLY`` do not change the numbers
#: and are left out of :attr:`Level.key`.
_XTB_DEFAULTS = {
    "charge": 0,
    "multiplicity": None,  # None: singlet for an even electron count, doublet for odd
    "accuracy": 1.0,
    "electronic_temperature": 300.0,  # K
    "max_iterations": 250,
}
_PYSCF_DEFAULTS = {
    "charge": 0,
    "multiplicity": None,
    "conv_tol": 1e-9,  # SCF energy threshold, Hartree
    "max_cycle": 100,  # SCF iterations
    "density_fit": False,
    "auxbasis": None,  # None: PySCF's default auxiliary basis for the orbital basis
    "max_memory_mb": 4000,
}
_DFT_DEFAULTS = {"grid_level": 3}
_CORRELATED_DEFAULTS = {"frozen_core": True}
_CC_DEFAULTS = {"cc_conv_tol": 1e-7, "cc_max_cycle": 100}
RUN_ONLY = frozenset({"max_memory_mb"})

#: Measured on ethanol/cc-pVDZ with 2 cores (see the project notes): why CC gradients are warned about.
CC_GRADIENT_WARNING = (
    "CCSD(T) gradients cost about 20x the energy (about 2 minutes and 8 GB for ethanol/cc-pVDZ on 2 cores); "
    "label energies only unless you really need coupled-cluster forces"
)


@functools.cache
def program_version(program: str) -> str:
    """Installed version of ``"pyscf"`` or ``"tblite"``."""
    try:
        return metadata.version(program)
    except metadata.PackageNotFoundError:
        return "unknown"


class Level:
    """A level of theory with all of its settings.

    Parameters
    ----------
    spec
        A fidelity name (``"gfn2-xtb"``, ``"hf/sto-3g"``, ``"b3lyp/6-31g*"``, ``"mp2/cc-pvdz"``,
        ``"ccsd(t)/cc-pvdz"``), a :class:`~workbench.data.Fidelity`, or another :class:`Level`.
    **settings
        Program settings; see ``default_settings()`` for the names. PySCF: ``charge``,
        ``multiplicity``, ``conv_tol`` (Hartree), ``max_cycle``, ``density_fit``, ``auxbasis``,
        ``grid_level`` (DFT), ``frozen_core`` (MP2/CC), ``cc_conv_tol``, ``cc_max_cycle``,
        ``max_memory_mb``. tblite: ``charge``, ``multiplicity``, ``accuracy``,
        ``electronic_temperature`` (K), ``max_iterations``.
    """

    def __init__(self, spec: str | Fidelity | Level = "gfn2-xtb", **settings):
        if isinstance(spec, Level):
            settings = {**spec.settings, **settings}
            spec = spec.name
        fid = Fidelity.parse(canonical_name(spec))
        self.name, self.method, self.basis = fid.name, fid.method, fid.basis
        self.program = "tblite" if self.method in XTB_METHODS else "pyscf"
        defaults = self.default_settings()
        unknown = set(settings) - set(defaults)
        if unknown:
            raise ValueError(
                f"unknown settings {sorted(unknown)} for level {self.name!r} ({self.program}); "
                f"known: {sorted(defaults)}"
            )
        self.settings = {**defaults, **settings}
        self._check()

    # ----------------------------------------------------------------------------- description
    @property
    def kind(self) -> str:
        """``"xtb"``, ``"hf"``, ``"dft"``, ``"mp2"``, ``"ccsd"`` or ``"ccsd(t)"``."""
        if self.program == "tblite":
            return "xtb"
        return self.method if self.method in WAVEFUNCTION_METHODS else "dft"

    @property
    def fidelity(self) -> Fidelity:
        return Fidelity.parse(self.name, program=self.program)

    @property
    def version(self) -> str:
        return program_version(self.program)

    def default_settings(self) -> dict:
        if self.program == "tblite":
            return dict(_XTB_DEFAULTS)
        out = dict(_PYSCF_DEFAULTS)
        if self.kind == "dft":
            out.update(_DFT_DEFAULTS)
        if self.kind in ("mp2", "ccsd", "ccsd(t)"):
            out.update(_CORRELATED_DEFAULTS)
        if self.kind in ("ccsd", "ccsd(t)"):
            out.update(_CC_DEFAULTS)
        return out

    @property
    def key(self) -> str:
        """Identifies the numbers this level produces: the name plus every setting that changes them."""
        kept = {k: v for k, v in sorted(self.settings.items()) if k not in RUN_ONLY}
        digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.name}|{digest}"

    def describe(self) -> dict:
        """Program, version, method, basis and settings, as recorded with every label."""
        return {
            "fidelity": self.name,
            "program": self.program,
            "version": self.version,
            "method": self.method,
            "basis": self.basis,
            "settings": dict(self.settings),
        }

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.settings.items() if self.default_settings().get(k) != v}
        extra = "".join(f", {k}={v!r}" for k, v in changed.items())
        return f"Level({self.name!r}{extra})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Level) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    # ----------------------------------------------------------------------------- checks
    def _check(self) -> None:
        if self.program == "tblite":
            if self.basis is not None:
                raise ValueError(f"level {self.name!r}: xTB methods take no basis set")
            return
        if self.method.endswith("-xtb"):
            raise ValueError(f"level {self.name!r}: tblite provides {sorted(XTB_METHODS)} only")
        if self.basis is None:
            raise ValueError(f"level {self.name!r}: PySCF levels need a basis set, e.g. '{self.method}/cc-pvdz'")
        if self.kind == "dft":
            from pyscf.dft import libxc

            try:
                libxc.parse_xc(self.method)
            except (KeyError, ValueError) as err:
                raise ValueError(
                    f"level {self.name!r}: {self.method!r} is neither HF, MP2, CCSD, CCSD(T) nor a density "
                    f"functional PySCF knows ({err})"
                ) from None

    def check_elements(self, numbers) -> None:
        """Raise ValueError if the basis set lacks one of these elements (atomic numbers)."""
        if self.program != "pyscf":
            return
        from pyscf import gto

        for z in sorted({int(z) for z in np.asarray(numbers).ravel()}):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # PySCF suggests installing basis-set-exchange
                    gto.M(atom=[(z, (0.0, 0.0, 0.0))], basis=self.basis, spin=z % 2, verbose=0)
            except Exception as err:  # PySCF raises several types for an unknown basis/element
                raise ValueError(
                    f"level {self.name!r}: PySCF has no basis {self.basis!r} for element Z={z} ({err})"
                ) from None

    def check_properties(self, properties) -> None:
        """Raise ValueError for properties this level cannot give; warn about very expensive ones."""
        properties = tuple(properties)
        unknown = set(properties) - {"energy", "forces"}
        if unknown:
            raise ValueError(f"unknown properties {sorted(unknown)}; choose from ('energy', 'forces')")
        if "forces" not in properties:
            return
        if self.kind == "mp2" and self.settings.get("density_fit"):
            raise ValueError(
                f"level {self.name!r}: PySCF {self.version} has no density-fitted MP2 gradient; "
                "use density_fit=False for MP2 forces"
            )
        if self.kind in ("ccsd", "ccsd(t)"):
            if self.settings.get("density_fit"):
                raise ValueError(f"level {self.name!r}: no density-fitted coupled-cluster gradient in PySCF")
            warnings.warn(f"{self.name} forces requested: {CC_GRADIENT_WARNING}", stacklevel=3)


def spin_of(numbers, charge: int, multiplicity: int | None) -> int:
    """Number of unpaired electrons (2S): from the multiplicity, or 0/1 by electron-count parity."""
    n_electrons = int(np.asarray(numbers).sum()) - int(charge)
    if multiplicity is None:
        return n_electrons % 2
    spin = int(multiplicity) - 1
    if spin < 0 or (n_electrons - spin) % 2:
        raise ValueError(f"multiplicity {multiplicity} is impossible with {n_electrons} electrons")
    return spin


class NotConverged(RuntimeError):
    """An SCF or CC iteration stopped before reaching its threshold; carries the convergence record."""

    def __init__(self, message: str, convergence: dict):
        super().__init__(message)
        self.convergence = convergence
