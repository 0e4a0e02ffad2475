"""An interpretable linear model on atom-centred invariant features, fitted in closed form.

The energy is linear in its coefficients, ``E = sum_i sum_p w[Z_i, p] G_p(i) + sum_i E_ref[Z_i]``,
so a ridge fit to energies *and* forces is one linear solve, and every coefficient says how much one
feature of one element's environment contributes (eV per unit feature). It is the baseline that
tells whether a nonlinear model is worth it (the argument of Allen & Tkatchenko, arXiv:2211.11680).

Features of atom ``i`` (neighbour element ``t``, Gaussian ``phi_k`` times the cosine cutoff, ``u_ij``
the unit vector to ``j``): with ``M_{l,t,k}(i) = sum_{j: Z_j = t} phi_k(r_ij) u_ij^{⊗l}``,

- two-body: ``M_{0,t,k}`` (a smooth radial distribution per neighbour element);
- three-body: ``M_{l,t,k} · M_{l,t',k}`` for ``l = 1..max_order`` and ``t <= t'`` (angular moments; the
  Gaussian-moment contractions of Zaverkin & Kästner, J. Chem. Theory Comput. 16, 5410 (2020)).

The model computes in float64 whatever the precision of the batch (its tensors are float64 from the
start): the fitted coefficients are large (hundreds of eV per unit feature, atomic energies of up to
±200 eV) and cancel, so in float32 an MP2 ethanol energy moved in steps of 6e-5 eV, and central
differences at 1e-4 Å missed the forces by up to 0.7 eV/Å. The price is the closed-form fit, about
twice as slow (force rows by autograd: 2.4 s -> 4.6 s for 32 ethanol configurations, one thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd
import torch
from ase.data import chemical_symbols

from .base import AtomisticModel
from .batch import Batch
from .heads import FidelityHeads
from .neighbors import Neighbourhood, scatter_sum
from .radial import GaussianBasis
from .tensors import direction_powers, moments


class LinearModel(AtomisticModel):
    """Ridge-regression model on element-resolved radial and angular moments.

    Parameters
    ----------
    elements, fidelities
        As for every family; each fidelity gets its own coefficients (``fidelity_mode="heads"`` only).
    n_radial
        Number of Gaussians in distance.
    cutoff, r_min
        Cutoff radius and first Gaussian centre, Å.
    max_order
        Highest order ``l`` of the angular moments (0: two-body only).
    ridge
        Ridge penalty, relative to the mean diagonal of the normal equations.
    force_weight
        Weight of a force component (eV/Å) against a configuration energy (eV) in the fit (Å^2).
    """

    family = "linear"
    description = "Linear: ridge regression on radial and angular moments, fitted in closed form; inspectable"

    def __init__(
        self,
        elements: Sequence[int],
        fidelities: Sequence[str] = ("default",),
        fidelity_mode: str = "heads",
        n_radial: int = 8,
        cutoff: float = 5.0,
        r_min: float = 0.7,
        max_order: int = 2,
        ridge: float = 1e-8,
        force_weight: float = 1.0,
    ):
        super().__init__(locals())
        if self.fidelity_mode != "heads":
            raise ValueError("the linear model fits one coefficient set per fidelity: use fidelity_mode='heads'")
        if not 0 <= max_order <= 3:
            raise ValueError(f"max_order must be 0..3, got {max_order}")
        self.cutoff = float(cutoff)
        self.max_order = max_order
        self.basis = GaussianBasis(n_radial, cutoff, r_min, "cosine")
        e = self.n_elements
        self._type_pairs = [(a, b) for a in range(e) for b in range(a, e)]
        self.heads = FidelityHeads(e * len(self.feature_names()), self.n_fidelities, e)
        for readout in self.heads.readouts:  # a per-atom constant is the reference energies' job
            readout[0].bias.requires_grad_(False)
            torch.nn.init.zeros_(readout[0].bias)
        self.double()  # see the module docstring: the fitted coefficients cancel

    # ----------------------------------------------------------------------------- features
    def feature_names(self) -> list[str]:
        """Names of the features of one atom, e.g. ``"O r=1.21"`` or ``"C-H l=1 r=1.21"`` (Å)."""
        sym = [chemical_symbols[z] for z in self.elements]
        centres = [f"r={float(c):.2f}" for c in self.basis.centres]
        names = [f"{s} {c}" for s in sym for c in centres]
        for order in range(1, self.max_order + 1):
            names += [f"{sym[a]}-{sym[b]} l={order} {c}" for a, b in self._type_pairs for c in centres]
        return names

    def descriptors(self, species: torch.Tensor, neighbours: Neighbourhood) -> torch.Tensor:
        """``(A, P)`` features of each atom's environment (see the module docstring)."""
        e = self.n_elements
        phi = self.basis(neighbours.distances)  # (N, n, n, K)
        onehot = torch.nn.functional.one_hot(neighbours.to_padded(species), e).to(phi.dtype)
        radial = (phi[:, :, :, None, :] * onehot[:, None, :, :, None]).flatten(-2)  # (N, n, n, T * K)
        psi = moments(radial, direction_powers(neighbours.unit_vectors(), self.max_order)[: self.max_order])
        feats = [neighbours.to_flat(psi[0])]
        k = phi.shape[-1]
        a_idx = torch.tensor([a for a, _ in self._type_pairs], device=phi.device)
        b_idx = torch.tensor([b for _, b in self._type_pairs], device=phi.device)
        for p in psi[1:]:
            m = neighbours.to_flat(p).unflatten(1, (e, k))  # (A, T, K, 3^l)
            feats.append((m[:, a_idx] * m[:, b_idx]).sum(-1).flatten(1))
        return torch.cat(feats, dim=1)

    def atom_features(
        self, batch: Batch, species: torch.Tensor, neighbours: Neighbourhood, fidelity: int | None
    ) -> torch.Tensor:
        """``(A, n_elements * P)`` features, in the model's precision (float64) whatever the batch's."""
        dtype = self.basis.centres.dtype
        if batch.positions.dtype != dtype:  # distances too, so the neighbourhood is rebuilt from cast positions
            batch = replace(batch, positions=batch.positions.to(dtype))
            neighbours = Neighbourhood.build(batch, self.cutoff)
        g = self.descriptors(species, neighbours)
        onehot = torch.nn.functional.one_hot(species, self.n_elements).to(g.dtype)
        return (onehot[:, :, None] * g[:, None, :]).flatten(1)  # coefficients per centre element

    # ----------------------------------------------------------------------------- fitting
    def _normal_equations(self, batch: Batch, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``X^T W X`` and ``X^T W y`` of one batch; columns: features per element, then composition."""
        species = self.species(batch.numbers)
        x_atoms = self.atom_features(batch, species, Neighbourhood.build(batch, self.cutoff), None)
        x = scatter_sum(x_atoms, batch.configuration, batch.n_configurations)  # (N, Q)
        comp = self.composition(batch, species).to(x.dtype)
        q = x.shape[1]
        emask = batch.energy_mask[name]
        rows = torch.cat([x, comp], dim=1)[emask].detach().double()
        gram = rows.T @ rows
        rhs = rows.T @ batch.energy[name][emask].double()
        fmask = batch.atom_forces_mask(name)
        if bool(fmask.any()) and self._settings["force_weight"] > 0:
            # Row q of the Jacobian: the gradient of column q summed over configurations (they are independent).
            probes = torch.eye(q, dtype=x.dtype, device=x.device)[:, None, :].expand(q, batch.n_configurations, q)
            (jac,) = torch.autograd.grad(x, batch.positions, grad_outputs=probes, is_grads_batched=True)
            frows = -jac[:, fmask].reshape(q, -1).T.double()  # (3 A_f, Q): forces are minus the gradient
            frows = torch.cat([frows, frows.new_zeros(len(frows), comp.shape[1])], dim=1)
            w = self._settings["force_weight"]
            gram = gram + w * frows.T @ frows
            rhs = rhs + w * frows.T @ batch.forces[name][fmask].reshape(-1).double()
        return gram, rhs

    def fit(self, ds, fidelities: Sequence[str] | None = None, batch_size: int = 128) -> LinearModel:
        """Closed-form ridge fit of coefficients and reference energies to the energies and forces of
        ``ds`` (eV, eV/Å) for each fidelity (all heads with data in ``ds`` when None). Returns self."""
        names = [n for n in self.fidelities if n in ds.labels] if fidelities is None else list(fidelities)
        dtype = self.basis.centres.dtype  # features in the model's precision, normal equations in float64
        device = self.heads.references.device
        for name in names:
            k = self.fidelity_index(name)
            gram = rhs = None
            for start in range(0, len(ds), batch_size):
                part = ds.select(range(start, min(start + batch_size, len(ds))))
                batch = Batch.from_dataset(part, fidelities=[name], device=device, dtype=dtype).requires_grad()
                with torch.enable_grad():
                    g, r = self._normal_equations(batch, name)
                gram = g if gram is None else gram + g
                rhs = r if rhs is None else rhs + r
            n_feat = gram.shape[0] - self.n_elements
            penalty = self._settings["ridge"] * gram.diagonal()[:n_feat].mean().clamp_min(1e-12)
            gram = gram.clone()
            gram.diagonal()[:n_feat] += penalty
            gram.diagonal()[n_feat:] += 1e-10 * gram.diagonal()[n_feat:].mean()  # one molecule: fixed ratios
            solution = torch.linalg.solve(gram, rhs)
            with torch.no_grad():
                scale = self.heads.energy_scale[k]
                readout = self.heads.readouts[k][0]
                readout.weight.copy_((solution[:n_feat] / scale).to(readout.weight.dtype)[None, :])
                readout.bias.zero_()
                self.heads.references[k].copy_(solution[n_feat:])
        return self

    def coefficients(self, fidelity: str | None = None) -> pd.DataFrame:
        """Fitted coefficients (eV per unit feature): one row per centre element, one column per feature."""
        k = self.fidelity_index(fidelity)
        w = self.heads.readouts[k][0].weight.detach().cpu().double().numpy()[0] * float(self.heads.energy_scale[k])
        names = self.feature_names()
        table = w.reshape(self.n_elements, len(names))
        return pd.DataFrame(table, index=[chemical_symbols[z] for z in self.elements], columns=names)
