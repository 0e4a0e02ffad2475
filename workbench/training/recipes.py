"""Recipes: ways of turning a fidelity-mixed dataset into a model of the highest level.

- ``single``: one fidelity, energies or energies + forces.
- ``multifidelity``: every chosen fidelity jointly on a shared trunk, a masked loss (Lubbers et al.'s
  multi-fidelity HIP-NN, arXiv:2505.01590), by default with residual heads (each level the level below
  plus a correction) and followed by fine-tuning of the trunk and the target's head on the target.
- ``delta``: a model of (high - low) on the configurations that have both, added to the low level
  (the QM method itself, or a model of it) (Ramakrishnan et al., J. Chem. Theory Comput. 11, 2087 (2015)).
- ``transfer``: pre-train on the low level(s), fine-tune on the high level with a smaller learning
  rate, optionally layer-wise or with frozen layers (Zaverkin et al., PCCP 25, 5383 (2023)).
- ``meta``: Reptile over the fidelities as tasks, then fine-tune (see :mod:`workbench.training.meta`).
- ``learning_curve``: one of the above at several numbers of high-level labels.

Every recipe takes a :class:`~workbench.training.stages.RecipeInputs` and its own options,
``recipe(inputs, **options)``, and returns a :class:`TrainedModel` (``learning_curve``: a
:class:`LearningCurve`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.dataset import Dataset, Labels
from .data import data_hash, select_labels
from .meta import meta
from .stages import (
    RecipeInputs,
    check_labels,
    finetune_settings,
    joined_history,
    new_model,
    retarget,
    train_stage,
    transplant,
)
from .trained import TrainedModel


def _closed_form(model, train: Dataset, fidelities: dict, stage: str) -> pd.DataFrame:
    """The linear family is fitted in one linear solve, not by gradient steps."""
    start = time.perf_counter()
    model.fit(select_labels(train, fidelities), fidelities=list(fidelities))
    return pd.DataFrame([{"stage": stage, "epoch": 0, "time": time.perf_counter() - start}])


def _trained(model, recipe, fidelities, history, train, ctx_settings, **extra) -> TrainedModel:
    return TrainedModel(model, recipe, fidelities, ctx_settings, history, {"data_hash": data_hash(train)}, **extra)


def single(i: RecipeInputs, **options) -> TrainedModel:
    """One fidelity (the target) with the properties chosen for it."""
    _no_options("single", options)
    chosen = {i.target: i.fidelities[i.target]}
    check_labels(i.train, chosen)
    model = new_model(i.family, i.elements(), [i.target], i.model_settings, i.settings)
    model.initialise(select_labels(i.train, chosen))
    if i.family == "linear":
        history = _closed_form(model, i.train, chosen, "train")
    else:
        history = train_stage(model, i.train, i.validation, chosen, i.settings, i.ctx, "train").history
    return _trained(model, "single", [i.target], history, i.train, {})


#: The learning-rate factor of the multi-fidelity recipe's fine-tuning stage, on by default
#: (docs/multifidelity-defaults.md: with it the target's forces beat the low level's; without, they do not).
FINETUNE_LR_FACTOR = 0.1


def multifidelity(
    i: RecipeInputs,
    finetune_lr_factor: float | None | str = "auto",
    finetune_epochs: int | None = None,
    finetune_patience: int | None = None,
    tie_heads: float | None = None,
    **options,
):
    """All chosen fidelities at once on a shared trunk, each configuration contributing exactly the
    labels it has; then, by default, fine-tuning on the target.

    The default, chosen by measurement (docs/multifidelity-defaults.md), is residual heads
    (``fidelity_mode="residual"`` unless ``model_settings`` names another): the lowest level has a
    readout, each level above is the level below plus a correction that starts at zero. Then a second
    stage trains the trunk and the target's head alone on the target's labels at ``finetune_lr_factor``
    (default 0.1) times the learning rate: in the joint fit the trunk must serve every level at once,
    and the second stage lets it move toward the target, as in ``transfer``. The model returned then
    has only the target's head. ``finetune_lr_factor=None`` skips the second stage and keeps every
    head (the only choice for the linear family, which has no trunk, and with the level as an input).

    With ``tie_heads`` (a penalty strength, e.g. 0.1) the heads are held near the lowest level's by
    ``tie_heads * |theta_k - theta_low|^2`` on the readout weights (with ``fidelity_mode="heads"`` every
    head starts as a copy of the lowest level's; with residual heads the corrections are held near zero)."""
    _no_options("multifidelity", options)
    train, validation, family, fidelities, target = i.train, i.validation, i.family, i.fidelities, i.target
    settings, ctx = i.settings, i.ctx
    check_labels(train, fidelities)
    names = i.ranked()
    model_settings = dict(i.model_settings or {})
    if family != "linear":  # the linear family fits one coefficient set per level: heads only
        # residual heads come apart for fine-tuning only when the readouts are linear
        model_settings.setdefault("fidelity_mode", "heads" if model_settings.get("readout_hidden") else "residual")
    model = new_model(family, i.elements(), names, model_settings, settings)
    if finetune_lr_factor == "auto":
        finetune_lr_factor = FINETUNE_LR_FACTOR if family != "linear" and model.fidelity_mode != "embedding" else None
    if finetune_lr_factor is not None:  # checked before the joint fit, not after it
        if family == "linear":
            raise ValueError("multifidelity: the linear family has no trunk to fine-tune")
        if model.fidelity_mode == "embedding":
            raise ValueError("multifidelity: fine-tuning keeps the target's head, so it needs a head per level")
        if target not in names:
            raise ValueError(f"multifidelity: the target {target!r} is not among the fidelities {names}")
        if model.fidelity_mode == "residual" and model_settings.get("readout_hidden"):
            raise ValueError(
                "multifidelity: fine-tuning keeps the target's head alone, which residual heads allow only with "
                "linear readouts (readout_hidden=[]); use fidelity_mode='heads' or finetune_lr_factor=None"
            )
    tie = float(tie_heads or 0.0)
    if tie:
        if family == "linear":
            raise ValueError("multifidelity: the linear family fits each head on its own; there are no heads to tie")
        if model.fidelity_mode == "embedding":
            raise ValueError("multifidelity: tying heads needs a head per level, fidelity_mode='heads' or 'residual'")
        if tie < 0 or len(names) < 2:
            raise ValueError(f"multifidelity: tie_heads needs a strength > 0 and two levels or more, got {tie_heads!r}")
    model.initialise(select_labels(train, fidelities))
    if family == "linear":  # no shared trunk to learn: each head is its own closed-form fit
        history = _closed_form(model, train, fidelities, "train")
        return _trained(model, "multifidelity", names, history, train, {})
    recorded = {"fidelity_mode": model.fidelity_mode}  # of the joint fit (a fine-tuned model has plain heads)
    if tie:
        if model.fidelity_mode == "heads":  # residual corrections already start at zero
            for k in range(1, len(names)):  # names[0] is the lowest level
                model.heads.copy_readout(0, k)
        recorded["tie_heads"] = tie
    joint = train_stage(model, train, validation, fidelities, settings, ctx, "train", tie=tie, anchor=names[0])
    recorded["finetune_lr_factor"] = finetune_lr_factor
    if finetune_lr_factor is None:
        return _trained(model, "multifidelity", names, joint.history, train, recorded)
    model = transplant(model, {target: target}, settings)
    ft = finetune_settings(settings, finetune_lr_factor, finetune_epochs, finetune_patience, 1.0, ())
    t_ft = train_stage(model, train, validation, {target: fidelities[target]}, ft, ctx, "finetune")
    return _trained(model, "multifidelity", [target], joined_history(joint, t_ft), train, recorded)


def delta_dataset(ds: Dataset, low: str, high: str, properties: Sequence[str]) -> Dataset:
    """The configurations of ``ds`` with energies at both levels, labelled with ``high - low`` (eV;
    forces eV/Å where both levels have forces and ``properties`` asks for them), as fidelity ``high``."""
    lo, hi = ds.labels[low], ds.labels[high]
    both = np.flatnonzero(lo.energy_mask & hi.energy_mask)
    sub = ds.select(both)
    lo, hi = sub.labels[low], sub.labels[high]
    energy = hi.energy - lo.energy
    forces = None
    if "forces" in properties and lo.forces is not None and hi.forces is not None:
        both_f = np.repeat(lo.forces_mask & hi.forces_mask, sub.n_atoms)
        forces = np.where(both_f[:, None], hi.forces - lo.forces, np.nan)
    labels = Labels.from_values(energy, forces, sub.ptr)
    if labels.forces is not None and not labels.forces_mask.any():
        labels.forces = None
    return Dataset(sub.numbers, sub.positions, sub.ptr, {high: labels}, {high: sub.fidelity(high)}, sub.info)


def delta(i: RecipeInputs, base="qm", delta_model=None, **options):
    """Δ-learning: a model of (target - low) on configurations with both energies, added at
    prediction time to ``base``: ``"qm"`` (the low level's own method; needs it at prediction time)
    or ``"model"`` (a single-fidelity model of the low level trained here, on its chosen labels).

    ``delta_model``: settings of the Δ network (default: ``model_settings``). The difference between
    two levels is a smoother function than either, learned from few energies: a narrower network
    than the base's keeps its gradient, which is added to the low level's forces, from being noise."""
    _no_options("delta", options)
    train, validation, family, fidelities, target = i.train, i.validation, i.family, i.fidelities, i.target
    lows = [f for f in fidelities if f != target]
    if len(lows) != 1:
        raise ValueError(f"recipe 'delta' needs exactly one low fidelity besides {target!r}, got {lows}")
    if base not in ("qm", "model"):
        raise ValueError(f"delta: base must be 'qm' or 'model', got {base!r}")
    low = lows[0]
    props = fidelities[target]
    d_train = delta_dataset(train, low, target, props)
    if len(d_train) == 0:
        raise ValueError(f"delta: no training configuration has energies at both {low!r} and {target!r}")
    d_val = delta_dataset(validation, low, target, props) if _has_both(validation, low, target) else None
    chosen = {target: tuple(p for p in props if p in ("energy",) or d_train.labels[target].forces is not None)}
    d_settings = i.model_settings if delta_model is None else {**(i.model_settings or {}), **delta_model}
    model = new_model(family, i.elements(), [target], d_settings, i.settings)
    model.initialise(d_train)
    if family == "linear":
        history = _closed_form(model, d_train, chosen, "delta")
    else:
        history = train_stage(model, d_train, d_val, chosen, i.settings, i.ctx, "delta").history
    base_obj: dict | TrainedModel = {"kind": "qm", "fidelity": low}
    if base == "model":
        base_obj = single(dataclasses.replace(i, fidelities={low: fidelities[low]}, target=low))
        history = pd.concat([base_obj.history.assign(stage="base"), history], ignore_index=True)
    options = {"base": base} if delta_model is None else {"base": base, "delta_model": dict(delta_model)}
    return _trained(model, "delta", [target], history, train, options, base=base_obj)


def _has_both(ds, low, high) -> bool:
    return (
        ds is not None
        and low in ds.labels
        and high in ds.labels
        and bool((ds.labels[low].energy_mask & ds.labels[high].energy_mask).any())
    )


def transfer(
    i: RecipeInputs,
    finetune_lr_factor: float = 0.1,
    finetune_epochs: int | None = None,
    finetune_patience: int | None = None,
    layer_lr_decay: float = 1.0,
    freeze: Sequence[str] = (),
    **options,
) -> TrainedModel:
    """Pre-train on the low fidelities (energies + forces, jointly when several), then fine-tune a
    copy of the trunk and of the highest low head on the target. The fine-tuning learning rate is
    ``finetune_lr_factor`` times the pre-training one (about 10x lower: at the same rate the
    fine-tuning wipes out the force quality learnt in pre-training); ``layer_lr_decay`` < 1 gives
    layers nearer the input smaller rates, ``freeze`` keeps layers fixed."""
    _no_options("transfer", options)
    train, validation, family, fidelities, target = i.train, i.validation, i.family, i.fidelities, i.target
    settings, ctx = i.settings, i.ctx
    if family == "linear":
        raise ValueError("recipe 'transfer' needs a trunk to pre-train; the linear family has none")
    lows = i.ranked(f for f in fidelities if f != target)
    if not lows:
        raise ValueError(f"recipe 'transfer' needs a low fidelity besides {target!r}")
    low_fids = {f: fidelities[f] for f in lows}
    check_labels(train, low_fids)
    check_labels(train, {target: fidelities[target]})
    pre = new_model(family, i.elements(), lows, i.model_settings, settings)
    pre.initialise(select_labels(train, low_fids))
    t_pre = train_stage(pre, train, validation, low_fids, settings, ctx, "pretrain")
    model = retarget(pre, lows[-1], target, train, fidelities[target], settings)
    ft = finetune_settings(settings, finetune_lr_factor, finetune_epochs, finetune_patience, layer_lr_decay, freeze)
    t_ft = train_stage(model, train, validation, {target: fidelities[target]}, ft, ctx, "finetune")
    options = {"finetune_lr_factor": finetune_lr_factor, "layer_lr_decay": layer_lr_decay, "freeze": list(freeze)}
    return _trained(model, "transfer", [target], joined_history(t_pre, t_ft), train, options)


@dataclass
class LearningCurve:
    """Models of one recipe at several numbers of target-level labels, and their validation errors
    (eV per configuration, eV/Å) in :attr:`table`."""

    models: dict
    table: pd.DataFrame

    def __repr__(self) -> str:
        return f"<LearningCurve: budgets {list(self.models)}>\n{self.table.to_string()}"


def learning_curve(
    i: RecipeInputs,
    budgets: Sequence[int] = (25, 50, 100, 200),
    inner: str = "multifidelity",
    **options,
) -> LearningCurve:
    """The ``inner`` recipe at each budget: only the first ``n`` configurations with target labels (in
    an order fixed by the seed) keep them. Validation errors are measured against the target."""
    train, validation, target, ctx = i.train, i.validation, i.target, i.ctx
    if inner not in RECIPES or inner == "learning_curve":
        raise ValueError(f"learning_curve: inner recipe must be one of {sorted(set(RECIPES) - {'learning_curve'})}")
    have = np.flatnonzero(train.labels[target].energy_mask | train.labels[target].forces_mask)
    order = np.random.default_rng(i.settings.seed).permutation(have)
    budgets = sorted(int(b) for b in budgets)
    if budgets and budgets[-1] > len(order):
        raise ValueError(
            f"learning_curve: budget {budgets[-1]} exceeds the {len(order)} configurations with {target!r} labels"
        )
    models, rows = {}, []
    folder = ctx.checkpoint_dir
    try:
        for n in budgets:
            part = train.keep_labels(target, indices=order[:n], properties=("energy", "forces"))
            start = time.perf_counter()
            # the same context (callbacks, cancel, the model being trained), with this budget's checkpoints
            ctx.checkpoint_dir = folder / f"n{n}" if folder is not None else None
            model = RECIPES[inner](dataclasses.replace(i, train=part), **options)
            row = {"budget": n, "time": time.perf_counter() - start}
            if validation is not None and target in validation.labels:
                row.update({k: v for k, v in model.evaluate(validation, target).items() if k not in ("fidelity",)})
            models[n] = model
            rows.append(row)
    finally:
        ctx.checkpoint_dir = folder
    return LearningCurve(models, pd.DataFrame(rows).set_index("budget"))


def _no_options(recipe: str, options: dict) -> None:
    if options:
        raise TypeError(f"recipe {recipe!r} takes no options {sorted(options)}")


RECIPES = {
    "single": single,
    "multifidelity": multifidelity,
    "delta": delta,
    "transfer": transfer,
    "meta": meta,
    "learning_curve": learning_curve,
}
