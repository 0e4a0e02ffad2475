"""Second derivatives of the energy at a level of theory: the Hessian (eV/Å², ``(3n, 3n)``).

HF and DFT have analytic Hessians in PySCF (coupled-perturbed SCF); every other level (xTB, MP2,
CCSD(T) with gradients) gets central differences of its forces, 6n force calls of the QM engine.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from ..harmonic import finite_difference_hessian
from .level_of_theory import Level, spin_of
from .pyscf_backend import build_molecule, mean_field
from .qm_calculator import QMCalculator

METHODS = ("auto", "analytic", "finite-difference")


def hessian(atoms: Atoms, level: str | Level, method: str = "auto", delta: float = 0.005) -> np.ndarray:
    """The ``(3n, 3n)`` Cartesian Hessian of ``atoms`` at ``level`` in eV/Å².

    ``method``: ``"analytic"`` (PySCF, HF and DFT only), ``"finite-difference"`` (central differences
    of the level's forces with step ``delta`` Å), or ``"auto"`` (analytic where PySCF has it).
    Raises ValueError for a method the level does not have, and RuntimeError when an SCF does not
    converge (the Hessian of an unconverged wavefunction would be a wrong number, not a missing one).
    """
    level = level if isinstance(level, Level) else Level(level)
    if resolve_method(level, method) == "analytic":
        return analytic_hessian(atoms, level)
    return finite_difference_hessian(atoms, QMCalculator(level), delta)


def resolve_method(level: Level, method: str) -> str:
    """``"analytic"`` or ``"finite-difference"``: ``method`` checked, with ``"auto"`` decided for ``level``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        return "analytic" if level.kind in ("hf", "dft") else "finite-difference"
    return method


def analytic_hessian(atoms: Atoms, level: str | Level) -> np.ndarray:
    """PySCF's analytic HF or DFT Hessian (eV/Å², ``(3n, 3n)``) at ``level`` with its settings: basis,
    functional, grid, density fitting, convergence, charge and multiplicity."""
    level = level if isinstance(level, Level) else Level(level)
    if level.kind not in ("hf", "dft"):
        raise ValueError(f"PySCF has analytic Hessians for HF and DFT only, not {level.name!r}")
    charge = int(level.settings["charge"])
    spin = spin_of(atoms.numbers, charge, level.settings["multiplicity"])
    mol = build_molecule(atoms.numbers, atoms.positions, level, charge, spin)
    mf = mean_field(mol, level)
    mf.kernel()
    if not mf.converged:
        raise RuntimeError(f"{level.name}: SCF did not converge at this geometry; no Hessian")
    h = mf.Hessian().kernel()  # (n, n, 3, 3) in Hartree/Bohr²
    n = len(atoms)
    return np.asarray(h).transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) * (Hartree / Bohr**2)
