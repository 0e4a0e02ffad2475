"""What every model family shares: settings, element and fidelity bookkeeping, the forward contract.

Contract: ``model(batch)`` returns ``{fidelity name: (N,) float64 energies in eV}`` (atomic energies
summed, and added to the reference energies, in float64: float32 resolves totals of ~4000 eV only to
0.5 meV, which a central difference at 1e-4 Å turns into force errors of eV/Å); forces are minus
the autograd gradient of the energy with respect to positions (:func:`energy_and_forces`), so they
are exactly conservative. A family implements :meth:`AtomisticModel.atom_features`, which maps a
batch to per-atom features ``(A, F)``; the :class:`~workbench.models.heads.FidelityHeads` turn those
into energies. In ``fidelity_mode="embedding"`` the fidelity index is handed to the trunk instead,
and one shared readout follows; in ``"residual"`` every head after the first is the head before it plus
a correction (list the fidelities from the lowest level up).

Settings are the constructor's arguments, stored as given (scikit-learn style) and JSON-serialisable,
so ``type(model)(**model.get_settings())`` plus the state dict rebuilds a model exactly.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..data.fidelity import Fidelity, canonical_fidelities, canonical_name
from .batch import Batch
from .heads import HEAD_MODES, FidelityHeads, fit_reference_energies
from .neighbors import Neighbourhood, scatter_sum

FIDELITY_MODES = HEAD_MODES


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, range)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Fidelity):
        return value.name
    return value


class AtomisticModel(nn.Module):
    """Base of every family. Subclasses call ``super().__init__(locals())`` first in their constructor."""

    family: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, settings: dict):
        super().__init__()
        settings = {k: v for k, v in settings.items() if k not in ("self", "__class__")}
        self._settings = _jsonable(settings)
        json.dumps(self._settings)  # fail early, with the offending value in the message, if not JSON
        elements = [int(z) for z in settings["elements"]]
        if not elements or len(set(elements)) != len(elements) or min(elements) < 1 or max(elements) > 118:
            raise ValueError(f"elements must be distinct atomic numbers 1..118, got {elements}")
        self.elements = sorted(elements)
        # One head per fidelity: canonical_fidelities refuses a name given twice.
        self.fidelities = list(canonical_fidelities(settings.get("fidelities") or "default"))
        self.fidelity_mode = settings.get("fidelity_mode", "heads")
        if self.fidelity_mode not in FIDELITY_MODES:
            raise ValueError(f"fidelity_mode must be one of {FIDELITY_MODES}, got {self.fidelity_mode!r}")
        lookup = torch.full((119,), -1, dtype=torch.long)
        lookup[self.elements] = torch.arange(len(self.elements))
        self.register_buffer("_species_of_number", lookup, persistent=False)

    # ----------------------------------------------------------------------------- settings
    def get_settings(self) -> dict:
        """The constructor's arguments as given (a JSON-serialisable copy)."""
        return copy.deepcopy(self._settings)

    @classmethod
    def from_settings(cls, settings: dict) -> AtomisticModel:
        """A fresh (untrained) model from settings such as :meth:`get_settings` returns."""
        return cls(**settings)

    @property
    def n_elements(self) -> int:
        return len(self.elements)

    @property
    def n_fidelities(self) -> int:
        return len(self.fidelities)

    @property
    def n_fidelity_inputs(self) -> int:
        """Width of the fidelity one-hot the trunk takes in embedding mode (0 with separate heads)."""
        return self.n_fidelities if self.fidelity_mode == "embedding" else 0

    def fidelity_index(self, fidelity: str | None) -> int:
        """Position of a fidelity's head; with ``None`` the model must have exactly one fidelity."""
        if fidelity is None:
            if self.n_fidelities != 1:
                raise ValueError(f"this model has several fidelities {self.fidelities}: name one")
            return 0
        return self.fidelities.index(canonical_name(fidelity, self.fidelities, "among the model's heads"))

    def species(self, numbers: torch.Tensor) -> torch.Tensor:
        """``(A,)`` element index of each atom; ValueError for elements the model was not built for."""
        species = self._species_of_number[numbers]
        if bool((species < 0).any()):
            unknown = sorted(set(numbers[species < 0].tolist()))
            raise ValueError(f"atomic numbers {unknown} are not among this model's elements {self.elements}")
        return species

    def composition(self, batch: Batch, species: torch.Tensor) -> torch.Tensor:
        """``(N, n_elements)`` count of each element per configuration."""
        flat = batch.configuration * self.n_elements + species
        counts = torch.bincount(flat, minlength=batch.n_configurations * self.n_elements)
        return counts.view(batch.n_configurations, self.n_elements)

    def fidelity_onehot(self, k: int | None, n: int, like: torch.Tensor) -> torch.Tensor:
        """``(n, n_fidelity_inputs)`` one-hot rows of fidelity ``k`` (empty with separate heads)."""
        out = like.new_zeros(n, self.n_fidelity_inputs)
        if k is not None and self.n_fidelity_inputs:
            out[:, k] = 1.0
        return out

    # ----------------------------------------------------------------------------- the contract
    heads: FidelityHeads
    cutoff: float

    def atom_features(
        self, batch: Batch, species: torch.Tensor, neighbours: Neighbourhood, fidelity: int | None
    ) -> torch.Tensor:
        """Per-atom features ``(A, F)``; ``fidelity`` is the head index in embedding mode, else None."""
        raise NotImplementedError

    def forward(self, batch: Batch, fidelities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Energies (eV, float64) of every configuration for each fidelity (all heads when None)."""
        indices = [self.fidelity_index(f) for f in fidelities] if fidelities is not None else range(self.n_fidelities)
        species = self.species(batch.numbers)
        composition = self.composition(batch, species)
        neighbours = Neighbourhood.build(batch, self.cutoff)
        out = {}
        features = None
        for k in indices:
            if features is None or self.fidelity_mode == "embedding":
                features = self.atom_features(
                    batch, species, neighbours, k if self.fidelity_mode == "embedding" else None
                )
            atomic = self.heads.atomic_energy(k, features)
            total = scatter_sum(atomic.to(torch.float64), batch.configuration, batch.n_configurations)
            out[self.fidelities[k]] = total + self.heads.reference_energy(k, composition)
        return out

    # ----------------------------------------------------------------------------- initialisation
    def initialise(self, ds) -> AtomisticModel:
        """Everything a family sets from training data before training (reference energies, and for
        some families input standardisation). Returns self."""
        return self.initialise_references(ds)

    def initialise_references(self, ds) -> AtomisticModel:
        """Fit each head's per-element reference energies (eV) by least squares on composition to the
        dataset's energies, and set each head's energy scale to the spread left per atom. Heads
        without energies in ``ds`` are left as they are. Returns self."""
        comp = ds.composition_matrix(self.elements)
        if len(ds.numbers) and not np.isin(ds.numbers, self.elements).all():
            extra = sorted(set(np.unique(ds.numbers)) - set(self.elements))
            raise ValueError(f"the dataset holds elements {extra} this model was not built for")
        table = self.heads.references.detach().cpu().numpy().copy()
        scale = self.heads.energy_scale.detach().cpu().numpy().copy()
        for k, name in enumerate(self.fidelities):
            if name not in ds.labels or not ds.labels[name].energy_mask.any():
                continue
            lab = ds.labels[name]
            table[k] = fit_reference_energies(comp, lab.energy, lab.energy_mask)
            residual = (lab.energy - comp @ table[k])[lab.energy_mask]
            per_atom = residual.std() / np.sqrt(max(ds.n_atoms[lab.energy_mask].mean(), 1.0))
            scale[k] = max(float(per_atom), 1e-3) if len(residual) > 1 else 1.0
        self.heads.set_references(table, scale)
        return self

    def extra_repr(self) -> str:
        return f"family={self.family!r}, elements={self.elements}, fidelities={self.fidelities}"


def energy_and_forces(
    model: nn.Module, batch: Batch, fidelity: str | None = None, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies ``(N,)`` eV (float64) and forces ``(A, 3)`` eV/Å at one fidelity; forces are minus the
    autograd gradient of the energy. ``create_graph=True`` keeps the graph (force training, Hessians)."""
    name = model.fidelities[model.fidelity_index(fidelity)]
    if not batch.positions.requires_grad:
        batch = batch.requires_grad()
    energy = model(batch, [name])[name]
    (grad,) = torch.autograd.grad(energy.sum(), batch.positions, create_graph=create_graph)
    return energy, -grad


def predict(
    model: nn.Module,
    batch: Batch,
    fidelities: Sequence[str] | None = None,
    forces: bool = True,
    create_graph: bool = False,
) -> dict[str, dict[str, torch.Tensor]]:
    """``{fidelity: {"energy": (N,) eV, "forces": (A, 3) eV/Å}}`` for several heads from one forward pass."""
    names = model.fidelities if fidelities is None else [model.fidelities[model.fidelity_index(f)] for f in fidelities]
    if forces and not batch.positions.requires_grad:
        batch = batch.requires_grad()
    energies = model(batch, names)
    out = {}
    for i, name in enumerate(names):
        out[name] = {"energy": energies[name]}
        if forces:
            keep = create_graph or i < len(names) - 1
            (grad,) = torch.autograd.grad(
                energies[name].sum(), batch.positions, create_graph=create_graph, retain_graph=keep
            )
            out[name]["forces"] = -grad
    return out
