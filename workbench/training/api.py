"""``train(...)``: the one call a user makes, in a script, a notebook or from the command line."""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import Dataset
from ..jobs import JobQueue
from .callbacks import as_callbacks
from .data import data_hash, normalise_fidelities
from .recipes import RECIPES
from .settings import TrainSettings
from .stages import RecipeInputs, RunContext
from .trained import TrainedModel
from .trainer import Distributed
from .training_job import TrainingJob


def train(
    train: Dataset,
    family: str = "hipnn",
    recipe: str = "multifidelity",
    fidelities=None,
    validation: Dataset | None = None,
    *,
    target: str | None = None,
    model: Mapping | None = None,
    settings: TrainSettings | Mapping | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    background: bool = True,
    progress: bool | None = None,
    callbacks=None,
    queue: JobQueue | None = None,
    distributed: Distributed | None = None,
    **options,
) -> TrainingJob:
    """Train a model of ``family`` with a recipe; returns a :class:`TrainingJob` (``.result()`` is the
    :class:`TrainedModel`; for ``recipe="learning_curve"`` a :class:`LearningCurve`).

    Parameters
    ----------
    train, validation
        Datasets (energies eV, forces eV/Å). Without ``validation``, 10% of ``train`` (chosen by the
        seed) is held out for validation.
    family
        Model family (``"hipnn"``, ``"hipnn_tensor"``, ``"gmnn"``, ``"linear"``).
    recipe
        ``"single"``, ``"multifidelity"``, ``"delta"``, ``"transfer"``, ``"meta"`` or ``"learning_curve"``.
    fidelities
        ``{fidelity: ("energy", "forces")}``: which labels of which levels to learn from (a list of
        names takes all their labels; None: everything in ``train``).
    target
        The fidelity the model is for (default: the highest-ranked of ``fidelities``).
    model
        Settings of the family (e.g. ``{"n_features": 32}``).
    settings
        A :class:`TrainSettings` or a dict of its fields; fields may also be given as keywords
        (``device="auto"``, ``max_epochs=500``, ``lr=1e-3``, ``patience=50``, ``seed=0``...).
    checkpoint
        A folder for per-stage checkpoints (written atomically every epoch); with ``resume=True`` a
        run picks up where an interrupted one with the same data and settings stopped.
    background
        Train in a background thread (the default; a notebook stays responsive) or block until done.
    progress
        A tqdm bar (True; None: only when standard error is a terminal).
    callbacks
        Functions of one record, called after each epoch with its history row (the convention every job
        follows: :func:`workbench.label` calls them with its counts), or
        :class:`~workbench.training.callbacks.Callback` objects for the stage hooks as well.
    queue
        A :class:`~workbench.jobs.JobQueue`: the run starts when the jobs before it in the queue have
        ended (state ``"waiting"`` until then). ``background`` must then be True.
    options
        Training-settings fields, then recipe options: ``base`` (delta), ``finetune_lr_factor``,
        ``layer_lr_decay``, ``freeze``, ``finetune_epochs`` (transfer, meta; ``finetune_lr_factor``
        and ``finetune_epochs`` also for multifidelity: a fine-tuning stage on the target), ``tie_heads``
        (multifidelity: hold the higher levels' heads near the lowest level's), ``meta_epochs``,
        ``inner_steps``, ``meta_step`` (meta), ``budgets``, ``inner`` (learning_curve).
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
    if not isinstance(train, Dataset):
        raise TypeError(f"train must be a workbench Dataset, got {type(train).__name__}")
    settings = _settings(settings, options)
    fidelities = normalise_fidelities(train, fidelities)
    target = (
        train.fidelity(target).name
        if target is not None
        else max(fidelities, key=lambda f: (train.fidelity(f).rank, f))
    )
    if target not in fidelities:
        raise ValueError(f"target {target!r} is not among the chosen fidelities {list(fidelities)}")
    if validation is None and len(train) >= 10:
        train, validation = train.split([0.9, 0.1], seed=settings.seed)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    ctx = RunContext(as_callbacks(callbacks, progress), checkpoint_dir=ckpt, resume=resume, distributed=distributed)
    inputs = RecipeInputs(train, validation, family, fidelities, target, model, settings, ctx)

    def work(ctx):
        start = time.perf_counter()
        out = RECIPES[recipe](inputs, **options)
        for m in out.models.values() if hasattr(out, "models") else [out]:
            _stamp(m, train, validation, family, model, settings, fidelities, target, options, start)
        return out

    job = TrainingJob(work, ctx, f"{recipe} {family} -> {target}", recipe)
    return job.begin(background, queue)


def _settings(settings, options: dict) -> TrainSettings:
    if settings is None:
        settings = TrainSettings()
    elif isinstance(settings, Mapping):
        settings = TrainSettings.from_dict(dict(settings))
    fields = {k: options.pop(k) for k in list(options) if k in TrainSettings.names()}
    return settings.replace(**fields) if fields else settings


def _stamp(m: TrainedModel, train, validation, family, model, settings, fidelities, target, options, start):
    """Record how the model was made: settings and provenance."""
    import workbench

    m.settings = {
        "family": family,
        "model": m.module.get_settings(),
        "model_overrides": dict(model or {}),
        "recipe": m.recipe,
        "fidelities": {k: list(v) for k, v in fidelities.items()},
        "target": target,
        "training": settings.to_dict(),
        "recipe_options": {**{k: _plain(v) for k, v in options.items()}, **m.settings},
    }
    m.provenance = {
        "train_data_hash": data_hash(train),
        "validation_data_hash": data_hash(validation) if validation is not None else None,
        "n_train": len(train),
        "n_validation": len(validation) if validation is not None else 0,
        "seed": settings.seed,
        "device": str(settings.torch_device()),
        "wall_time_s": time.perf_counter() - start,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {
            "workbench": workbench.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }


def _plain(value):
    if isinstance(value, (tuple, range)):
        return list(value)
    return value
