"""Neighbour pairs of molecules, vectorized in torch (no Python loop over configurations).

For molecules every atom may see every other atom of its configuration, so the pairs of a batch
form a block-diagonal pattern. :class:`Neighbourhood` stores each block densely, padded to the
largest configuration of the batch: ``(N, n, n)`` distances and a mask of the pairs that count
(same configuration, ``i != j``, distance below the cutoff). Dense blocks turn the sums over
neighbours into batched matrix products, which are fast on CPU and GPU and differentiable to any
order (forces, force training, Hessians). :meth:`Neighbourhood.pairs` gives the flat pair list.

Lengths in Å.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .batch import Batch


@dataclass
class Neighbourhood:
    """All pairs within ``cutoff`` (Å) of each configuration of a batch, padded to ``n`` atoms.

    Attributes
    ----------
    slot
        ``(A,)`` index of each atom in the padded ``(N * n)`` layout.
    atom_mask
        ``(N, n)`` True for real atoms (False for padding).
    mask
        ``(N, n, n)`` True where atom ``j`` is a neighbour of atom ``i``.
    vectors
        ``(N, n, n, 3)`` Å, ``r_j - r_i`` (0 where ``mask`` is False).
    distances
        ``(N, n, n)`` Å; equal to ``cutoff`` where ``mask`` is False, so that every smooth cutoff
        function and everything multiplied by it vanishes there.
    """

    slot: torch.Tensor
    atom_mask: torch.Tensor
    mask: torch.Tensor
    vectors: torch.Tensor
    distances: torch.Tensor
    cutoff: float

    @classmethod
    def build(cls, batch: Batch, cutoff: float) -> Neighbourhood:
        """Neighbourhood of every atom of ``batch`` within ``cutoff`` Å (molecules: no periodic images)."""
        if batch.positions.dim() != 2 or batch.positions.shape[-1] != 3:
            raise ValueError(f"positions must have shape (A, 3), got {tuple(batch.positions.shape)}")
        n_conf = batch.n_configurations
        n = batch.max_atoms
        conf = batch.configuration
        local = torch.arange(len(conf), device=conf.device) - batch.ptr[conf]
        slot = conf * n + local
        atom_mask = torch.zeros(n_conf * n, dtype=torch.bool, device=conf.device)
        atom_mask[slot] = True
        atom_mask = atom_mask.view(n_conf, n)
        pos = batch.positions.new_zeros(n_conf * n, 3).index_copy(0, slot, batch.positions).view(n_conf, n, 3)
        vectors = pos[:, None, :, :] - pos[:, :, None, :]
        d2 = (vectors * vectors).sum(-1)
        eye = torch.eye(n, dtype=torch.bool, device=conf.device)
        mask = atom_mask[:, :, None] & atom_mask[:, None, :] & ~eye & (d2 < cutoff * cutoff)
        # Masked entries get a finite, gradient-free stand-in before the square root (sqrt(0) has no gradient).
        distances = torch.sqrt(torch.where(mask, d2, torch.full_like(d2, cutoff * cutoff)))
        vectors = torch.where(mask[..., None], vectors, torch.zeros_like(vectors))
        return cls(slot, atom_mask, mask, vectors, distances, float(cutoff))

    @property
    def n_configurations(self) -> int:
        return self.atom_mask.shape[0]

    @property
    def n_max(self) -> int:
        return self.atom_mask.shape[1]

    def unit_vectors(self) -> torch.Tensor:
        """``(N, n, n, 3)`` unit vectors from ``i`` to ``j`` (0 where there is no pair)."""
        return self.vectors / self.distances[..., None]

    def to_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Per-atom values ``(A, ...)`` to the padded layout ``(N, n, ...)`` (0 on padding)."""
        out = x.new_zeros((self.n_configurations * self.n_max,) + tuple(x.shape[1:]))
        return out.index_copy(0, self.slot, x).view((self.n_configurations, self.n_max) + tuple(x.shape[1:]))

    def to_flat(self, x: torch.Tensor) -> torch.Tensor:
        """Padded values ``(N, n, ...)`` back to per-atom values ``(A, ...)``."""
        return x.reshape((-1,) + tuple(x.shape[2:]))[self.slot]

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat pair list ``(i, j, distance)``: atom indices into the batch (``j`` is a neighbour of
        ``i``, both directions listed) and distances in Å."""
        n = self.n_max
        atom_of_slot = torch.full((self.n_configurations * n,), -1, dtype=torch.long, device=self.slot.device)
        atom_of_slot[self.slot] = torch.arange(len(self.slot), device=self.slot.device)
        c, i, j = torch.nonzero(self.mask, as_tuple=True)
        return atom_of_slot[c * n + i], atom_of_slot[c * n + j], self.distances[c, i, j]


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Sum rows of ``src`` that share an ``index`` (e.g. atoms into configurations): ``(dim_size, ...)``."""
    out = src.new_zeros((dim_size,) + tuple(src.shape[1:]))
    return out.index_add(0, index, src)
