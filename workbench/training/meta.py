"""Meta-learning over fidelities with Reptile, then fine-tuning to the target.

Allen, Lubbers, Matin, Smith, Messerly, Tretiak, Barros, "Learning together: Towards foundation
models for machine learning interatomic potentials with meta-learning", arXiv:2307.04012; Reptile:
Nichol, Achiam, Schulman, "On first-order meta-learning algorithms", arXiv:1803.02999.

Each fidelity is a task. One network (trunk and readout) serves every task; only the per-element
reference energies and the energy scale, fitted to each task before training, are swapped in with
the task. A round visits the tasks in a seeded order; for each, ``inner_steps`` Adam steps on that task's
batches move the weights from ``w`` to ``w'``, and the meta-update keeps ``w + meta_step * (w' - w)``,
with ``meta_step`` falling linearly to 0 over all rounds. A meta-epoch holds enough rounds to pass
once over the largest task. The result is an initialisation that adapts quickly to any level; it is
then fine-tuned on the target like the ``transfer`` recipe does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .data import TensorData, data_hash, epoch_order, labelled, select_labels
from .optim import make_optimizer, parameter_groups
from .stages import (
    RecipeInputs,
    RunContext,
    check_labels,
    finetune_settings,
    joined_history,
    make_loss,
    new_model,
    retarget,
    train_stage,
)
from .trained import TrainedModel
from .trainer import TrainingCancelled


def reptile(model, tasks: dict, references: dict, settings, ctx: RunContext, meta_epochs, inner_steps, meta_step):
    """Run Reptile on ``model`` (one head) over ``tasks`` ``{fidelity: (TensorData, MaskedLoss)}``;
    ``references[fidelity] = (table (1, n_elements) eV, scale (1,))``. Returns the history."""
    names = list(tasks)
    ctx.model = model  # the job keeps these weights if the run stops here
    groups = parameter_groups(model, settings.lr, 1.0, settings.freeze, settings.train_references)
    params = [p for g in groups for p in g["params"]]
    optimizers = {
        t: make_optimizer(parameter_groups(model, settings.lr), settings.optimizer, settings.lr, 0.0) for t in names
    }
    cursors = dict.fromkeys(names, 0)
    # One meta-epoch passes once over the largest task: that many rounds of inner loops over every task.
    largest = max(len(data) for data, _ in tasks.values())
    rounds = max(1, math.ceil(math.ceil(largest / settings.batch_size) / inner_steps))
    records = []
    start = time.perf_counter()
    for cb in ctx.callbacks:
        cb.on_stage_begin("meta", meta_epochs)
    for epoch in range(meta_epochs):
        losses = dict.fromkeys(names, 0.0)
        for r in range(rounds):
            step = meta_step * (1 - (epoch * rounds + r) / (meta_epochs * rounds))
            order = np.random.default_rng([settings.seed, 7919, epoch, r]).permutation(len(names))
            for t in (names[i] for i in order):
                if ctx.cancel.is_set():
                    for cb in ctx.callbacks:
                        cb.on_stage_end("meta", "cancelled")
                    raise TrainingCancelled("meta-learning cancelled")
                model.heads.set_references(*references[t])
                before = [p.detach().clone() for p in params]
                total = _inner_loop(model, tasks[t], optimizers[t], params, settings, cursors, t, inner_steps)
                if not math.isfinite(total):
                    raise RuntimeError(f"meta-learning diverged on task {t!r} at meta-epoch {epoch}; lower the lr")
                with torch.no_grad():  # Reptile: move only part of the way to the adapted weights
                    for p, p0 in zip(params, before, strict=True):
                        p.copy_(p0 + step * (p - p0))
                losses[t] += total / (inner_steps * rounds)
        record = {
            "stage": "meta",
            "epoch": epoch,
            "lr": settings.lr,
            "meta_step": step,
            "train_loss": float(np.mean(list(losses.values()))),
            "val_loss": None,
        }
        record.update({f"train_loss[{t}]": v for t, v in losses.items()})
        record["time"] = time.perf_counter() - start
        records.append(record)
        for cb in ctx.callbacks:
            cb.on_epoch_end("meta", record)
    for cb in ctx.callbacks:
        cb.on_stage_end("meta", "max_epochs")
    return pd.DataFrame(records)


def _inner_loop(model, task, optimizer, params, settings, cursors, name, steps) -> float:
    """``steps`` optimizer steps on one task; returns the summed loss estimates."""
    data, loss = task
    total = 0.0
    for _ in range(steps):
        index = _next_batch(data, settings, cursors, name)
        share, _ = loss(model, data.batch(index), data.n_energies, data.n_force_atoms, training=True)
        optimizer.zero_grad(set_to_none=True)
        (share * (len(data) / len(index))).backward()
        torch.nn.utils.clip_grad_norm_(params, settings.clip_norm or math.inf)
        optimizer.step()
        total += float(share.detach()) * len(data) / len(index)
    return total


def _next_batch(data: TensorData, settings, cursors: dict, task: str) -> np.ndarray:
    """The next batch of a task, walking through seeded per-pass permutations of its data."""
    n = len(data)
    pos = cursors[task]
    order = epoch_order(n, settings.seed, pos // n)
    lo = pos % n
    index = order[lo : lo + settings.batch_size]
    cursors[task] = pos + len(index)
    return index


def meta(
    i: RecipeInputs,
    meta_epochs: int = 100,
    inner_steps: int = 8,
    meta_step: float = 1.0,
    finetune_lr_factor: float = 0.1,
    finetune_epochs: int | None = None,
    finetune_patience: int | None = None,
    layer_lr_decay: float = 1.0,
    freeze: Sequence[str] = (),
    **options,
) -> TrainedModel:
    """Reptile over every chosen fidelity (each with its chosen labels) as tasks, then fine-tuning on
    the target with a learning rate ``finetune_lr_factor`` times the meta-learning one."""
    if options:
        raise TypeError(f"recipe 'meta' takes no options {sorted(options)}")
    train, validation, family, fidelities, target = i.train, i.validation, i.family, i.fidelities, i.target
    model_settings, settings, ctx = i.model_settings, i.settings, i.ctx
    if family == "linear":
        raise ValueError("recipe 'meta' needs a trunk to meta-learn; the linear family has none")
    check_labels(train, fidelities)
    names = i.ranked()
    elements = i.elements()
    # References and energy scales of every task, fitted the way each head would fit its own.
    probe = new_model(family, elements, names, model_settings, settings)
    probe.initialise(select_labels(train, fidelities))
    table = probe.heads.references.detach().cpu().numpy()
    scale = probe.heads.energy_scale.detach().cpu().numpy()
    model = new_model(family, elements, [target], model_settings, settings)
    model.initialise(select_labels(train, {target: fidelities[target]}))
    references = {t: (table[i : i + 1], scale[i : i + 1]) for i, t in enumerate(names)}
    device, dtype = settings.torch_device(), settings.torch_dtype
    tasks = {}
    for t in names:
        part = labelled(select_labels(train, {t: fidelities[t]}))
        tasks[t] = (TensorData(part, {t: target}, device, dtype), make_loss(part, {t: target}, settings))
    meta_history = reptile(model, tasks, references, settings, ctx, meta_epochs, inner_steps, meta_step)
    model.heads.set_references(*references[target])
    model = retarget(model, target, target, train, fidelities[target], settings)
    ft = finetune_settings(settings, finetune_lr_factor, finetune_epochs, finetune_patience, layer_lr_decay, freeze)
    t_ft = train_stage(model, train, validation, {target: fidelities[target]}, ft, ctx, "finetune")
    history = joined_history(meta_history, t_ft)
    options = {
        "meta_epochs": meta_epochs,
        "inner_steps": inner_steps,
        "meta_step": meta_step,
        "finetune_lr_factor": finetune_lr_factor,
    }
    return TrainedModel(model, "meta", [target], options, history, {"data_hash": data_hash(train)})
