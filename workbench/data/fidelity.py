"""Levels of theory ("fidelities") with canonical names and a low-to-high rank.

A fidelity is named ``method/basis`` in lower case (``"b3lyp/6-31g*"``, ``"ccsd(t)/cc-pvdz"``,
``"wb97x/6-31g*"``, ``"ccsd(t)/cbs"``) or by the method alone where there is no basis
(``"gfn2-xtb"``). :meth:`Fidelity.parse` understands common spellings, including the level names of
the ANI-1x/ANI-1ccx HDF5 release (``wb97x_dz``, ``ccsd(t)_cbs``, ``npno_ccsd(t)_dz``).

The default rank orders methods by the usual hierarchy (semi-empirical < HF < DFT rungs < MP2 <
CCSD < CCSD(T)) and breaks ties by basis-set size. Users override it where they know better, e.g.
``dataset.set_rank("pbe+vdw-ts", 5.0)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

# Method spellings -> canonical method names.
_METHOD_ALIASES = {
    "xtb": "gfn2-xtb",
    "gfn2": "gfn2-xtb",
    "gfn2xtb": "gfn2-xtb",
    "gfn2-xtb": "gfn2-xtb",
    "gfn1": "gfn1-xtb",
    "gfn1xtb": "gfn1-xtb",
    "gfn1-xtb": "gfn1-xtb",
    "gfn0": "gfn0-xtb",
    "gfn0-xtb": "gfn0-xtb",
    "ωb97x": "wb97x",
    "wb97x": "wb97x",
    "ccsd_t": "ccsd(t)",
    "ccsdt": "ccsd(t)",
    "ccsd(t)": "ccsd(t)",
    "ccsd(t)*": "ccsd(t)",
    "npno_ccsd(t)": "dlpno-ccsd(t)-normal",
    "tpno_ccsd(t)": "dlpno-ccsd(t)-tight",
    "rhf": "hf",
    "uhf": "hf",
    "scf": "hf",
}

# Basis spellings -> canonical basis names (the ANI-1x release's dz/tz/qz mean different bases
# for different methods; those are resolved in ANI_LEVELS below).
_BASIS_ALIASES = {
    "6-31gs": "6-31g*",
    "6-31g(d)": "6-31g*",
    "6-31gss": "6-31g**",
    "6-31g(d,p)": "6-31g**",
    "ccpvdz": "cc-pvdz",
    "ccpvtz": "cc-pvtz",
    "ccpvqz": "cc-pvqz",
    "def2svp": "def2-svp",
    "def2tzvp": "def2-tzvp",
    "def2tzvpp": "def2-tzvpp",
    "sto3g": "sto-3g",
}

#: ANI-1x / ANI-1ccx level prefixes -> canonical fidelity names (Smith et al., Sci. Data 7, 134 (2020)).
ANI_LEVELS = {
    "wb97x_dz": "wb97x/6-31g*",
    "wb97x_tz": "wb97x/def2-tzvpp",
    "hf_dz": "hf/cc-pvdz",
    "hf_tz": "hf/cc-pvtz",
    "hf_qz": "hf/cc-pvqz",
    "mp2_dz": "mp2/cc-pvdz",
    "mp2_tz": "mp2/cc-pvtz",
    "mp2_qz": "mp2/cc-pvqz",
    "npno_ccsd(t)_dz": "dlpno-ccsd(t)-normal/cc-pvdz",
    "npno_ccsd(t)_tz": "dlpno-ccsd(t)-normal/cc-pvtz",
    "tpno_ccsd(t)_dz": "dlpno-ccsd(t)-tight/cc-pvdz",
    "ccsd(t)_cbs": "ccsd(t)/cbs",
}

_SEMIEMPIRICAL = {"gfn-ff": 5.0, "gfn0-xtb": 10.0, "gfn1-xtb": 11.0, "gfn2-xtb": 12.0, "pm6": 8.0, "pm7": 8.5}
_GGA = {"pbe", "blyp", "bp86", "pw91", "revpbe", "rpbe", "pbe+vdw-ts", "pbe-d3", "b97-d", "b97-d3"}
_META_GGA = {"tpss", "scan", "r2scan", "m06-l"}
_HYBRID = {"b3lyp", "pbe0", "wb97x", "wb97x-d", "wb97x-d3", "wb97x-v", "m06", "m06-2x", "b3lyp-d3", "tpssh", "hse06"}
_DOUBLE_HYBRID = {"b2plyp", "dsd-pbep86", "revdsd-pbep86"}

_BASIS_TIER = {
    "sto-3g": 1.0,
    "3-21g": 2.0,
    "6-31g": 3.0,
    "6-31g*": 4.0,
    "def2-svp": 4.0,
    "6-31g**": 4.5,
    "cc-pvdz": 5.0,
    "6-311g**": 5.5,
    "def2-tzvp": 6.0,
    "cc-pvtz": 7.0,
    "def2-tzvpp": 7.0,
    "def2-qzvp": 8.0,
    "cc-pvqz": 9.0,
    "cc-pv5z": 9.5,
    "cbs": 10.0,
}


def _method_tier(method: str) -> float:
    if method in _SEMIEMPIRICAL:
        return _SEMIEMPIRICAL[method]
    if method == "hf":
        return 20.0
    if method in ("lda", "svwn"):
        return 30.0
    if method in _GGA:
        return 31.0
    if method in _META_GGA:
        return 32.0
    if method in _HYBRID:
        return 33.0
    if method in _DOUBLE_HYBRID:
        return 34.0
    if "mp2" in method:
        return 40.0
    if "ccsd(t)" in method:
        return 58.0 if method.startswith("dlpno") else 60.0
    if "ccsd" in method:
        return 50.0
    return 0.0  # unknown methods sort lowest until the user says otherwise


def _basis_tier(basis: str | None) -> float:
    if basis is None:
        return 0.0
    tier = _BASIS_TIER.get(basis.removeprefix("aug-"), 5.0)
    return tier + (0.5 if basis.startswith("aug-") else 0.0)


def _program_for(method: str) -> str | None:
    return "tblite" if method.endswith("-xtb") else None


@dataclass(frozen=True)
class Fidelity:
    """One level of theory.

    Attributes
    ----------
    name
        Canonical name, ``method/basis`` or ``method``; the key used everywhere in the workbench.
    method, basis
        Parsed parts (``basis`` is ``None`` for semi-empirical methods).
    program
        The program that computed the labels, where known (``"pyscf"``, ``"tblite"``, ``"orca"``).
    rank
        Position in the low-to-high ordering; higher is more accurate (dimensionless).
    """

    name: str
    method: str
    basis: str | None = None
    program: str | None = None
    rank: float = 0.0

    @classmethod
    def parse(cls, text: str, program: str | None = None, rank: float | None = None) -> Fidelity:
        """Parse a level of theory from its usual spellings into canonical form.

        ``"B3LYP/6-31G*"`` -> ``b3lyp/6-31g*``; ``"xtb"`` -> ``gfn2-xtb``; ``"wb97x_dz"`` ->
        ``wb97x/6-31g*``; ``"CCSD(T)/cc-pVDZ"`` -> ``ccsd(t)/cc-pvdz``.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"a level of theory must be a non-empty string, got {text!r}")
        key = re.sub(r"\s+", "", text.strip().lower())
        key = ANI_LEVELS.get(key, key)
        method, sep, basis = key.partition("/")
        method = _METHOD_ALIASES.get(method, method)
        basis = _BASIS_ALIASES.get(basis, basis) if sep else None
        if basis == "":
            basis = None
        name = method if basis is None else f"{method}/{basis}"
        if rank is None:
            rank = _method_tier(method) + _basis_tier(basis) / 20.0
        return cls(name=name, method=method, basis=basis, program=program or _program_for(method), rank=float(rank))

    def with_rank(self, rank: float) -> Fidelity:
        """A copy with another rank (dimensionless)."""
        return replace(self, rank=float(rank))

    def __str__(self) -> str:
        return self.name


