"""Pieces the ASE, ASE-database and npz readers share: fidelity names from label keys, unit
resolution with provenance records, a unit guess for error messages, and the source columns."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DatasetError
from ..fidelity import ANI_LEVELS, Fidelity
from ..units import energy_factor, force_factor, length_factor

#: Name of the fidelity given to labels whose level of theory the file does not say.
UNKNOWN = "unknown"

# Basis-set spellings recognised after the last "_" in a key such as ``energy_ccsd(t)_cc-pvdz``.
_BASIS = re.compile(
    r"^(aug-|jun-|may-|ma-)?("
    r"cc-?p(w?c)?v[dtq56]z(-f12)?|def2-?[a-z]+|6-31\+*g.*|6-311\+*g.*|3-21g.*|sto-?\dg|cbs|pcseg-\d|pc-\d|ano-.*"
    r")$"
)


#: Suffixes that make ``energy_<suffix>``/``forces_<suffix>`` a property of a label, not a label at a
#: level of theory: MACE-style training files carry ``energy_weight`` and ``forces_weight``.
NOT_A_LEVEL = frozenset(
    "weight weights std stdev sigma err error errors uncertainty var variance mask flag norm mean max min rms "
    "unit units count".split()
)


def is_label_key(key: str) -> bool:
    """Whether ``key`` holds a label: ``energy``/``forces`` or ``energy_<level>``/``forces_<level>``
    (not ``energy_weight``, ``forces_std``, ...)."""
    kind, _, rest = key.partition("_")
    if kind not in ("energy", "forces"):
        return False
    return not rest or rest.strip().lower() not in NOT_A_LEVEL


def fidelity_from_key(rest: str) -> Fidelity:
    """The fidelity named by the part of a label key after ``energy_``/``forces_``.

    ``"ccsd(t)/cc-pvdz"`` and ``"gfn2-xtb"`` parse directly; where a ``/`` cannot be written (ASE
    database key-value pairs), the basis may follow the last ``_``: ``"ccsd(t)_cc-pvdz"`` →
    ``ccsd(t)/cc-pvdz``, and ``"gfn2_xtb"`` → ``gfn2-xtb``. ANI level names (``"wb97x_dz"``) keep their
    meaning.
    """
    key = rest.strip().lower()
    if "/" not in key and key not in ANI_LEVELS and "_" in key:
        method, basis = key.rsplit("_", 1)
        if method and _BASIS.match(basis):
            return Fidelity.parse(f"{method}/{basis}")
        # An identifier cannot hold "-": gfn2_xtb means gfn2-xtb when only that spelling is a known method.
        plain, dashed = Fidelity.parse(key), Fidelity.parse(key.replace("_", "-"))
        if plain.rank < 1 <= dashed.rank:
            return dashed
    return Fidelity.parse(key)


def common_fidelity(fidelity, file: str) -> tuple[Fidelity, bool]:
    """The fidelity for labels stored without a level (``energy``/``forces``): the one the user
    names, else ``unknown``. Returns ``(fidelity, named_by_user)``."""
    if fidelity is None:
        return Fidelity.parse(UNKNOWN), False
    if isinstance(fidelity, Fidelity):
        return fidelity, True
    try:
        return Fidelity.parse(fidelity), True
    except ValueError as err:
        raise DatasetError(f"fidelity={fidelity!r}: {err}", file=file) from None


def factor(kind: str, unit: str, file: str, where: str = "") -> float:
    """Conversion factor to eV (``energy``), eV/Å (``forces``) or Å (``length``); an unknown unit
    is a :class:`DatasetError` that lists the known ones."""
    convert = {"energy": energy_factor, "forces": force_factor, "length": length_factor}[kind]
    try:
        return convert(str(unit))
    except KeyError as err:
        raise DatasetError(f"{where}{err.args[0]}", file=file) from None


def conversion(file: str, quantity: str, unit: str, to: str, value: float) -> dict:
    """A provenance record of one unit conversion."""
    return {"file": file, "quantity": quantity, "from": str(unit), "to": to, "factor": float(value)}


def note(file: str, text: str) -> dict:
    """A provenance record of one assumption."""
    return {"file": file, "note": text}


def source_columns(file: str, n: int, start: int = 0) -> dict:
    """``source`` (categorical file path) and ``source_index`` (index in the file) for ``n`` rows."""
    return {
        "source": pd.Categorical.from_codes(np.zeros(n, np.int64), categories=[file]),
        "source_index": np.arange(start, start + n, dtype=np.int64),
    }


def add_source_columns(info: pd.DataFrame, file: str, source_index: Sequence[int] | None = None) -> None:
    """Put ``source`` and ``source_index`` first in a reader's info table (in place)."""
    cols = source_columns(file, len(info))
    if source_index is not None:
        cols["source_index"] = np.asarray(source_index, dtype=np.int64)
    for pos, (name, values) in enumerate(cols.items()):
        if name in info:
            del info[name]
        info.insert(pos, name, values)


# Candidate energy units and their size relative to Hartree.
_PER_HARTREE = {
    "hartree": 1.0,
    "Rydberg": 2.0,
    "eV": energy_factor("hartree"),
    "kcal/mol": energy_factor("hartree") / energy_factor("kcal/mol"),
    "kJ/mol": energy_factor("hartree") / energy_factor("kj/mol"),
    "meV": energy_factor("hartree") / energy_factor("mev"),
}


def guess_energy_unit(numbers: Sequence[np.ndarray], energies: Sequence[float]) -> str:
    """A sentence on what unit energies of this size suggest, for error messages only.

    Total electronic energies of neutral atoms grow roughly as ``-0.5 Z^2.4`` Hartree (within ~10 %
    from H to Br), so the ratio of a configuration's energy to the sum of that over its atoms is
    near the size of a Hartree in the file's unit. Energies far smaller than totals (atomization
    or relative energies) carry no such hint.
    """
    energies = np.asarray(energies, dtype=float)
    ok = np.isfinite(energies)
    if not ok.any():
        return ""
    atoms = np.array([len(z) for z in numbers], float)[ok]
    total = np.array([0.5 * np.sum(np.asarray(z, float) ** 2.4) for z in numbers])[ok]
    per_atom = float(np.median(energies[ok] / np.maximum(atoms, 1)))
    ratio = float(np.median(-energies[ok] / np.maximum(total, 1e-12)))
    if ratio > 0:
        name, size = min(_PER_HARTREE.items(), key=lambda kv: abs(np.log(ratio / kv[1])))
        if abs(np.log(ratio / size)) < 0.25:
            return f"energies of about {per_atom:.6g} per atom look like total energies in {name}"
    return (
        f"energies of about {per_atom:.6g} per atom look like relative or atomization energies, "
        "whose size does not tell their unit"
    )
