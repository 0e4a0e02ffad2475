"""Fidelity heads: one readout per level of theory plus per-fidelity, per-element reference energies.

A shared trunk turns each atom's environment into features; head ``k`` maps them to an atomic
energy ``e_i = s_k * readout_k(h_i) + E_ref[k, Z_i]`` (eV). The reference energies absorb the
large, composition-only part of each level's total energy (levels differ by hundreds of kcal/mol
per molecule), so the networks learn only what depends on geometry. With ``shared=True`` one
readout serves every fidelity (the fidelity then enters the trunk as an input embedding), while
the reference energies stay per fidelity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

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
    shared
        One readout for all fidelities (fidelity given to the trunk as an input embedding).
    """

    def __init__(
        self,
        n_features: int,
        n_fidelities: int,
        n_elements: int,
        hidden: Sequence[int] = (),
        act: str = "softplus",
        shared: bool = False,
    ):
        super().__init__()
        n_readouts = 1 if shared else n_fidelities
        self.shared = shared
        self.readouts = nn.ModuleList(mlp(n_features, hidden, 1, act) for _ in range(n_readouts))
        #: ``(n_fidelities, n_elements)`` eV per atom of each element, per fidelity.
        self.references = nn.Parameter(torch.zeros(n_fidelities, n_elements, dtype=torch.float64))
        #: ``(n_fidelities,)`` eV: typical size of the geometry-dependent atomic energy.
        self.register_buffer("energy_scale", torch.ones(n_fidelities, dtype=torch.float64))

    def atomic_energy(self, k: int, features: torch.Tensor) -> torch.Tensor:
        """Geometry-dependent atomic energies ``(A,)`` (eV) of head ``k``, without references."""
        readout = self.readouts[0 if self.shared else k]
        return readout(features).squeeze(-1) * self.energy_scale[k].to(features.dtype)

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
        if self.shared:
            raise ValueError("one readout serves every fidelity; there is nothing to copy")
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
        energy scale). Zero when every head gives the anchor's atomic energies."""
        if self.shared:
            raise ValueError("one readout serves every fidelity; there are no heads to tie")
        base = self._readout_tensors(anchor, anchor)
        total = self.references.new_zeros(())
        for k in range(len(self.readouts)):
            if k != anchor:
                for mine, theirs in zip(self._readout_tensors(k, anchor), base, strict=True):
                    total = total + ((mine - theirs) ** 2).sum().to(total.dtype)
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