def canonical_name(text: str | Fidelity, available: Iterable[str | Fidelity] | None = None, where: str = "") -> str:
    """The canonical fidelity name for any accepted spelling (or a :class:`Fidelity`).

    With ``available`` (names or :class:`Fidelity` objects, e.g. a dataset's fidelities or a model's
    heads) a name outside it is a ``KeyError`` that names what was passed and lists what there is;
    ``where`` says where it was looked for (``"in this dataset"``).
    """
    if isinstance(text, Fidelity):
        name = text.name
    elif isinstance(text, str):
        name = Fidelity.parse(text).name
    else:
        raise TypeError(f"a fidelity is a name such as 'gfn2-xtb' or a Fidelity, got {type(text).__name__} {text!r}")
    if available is not None:
        available = list(available)
        if name in available:  # the usual case, a list of canonical names: no parsing
            return name
        present = [canonical_name(a) for a in available]
        if name not in present:
            given = "" if str(text) == name else f" (given as {str(text)!r})"
            place = f" {where}" if where else ""
            raise KeyError(f"no fidelity {name!r}{given}{place}; present: {present}")
    return name


def canonical_fidelities(
    selection, available: Iterable[str | Fidelity] | None = None, where: str = ""
) -> list[str] | dict[str, object] | None:
    """Canonical names of a fidelity selection, in every form the workbench accepts.

    - ``None`` -> ``None`` (the caller's default, usually "all of them"),
    - a name in any spelling :meth:`Fidelity.parse` understands, or a :class:`Fidelity` -> a list of one name,
    - a list, tuple or other iterable of those -> a list of names in the order given,
    - a dict keyed by those -> ``{name: value}`` with the values as given (``{"gfn2-xtb": ("energy", "forces")}``).

    ``available`` and ``where`` as for :func:`canonical_name`: unknown names are a ``KeyError`` listing what is there.
    Naming one fidelity twice (``["xtb", "gfn2-xtb"]``) is a ``ValueError``: it is a slip, and a dict could
    not say which value counts.
    """
    if selection is None:
        return None
    available = None if available is None else list(available)
    if isinstance(selection, Mapping):
        out: dict[str, object] = {}
        for key, value in selection.items():
            name = canonical_name(key, available, where)
            if name in out:
                raise ValueError(f"fidelities {[name]} are named twice in {[str(k) for k in selection]}")
            out[name] = value
        return out
    if isinstance(selection, (str, Fidelity)):
        return [canonical_name(selection, available, where)]
    if not isinstance(selection, Iterable):
        raise TypeError(
            "a fidelity selection is a name, a Fidelity, a list of them or a dict keyed by them, "
            f"got {type(selection).__name__} {selection!r}"
        )
    names = [canonical_name(f, available, where) for f in selection]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"fidelities {twice} are named twice in {[str(f) for f in selection]}")
    return names
