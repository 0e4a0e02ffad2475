"""Training as a job: runs in a background thread so a notebook stays responsive.

``job.state`` is one of ``queued``, ``running``, ``done``, ``failed``, ``cancelled``; ``job.history``
is the history so far (a DataFrame, one row per epoch of every stage); ``job.result()`` blocks and
returns the :class:`~workbench.training.trained.TrainedModel`; ``job.cancel()`` stops after the
current batch, and the best weights reached stay available as ``job.model``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pandas as pd

from .callbacks import Callback
from .trainer import TrainingCancelled

STATES = ("queued", "running", "done", "failed", "cancelled")


class _Recorder(Callback):
    def __init__(self, job: TrainingJob):
        self.job = job

    def on_stage_begin(self, stage: str, max_epochs: int) -> None:
        self.job.stage, self.job.max_epochs = stage, max_epochs

    def on_epoch_end(self, stage: str, record: dict) -> None:
        self.job.records.append(dict(record))


class TrainingJob:
    """A training run: ``state``, ``history`` so far, ``result()``, ``cancel()``.

    ``work`` is a function of ``(callbacks, cancel_event)`` that trains and returns the result.
    """

    def __init__(self, work: Callable, callbacks: list[Callback], description: str = "training"):
        self._work = work
        self.description = description
        self.callbacks = [_Recorder(self), *callbacks]
        self.state = "queued"
        self.records: list[dict] = []
        self.stage: str | None = None
        self.max_epochs: int | None = None
        self.error: BaseException | None = None
        self.model = None
        self.wall_time_s = 0.0
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        epochs = f", stage {self.stage} epoch {len(self.records)}" if self.stage else ""
        return f"<TrainingJob {self.description}: {self.state}{epochs}>"

    @property
    def history(self) -> pd.DataFrame:
        """Every epoch finished so far (all stages), as a DataFrame."""
        return pd.DataFrame(list(self.records))

    def start(self, background: bool = True) -> TrainingJob:
        if background:
            self._thread = threading.Thread(target=self._run, name=self.description, daemon=True)
            self._thread.start()
        else:
            self._run()
        return self

    def cancel(self) -> None:
        """Stop after the batch now running; the best weights so far become :attr:`model`."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or ``timeout`` s pass); True if it ended."""
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None):
        """The trained model (blocks until done). Raises :class:`TrainingCancelled` if cancelled
        (its ``model`` attribute holds the best weights reached), the job's exception if it failed,
        TimeoutError on timeout. Interrupting the wait (Ctrl-C) cancels the job."""
        try:
            if not self.wait(timeout):
                raise TimeoutError(f"{self.description} not finished after {timeout} s")
        except KeyboardInterrupt:
            self.cancel()
            raise
        if self.state == "cancelled":
            err = TrainingCancelled(f"{self.description} was cancelled after {len(self.records)} epochs")
            err.model = self.model
            raise err
        if self.state == "failed":
            raise self.error
        return self.model

    def _run(self) -> None:
        self.state = "running"
        start = time.perf_counter()
        try:
            self.model = self._work(self.callbacks, self._cancel)
            self.state = "done"
        except TrainingCancelled as err:
            self.model = getattr(err, "model", None)
            self.state = "cancelled"
        except BaseException as err:  # the job records why it stopped; result() re-raises it
            self.error = err
            self.state = "failed"
        finally:
            self.wall_time_s = time.perf_counter() - start
            self._finished.set()
