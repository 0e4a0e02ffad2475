"""Predictions of models on a dataset, paired with the labels they are judged against.

:func:`evaluate` runs every head of every model once over a dataset; :func:`comparisons` pairs each head with
the reference labels it should be compared to: a head with the fidelity of its own name when that is a reference,
and anything else (an ASE calculator, a level of theory or a model of another fidelity, a single ``"default"``
head) with every reference fidelity asked for. Only configurations that carry the label count (the dataset's masks).
Units: eV, eV/Å.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..data.fidelity import canonical_fidelities, canonical_name
from ._models import is_pair, predictors


@dataclass
class Evaluation:
    """One head of one model evaluated on every configuration of a dataset.

    Attributes
    ----------
    model, head, label
        The model's name, the head's fidelity (None for a calculator) and the name shown in figures.
    energy
        ``(N,)`` predicted energies, eV.
    forces
        ``(A, 3)`` predicted forces, eV/Å.
    wall_time_s
        Seconds the evaluation took (energies and forces of all N configurations).
    n_parameters
        Trainable parameters (None for a calculator).
    """

    model: str
    head: str | None
    label: str
    energy: np.ndarray
    forces: np.ndarray
    wall_time_s: float
    n_parameters: int | None
    n_configurations: int
    n_heads: int = 1


def evaluate(
    models,
    dataset: Dataset,
    fidelities: Sequence[str] | None = None,
    device: str | None = None,
    all_heads: bool = False,
) -> list:
    """Evaluate every head of every model on ``dataset``; ``models`` as for :func:`~._models.predictors`.

    Heads of a several-head model that would be compared with nothing (their fidelity is not among
    ``fidelities`` while another head's is) are skipped unless ``all_heads``.

    Already computed :class:`Evaluation` objects pass through unchanged, so a list of them can be handed to
    every analysis that takes models, and nothing is evaluated twice.
    """
    items = models if isinstance(models, (list, tuple)) and not is_pair(models) else [models]
    if items and all(isinstance(m, Evaluation) for m in items):
        for ev in items:
            if ev.n_configurations != len(dataset) or len(ev.forces) != len(dataset.numbers):
                raise ValueError(
                    f"evaluation of {ev.label!r} was made on another dataset ({ev.n_configurations} "
                    f"configurations, this one has {len(dataset)})"
                )
        return list(items)
    heads = predictors(models, device=device)
    if not all_heads:
        heads = _heads_for(heads, dataset, fidelities)
    out = []
    for p in heads:
        energy, forces, seconds = p.evaluate_dataset(dataset)
        out.append(
            Evaluation(p.name, p.fidelity, p.label, energy, forces, seconds, p.n_parameters, len(dataset), p.n_heads)
        )
    return out


def _heads_for(heads: list, dataset: Dataset, fidelities) -> list:
    """Heads worth evaluating: a head of a several-head model whose fidelity is not a reference is dropped
    when another head of the same model is one (it would be compared with nothing)."""
    refs = set(_reference_fidelities(dataset, fidelities))
    keep = []
    for p in heads:
        head = _head(p)
        siblings = [_head(q) for q in heads if _model(q) == _model(p)]
        if p.n_heads > 1 and head not in refs and any(s in refs for s in siblings if s):
            continue
        keep.append(p)
    return keep


def _head(p) -> str | None:
    value = p.head if isinstance(p, Evaluation) else p.fidelity
    return canonical_name(value) if value else None


def _model(p) -> str:
    return p.model if isinstance(p, Evaluation) else p.name


def _reference_fidelities(dataset: Dataset, fidelities) -> list[str]:
    chosen = canonical_fidelities(fidelities, dataset.fidelity_names, "in this dataset")
    return dataset.fidelity_names if chosen is None else list(chosen)


def comparisons(evaluations: list[Evaluation], dataset: Dataset, fidelities=None) -> list[tuple[Evaluation, str]]:
    """Pairs ``(evaluation, reference fidelity)``: a head is compared to the labels of its own fidelity when that
    is among the references; otherwise (a calculator, a model or level of another fidelity: "the low level as is")
    to each reference. ``fidelities`` chooses the references (all of the dataset's when None)."""
    refs = _reference_fidelities(dataset, fidelities)
    pairs = []
    for ev in _heads_for(evaluations, dataset, fidelities):
        head = _head(ev)
        if head in refs:
            pairs.append((ev, head))
        else:  # a calculator, or a model of another level: judged against every reference asked for
            pairs.extend((ev, ref) for ref in refs)
    return pairs


@dataclass
class Residuals:
    """Errors (predicted minus reference) of one evaluation against one fidelity, on labelled configurations.

    ``energy_configurations`` index the configurations with an energy label; ``energy_error`` (eV) and
    ``energy_reference`` follow them. ``force_atoms`` index the atoms of configurations with force labels;
    ``force_error`` ``(n, 3)`` eV/Å and ``force_reference`` follow them.
    """

    evaluation: Evaluation
    fidelity: str
    energy_configurations: np.ndarray
    energy_reference: np.ndarray
    energy_error: np.ndarray
    n_atoms: np.ndarray
    force_atoms: np.ndarray
    force_reference: np.ndarray
    force_error: np.ndarray
    numbers: np.ndarray
    atom_configuration: np.ndarray


def residuals(evaluation: Evaluation, dataset: Dataset, fidelity: str, energy_shift: str = "none") -> Residuals:
    """Errors of ``evaluation`` against ``fidelity``'s labels.

    ``energy_shift="mean"`` removes the mean signed energy error first: use it to compare levels whose energies
    have different zeros (a raw low level against a high one), where only relative energies are meaningful.
    """
    if energy_shift not in ("none", "mean"):
        raise ValueError(f"energy_shift must be 'none' or 'mean', got {energy_shift!r}")
    lab = dataset.labels[dataset.fidelity(fidelity).name]
    conf = np.flatnonzero(lab.energy_mask)
    e_ref = lab.energy[conf]
    e_err = evaluation.energy[conf] - e_ref
    if energy_shift == "mean" and len(e_err):
        e_err = e_err - e_err.mean()
    atom_conf = np.repeat(np.arange(len(dataset)), dataset.n_atoms)
    if lab.forces is None:
        atoms = np.zeros(0, np.int64)
        f_ref = np.zeros((0, 3))
    else:
        atoms = np.flatnonzero(lab.forces_mask[atom_conf])
        f_ref = np.asarray(lab.forces[atoms], dtype=np.float64)
    return Residuals(
        evaluation=evaluation,
        fidelity=dataset.fidelity(fidelity).name,
        energy_configurations=conf,
        energy_reference=e_ref,
        energy_error=e_err,
        n_atoms=dataset.n_atoms[conf],
        force_atoms=atoms,
        force_reference=f_ref,
        force_error=evaluation.forces[atoms] - f_ref,
        numbers=dataset.numbers[atoms],
        atom_configuration=atom_conf[atoms],
    )


def all_residuals(models, dataset: Dataset, fidelities=None, energy_shift: str = "none", device: str | None = None):
    """:func:`residuals` for every (head, reference fidelity) pair of :func:`comparisons`."""
    evaluations = evaluate(models, dataset, fidelities, device=device)
    return [residuals(ev, dataset, ref, energy_shift) for ev, ref in comparisons(evaluations, dataset, fidelities)]


def parity_data(
    models,
    dataset: Dataset,
    quantity: str = "energy",
    fidelities=None,
    units: str = "eV",
    per_atom: bool = False,
    energy_shift: str = "none",
) -> pd.DataFrame:
    """Long table of reference vs predicted values for parity plots.

    ``quantity="energy"``: one row per (model, fidelity, configuration) with ``reference`` and ``predicted`` in
    ``units`` (per atom with ``per_atom=True``). ``quantity="forces"``: one row per force component with
    ``atom`` (index within the configuration) and ``component`` (x, y, z), in ``units``/Å.
    Every row carries ``configuration`` (the dataset index), so a clicked point can open its structure.
    """
    from ..data.units import energy_factor

    scale = 1.0 / energy_factor(units)
    frames = []
    for r in all_residuals(models, dataset, fidelities, energy_shift):
        ev = r.evaluation
        if quantity == "energy":
            ref = r.energy_reference
            pred = ref + r.energy_error
            if per_atom:
                ref, pred = ref / r.n_atoms, pred / r.n_atoms
            frame = pd.DataFrame(
                {"configuration": r.energy_configurations, "reference": ref * scale, "predicted": pred * scale}
            )
        elif quantity == "forces":
            local = r.force_atoms - dataset.ptr[r.atom_configuration]
            frame = pd.DataFrame(
                {
                    "configuration": np.repeat(r.atom_configuration, 3),
                    "atom": np.repeat(local, 3),
                    "component": np.tile(np.array(["x", "y", "z"]), len(local)),
                    "reference": r.force_reference.ravel() * scale,
                    "predicted": (r.force_reference + r.force_error).ravel() * scale,
                }
            )
        else:
            raise ValueError(f"quantity must be 'energy' or 'forces', got {quantity!r}")
        frame.insert(0, "fidelity", r.fidelity)
        frame.insert(0, "model", ev.label)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["units"] = (
        units + ("/atom" if per_atom and quantity == "energy" else "") + ("/Å" if quantity == "forces" else "")
    )
    out.attrs["quantity"] = quantity
    return out
