"""The training loop: masked multi-fidelity loss, Adam(W), ReduceLROnPlateau, early stopping on a
chosen criterion, gradient clipping, optional EMA, divergence checks, atomic checkpoints and resume.

Losses are dimensionless (see :mod:`workbench.training.loss`); the history reports energies in eV per
configuration and forces in eV/Å per component.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..jobs import JobCancelled
from .callbacks import Callback
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import TensorData, epoch_order, passes_per_epoch
from .loss import MaskedLoss, metrics_from_stats
from .optim import EMA, make_optimizer, parameter_groups
from .settings import TrainSettings


class TrainingDiverged(RuntimeError):
    """The loss became NaN/infinite or exploded; the model holds the last good weights."""

    def __init__(self, message: str, epoch: int, checkpoint=None):
        super().__init__(message)
        self.epoch = epoch
        self.checkpoint = checkpoint

    def __reduce__(self):
        # rebuilt with all three arguments when it crosses a process boundary (a pool, Dask, DDP)
        return type(self), (str(self), self.epoch, self.checkpoint)


def exploded(loss: float, earlier: list[float], factor: float) -> bool:
    """Whether an epoch's training ``loss`` counts as exploded, given the ``earlier`` epochs' of the
    stage: above ``factor`` times the best of them and above the first. The second condition is for
    a loss fitted down to almost nothing (fine-tuning on a hundred energies reaches 1e-5), whose
    ordinary epoch-to-epoch noise can span three orders of magnitude while staying small."""
    return bool(earlier) and loss > factor * min(earlier) and loss > earlier[0]


class TrainingCancelled(JobCancelled):
    """Training was cancelled; the model being trained holds the best weights reached (the job keeps them as
    its ``partial`` result)."""


class Distributed:
    """Rank and world size of a DistributedDataParallel run (one process per rank)."""

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size

    def all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(t)
        return t


def _state_clone(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Trainer:
    """Trains one model on one :class:`TensorData` (and validates on another).

    Parameters
    ----------
    model
        An :class:`~workbench.models.AtomisticModel` already on the training device and dtype,
        with its reference energies fitted.
    settings
        A :class:`TrainSettings`.
    loss
        The :class:`MaskedLoss` (heads, weights, label spreads).
    stage
        Name of this stage in the history (``"train"``, ``"pretrain"``, ``"finetune"``...).
    callbacks
        :class:`Callback` objects.
    cancel
        A :class:`threading.Event`; once set, training stops after the current batch.
    checkpoint
        File to write after every epoch (atomically) and to resume from.
    data_hash
        Identifies the training data; a checkpoint of other data is refused on resume.
    distributed
        A :class:`Distributed` under torchrun (gradients averaged by DistributedDataParallel).
    """

    def __init__(
        self,
        model: nn.Module,
        settings: TrainSettings,
        loss: MaskedLoss,
        stage: str = "train",
        callbacks: Sequence[Callback] = (),
        cancel: threading.Event | None = None,
        checkpoint=None,
        data_hash: str = "",
        distributed: Distributed | None = None,
    ):
        self.model, self.settings, self.loss = model, settings, loss
        self.stage, self.callbacks = stage, list(callbacks)
        self.cancel = cancel or threading.Event()
        self.checkpoint, self.data_hash, self.distributed = checkpoint, data_hash, distributed
        s = settings
        groups = parameter_groups(model, s.lr, s.layer_lr_decay, s.freeze, s.train_references)
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = make_optimizer(groups, s.optimizer, s.lr, s.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=s.lr_factor, patience=s.lr_patience, min_lr=s.min_lr
        )
        self.ema = EMA(model, s.ema_decay) if s.ema_decay else None
        self.net = model
        if distributed is not None and distributed.world_size > 1:
            import warnings

            from torch.nn.parallel import DistributedDataParallel

            # Gradients of 1-row readout weights come back from double backward with other strides than
            # DDP's buckets; that costs one copy, not correctness.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")

            # Heads without labels in a batch get no gradient: tell DDP not to wait for them.
            self.net = DistributedDataParallel(model, find_unused_parameters=True, gradient_as_bucket_view=True)
        self.records: list[dict] = []
        self.epoch = 0
        self.best_score = math.inf
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.stopped: str | None = None
        self.elapsed = 0.0

    # ----------------------------------------------------------------------------- results
    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch: stage, epoch, lr, time (s), train/val loss, per-fidelity MAE/RMSE."""
        return pd.DataFrame(self.records)

    @property
    def is_main(self) -> bool:
        return self.distributed is None or self.distributed.rank == 0

    def score(self, record: dict) -> float:
        """The early-stopping criterion of one history row (lower is better)."""
        monitor = self.settings.monitor
        if isinstance(monitor, str):
            monitor = {monitor: 1.0}
        total = 0.0
        for column, weight in monitor.items():
            if column == "val_loss" and record.get("val_loss") is None:
                column = "train_loss"  # no validation set: watch the training loss
            if column not in record:
                known = [k for k in record if k not in ("stage", "epoch", "time", "lr")]
                raise KeyError(f"early-stopping monitor {column!r} is not in the history; choose from {known}")
            total += float(weight) * float(record[column])
        return total

    # ----------------------------------------------------------------------------- loop
    def fit(self, train: TensorData, validation: TensorData | None = None, resume: bool = False) -> Trainer:
        """Train until early stopping, ``max_epochs``, ``max_time`` or cancel; the model ends with
        the best weights seen (by :meth:`score`). Raises :class:`TrainingDiverged` on NaN/explosion."""
        s = self.settings
        if resume and self.checkpoint is not None and _exists(self.checkpoint):
            self._restore()
        for cb in self.callbacks:
            cb.on_stage_begin(self.stage, s.max_epochs)
        if self.stopped is not None:  # the checkpoint says this stage had finished
            self._finish("resumed finished")
            return self
        if s.keep_start and not self.records and validation is not None and len(validation):
            self._score_start(validation)
        start = time.perf_counter() - self.elapsed
        reason = "max_epochs"
        while self.epoch < s.max_epochs:
            try:
                record = self._epoch(train, validation, start)
            except TrainingCancelled:
                reason = "cancelled"
                break
            except TrainingDiverged:
                self._finish("diverged")
                raise
            self.records.append(record)
            score = self.score(record)
            self.scheduler.step(score)
            if score < self.best_score - s.min_improvement * abs(self.best_score) or self.best_state is None:
                self.best_score, self.best_epoch, self.bad_epochs = score, self.epoch, 0
                with self._evaluation_weights():
                    self.best_state = _state_clone(self.model)
            else:
                self.bad_epochs += 1
            self.epoch += 1
            self.elapsed = time.perf_counter() - start
            if self.bad_epochs >= s.patience:
                reason = "early stopping"
            elif s.max_time is not None and self.elapsed > s.max_time:
                reason = "max_time"
            elif self.epoch >= s.max_epochs:
                reason = "max_epochs"
            else:
                reason = None
            self.stopped = reason
            self._save()
            for cb in self.callbacks:
                cb.on_epoch_end(self.stage, record)
            if reason is not None:
                break
        self.stopped = reason
        self._finish(reason)
        if reason == "cancelled":
            raise TrainingCancelled(f"training ({self.stage}) cancelled after {self.epoch} epochs")
        return self

    def _score_start(self, validation: TensorData) -> None:
        """Make the starting weights the best so far, scored like an epoch on the validation set."""
        val_loss, val_stats = self.evaluate(validation)
        record = {"val_loss": val_loss, **metrics_from_stats(self.loss.heads, val_stats, "val")}
        try:
            self.best_score = self.score(record)
        except KeyError:  # a monitor of training columns: nothing to score the start with before an epoch
            return
        with self._evaluation_weights():
            self.best_state = _state_clone(self.model)

    def _finish(self, reason: str) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        for cb in self.callbacks:
            cb.on_stage_end(self.stage, reason)

    def _epoch(self, train: TensorData, validation: TensorData | None, start: float) -> dict:
        s = self.settings
        world = 1 if self.distributed is None else self.distributed.world_size
        rank = 0 if self.distributed is None else self.distributed.rank
        self.model.train()
        n = len(train)
        passes = passes_per_epoch(n, s.batch_size, s.min_steps)
        order = epoch_order(n, s.seed, self.epoch, passes)
        total = torch.zeros((), dtype=torch.float64, device=train.device)
        stats = torch.zeros(len(self.loss.heads), 6, dtype=torch.float64, device=train.device)
        for lo in range(0, len(order), s.batch_size):
            if self.cancel.is_set():
                raise TrainingCancelled()
            chunk = order[lo : lo + s.batch_size]
            mine = chunk[rank::world]
            batch = train.batch(mine)
            share, st = self.loss(self.net, batch, train.n_energies, train.n_force_atoms, training=True)
            self.optimizer.zero_grad(set_to_none=True)
            (share * (n * world / len(chunk))).backward()
            self._add_tie_gradient()
            norm = float(nn.utils.clip_grad_norm_(self.params, s.clip_norm if s.clip_norm else math.inf))
            value = float(share.detach())
            if not (math.isfinite(norm) and math.isfinite(value)):
                self._diverged(f"the loss or its gradient became {value if not math.isfinite(value) else norm}")
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.model)
            total += share.detach()
            stats += st
        if self.distributed is not None and world > 1:
            self.distributed.all_reduce(total)
            self.distributed.all_reduce(stats)
        train_loss = float(total) / passes
        earlier = [r["train_loss"] for r in self.records]
        if exploded(train_loss, earlier, s.explode_factor):
            self._diverged(f"the training loss exploded to {train_loss:.3g} (best so far {min(earlier):.3g})")
        record = {
            "stage": self.stage,
            "epoch": self.epoch,
            "lr": max(g["lr"] for g in self.optimizer.param_groups),
            "train_loss": train_loss,
            "val_loss": None,
        }
        record.update(metrics_from_stats(self.loss.heads, stats, "train"))
        if self.loss.tie:
            with torch.no_grad():
                record["head_tie_penalty"] = float(self.loss.penalty(self.model))
        if validation is not None and len(validation):
            val_loss, val_stats = self.evaluate(validation)
            record["val_loss"] = val_loss
            record.update(metrics_from_stats(self.loss.heads, val_stats, "val"))
        record["time"] = time.perf_counter() - start
        return record

    def _add_tie_gradient(self) -> None:
        """Add the head-tie penalty's gradient (whole in every step, not shared out over batches).
        It is added after the backward pass, outside DistributedDataParallel's gradient averaging:
        every process holds the same weights, so each computes the same penalty gradient, and a head
        without labels in a process's batch must stay unused to DDP."""
        if not self.loss.tie:
            return
        params = [p for p in self.model.heads.readouts.parameters() if p.requires_grad]
        grads = torch.autograd.grad(self.loss.penalty(self.model), params, allow_unused=True)
        for p, g in zip(params, grads, strict=True):
            if g is not None:
                if p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.add_(g)

    def _diverged(self, what: str) -> None:
        where = (
            f"; the last good checkpoint (epoch {self.epoch - 1}) is kept at {self.checkpoint}"
            if (self.checkpoint and self.epoch > 0)
            else ""
        )
        raise TrainingDiverged(
            f"training ({self.stage}) stopped at epoch {self.epoch}: {what}. The model holds the best weights "
            f"reached before{where}. Try a lower learning rate (now {self.settings.lr:g}) or gradient clipping.",
            self.epoch,
            self.checkpoint,
        )

    def _evaluation_weights(self):
        import contextlib

        return self.ema.swapped_in(self.model) if self.ema is not None else contextlib.nullcontext()

    @torch.no_grad()
    def evaluate(self, data: TensorData, batch_size: int | None = None) -> tuple[float, torch.Tensor]:
        """``(loss, statistics)`` of the model (EMA weights when on) over a whole dataset."""
        self.model.eval()
        total = torch.zeros((), dtype=torch.float64, device=data.device)
        stats = torch.zeros(len(self.loss.heads), 6, dtype=torch.float64, device=data.device)
        size = batch_size or max(self.settings.batch_size, 256)
        with self._evaluation_weights():
            for batch in data.batches(np.arange(len(data)), size):
                share, st = self.loss(self.model, batch, data.n_energies, data.n_force_atoms, training=False)
                total += share
                stats += st
        return float(total), stats

    # ----------------------------------------------------------------------------- checkpoints
    def _meta(self) -> dict:
        return {
            "stage": self.stage,
            "epoch": self.epoch,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "elapsed": self.elapsed,
            "records": self.records,
            "scheduler": self.scheduler.state_dict(),
            "settings": self.settings.to_dict(),
            "loss": self.loss.to_dict(),
            "data_hash": self.data_hash,
            "family": getattr(self.model, "family", ""),
            "model_settings": self.model.get_settings() if hasattr(self.model, "get_settings") else {},
        }

    def _save(self) -> None:
        if self.checkpoint is None or not self.is_main:
            return
        tensors = {
            "model": self.model.state_dict(),
            "best": self.best_state,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
        }
        save_checkpoint(self.checkpoint, tensors, self._meta())

    def _restore(self) -> None:
        groups, meta = load_checkpoint(self.checkpoint, device=self.params[0].device)
        path = self.checkpoint
        if meta.get("data_hash") != self.data_hash:
            raise CheckpointError(
                f"{path}: written for other training data (hash {meta.get('data_hash')}, now {self.data_hash}); "
                "resume with the same data, or start a new checkpoint"
            )
        if meta.get("model_settings") != self.model.get_settings() or meta.get("family") != self.model.family:
            raise CheckpointError(f"{path}: written for another model ({meta.get('family')}, {meta['model_settings']})")
        if meta.get("stage") != self.stage:
            raise CheckpointError(f"{path}: checkpoint of stage {meta.get('stage')!r}, not {self.stage!r}")
        self.model.load_state_dict(groups["model"])
        self.optimizer.load_state_dict(groups["optimizer"])
        self.scheduler.load_state_dict(meta["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(groups["ema"])
        self.best_state = groups.get("best")
        torch.set_rng_state(groups["rng"]["torch"].cpu())
        self.epoch, self.best_epoch, self.bad_epochs = meta["epoch"], meta["best_epoch"], meta["bad_epochs"]
        self.best_score, self.stopped, self.elapsed = meta["best_score"], meta["stopped"], meta["elapsed"]
        self.records = meta["records"]


def _exists(path) -> bool:
    from pathlib import Path

    return Path(path).is_file()
