"""Training as a job (:class:`workbench.jobs.Job`): runs in a background thread so a notebook stays responsive.

``job.state`` is one of the job states; ``job.history`` is the history so far (a DataFrame, one row per epoch
of every stage); ``job.result()`` blocks and returns the :class:`~workbench.training.trained.TrainedModel`;
``job.cancel()`` stops after the current batch, and the best weights reached are kept as ``job.partial``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from ..jobs import STATES, Job
from .callbacks import Callback
from .stages import RunContext
from .trained import TrainedModel

__all__ = ["STATES", "TrainingJob"]


class _Recorder(Callback):
    """The job's own hooks: the stage and the epochs, once, for every listener and panel."""

    def __init__(self, job: TrainingJob):
        self.job = job

    def on_stage_begin(self, stage: str, max_epochs: int) -> None:
        job = self.job
        job.stage, job.max_epochs, job.stage_first_record = stage, int(max_epochs), len(job.records)
        job.stage_started = time.monotonic()
        job.write(f"stage {stage}: up to {max_epochs} epochs")
        job._emit("stage")

    def on_epoch_end(self, stage: str, record: dict) -> None:
        self.job.records.append(dict(record))
        self.job._emit("progress")

    def on_stage_end(self, stage: str, reason: str) -> None:
        job = self.job
        job.write(f"stage {stage} ended: {reason} after {len(job.records) - job.stage_first_record} epochs")
        job._emit("stage")


class TrainingJob(Job):
    """A training run: ``state``, ``history`` so far, ``progress()``, ``result()``, ``cancel()``, ``partial``.

    ``work`` is a function of the run's :class:`~workbench.training.stages.RunContext` that trains and returns
    the result; the job adds its own recorder to the context's callbacks. When the work stops early (cancel,
    failure), the model of the stage it was in, holding that stage's best weights, becomes :attr:`partial`:
    a :class:`TrainedModel` with ``status`` ``"cancelled"`` or ``"failed"``.
    """

    def __init__(
        self,
        work: Callable[[RunContext], object],
        ctx: RunContext | None = None,
        description: str = "training",
        recipe: str = "",
        name: str | None = None,
    ):
        super().__init__(description, name=name)
        self.ctx = ctx if ctx is not None else RunContext()
        self.ctx.cancel = self._cancel
        self.ctx.callbacks = [_Recorder(self), *self.ctx.callbacks]
        self.recipe = recipe
        self._train = work
        self.records: list[dict] = []
        self.stage: str | None = None
        self.max_epochs: int | None = None
        self.stage_first_record = 0
        self.stage_started: float | None = None

    def __repr__(self) -> str:
        epochs = f", stage {self.stage} epoch {len(self.records)}" if self.stage else ""
        return f"<TrainingJob {self.description}: {self.state}{epochs}>"

    @property
    def callbacks(self) -> list[Callback]:
        return self.ctx.callbacks

    @property
    def history(self) -> pd.DataFrame:
        """Every epoch finished so far (all stages), as a DataFrame."""
        return pd.DataFrame(list(self.records))

    @property
    def epochs(self) -> int:
        """Epochs finished so far, all stages together."""
        return len(self.records)

    @property
    def model(self) -> TrainedModel | None:
        """The model to analyse: the result when done (of a learning curve, the model of its largest budget),
        the best weights reached when cancelled or failed (:attr:`partial`), else None."""
        if self.state != "done":
            return self.partial
        models = getattr(self._result, "models", None)
        if isinstance(models, dict) and models:
            return models[max(models)]
        return self._result

    def progress(self) -> dict:
        """The stage being trained, epochs ``done`` of it and its largest number ``total``, the seconds per
        epoch and the seconds left at that pace (early stopping may end the stage sooner)."""
        done = max(len(self.records) - self.stage_first_record, 0) if self.stage is not None else 0
        pace, eta = self._pace(done, self.max_epochs, self.stage_started)
        return {
            "stage": self.stage,
            "done": done,
            "total": self.max_epochs,
            "unit": "epoch",
            "seconds_per_unit": pace,
            "eta_s": eta,
        }

    def result(self, timeout: float | None = None):
        """The trained model (blocks until done). Raises :class:`TrainingCancelled` if cancelled (the best
        weights reached are :attr:`partial`), the job's exception if it failed, TimeoutError on timeout.
        Interrupting the wait (Ctrl-C) cancels the job."""
        return super().result(timeout)

    def _execute(self):
        try:
            return self._train(self.ctx)
        except BaseException:
            module = self.ctx.model
            if module is not None:
                status = "cancelled" if self.cancelled else "failed"
                self.partial = TrainedModel(module, self.recipe, module.fidelities, status=status)
            raise

    def _summary(self) -> str:
        return f"done: {len(self.records)} epochs in {self.wall_time_s:.1f} s"
