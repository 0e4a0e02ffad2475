"""GM-NN: atomic neural networks on Gaussian moments.

Zaverkin & Kästner, "Gaussian moments as physically inspired molecular descriptors for accurate and
scalable machine learning potentials", J. Chem. Theory Comput. 16, 5410 (2020).

Equations (atom ``i``, neighbours ``j`` within the cutoff, ``u_ij`` the unit vector to ``j``):

- radial functions with trainable element-pair weights:
  ``R_s(r_ij) = sum_k beta[Z_i, Z_j, s, k] phi_k(r_ij)``, ``phi_k`` Gaussians times the cosine cutoff;
- moments ``Psi_{i,L,s} = sum_j R_s(r_ij) u_ij^{⊗L}`` for ``L = 0..3``;
- invariants (all tensor indices contracted; symmetric index combinations kept once):
  ``Psi_0``; ``Psi_1·Psi_1``; ``Psi_2:Psi_2``; ``Psi_3⋮Psi_3``; ``tr(Psi_2 Psi_2 Psi_2)``;
  ``Psi_1·Psi_2·Psi_1``; ``Psi_3:Psi_3:Psi_2`` (``T_abc T'_abd A_cd``); ``Psi_3:Psi_2·Psi_1``;
- atomic energies from a feed-forward network of the standardised invariants; the fidelity heads
  read its last hidden layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import AtomisticModel
from .batch import Batch
from .heads import FidelityHeads, mlp
from .heads import activation as make_activation
from .neighbors import Neighbourhood
from .radial import GaussianBasis
from .tensors import direction_powers, moments


def _pairs(s: int, device) -> torch.Tensor:
    return torch.combinations(torch.arange(s, device=device), 2, with_replacement=True)


def gaussian_moment_invariants(psi: list[torch.Tensor]) -> torch.Tensor:
    """Invariants of moments ``[Psi_0 (A, S), Psi_1 (A, S, 3), Psi_2 (A, S, 9), Psi_3 (A, S, 27)]``: ``(A, D)``."""
    p0, p1, p2, p3 = psi
    a, s = p0.shape
    m2, m3 = p2.view(a, s, 3, 3), p3.view(a, s, 3, 3, 3)
    pairs = _pairs(s, p0.device)
    triples = torch.combinations(torch.arange(s, device=p0.device), 3, with_replacement=True)
    i, j = pairs[:, 0], pairs[:, 1]
    feats = [
        p0,
        (p1[:, i] * p1[:, j]).sum(-1),
        (p2[:, i] * p2[:, j]).sum(-1),
        (p3[:, i] * p3[:, j]).sum(-1),
    ]
    tr3 = torch.einsum("xsab,xtbc,xuca->xstu", m2, m2, m2)
    feats.append(tr3[:, triples[:, 0], triples[:, 1], triples[:, 2]])
    v_a_v = torch.einsum("xsa,xuab,xtb->xstu", p1, m2, p1)  # symmetric in s, t
    feats.append(v_a_v[:, i, j].flatten(1))
    t_t_a = torch.einsum("xsabc,xtabd,xucd->xstu", m3, m3, m2)  # symmetric in s, t
    feats.append(t_t_a[:, i, j].flatten(1))
    feats.append(torch.einsum("xsabc,xtab,xuc->xstu", m3, m2, p1).flatten(1))
    return torch.cat(feats, dim=1)


def n_gaussian_moment_invariants(s: int) -> int:
    """Number of invariants for ``s`` radial functions."""
    pairs, triples = s * (s + 1) // 2, s * (s + 1) * (s + 2) // 6
    return s + 3 * pairs + triples + 2 * pairs * s + s**3


class GMNN(AtomisticModel):
    """Gaussian-moment neural network (Zaverkin & Kästner, J. Chem. Theory Comput. 16, 5410 (2020)).

    Parameters
    ----------
    elements, fidelities, fidelity_mode
        As for every family (see :class:`~workbench.models.base.AtomisticModel`).
    n_radial
        Number of radial functions ``R_s`` (each a trainable element-pair combination of the basis).
    n_basis
        Number of Gaussians ``phi_k`` in distance.
    cutoff, r_min
        Cutoff radius and first Gaussian centre, Å.
    hidden
        Hidden widths of the atomic network (the heads read the last one).
    activation
        Nonlinearity between layers.
    readout_hidden
        Hidden widths of each head's readout (empty: linear).
    """

    family = "gmnn"
    description = "GM-NN: atomic networks on Gaussian moments up to rank 3 with element-pair radial weights (JCTC 2020)"

    def __init__(
        self,
        elements: Sequence[int],
        fidelities: Sequence[str] = ("default",),
        fidelity_mode: str = "heads",
        n_radial: int = 5,
        n_basis: int = 7,
        cutoff: float = 5.0,
        r_min: float = 0.5,
        hidden: Sequence[int] = (128, 128),
        activation: str = "silu",
        readout_hidden: Sequence[int] = (),
    ):
        super().__init__(locals())
        self.cutoff = float(cutoff)
        self.basis = GaussianBasis(n_basis, cutoff, r_min, "cosine")
        e = self.n_elements
        self.radial_weights = nn.Parameter(torch.randn(e * e, n_radial, n_basis) / n_basis**0.5)
        n_inv = n_gaussian_moment_invariants(n_radial)
        # Standardisation of the invariants, set from data by initialise(); identity until then.
        self.register_buffer("feature_mean", torch.zeros(n_inv))
        self.register_buffer("feature_std", torch.ones(n_inv))
        hidden = list(hidden)
        if not hidden:
            raise ValueError("GM-NN needs at least one hidden layer (hidden=[...])")
        trunk = mlp(n_inv + self.n_fidelity_inputs, hidden[:-1], hidden[-1], activation)
        self.network = nn.Sequential(*trunk, make_activation(activation))
        self.heads = FidelityHeads(
            hidden[-1], self.n_fidelities, e, hidden=readout_hidden, act=activation, mode=fidelity_mode
        )

    def invariants(self, batch: Batch, species: torch.Tensor, neighbours: Neighbourhood) -> torch.Tensor:
        """Raw Gaussian-moment invariants ``(A, D)`` of every atom."""
        e = self.n_elements
        padded = neighbours.to_padded(species)
        pair_type = padded[:, :, None] * e + padded[:, None, :]
        phi = self.basis(neighbours.distances)  # (N, n, n, K), zero for non-pairs
        radial = torch.einsum("cijk,cijsk->cijs", phi, self.radial_weights.to(phi.dtype)[pair_type])
        psi = moments(radial, direction_powers(neighbours.unit_vectors(), 3))
        return gaussian_moment_invariants([neighbours.to_flat(p) for p in psi])

    def atom_features(
        self, batch: Batch, species: torch.Tensor, neighbours: Neighbourhood, fidelity: int | None
    ) -> torch.Tensor:
        x = (self.invariants(batch, species, neighbours) - self.feature_mean) / self.feature_std
        x = torch.cat([x, self.fidelity_onehot(fidelity, len(x), x)], dim=1)
        return self.network(x)

    @torch.no_grad()
    def initialise(self, ds, max_configurations: int = 512) -> GMNN:
        """References (see :meth:`initialise_references`) and the standardisation of the invariants,
        from at most ``max_configurations`` configurations of ``ds``. Returns self."""
        self.initialise_references(ds)
        sample = ds.select(range(min(len(ds), max_configurations)))
        dtype = self.feature_mean.dtype
        batch = Batch.from_dataset(sample, fidelities=[], device=self.feature_mean.device, dtype=dtype)
        species = self.species(batch.numbers)
        x = self.invariants(batch, species, Neighbourhood.build(batch, self.cutoff))
        self.feature_mean.copy_(x.mean(0))
        self.feature_std.copy_(x.std(0).clamp_min(1e-3 * float(x.std(0).max()) + 1e-12))
        return self
