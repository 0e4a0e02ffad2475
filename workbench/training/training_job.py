"""Training as a job: runs in a background thread so a notebook stays responsive.

``job.state`` is one of ``queued``, ``running``, ``done``, ``failed``, ``cancelled``; ``job.history``
is the history so far (a DataFrame, one row per epoch of every stage); ``job.result()`` blocks and
returns the :class:`~workbench.training.trained.TrainedModel`; ``job.cancel()`` stops after the
current batch, and the best weights reached stay available as ``job.model``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..jobs import STATES, Job
from .callbacks import Callback
from .trainer import TrainingCancelled

__all__ = ["STATES", "TrainingJob"]


class _Recorder(Callback):
    def __init__(self, job: TrainingJob):
        self.job = job

    def on_stage_begin(self, stage: str, max_epochs: int) -> None:
        self.job.stage, self.job.max_epochs = stage, max_epochs

    def on_epoch_end(self, stage: str, record: dict) -> None:
        self.job.records.append(dict(record))


class TrainingJob(Job):
    """A training run: ``state``, ``history`` so far, ``result()``, ``cancel()``.

    ``work`` is a function of ``(callbacks, cancel_event)`` that trains and returns the result.
    """

    def __init__(self, work: Callable, callbacks: list[Callback], description: str = "training"):
        super().__init__(description)
        self._work = work
        self.callbacks = [_Recorder(self), *callbacks]
        self.records: list[dict] = []
        self.stage: str | None = None
        self.max_epochs: int | None = None
        self.model = None

    def __repr__(self) -> str:
        epochs = f", stage {self.stage} epoch {len(self.records)}" if self.stage else ""
        return f"<TrainingJob {self.description}: {self.state}{epochs}>"

    @property
    def history(self) -> pd.DataFrame:
        """Every epoch finished so far (all stages), as a DataFrame."""
        return pd.DataFrame(list(self.records))

    def result(self, timeout: float | None = None):
        """The trained model (blocks until done). Raises :class:`TrainingCancelled` if cancelled
        (its ``model`` attribute holds the best weights reached), the job's exception if it failed,
        TimeoutError on timeout. Interrupting the wait (Ctrl-C) cancels the job."""
        return super().result(timeout)

    def _execute(self):
        try:
            self.model = self._work(self.callbacks, self._cancel)
        except TrainingCancelled as err:
            self.model = err.model
            raise
        return self.model
