"""HIP-NN-TS: HIP-NN with tensor sensitivities, and higher-order tensor invariants.

Chigaev, Smith, Anaya, Barros, Tretiak, Lubbers, "Lightweight and effective tensor sensitivity for
atomistic neural networks", J. Chem. Phys. 158, 184108 (2023); higher-order invariants after Allen,
Shinkle, Bujack, Lubbers, "Optimal invariant bases for atomistic machine learning", arXiv:2503.23515.

Each interaction layer adds to HIP-NN's scalar interaction (see :mod:`workbench.models.hipnn`)
Cartesian tensor messages of order ``l = 1..max_order`` for every output feature ``f``:

``T^l_{i,f} = sum_j sum_nu s_nu(r_ij) (V^l_nu z_j)_f  u_ij^{⊗l}``,  ``u_ij = (r_j - r_i) / r_ij``,

whose traceless parts (a vector ``v``, a matrix ``A``, a rank-3 tensor ``T``) are contracted to
rotation invariants ``I_{i,f,k}`` and mixed linearly into the layer's pre-activation:

``z_i' = f( HIP-NN terms + sum_{f,k} U_{k,f,a} I_{i,f,k} )``.

``invariants="norms"`` uses the squared norm of each order (HIP-NN-TS); ``"complete"`` uses the
functionally independent products of up to four factors of :mod:`workbench.models.tensors` (5 for
order 2; 12, or 13 with the scalar message, for order 3), which see up to five-body correlations in
one layer.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from torch import nn

from .base import AtomisticModel
from .hipnn import HIPNN, InteractionLayer
from .neighbors import Neighbourhood
from .tensors import deviator2, deviator3, direction_powers, invariant_names, invariants


class TensorInteractionLayer(InteractionLayer):
    """HIP-NN interaction plus contracted tensor messages up to ``max_order``."""

    def __init__(self, n_in: int, n_out: int, n_sensitivities: int, act: str, max_order: int, names: list[str]):
        super().__init__(n_in, n_out, n_sensitivities, act)
        self.max_order = max_order
        self.names = names
        self.n_out = n_out
        self.tensor_interaction = nn.Linear(n_in, max_order * n_sensitivities * n_out, bias=False)
        self.invariant_mix = nn.Linear(n_out * len(names), n_out, bias=False)

    def forward(self, z: torch.Tensor, pair: dict[str, torch.Tensor]) -> torch.Tensor:
        pre = self.preactivation(z, pair)
        n_conf, n, _ = z.shape
        h = self.tensor_interaction(z).view(n_conf, n, self.max_order, self.n_sensitivities, self.n_out)
        # Per pair (i <- j) and order: sum over sensitivities of s_nu(r_ij) (V^l_nu z_j).
        q = torch.einsum("cijn,cjlnf->cijlf", pair["pair_sensitivities"], h)
        tensors = [torch.einsum("cijm,cijf->cifm", u, q[..., order, :]) for order, u in enumerate(pair["powers"])]
        v = tensors[0]
        a = deviator2(tensors[1].unflatten(-1, (3, 3))) if self.max_order >= 2 else None
        t = deviator3(tensors[2].unflatten(-1, (3, 3, 3))) if self.max_order >= 3 else None
        inv = invariants(self.names, v, a, t)  # (N, n, F, n_invariants)
        return self.act(pre + self.invariant_mix(inv.flatten(-2)))


# HIPNN's parameters without ``self``: HIPNNTensor takes them as they are and adds its own after them
_HIPNN_SIGNATURE = inspect.signature(HIPNN)


class HIPNNTensor(HIPNN):
    """HIP-NN-TS (Chigaev et al., J. Chem. Phys. 158, 184108 (2023)) with optional higher-order
    invariants (arXiv:2503.23515).

    Parameters are those of :class:`~workbench.models.hipnn.HIPNN`, plus

    max_order
        Highest tensor order of the messages (1: vectors, 2: + rank-2, 3: + rank-3).
    invariants
        ``"norms"`` (squared norm per order, as in HIP-NN-TS) or ``"complete"`` (a functionally
        independent set of products of up to four tensor factors).
    """

    family = "hipnn_tensor"
    description = "HIP-NN-TS: HIP-NN with vector and rank-2 (optionally rank-3) tensor sensitivities (JCP 2023)"

    def __init__(self, elements: Sequence[int], *args, max_order: int = 2, invariants: str = "norms", **kwargs):
        # HIP-NN's arguments, bound as HIPNN binds them; the stored settings list all of them, defaults
        # included, then this class's own, so a saved model rebuilds the same whatever the defaults become
        hipnn = _HIPNN_SIGNATURE.bind(elements, *args, **kwargs)
        hipnn.apply_defaults()
        AtomisticModel.__init__(self, {**hipnn.arguments, "max_order": max_order, "invariants": invariants})
        self.invariant_names = invariant_names(max_order, invariants)
        self._build_trunk()

    def _interaction_layer(self, n_in: int, n_out: int) -> nn.Module:
        cfg = self._settings
        return TensorInteractionLayer(
            n_in, n_out, cfg["n_sensitivities"], cfg["activation"], cfg["max_order"], self.invariant_names
        )

    def _pair_terms(self, neighbours: Neighbourhood) -> dict[str, torch.Tensor]:
        pair = super()._pair_terms(neighbours)
        pair["powers"] = direction_powers(neighbours.unit_vectors(), self._settings["max_order"])
        return pair


def _documented_signature(init) -> inspect.Signature:
    """``init``'s signature as users should read it: HIP-NN's parameters, then those ``init`` adds."""
    own = inspect.signature(init).parameters
    added = [p for p in own.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return inspect.Signature([own["self"], *_HIPNN_SIGNATURE.parameters.values(), *added])


HIPNNTensor.__init__.__signature__ = _documented_signature(HIPNNTensor.__init__)
