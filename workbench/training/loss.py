"""Masked multi-fidelity loss: each configuration contributes exactly the labels it has.

For head ``k`` with weights ``w_E``, ``w_F`` and label spreads ``s_E`` (eV per atom) and ``s_F`` (eV/Å),
over a dataset with ``N_E`` configurations that have an energy and ``A_F`` atoms that have forces:

``L = sum_k  w_E / N_E * sum_{c has E}  ((E_c - E_c^ref) / (n_c s_E))^2
      + w_F / (3 A_F) * sum_{atoms with F} |F_i - F_i^ref|^2 / s_F^2``

Energy errors are per atom (``n_c`` atoms), so molecules of every size count alike; dividing by the
spreads makes the terms dimensionless, so levels whose energies differ by orders of magnitude weigh
what their weights say. A configuration without a label adds exactly 0 to that term and to its count.
A batch's share of the sum is an unbiased estimate of ``L`` once multiplied by ``N / batch size``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..data.dataset import Dataset
from ..models.batch import Batch
from ..models.heads import fit_reference_energies

#: Columns of the statistics each head accumulates over an epoch.
STAT_COLUMNS = ("e_abs", "e_sq", "e_n", "f_abs", "f_sq", "f_n")


def label_spreads(ds: Dataset, fidelity: str) -> tuple[float, float]:
    """``(s_E, s_F)``: spread of per-atom energies left after per-element references (eV per atom) and
    RMS force component (eV/Å) of one fidelity in ``ds``; 1.0 where there is nothing to measure."""
    lab = ds.labels[fidelity]
    s_e = 1.0
    if lab.energy_mask.sum() > 1:
        comp = ds.composition_matrix()
        ref = comp @ fit_reference_energies(comp, lab.energy, lab.energy_mask)
        per_atom = ((lab.energy - ref) / ds.n_atoms)[lab.energy_mask]
        s_e = max(float(per_atom.std()), 1e-4)
    s_f = 1.0
    if lab.forces is not None and lab.forces_mask.any():
        f = lab.forces[np.repeat(lab.forces_mask, ds.n_atoms)]
        s_f = max(float(np.sqrt(np.mean(np.square(f, dtype=np.float64)))), 1e-3)
    return s_e, s_f


class MaskedLoss:
    """The loss above for a set of heads.

    Parameters
    ----------
    weights
        ``{head: (w_E, w_F)}``.
    spreads
        ``{head: (s_E eV per atom, s_F eV/Å)}``.
    tie, anchor
        Strength of a penalty ``tie * sum_k |theta_k - theta_anchor|^2`` that holds every other head's
        readout near the ``anchor`` head's (see :meth:`FidelityHeads.tie_penalty`); 0: off. It is added
        to each optimizer step's objective by the trainer, not to the reported losses.
    """

    def __init__(
        self,
        weights: Mapping[str, tuple[float, float]],
        spreads: Mapping[str, tuple[float, float]],
        tie: float = 0.0,
        anchor: str | None = None,
    ):
        self.heads = list(weights)
        self.weights = {h: (float(weights[h][0]), float(weights[h][1])) for h in self.heads}
        self.spreads = {h: (float(spreads[h][0]), float(spreads[h][1])) for h in self.heads}
        if tie < 0 or (tie > 0 and anchor is None):
            raise ValueError(f"a head tie needs a strength >= 0 and an anchor head (got {tie!r}, {anchor!r})")
        self.tie, self.anchor = float(tie), anchor

    def to_dict(self) -> dict:
        out = {"weights": self.weights, "spreads": self.spreads}
        if self.tie:
            out["tie"] = {"strength": self.tie, "anchor": self.anchor}
        return out

    def penalty(self, model: torch.nn.Module) -> torch.Tensor | None:
        """The head-tie penalty of ``model`` (None when off)."""
        if not self.tie:
            return None
        return self.tie * model.heads.tie_penalty(model.fidelity_index(self.anchor))

    def __call__(
        self,
        model: torch.nn.Module,
        batch: Batch,
        n_energies: Mapping[str, int],
        n_force_atoms: Mapping[str, int],
        training: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(share of L, statistics (n_heads, 6) float64)`` for one batch; ``n_energies`` and
        ``n_force_atoms`` are the counts over the whole dataset the batch comes from."""
        heads = [h for h in self.heads if h in batch.energy]
        want_forces = [h for h in heads if n_force_atoms.get(h, 0) > 0 and (self.weights[h][1] > 0 or not training)]
        energies, forces = evaluate(model, batch, heads, want_forces, create_graph=training)
        loss = batch.positions.new_zeros((), dtype=torch.float64)
        stats = torch.zeros(len(self.heads), len(STAT_COLUMNS), dtype=torch.float64, device=batch.device)
        n_atoms = batch.n_atoms.to(torch.float64)
        for h in heads:
            k = self.heads.index(h)
            w_e, w_f = self.weights[h]
            s_e, s_f = self.spreads[h]
            mask = batch.energy_mask[h]
            err = torch.where(mask, energies[h] - batch.energy[h], torch.zeros_like(energies[h]))
            if n_energies.get(h, 0) > 0 and w_e > 0:
                loss = loss + w_e / n_energies[h] * ((err / (n_atoms * s_e)) ** 2).sum()
            stats[k, 0] = err.abs().sum().detach()
            stats[k, 1] = (err**2).sum().detach()
            stats[k, 2] = mask.sum()
            if h in forces:
                atom_mask = batch.forces_mask[h][batch.configuration][:, None]
                ferr = torch.where(atom_mask, forces[h] - batch.forces[h], torch.zeros_like(forces[h]))
                ferr = ferr.to(torch.float64)
                if w_f > 0:
                    loss = loss + w_f / (3 * n_force_atoms[h]) * ((ferr / s_f) ** 2).sum()
                stats[k, 3] = ferr.abs().sum().detach()
                stats[k, 4] = (ferr**2).sum().detach()
                stats[k, 5] = 3 * atom_mask.sum()
        return loss, stats


