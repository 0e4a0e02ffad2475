"""A batch of configurations as tensors on one device: flat atoms plus per-fidelity targets and masks.

Units: positions in Å, energies in eV, forces in eV/Å. Missing labels (NaN in the
:class:`~workbench.data.Dataset`) become 0 inside the batch; the masks decide what counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..data.fidelity import canonical_name


@dataclass
class Batch:
    """Configurations stored flat (``A`` atoms, ``N`` configurations).

    Attributes
    ----------
    numbers
        ``(A,)`` int64 atomic numbers.
    positions
        ``(A, 3)`` Å; requires grad when forces are wanted (see :meth:`requires_grad`).
    configuration
        ``(A,)`` int64 index of the configuration of each atom.
    ptr
        ``(N + 1,)`` int64: configuration ``c`` owns atoms ``ptr[c]:ptr[c + 1]``.
    n_configurations
        ``N``.
    energy, energy_mask
        per fidelity name: ``(N,)`` eV (0 where missing) and ``(N,)`` bool.
    forces, forces_mask
        per fidelity name: ``(A, 3)`` eV/Å (0 where missing) and ``(N,)`` bool per configuration;
        :meth:`atom_forces_mask` gives it per atom.
    """

    numbers: torch.Tensor
    positions: torch.Tensor
    configuration: torch.Tensor
    ptr: torch.Tensor
    n_configurations: int
    energy: dict[str, torch.Tensor] = field(default_factory=dict)
    energy_mask: dict[str, torch.Tensor] = field(default_factory=dict)
    forces: dict[str, torch.Tensor] = field(default_factory=dict)
    forces_mask: dict[str, torch.Tensor] = field(default_factory=dict)
    #: Largest number of atoms in one configuration (a Python int, so no device sync is needed).
    max_atoms: int = 0

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def from_arrays(
        cls,
        numbers,
        positions,
        ptr,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Batch:
        """A batch without labels from flat arrays (``positions`` in Å)."""
        ptr_np = np.asarray(ptr, dtype=np.int64)
        sizes = np.diff(ptr_np)
        n = len(sizes)
        conf = np.repeat(np.arange(n), sizes)
        return cls(
            numbers=torch.as_tensor(np.asarray(numbers, dtype=np.int64), device=device),
            positions=torch.as_tensor(np.asarray(positions), device=device).to(dtype),
            configuration=torch.as_tensor(conf, device=device),
            ptr=torch.as_tensor(ptr_np, device=device),
            n_configurations=n,
            max_atoms=int(sizes.max()) if n else 0,
        )

    @classmethod
    def from_atoms(cls, atoms_list, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Batch:
        """A batch without labels from one :class:`ase.Atoms` or a list of them (Å)."""
        if hasattr(atoms_list, "get_positions"):
            atoms_list = [atoms_list]
        sizes = [len(a) for a in atoms_list]
        ptr = np.concatenate([[0], np.cumsum(sizes)])
        numbers = np.concatenate([a.numbers for a in atoms_list])
        positions = np.concatenate([a.positions for a in atoms_list])
        return cls.from_arrays(numbers, positions, ptr, device=device, dtype=dtype)

    @classmethod
    def from_dataset(
        cls,
        ds,
        indices=None,
        fidelities: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Batch:
        """Configurations ``indices`` (all when None) of a :class:`~workbench.data.Dataset`, with the
        energies (eV) and forces (eV/Å) of ``fidelities`` (all present when None) and their masks."""
        if indices is not None:
            ds = ds.select(indices)
        names = ds.fidelity_names if fidelities is None else [ds.fidelity(f).name for f in fidelities]
        batch = cls.from_arrays(ds.numbers, ds.positions, ds.ptr, device=device, dtype=dtype)
        n_atoms = len(ds.numbers)
        for name in names:
            lab = ds.labels[name]
            e = np.where(lab.energy_mask, np.nan_to_num(lab.energy), 0.0)
            # Energies keep float64 until the model subtracts its references: totals of ~1e4 eV need it.
            batch.energy[name] = torch.as_tensor(e, dtype=torch.float64, device=device)
            batch.energy_mask[name] = torch.as_tensor(lab.energy_mask, device=device)
            if lab.forces is None:
                f = np.zeros((n_atoms, 3))
            else:
                f = np.nan_to_num(np.asarray(lab.forces, dtype=np.float64), nan=0.0)
                f[~np.repeat(lab.forces_mask, ds.n_atoms)] = 0.0
            batch.forces[name] = torch.as_tensor(f, device=device).to(dtype)
            batch.forces_mask[name] = torch.as_tensor(lab.forces_mask, device=device)
        return batch

    # ----------------------------------------------------------------------------- views
    @property
    def fidelities(self) -> list[str]:
        """Names of the fidelities with targets in this batch."""
        return list(self.energy)

    @property
    def n_atoms(self) -> torch.Tensor:
        """``(N,)`` number of atoms of each configuration."""
        return self.ptr[1:] - self.ptr[:-1]

    @property
    def device(self) -> torch.device:
        return self.positions.device

    @property
    def dtype(self) -> torch.dtype:
        return self.positions.dtype

    def atom_forces_mask(self, fidelity: str) -> torch.Tensor:
        """``(A,)`` bool: True for atoms whose configuration has forces at ``fidelity``."""
        return self.forces_mask[canonical_name(fidelity)][self.configuration]

    def requires_grad(self) -> Batch:
        """A shallow copy whose positions are a fresh leaf tensor that requires grad (for forces)."""
        return replace(self, positions=self.positions.detach().clone().requires_grad_(True))

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Batch:
        """A copy on ``device`` with positions and forces in ``dtype`` (energies stay float64)."""

        def move(t: torch.Tensor, floating: bool = False) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if floating else None)

        return replace(
            self,
            numbers=move(self.numbers),
            positions=move(self.positions, True),
            configuration=move(self.configuration),
            ptr=move(self.ptr),
            energy={k: move(v) for k, v in self.energy.items()},
            energy_mask={k: move(v) for k, v in self.energy_mask.items()},
            forces={k: move(v, True) for k, v in self.forces.items()},
            forces_mask={k: move(v) for k, v in self.forces_mask.items()},
        )

    def __len__(self) -> int:
        return self.n_configurations

    def __repr__(self) -> str:
        return (
            f"<Batch: {self.n_configurations} configurations, {len(self.numbers)} atoms, "
            f"fidelities {self.fidelities}, {self.dtype} on {self.device}>"
        )
