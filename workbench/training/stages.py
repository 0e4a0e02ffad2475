"""Building blocks the recipes share: what a recipe is given, a fresh model, the loss of a dataset, one
training stage, moving a trunk with chosen heads into a new model, and the settings of a fine-tuning stage."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.dataset import Dataset
from ..models.base import AtomisticModel
from ..models.registry import build_model
from .callbacks import Callback
from .data import TensorData, data_hash, labelled, select_labels
from .loss import MaskedLoss, label_spreads
from .settings import TrainSettings
from .trainer import Distributed, Trainer


@dataclass
class RunContext:
    """What every stage of a run shares: callbacks, the cancel flag, where checkpoints go, and the model being
    trained (set by each stage; when a stage stops early it holds that stage's best weights, which the job
    keeps as its partial result)."""

    callbacks: list[Callback] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    checkpoint_dir: Path | None = None
    resume: bool = False
    distributed: Distributed | None = None
    model: AtomisticModel | None = None

    def checkpoint(self, stage: str) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_=." else "_" for c in stage)
        return Path(self.checkpoint_dir) / f"{safe}.ckpt"


@dataclass
class RecipeInputs:
    """What every recipe is given: ``recipe(inputs, **options)``.

    Attributes
    ----------
    train, validation
        Datasets (energies eV, forces eV/Å); ``validation`` may be None.
    family
        Model family name (:func:`workbench.models.build_model`).
    fidelities
        ``{fidelity: ("energy", "forces")}``: the labels of each level to learn from (canonical names).
    target
        The fidelity the model is for.
    model_settings
        Settings of the family (``{"n_features": 32}``), or None for its defaults.
    settings
        The training settings.
    ctx
        What the stages of the run share (callbacks, cancel, checkpoints).
    """

    train: Dataset
    validation: Dataset | None
    family: str
    fidelities: dict
    target: str
    model_settings: Mapping | None = None
    settings: TrainSettings = field(default_factory=TrainSettings)
    ctx: RunContext = field(default_factory=RunContext)

    def elements(self) -> list[int]:
        """Sorted atomic numbers in the training and validation data."""
        return elements_of(self.train, self.validation)

    def ranked(self, names=None) -> list[str]:
        """``names`` (default: the chosen fidelities) from the lowest level to the highest."""
        return sorted(self.fidelities if names is None else names, key=lambda f: (self.train.fidelity(f).rank, f))


def elements_of(*datasets: Dataset | None) -> list[int]:
    """Sorted atomic numbers present in any of the datasets."""
    found = set()
    for ds in datasets:
        if ds is not None and len(ds):
            found.update(int(z) for z in np.unique(ds.numbers))
    return sorted(found)


def new_model(
    family: str, elements, fidelities, model_settings: Mapping | None, settings: TrainSettings
) -> AtomisticModel:
    """A freshly initialised model (seeded by ``settings.seed``) on the training device and dtype."""
    torch.manual_seed(settings.seed)
    model = build_model(family, list(elements), fidelities=list(fidelities), **dict(model_settings or {}))
    if settings.dtype == "float64":
        model = model.double()
    return model.to(settings.torch_device())


def make_loss(
    ds: Dataset, heads: Mapping[str, str], settings: TrainSettings, tie: float = 0.0, anchor: str | None = None
) -> MaskedLoss:
    """The masked loss of ``ds`` with one term pair per head; ``heads`` maps data fidelity -> head;
    ``tie`` and ``anchor`` as in :class:`MaskedLoss`."""
    weights, spreads = {}, {}
    for fid, head in heads.items():
        if fid not in ds.labels:
            continue
        weights[head] = (settings.loss_weight(fid, "energy"), settings.loss_weight(fid, "forces"))
        spreads[head] = label_spreads(ds, fid)
    if not weights:
        raise ValueError(f"the training data has none of the fidelities {list(heads)}; it has {ds.fidelity_names}")
    return MaskedLoss(weights, spreads, tie, anchor)


def check_labels(ds: Dataset, fidelities: Mapping[str, tuple], what: str = "training data") -> None:
    """Raise a clear error if a chosen fidelity has none of the chosen labels."""
    for name, props in fidelities.items():
        lab = ds.labels.get(name)
        n_e = 0 if lab is None else int(lab.energy_mask.sum())
        n_f = 0 if lab is None else int(lab.forces_mask.sum())
        if ("energy" in props and n_e) or ("forces" in props and n_f):
            continue
        raise ValueError(f"the {what} has no {' or '.join(props)} at fidelity {name!r} ({n_e} energies, {n_f} forces)")


def train_stage(
    model: AtomisticModel,
    train: Dataset,
    validation: Dataset | None,
    fidelities: Mapping[str, tuple],
    settings: TrainSettings,
    ctx: RunContext,
    stage: str,
    heads: Mapping[str, str] | None = None,
    tie: float = 0.0,
    anchor: str | None = None,
) -> Trainer:
    """Train ``model`` on ``train`` (restricted to ``fidelities`` and their properties), validating on
    ``validation``; ``heads`` maps data fidelities to head names (default: the same names); ``tie``
    holds the other heads' readouts near the ``anchor`` head's (:class:`MaskedLoss`)."""
    heads = dict(heads or {f: f for f in fidelities})
    train = labelled(select_labels(train, fidelities))
    validation = labelled(select_labels(validation, fidelities)) if validation is not None else None
    device, dtype = settings.torch_device(), settings.torch_dtype
    loss = make_loss(train, heads, settings, tie, anchor)
    train_data = TensorData(train, heads, device, dtype)
    val_data = TensorData(validation, heads, device, dtype) if validation is not None and len(validation) else None
    ctx.model = model  # the job keeps this stage's best weights if the run stops here
    trainer = Trainer(
        model,
        settings,
        loss,
        stage=stage,
        callbacks=ctx.callbacks,
        cancel=ctx.cancel,
        checkpoint=ctx.checkpoint(stage),
        data_hash=data_hash(train),
        distributed=ctx.distributed,
    )
    return trainer.fit(train_data, val_data, resume=ctx.resume)


def transplant(model: AtomisticModel, mapping: Mapping[str, str], settings: TrainSettings) -> AtomisticModel:
    """A new model of the same family and settings whose heads are ``mapping`` keys, each a copy of
    the old head named by its value; the trunk is copied as it is (reference energies and energy
    scales come along with their heads). A residual model's heads become plain heads, each giving
    the atomic energies it gave as the lowest head plus its correction (linear readouts only)."""
    if model.fidelity_mode == "residual":
        model = _fold_residual(model)
    if model.fidelity_mode != "heads":
        raise ValueError("moving heads between models needs fidelity_mode='heads' or 'residual'")
    cfg = model.get_settings()
    cfg["fidelities"] = list(mapping)
    new = type(model)(**cfg)
    if settings.dtype == "float64":
        new = new.double()
    new = new.to(next(model.parameters()).device)
    old_state = model.state_dict()
    state = {}
    for key in new.state_dict():
        if key.startswith("heads.readouts."):
            k, rest = key[len("heads.readouts.") :].split(".", 1)
            src = model.fidelity_index(list(mapping.values())[int(k)])
            state[key] = old_state[f"heads.readouts.{src}.{rest}"]
        elif key in ("heads.references", "heads.energy_scale"):
            rows = [model.fidelity_index(v) for v in mapping.values()]
            state[key] = old_state[key][rows]
        else:
            state[key] = old_state[key]
    new.load_state_dict(state)
    return new


def _fold_residual(model: AtomisticModel) -> AtomisticModel:
    """The same model with ``fidelity_mode="heads"``: each head's readout becomes the sum of its own and
    those of the heads below it (``sum_j<=k s_j w_j``, in units of ``s_k``), which linear readouts allow."""
    heads = model.heads
    if any(len(readout) != 1 for readout in heads.readouts):
        raise ValueError(
            "a residual model's heads can be separated only when the readouts are linear (readout_hidden=[])"
        )
    cfg = {**model.get_settings(), "fidelity_mode": "heads"}
    plain = type(model)(**cfg)
    if heads.readouts[0][0].weight.dtype == torch.float64:
        plain = plain.double()
    plain = plain.to(heads.references.device)
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        for k in range(1, len(heads.readouts)):
            layer = plain.heads.readouts[k][0]
            for below in range(k):
                ratio = float(heads.energy_scale[below] / heads.energy_scale[k])
                layer.weight.add_(heads.readouts[below][0].weight * ratio)
                layer.bias.add_(heads.readouts[below][0].bias * ratio)
    return plain


def finetune_settings(settings: TrainSettings, lr_factor, epochs, patience, layer_lr_decay, freeze) -> TrainSettings:
    """Settings of a fine-tuning stage: the learning rate ``lr_factor`` times the pre-training one."""
    return settings.replace(
        lr=settings.lr * lr_factor,
        min_lr=settings.min_lr * lr_factor,
        max_epochs=epochs or settings.max_epochs,
        patience=patience or settings.patience,
        layer_lr_decay=layer_lr_decay,
        freeze=list(freeze),
    )


def retarget(model, source: str, target: str, train: Dataset, props, settings) -> AtomisticModel:
    """A single-head model for ``target`` from ``model``'s trunk and ``source`` head, with reference
    energies refitted to the target (the energy scale stays, so the head's function is unchanged)."""
    new = transplant(model, {target: source}, settings)
    scale = new.heads.energy_scale.detach().cpu().numpy().copy()
    new.initialise_references(select_labels(train, {target: props}))
    new.heads.set_references(new.heads.references.detach().cpu().numpy(), scale)
    return new


def joined_history(*stages) -> pd.DataFrame:
    """The histories of several stages (trainers or DataFrames; None skipped), one after the other."""
    frames = [getattr(s, "history", s) for s in stages if s is not None]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
