"""Fidelity heads: one readout per level of theory plus per-fidelity, per-element reference energies.

A shared trunk turns each atom's environment into features; head ``k`` maps them to an atomic
energy ``e_i = s_k * readout_k(h_i) + E_ref[k, Z_i]`` (eV). The reference energies absorb the
large, composition-only part of each level's total energy (levels differ by hundreds of kcal/mol
per molecule), so the networks learn only what depends on geometry. Three designs (``mode``):

- ``"heads"``: a readout per fidelity (arXiv:2505.01590).
- ``"embedding"``: one readout serves every fidelity (the fidelity then enters the trunk as an input),
  while the reference energies stay per fidelity.
- ``"residual"``: head 0 (the lowest level) is a readout of its own; every higher head ``k`` is the
  head below it plus a correction readout, ``e_i^k = e_i^(k-1) + s_k * correction_k(h_i)`` (plus
  ``E_ref[k, Z_i]``). A correction starts at zero, so a level with energies only starts on the surface
  of the level below (whose forces shaped the trunk) and learns the difference between the two:
  with levels ordered by rank, CCSD(T) = MP2 + a small correction, MP2 = GFN2-xTB + a larger one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

#: How the heads relate (see the module docstring).
HEAD_MODES = ("heads", "embedding", "residual")
ACTIVATIONS = {"softplus": nn.Softplus, "silu": nn.SiLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (``softplus``, ``silu``, ``tanh``, ``gelu``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(n_in: int, hidden: Sequence[int], n_out: int, act: str) -> nn.Sequential:
    """Feed-forward network ``n_in -> hidden... -> n_out`` with ``act`` between layers."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), activation(act)]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def fit_reference_energies(
    composition: np.ndarray, energy: np.ndarray, mask: np.ndarray, ridge: float = 1e-8
) -> np.ndarray:
    """Per-element reference energies (eV) by least squares on composition: ``E_c ~ sum_e n_ce E_e``.

    ``composition`` is ``(N, n_elements)`` counts, ``energy`` ``(N,)`` eV and ``mask`` ``(N,)`` which
    energies exist. A tiny ridge keeps elements that always appear in fixed ratios (one molecule)
    determined; elements without data get 0.
    """
    x = np.asarray(composition, dtype=np.float64)[mask]
    y = np.asarray(energy, dtype=np.float64)[mask]
    if len(y) == 0:
        return np.zeros(x.shape[1])
    scale = max(float(np.abs(x).max()), 1.0)
    gram = x.T @ x + ridge * scale**2 * len(y) * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ y)


