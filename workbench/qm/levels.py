"""Levels of theory for labeling: a name the Fidelity parser understands plus explicit settings.

``Level("mp2/cc-pvdz")`` resolves the program (tblite for GFN1/GFN2-xTB, PySCF for everything
else), checks that the program knows the method and basis, and fills in every setting that changes
the numbers (convergence thresholds, frozen core, density fitting, grids), so a label's settings
are complete and two labels with the same :attr:`Level.key` are comparable.

:func:`compute_label` runs one single point and returns a plain dict (picklable, JSON-friendly
apart from the force array): ``status`` (``"done"`` or ``"failed"``), ``energy`` (eV), ``forces``
(eV/Å), ``error`` (the reason for a failure) and ``meta`` (program, version, method, basis,
settings, convergence, wall time). A calculation that does not converge is a failure with its
reason, never a number.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
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

    # ----------------------------------------------------------------------------- running
    def calculator(self):
        """This level as an ASE calculator."""
        from .qm_calculator import QMCalculator

        return QMCalculator(self)


def spin_of(numbers, charge: int, multiplicity: int | None) -> int:
    """Number of unpaired electrons (2S): from the multiplicity, or 0/1 by electron-count parity."""
    n_electrons = int(np.asarray(numbers).sum()) - int(charge)
    if multiplicity is None:
        return n_electrons % 2
    spin = int(multiplicity) - 1
    if spin < 0 or (n_electrons - spin) % 2:
        raise ValueError(f"multiplicity {multiplicity} is impossible with {n_electrons} electrons")
    return spin


def compute_label(
    numbers,
    positions,
    level: Level | str,
    properties=("energy", "forces"),
    charge: int | None = None,
    multiplicity: int | None = None,
) -> dict:
    """One single point: energy (eV) and, if asked for, forces (eV/Å) at ``level``.

    ``positions`` in Å. ``charge``/``multiplicity`` override the level's settings for this
    configuration. Never raises for a calculation that fails: the result has ``status="failed"``
    and the reason in ``error``.
    """
    level = level if isinstance(level, Level) else Level(level)
    return compute_labels([(numbers, positions, charge, multiplicity)], level, properties)[0]


def compute_labels(items, level: Level, properties=("energy", "forces")) -> list[dict]:
    """:func:`compute_label` for ``items`` of ``(numbers, positions, charge, multiplicity)``
    (charge and multiplicity may be None: the level's). The single points run back to back and
    the records are built afterwards: Python between two calls of a QM program costs about three
    times what it costs in a row, since each call evicts it from the caches (measured with xTB)."""
    want_forces = "forces" in properties
    runs = []
    # one capture for all: each single point takes the warnings it added
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for numbers, positions, charge, multiplicity in items:
            charge = level.settings["charge"] if charge is None else int(charge)
            multiplicity = level.settings["multiplicity"] if multiplicity is None else int(multiplicity)
            start = len(caught)
            run = _single_point(numbers, positions, level, want_forces, charge, multiplicity)
            runs.append((charge, multiplicity, (*run, caught[start:])))
    described = level.describe()
    asked = ["energy", "forces"] if want_forces else ["energy"]
    return [_as_record(described, asked, charge, mult, *run) for charge, mult, run in runs]


def _single_point(numbers, positions, level: Level, want_forces: bool, charge: int, multiplicity):
    """The program call with its failure guard: (energy, forces, convergence, error, wall time (s))."""
    numbers = np.asarray(numbers, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.float64)
    start = time.perf_counter()
    try:
        spin = spin_of(numbers, charge, multiplicity)
        if level.program == "tblite":
            from .xtb_backend import run_xtb

            energy, forces, convergence = run_xtb(numbers, positions, level, want_forces, charge, spin)
        else:
            from .pyscf_backend import run_pyscf

            energy, forces, convergence = run_pyscf(numbers, positions, level, want_forces, charge, spin)
        error = None
    except NotConverged as err:
        energy, forces, convergence, error = None, None, err.convergence, str(err)
    except Exception as err:  # any program error becomes a recorded failure with its reason
        energy, forces, convergence, error = None, None, {}, f"{type(err).__name__}: {err}"
    return energy, forces, convergence, error, time.perf_counter() - start


def _as_record(described: dict, asked: list, charge, multiplicity, energy, forces, convergence, error, wall, caught):
    """A :func:`compute_label` result from a :func:`_single_point` and the warnings it raised
    (``described``: the level's :meth:`Level.describe`, copied)."""
    meta = {**described, "settings": dict(described["settings"]), "properties": list(asked)}
    meta["charge"], meta["multiplicity"] = charge, multiplicity
    meta["convergence"] = convergence
    meta["wall_time_s"] = round(wall, 6)
    meta["warnings"] = sorted({str(w.message)[:300] for w in caught})
    if error is None and not math.isfinite(energy):
        error = f"the program returned a non-finite energy ({energy})"
    if error is None and forces is not None and not np.isfinite(forces).all():
        error = "the program returned non-finite forces"
    if error is not None:
        return {"status": "failed", "energy": None, "forces": None, "error": error, "meta": meta}
    return {"status": "done", "energy": float(energy), "forces": forces, "error": None, "meta": meta}


class NotConverged(RuntimeError):
    """An SCF or CC iteration stopped before reaching its threshold; carries the convergence record."""

    def __init__(self, message: str, convergence: dict):
        super().__init__(message)
        self.convergence = convergence
