"""Units: the workbench works in eV and Å; readers convert with these factors.

Factors come from ASE (CODATA 2014 in ``ase.units``), so numbers agree with every ASE tool.
"""

from __future__ import annotations

from ase import units as _u

#: Multiply an energy in the key's unit by this to get eV.
ENERGY_TO_EV = {
    "ev": 1.0,
    "mev": 1e-3,
    "hartree": _u.Hartree,
    "ha": _u.Hartree,
    "eh": _u.Hartree,
    "kcal/mol": _u.kcal / _u.mol,
    "kj/mol": _u.kJ / _u.mol,
    "rydberg": _u.Rydberg,
    "ry": _u.Rydberg,
}

#: Multiply a length in the key's unit by this to get Å.
LENGTH_TO_ANGSTROM = {
    "angstrom": 1.0,
    "ang": 1.0,
    "a": 1.0,
    "å": 1.0,
    "bohr": _u.Bohr,
    "a0": _u.Bohr,
    "nm": 10.0,
}


def _norm(unit: str) -> str:
    return unit.strip().lower().replace(" ", "")


def energy_factor(unit: str) -> float:
    """Factor that converts energies in ``unit`` (e.g. ``"kcal/mol"``, ``"hartree"``) to eV.

    Raises ``KeyError`` with the known units listed for an unknown one.
    """
    key = _norm(unit)
    if key not in ENERGY_TO_EV:
        raise KeyError(f"unknown energy unit {unit!r}; known: {sorted(ENERGY_TO_EV)}")
    return ENERGY_TO_EV[key]


def length_factor(unit: str) -> float:
    """Factor that converts lengths in ``unit`` (``"angstrom"``, ``"bohr"``, ``"nm"``) to Å."""
    key = _norm(unit)
    if key not in LENGTH_TO_ANGSTROM:
        raise KeyError(f"unknown length unit {unit!r}; known: {sorted(LENGTH_TO_ANGSTROM)}")
    return LENGTH_TO_ANGSTROM[key]


def force_factor(unit: str) -> float:
    """Factor that converts forces in ``unit`` (``"energy/length"``, e.g. ``"hartree/bohr"``,
    ``"kcal/mol/angstrom"``) to eV/Å."""
    key = _norm(unit)
    energy, _, length = key.rpartition("/")
    if not energy:
        raise KeyError(f"force unit {unit!r} is not of the form 'energy/length'")
    return energy_factor(energy) / length_factor(length)
