"""Labels of one fidelity (:class:`Labels`) and the index arithmetic of the flat, ragged layout they
share with :class:`~workbench.data.dataset.Dataset`: configuration ``i`` owns atoms ``ptr[i]:ptr[i + 1]``.

Energies are ``(N,)`` eV, forces ``(A, 3)`` eV/Å; a missing value is NaN *and* masked, never a fake 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROPERTIES = ("energy", "forces")


@dataclass
class Labels:
    """Labels of one fidelity.

    Attributes
    ----------
    energy
        ``(N,)`` float64, eV; NaN where missing.
    energy_mask
        ``(N,)`` bool, True where the configuration has an energy at this fidelity.
    forces
        ``(A, 3)`` eV/Å, NaN where missing; ``None`` when no configuration has forces.
    forces_mask
        ``(N,)`` bool, True where the configuration has forces at this fidelity.
    """

    energy: np.ndarray
    energy_mask: np.ndarray
    forces: np.ndarray | None
    forces_mask: np.ndarray

    @classmethod
    def from_values(cls, energy: np.ndarray | None, forces: np.ndarray | None, ptr: np.ndarray) -> Labels:
        """Build labels from arrays in which NaN marks a missing value (eV, eV/Å)."""
        n = len(ptr) - 1
        if energy is None:
            energy = np.full(n, np.nan)
        energy = np.asarray(energy, dtype=np.float64)
        energy_mask = ~np.isnan(energy)
        if forces is None:
            return cls(energy, energy_mask, None, np.zeros(n, bool))
        # A configuration has forces if none of its components is NaN.
        bad = np.isnan(forces).any(axis=1)
        forces_mask = ~_any_per_config(bad, ptr)
        return cls(energy, energy_mask, forces, forces_mask)

    def select(self, index: np.ndarray, atom_index: np.ndarray) -> Labels:
        forces = None if self.forces is None else self.forces[atom_index]
        forces_mask = self.forces_mask[index]
        if forces is not None and not forces_mask.any():
            forces = None
        return Labels(self.energy[index], self.energy_mask[index], forces, forces_mask)


def atom_ranges(starts, sizes) -> np.ndarray:
    """The indices ``starts[i] : starts[i] + sizes[i]`` of every ``i``, concatenated: the rows of
    per-atom arrays that belong to chosen configurations, without a Python loop over them."""
    starts, sizes = np.asarray(starts, np.int64), np.asarray(sizes, np.int64)
    offsets = np.cumsum(sizes) - sizes
    return np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()))


def _any_per_config(flags: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """For a per-atom bool array, whether any atom of each configuration is set (``ptr`` as in a Dataset)."""
    counts = np.add.reduceat(flags.astype(np.int64), ptr[:-1]) if len(flags) else np.zeros(0, np.int64)
    counts[np.diff(ptr) == 0] = 0  # reduceat returns the next element for empty segments
    return counts > 0
