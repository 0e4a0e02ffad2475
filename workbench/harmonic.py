"""Harmonic analysis of a molecule: the relaxation to a minimum, the Hessian math, the bonded graph that names
the modes, and the result object that normal-mode sampling and reference frequencies (``workbench.qm``), the
shipped references (``wb.datasets``) and vibrational analysis (``workbench.analysis``) share.

Units: Hessians in eV/Å², mass-weighted eigenvalues ω² in eV/(Å² amu), wavenumbers in cm⁻¹
(imaginary ones as negative numbers). Wilson, Decius & Cross, *Molecular Vibrations* (1955).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ase import Atoms, units
from ase.data import chemical_symbols


def minimize(atoms: Atoms, calc, fmax: float, steps: int) -> tuple[Atoms, float]:
    """BFGS to ``fmax`` eV/Å in at most ``steps`` steps (none: the geometry as given) and the largest force left.
    ``atoms`` is not changed; the result carries no calculator."""
    from ase.optimize import BFGS

    work = Atoms(numbers=atoms.numbers, positions=atoms.positions.copy())
    work.calc = calc
    if steps > 0:
        BFGS(work, logfile=None).run(fmax=fmax, steps=steps)
    forces = work.get_forces()
    out = Atoms(numbers=work.numbers, positions=work.positions.copy())
    return out, float(np.linalg.norm(forces, axis=1).max())


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


#: Two atoms are bonded when closer than this times the sum of their covalent radii (ASE's natural cutoffs); the
#: margin keeps stretched bonds of a hot or poorly relaxed geometry in the graph.
BOND_SCALE = 1.2


def bond_graph(atoms: Atoms, scale: float = BOND_SCALE) -> np.ndarray:
    """``(n, n)`` bool adjacency: bonded when closer than ``scale`` times the sum of natural covalent radii."""
    from ase.neighborlist import natural_cutoffs

    radii = np.asarray(natural_cutoffs(atoms, mult=scale))
    d = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    adj = d < radii[:, None] + radii[None, :]
    np.fill_diagonal(adj, False)
    return adj


def bonds(atoms: Atoms, scale: float = BOND_SCALE) -> list[tuple[int, int]]:
    """Bonded pairs ``(i, j)`` with ``i < j``."""
    i, j = np.nonzero(np.triu(bond_graph(atoms, scale)))
    return list(zip(i.tolist(), j.tolist(), strict=True))


#: Wavenumber windows (cm^-1) where X-H stretches appear, for marking figures.
STRETCH_REGIONS = {"C-H stretch": (2800.0, 3150.0), "N-H stretch": (3300.0, 3500.0), "O-H stretch": (3200.0, 3800.0)}


@dataclass
class VibrationsResult:
    """Harmonic analysis of one model head or level at one geometry.

    Attributes
    ----------
    name
        The model head's label or the level's name.
    atoms
        The geometry analysed (relaxed unless asked not to), Å.
    hessian
        ``(3n, 3n)`` eV/Å^2, atom-major (x0, y0, z0, x1, ...).
    frequencies
        ``(m,)`` harmonic wavenumbers in cm^-1, ascending; imaginary ones negative. ``m = 3n - 6`` (5 if linear).
    modes
        ``(m, n, 3)`` Cartesian displacement of each mode, unit norm over all atoms.
    mass_weighted
        ``(3n, m)`` orthonormal eigenvectors of the mass-weighted Hessian.
    characters
        Per mode, ``"O-H stretch"``-like when one kind of bond stretch carries most of the motion, else ``""``.
    max_force
        Largest force (eV/Å) left on an atom at ``atoms``: the frequencies are only meaningful near zero.
    provenance
        Where the numbers came from, when known: for a shipped reference
        (:func:`workbench.data.builtin.vibrational_reference`) the level with all its settings, program versions,
        optimizer and Hessian settings, wall time and date.
    """

    name: str
    atoms: Atoms = field(repr=False)
    hessian: np.ndarray = field(repr=False)
    frequencies: np.ndarray
    modes: np.ndarray = field(repr=False)
    mass_weighted: np.ndarray = field(repr=False)
    characters: list[str] = field(default_factory=list)
    max_force: float = float("nan")
    provenance: dict = field(default_factory=dict, repr=False)

    def table(self) -> pd.DataFrame:
        """One row per mode: ``mode``, ``frequency`` (cm^-1), ``character``."""
        return pd.DataFrame(
            {"mode": np.arange(len(self.frequencies)), "frequency": self.frequencies, "character": self.characters}
        )


def stretch_characters(atoms: Atoms, modes: np.ndarray, threshold: float = 0.5) -> list[str]:
    """Name each mode after the kind of bond whose stretching carries more than ``threshold`` of its motion.

    The stretch of bond ``i-j`` in a unit-norm displacement ``d`` is ``(d_j - d_i) · e_ij``; a pure O-H stretch
    puts nearly all of ``|d|^2`` there, a bend or torsion almost none.
    """
    pairs = bonds(atoms)
    if not pairs:
        return [""] * len(modes)
    i, j = np.array(pairs).T
    e = atoms.positions[j] - atoms.positions[i]
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    kinds = []
    for a, b in zip(i, j, strict=True):
        za, zb = sorted((atoms.numbers[a], atoms.numbers[b]), reverse=True)
        kinds.append(f"{chemical_symbols[za]}-{chemical_symbols[zb]}")
    kinds = np.array(kinds)
    out = []
    for d in modes:
        stretch = np.einsum("bk,bk->b", d[j] - d[i], e) ** 2
        total = float(np.sum(d**2))
        best, share = "", 0.0
        for kind in np.unique(kinds):
            s = float(stretch[kinds == kind].sum()) / total
            if s > share:
                best, share = kind, s
        out.append(f"{best} stretch" if share > threshold else "")
    return out


def harmonic_analysis(atoms: Atoms, hessian: np.ndarray, name: str = "", max_force: float = np.nan):
    """Frequencies and modes from a Cartesian Hessian (eV/Å^2) at ``atoms``; see :class:`VibrationsResult`.

    The mass-weighted Hessian is diagonalised in the space orthogonal to translations and rotations, which gives
    exactly 3n - 6 (3n - 5) vibrations, with no near-zero rigid modes to sort out.
    """
    hessian = np.asarray(hessian, dtype=float)
    omega2, vectors = normal_modes(atoms, hessian)
    inv_sq = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    cart = vectors * inv_sq[:, None]
    cart = (cart / np.linalg.norm(cart, axis=0)).T.reshape(-1, len(atoms), 3)
    return VibrationsResult(
        name, atoms.copy(), hessian, to_wavenumbers(omega2), cart, vectors, stretch_characters(atoms, cart), max_force
    )