def evaluate(
    model: torch.nn.Module,
    batch: Batch,
    heads: Sequence[str],
    want_forces: Sequence[str],
    create_graph: bool,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Energies (eV) of ``heads`` and forces (eV/Å) of ``want_forces`` from one forward pass;
    ``create_graph=True`` keeps the graph so that force errors can be trained on."""
    if not heads:
        return {}, {}
    if not want_forces:
        with torch.set_grad_enabled(create_graph):
            return model(batch, list(heads)), {}
    batch = batch.requires_grad()
    with torch.enable_grad():
        energies = model(batch, list(heads))
        forces = {}
        for i, h in enumerate(want_forces):
            keep = create_graph or i < len(want_forces) - 1
            (grad,) = torch.autograd.grad(
                energies[h].sum(), batch.positions, create_graph=create_graph, retain_graph=keep
            )
            forces[h] = -grad
    if not create_graph:
        energies = {h: e.detach() for h, e in energies.items()}
    return energies, forces


def metrics_from_stats(heads: Sequence[str], stats: torch.Tensor, prefix: str) -> dict[str, float]:
    """History columns ``{prefix}_energy_mae[head]`` (eV per configuration), ``..._rmse``, and
    ``{prefix}_forces_mae[head]`` / ``_rmse`` (eV/Å per component), from summed statistics."""
    s = stats.detach().cpu().numpy()
    out = {}
    for k, h in enumerate(heads):
        if s[k, 2] > 0:
            out[f"{prefix}_energy_mae[{h}]"] = float(s[k, 0] / s[k, 2])
            out[f"{prefix}_energy_rmse[{h}]"] = float(np.sqrt(s[k, 1] / s[k, 2]))
        if s[k, 5] > 0:
            out[f"{prefix}_forces_mae[{h}]"] = float(s[k, 3] / s[k, 5])
            out[f"{prefix}_forces_rmse[{h}]"] = float(np.sqrt(s[k, 4] / s[k, 5]))
    return out
