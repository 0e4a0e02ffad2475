"""HIP-NN: the hierarchically interacting particle neural network.

Lubbers, Smith, Barros, "Hierarchical modeling of molecular energies using a deep neural network",
J. Chem. Phys. 148, 241715 (2018).

Equations (per atom ``i``, layer ``l``, feature ``a``):

- input: ``z_i^0`` is the one-hot vector of the element of atom ``i`` (with the fidelity one-hot
  appended in embedding mode);
- interaction layer: ``z_i^{l+1} = f( sum_j sum_nu s_nu(r_ij) (V_nu z_j^l) + W z_i^l + b )``, with the
  distance sensitivities ``s_nu(r) = exp(-(1/r - 1/mu_nu)^2 / (2 sigma_nu^2)) f_c(r)`` (Gaussians in
  inverse distance, trainable ``mu`` and ``sigma``) and ``f_c`` the cosine cutoff;
- on-site layers ``z_i <- f(W' z_i + b')`` after each interaction layer;
- hierarchical energy: ``E = sum_l sum_i e_i^l`` where ``e_i^l`` is a linear readout of the features at
  the end of interaction block ``l``. A linear readout of the concatenated block features equals that
  sum, so the fidelity heads read the concatenation.

The sum over neighbours is one batched matrix product per block over the dense, padded pair blocks
of :class:`~workbench.models.neighbors.Neighbourhood`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import AtomisticModel
from .batch import Batch
from .heads import FidelityHeads
from .heads import activation as make_activation
from .neighbors import Neighbourhood
from .radial import InverseGaussianSensitivity


class InteractionLayer(nn.Module):
    """``f(sum_j sum_nu s_nu(r_ij) V_nu z_j + W z_i + b)`` on padded blocks."""

    def __init__(self, n_in: int, n_out: int, n_sensitivities: int, act: str):
        super().__init__()
        self.n_sensitivities = n_sensitivities
        self.interaction = nn.Linear(n_sensitivities * n_in, n_out, bias=False)
        self.self_interaction = nn.Linear(n_in, n_out)
        self.act = make_activation(act)

    def preactivation(self, z: torch.Tensor, pair: dict[str, torch.Tensor]) -> torch.Tensor:
        """``z`` ``(N, n, B)``; ``pair["sensitivities"]`` ``(N, n * nu, n)`` (rows ``i * nu + nu``, columns ``j``)."""
        n_conf, n, b = z.shape
        env = torch.bmm(pair["sensitivities"], z).reshape(n_conf, n, self.n_sensitivities * b)
        return self.interaction(env) + self.self_interaction(z)

    def forward(self, z: torch.Tensor, pair: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.act(self.preactivation(z, pair))


class HIPNN(AtomisticModel):
    """HIP-NN (Lubbers, Smith, Barros, J. Chem. Phys. 148, 241715 (2018)) with fidelity heads.

    Parameters
    ----------
    elements
        Atomic numbers the model handles.
    fidelities
        Names of the levels of theory (one head each).
    fidelity_mode
        ``"heads"`` (a readout per fidelity on one trunk), ``"embedding"`` (the fidelity one-hot is
        an input of the trunk; one shared readout) or ``"residual"`` (each fidelity's head is the
        previous fidelity's plus a correction that starts at zero; list the lowest level first).
    n_features
        Width of every hidden layer.
    n_interactions
        Number of interaction blocks.
    n_atom_layers
        On-site layers after each interaction layer.
    n_sensitivities
        Number of distance sensitivity functions.
    cutoff
        Cutoff radius in Å.
    soft_min, soft_max
        Range (Å) over which the sensitivity centres start, evenly spaced in 1/r (``soft_max``
        defaults to ``cutoff - 1``, and at least ``soft_min + 0.5``).
    activation
        Nonlinearity (``softplus`` as in the paper, or ``silu``, ``tanh``, ``gelu``).
    readout_hidden
        Hidden widths of each head's readout (empty: linear, as in the paper).
    """

    family = "hipnn"
    description = "HIP-NN: hierarchical interacting-particle network with per-layer energy readouts (JCP 2018)"

    def __init__(
        self,
        elements: Sequence[int],
        fidelities: Sequence[str] = ("default",),
        fidelity_mode: str = "heads",
        n_features: int = 60,
        n_interactions: int = 2,
        n_atom_layers: int = 3,
        n_sensitivities: int = 20,
        cutoff: float = 5.0,
        soft_min: float = 0.75,
        soft_max: float | None = None,
        activation: str = "softplus",
        readout_hidden: Sequence[int] = (),
    ):
        super().__init__(locals())
        self._build_trunk()

    def _build_trunk(self) -> None:
        """Sensitivities, interaction blocks and heads from the stored settings."""
        cfg = self._settings
        n_features, n_sensitivities, act = cfg["n_features"], cfg["n_sensitivities"], cfg["activation"]
        self.cutoff = float(cfg["cutoff"])
        soft_min, soft_max = cfg["soft_min"], cfg["soft_max"]
        upper = soft_max if soft_max is not None else max(self.cutoff - 1.0, soft_min + 0.5)
        self.sensitivity = InverseGaussianSensitivity(n_sensitivities, soft_min, upper, self.cutoff, "cosine")
        n_in = self.n_elements + self.n_fidelity_inputs
        self.blocks = nn.ModuleList()
        for _ in range(cfg["n_interactions"]):
            layers = [self._interaction_layer(n_in, n_features)]
            for _ in range(cfg["n_atom_layers"]):
                layers.append(nn.Sequential(nn.Linear(n_features, n_features), make_activation(act)))
            self.blocks.append(nn.ModuleList(layers))
            n_in = n_features
        self.heads = FidelityHeads(
            n_features * cfg["n_interactions"],
            self.n_fidelities,
            self.n_elements,
            hidden=cfg["readout_hidden"],
            act=act,
            mode=self.fidelity_mode,
        )

    def _interaction_layer(self, n_in: int, n_out: int) -> nn.Module:
        return InteractionLayer(n_in, n_out, self._settings["n_sensitivities"], self._settings["activation"])

    def _pair_terms(self, neighbours: Neighbourhood) -> dict[str, torch.Tensor]:
        """What every interaction layer needs from the geometry (computed once per forward pass)."""
        s = self.sensitivity(neighbours.distances)  # (N, n_i, n_j, nu)
        n_conf, n, _, nu = s.shape
        return {"pair_sensitivities": s, "sensitivities": s.permute(0, 1, 3, 2).reshape(n_conf, n * nu, n)}

    def atom_features(
        self, batch: Batch, species: torch.Tensor, neighbours: Neighbourhood, fidelity: int | None
    ) -> torch.Tensor:
        dtype = batch.positions.dtype
        onehot = nn.functional.one_hot(species, self.n_elements).to(dtype)
        z = torch.cat([onehot, self.fidelity_onehot(fidelity, len(species), onehot)], dim=1)
        z = neighbours.to_padded(z)
        pair = self._pair_terms(neighbours)
        hierarchy = []
        for block in self.blocks:
            z = block[0](z, pair)
            for layer in block[1:]:
                z = layer(z)
            hierarchy.append(z)
        return neighbours.to_flat(torch.cat(hierarchy, dim=-1))
