"""Harmonic analysis of a molecule: the Hessian math that normal-mode sampling (``workbench.qm``)
and vibrational analysis (``workbench.analysis``) share.

Units: Hessians in eV/Å², mass-weighted eigenvalues ω² in eV/(Å² amu), wavenumbers in cm⁻¹
(imaginary ones as negative numbers). Wilson, Decius & Cross, *Molecular Vibrations* (1955).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units


def finite_difference_hessian(atoms: Atoms, calc, delta: float = 0.005) -> np.ndarray:
    """``(3n, 3n)`` Cartesian Hessian (eV/Å²) by central differences of ``calc``'s forces with step
    ``delta`` Å (6n force calls), symmetrised. ``atoms`` is not changed."""
    work = Atoms(numbers=atoms.numbers, positions=atoms.positions.copy())
    work.calc = calc
    x0 = work.positions.copy()
    n3 = 3 * len(work)
    h = np.zeros((n3, n3))
    for j in range(n3):
        x = x0.copy()
        x.flat[j] += delta
        work.positions = x
        plus = work.get_forces().ravel()
        x.flat[j] -= 2 * delta
        work.positions = x
        minus = work.get_forces().ravel()
        h[:, j] = -(plus - minus) / (2 * delta)
    return 0.5 * (h + h.T)


def internal_basis(atoms: Atoms) -> np.ndarray:
    """Orthonormal ``(3n, 3n - r)`` basis of mass-weighted displacements free of translations and
    rotations (``r`` = 6, or 5 for a linear molecule: the rank of the rigid motions, found by SVD so
    that numerical noise off a molecular axis cannot pass for a rotation)."""
    sq = np.sqrt(atoms.get_masses())
    centred = atoms.positions - atoms.get_center_of_mass()
    rigid = []
    for axis in np.eye(3):
        rigid.append((sq[:, None] * axis[None, :]).ravel())
        rigid.append((sq[:, None] * np.cross(axis[None, :], centred)).ravel())
    u, s, _ = np.linalg.svd(np.array(rigid).T, full_matrices=True)
    rank = int(np.sum(s > 1e-6 * s.max()))
    return u[:, rank:]


def normal_modes(atoms: Atoms, hessian: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ω² (eV/(Å² amu), ascending) and mass-weighted mode vectors ``(3n, 3n - 6)`` (``3n - 5`` if
    linear) from a Cartesian Hessian (eV/Å²), diagonalised in the space free of rigid motions, so
    exactly the vibrations come out, with no near-zero rigid modes to sort out."""
    hessian = np.asarray(hessian, dtype=float)
    n3 = 3 * len(atoms)
    if hessian.shape != (n3, n3):
        raise ValueError(f"Hessian has shape {hessian.shape}, expected ({n3}, {n3}) for {len(atoms)} atoms")
    inv_sq = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    weighted = 0.5 * (hessian + hessian.T) * inv_sq[:, None] * inv_sq[None, :]
    basis = internal_basis(atoms)
    omega2, coefficients = np.linalg.eigh(basis.T @ weighted @ basis)
    return omega2, basis @ coefficients


def to_wavenumbers(omega2: np.ndarray) -> np.ndarray:
    """Eigenvalues of the mass-weighted Hessian, eV/(Å² amu), to wavenumbers in cm⁻¹ (imaginary ones
    negative)."""
    omega = np.sqrt(np.abs(omega2) * units._e / units._amu) * 1e10  # rad/s
    return np.sign(omega2) * omega / (2 * np.pi * units._c * 100)