class FidelityHeads(nn.Module):
    """Readouts and reference energies for ``n_fidelities`` levels of theory.

    Parameters
    ----------
    n_features
        Width of the per-atom features the trunk hands over.
    n_fidelities, n_elements
        Number of heads and of element types.
    hidden
        Hidden widths of each readout network (empty: a linear readout).
    act
        Activation between readout layers.
    mode
        ``"heads"``, ``"embedding"`` (one readout for all fidelities, the fidelity given to the trunk
        as an input) or ``"residual"`` (each head above the first is the head below it plus a
        correction that starts at zero); see the module docstring.
    """

    def __init__(
        self,
        n_features: int,
        n_fidelities: int,
        n_elements: int,
        hidden: Sequence[int] = (),
        act: str = "softplus",
        mode: str = "heads",
    ):
        super().__init__()
        if mode not in HEAD_MODES:
            raise ValueError(f"mode must be one of {HEAD_MODES}, got {mode!r}")
        self.mode = mode
        n_readouts = 1 if self.shared else n_fidelities
        self.readouts = nn.ModuleList(mlp(n_features, hidden, 1, act) for _ in range(n_readouts))
        if self.residual:
            for correction in self.readouts[1:]:
                nn.init.zeros_(correction[-1].weight)
                nn.init.zeros_(correction[-1].bias)
        #: ``(n_fidelities, n_elements)`` eV per atom of each element, per fidelity.
        self.references = nn.Parameter(torch.zeros(n_fidelities, n_elements, dtype=torch.float64))
        #: ``(n_fidelities,)`` eV: typical size of the geometry-dependent atomic energy.
        self.register_buffer("energy_scale", torch.ones(n_fidelities, dtype=torch.float64))

    @property
    def shared(self) -> bool:
        """One readout serves every fidelity."""
        return self.mode == "embedding"

    @property
    def residual(self) -> bool:
        """Each higher head is the head below it plus a correction."""
        return self.mode == "residual"

    def own_energy(self, k: int, features: torch.Tensor) -> torch.Tensor:
        """``(A,)`` eV: what head ``k``'s own readout gives (in residual mode, its correction alone for k > 0)."""
        readout = self.readouts[0 if self.shared else k]
        return readout(features).squeeze(-1) * self.energy_scale[k].to(features.dtype)

    def atomic_energy(self, k: int, features: torch.Tensor) -> torch.Tensor:
        """Geometry-dependent atomic energies ``(A,)`` (eV) of head ``k``, without references."""
        energy = self.own_energy(k, features)
        for below in range(k - 1, -1, -1) if self.residual else ():
            energy = energy + self.own_energy(below, features)
        return energy

    def _readout_tensors(self, k: int, relative_to: int) -> list[torch.Tensor]:
        """Head ``k``'s readout parameters, the last layer's times ``s_k / s_relative_to`` (the energy
        scales), so that two heads' tensors are equal exactly when they give the same atomic energies."""
        layers = [m for m in self.readouts[k] if isinstance(m, nn.Linear)]
        ratio = self.energy_scale[k] / self.energy_scale[relative_to]
        out = []
        for i, layer in enumerate(layers):
            factor = ratio.to(layer.weight.dtype) if i == len(layers) - 1 else 1.0
            out += [layer.weight * factor, layer.bias * factor]
        return out

    def copy_readout(self, source: int, target: int) -> None:
        """Make head ``target`` give the atomic energies of head ``source`` (same readout, rescaled to
        the target's energy scale); the reference energies stay each head's own."""
        if self.mode != "heads":
            raise ValueError(f"copying a readout needs a readout per fidelity (mode 'heads'), not {self.mode!r}")
        layers_t = [m for m in self.readouts[target] if isinstance(m, nn.Linear)]
        layers_s = [m for m in self.readouts[source] if isinstance(m, nn.Linear)]
        ratio = float(self.energy_scale[source] / self.energy_scale[target])
        with torch.no_grad():
            for i, (lt, ls) in enumerate(zip(layers_t, layers_s, strict=True)):
                factor = ratio if i == len(layers_t) - 1 else 1.0
                lt.weight.copy_(ls.weight * factor)
                lt.bias.copy_(ls.bias * factor)

    def tie_penalty(self, anchor: int) -> torch.Tensor:
        """Sum over heads ``k != anchor`` of the squared differences between head ``k``'s readout
        parameters and the anchor's (dimensionless; last layers compared in units of the anchor's
        energy scale). Zero when every head gives the anchor's atomic energies. In residual mode
        (anchor 0) the corrections' own parameters are what is penalised: zero when they all vanish."""
        if self.shared:
            raise ValueError("one readout serves every fidelity; there are no heads to tie")
        if self.residual and anchor != 0:
            raise ValueError("residual heads are built on head 0, the lowest level; tie them to it")
        base = self._readout_tensors(anchor, anchor)
        total = self.references.new_zeros(())
        for k in range(len(self.readouts)):
            if k != anchor:
                for mine, theirs in zip(self._readout_tensors(k, anchor), base, strict=True):
                    difference = mine if self.residual else mine - theirs
                    total = total + (difference**2).sum().to(total.dtype)
        return total

    def reference_energy(self, k: int, composition: torch.Tensor) -> torch.Tensor:
        """``(N,)`` eV: sum of the reference energies of head ``k`` for ``(N, n_elements)`` counts."""
        return composition.to(self.references.dtype) @ self.references[k]

    def set_references(self, table: np.ndarray, scale: np.ndarray | None = None) -> None:
        """Set references ``(n_fidelities, n_elements)`` eV (and optionally the energy scales)."""
        with torch.no_grad():
            self.references.copy_(torch.as_tensor(np.asarray(table), dtype=self.references.dtype))
            if scale is not None:
                self.energy_scale.copy_(torch.as_tensor(np.asarray(scale), dtype=self.energy_scale.dtype))

    def references_frame(self, fidelities: Sequence[str], elements: Sequence[int]) -> pd.DataFrame:
        """Reference energies as a DataFrame, elements (symbols) x fidelities, eV."""
        from ase.data import chemical_symbols

        values = self.references.detach().cpu().numpy().T
        return pd.DataFrame(values, index=[chemical_symbols[z] for z in elements], columns=list(fidelities))
