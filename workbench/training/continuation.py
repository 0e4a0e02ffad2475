"""Training a trained model further on grown data, from its current weights (the improve loop's training step)."""

from __future__ import annotations

import copy
import time

from ..data.dataset import Dataset
from .data import data_hash
from .settings import TrainSettings
from .stages import RunContext, finetune_settings, joined_history, train_stage
from .trained import TrainedModel


def continue_training(
    model: TrainedModel,
    train: Dataset,
    validation: Dataset | None = None,
    *,
    max_epochs: int | None = None,
    lr_factor: float | None = None,
    properties=None,
    ctx: RunContext | None = None,
    stage: str = "continue",
) -> TrainedModel:
    """A copy of ``model`` trained further on ``train``, starting from its weights; ``model`` is not changed.

    The schedule is the one the model's recipe ended with: the training settings it was made with, and for a
    recipe that ended in fine-tuning (the default multi-fidelity recipe, transfer, meta) the fine-tuning
    learning rate (``finetune_lr_factor`` times the rate) and epochs; ``lr_factor`` and ``max_epochs``
    override them. Every head learns from the labels of its own fidelity that ``train`` has: energies and forces
    wherever present (forces bought for a model first trained on energies alone are used), or only
    ``properties`` (e.g. ``("energy",)``) when given. Without ``validation``, 10% of ``train`` is held out
    (seeded). The starting weights compete with every epoch on the validation set (``keep_start``): a stage that
    does not beat them returns them unchanged. Runs here, in the caller's thread: inside a job, pass the job's
    context so that a cancel stops it.

    Returns a :class:`TrainedModel` whose history is the old one followed by this stage's epochs.
    """
    if model.base is not None:
        raise ValueError("a Δ-learning model is trained on differences of two levels; train it again with wb.train")
    if model.family == "linear":
        raise ValueError("the linear family is fitted in one solve, not trained further; train it again")
    recorded = model.settings
    settings = TrainSettings.from_dict(dict(recorded.get("training") or {}))
    options = recorded.get("recipe_options") or {}
    factor = lr_factor if lr_factor is not None else (options.get("finetune_lr_factor") or 1.0)
    epochs = max_epochs or options.get("finetune_epochs") or settings.max_epochs
    # the weights it starts from compete: a stage that does not beat them on validation leaves them as they were
    settings = finetune_settings(settings, factor, epochs, None, 1.0, ()).replace(keep_start=True)
    fidelities = {}
    for name in model.fidelities:
        if name in train.labels:
            have = train.labels[name]
            props = tuple(properties or ("energy", "forces"))
            props = tuple(p for p in props if (have.energy_mask if p == "energy" else have.forces_mask).any())
            if props:
                fidelities[name] = props
    if not fidelities:
        raise ValueError(
            f"the training data has no labels at the model's fidelities {model.fidelities}; "
            f"it has {train.fidelity_names}"
        )
    if validation is None and len(train) >= 10:
        train, validation = train.split([0.9, 0.1], seed=settings.seed)
    module = copy.deepcopy(model.module)
    ctx = ctx if ctx is not None else RunContext()
    start = time.perf_counter()
    trainer = train_stage(module, train, validation, fidelities, settings, ctx, stage)
    history = joined_history(model.history, trainer.history)
    provenance = {
        **model.provenance,
        "continued": int(model.provenance.get("continued", 0)) + 1,
        "train_data_hash": data_hash(train),
        "n_train": len(train),
        "wall_time_s": float(model.provenance.get("wall_time_s", 0.0)) + time.perf_counter() - start,
    }
    out = TrainedModel(module, model.recipe, model.fidelities, copy.deepcopy(recorded), history, provenance)
    out.settings.setdefault("continued", []).append(
        {"stage": stage, "lr": settings.lr, "max_epochs": settings.max_epochs, "epochs": int(len(trainer.history))}
    )
    return out
