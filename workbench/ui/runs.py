"""Training runs as the workbench keeps them: a name, the settings of ``workbench.train``, the job, a log.

A :class:`Run` outlives the panel that started it: it lives in the shared
:class:`~workbench.ui.state.WorkbenchState`, so a panel drawn again (or a second panel on the same state) finds
every run, finished or still training, and follows it. Panels subscribe to a run's events; the events come
from the thread that trains.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..training import Callback, TrainingJob
from .html import table

#: A run's life: waiting in the queue, then the job's own states.
RUN_STATES = ("waiting", "queued", "running", "done", "failed", "cancelled")


class Run:
    """One training run started from the workbench.

    Attributes
    ----------
    name
        Unique within a state; the key in ``state.runs`` and the model's name in every table and figure.
    options
        The keyword arguments given to :func:`workbench.train` (family, recipe, fidelities, settings...).
    job
        The :class:`~workbench.training.TrainingJob` (None while the run waits in the queue).
    log
        Lines of text about the run (start, stages, end, errors), oldest first.
    stage, stage_epochs, stage_started
        The stage being trained, its largest number of epochs and when it began (``time.monotonic()``).
    """

    def __init__(self, name: str, options: dict, description: str = ""):
        self.name = name
        self.options = dict(options)
        self.description = description or f"{options.get('recipe', '?')} {options.get('family', '?')}"
        self.job: TrainingJob | None = None
        self.log: list[str] = []
        self.created = time.time()
        self.stage: str | None = None
        self.stage_epochs: int | None = None
        self.stage_started: float | None = None
        self.stage_first_record = 0
        self._cancelled_before_start = False
        self._train: Callable | None = None  # how the state starts it when its turn in the queue comes
        self._settled = threading.Event()
        self._listeners: list[weakref.WeakMethod | Callable] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Run {self.name!r}: {self.description}, {self.state}, {self.epochs} epochs>"

    # ----------------------------------------------------------------------------- what it is now
    @property
    def state(self) -> str:
        """``waiting`` (in the queue), then the job's state: queued, running, done, failed or cancelled."""
        if self.job is None:
            return "cancelled" if self._cancelled_before_start else "waiting"
        return self.job.state

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @property
    def history(self) -> pd.DataFrame:
        """Every epoch so far, all stages (the job's history)."""
        return self.job.history if self.job is not None else pd.DataFrame()

    @property
    def epochs(self) -> int:
        return len(self.job.records) if self.job is not None else 0

    @property
    def result(self):
        """What the job returned: a TrainedModel (a LearningCurve for the learning-curve recipe), the best
        weights of a cancelled run, or None."""
        return self.job.model if self.job is not None else None

    @property
    def model(self):
        """The trained model to analyse: the result, or the model of the largest budget of a learning curve."""
        result = self.result
        models = getattr(result, "models", None)
        if isinstance(models, dict) and models:
            return models[max(models)]
        return result

    @property
    def error(self) -> BaseException | None:
        return self.job.error if self.job is not None else None

    def progress(self) -> dict:
        """Where the current stage stands: ``stage``, ``epoch`` (done), ``max_epochs``, ``seconds_per_epoch`` and
        ``eta_s`` (the rest of this stage at the pace so far; early stopping may end it sooner)."""
        out = {"stage": self.stage, "epoch": 0, "max_epochs": self.stage_epochs, "seconds_per_epoch": np.nan}
        out["eta_s"] = np.nan
        if self.job is None or self.stage is None:
            return out
        done = max(len(self.job.records) - self.stage_first_record, 0)
        out["epoch"] = done
        if done and self.stage_started is not None:
            pace = (time.monotonic() - self.stage_started) / done
            out["seconds_per_epoch"] = pace
            if self.stage_epochs:
                out["eta_s"] = pace * max(self.stage_epochs - done, 0)
        return out

    # ----------------------------------------------------------------------------- control
    def cancel(self) -> None:
        """Stop the run (after the batch now running); a run still waiting in the queue never starts."""
        if self.job is None:
            self._cancelled_before_start = True
            self.write("cancelled before it started")
            self._settled.set()
            self.emit("end")
        else:
            self.job.cancel()
            self.write("stop asked: finishing the current batch")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has finished and every panel has been told (True), or ``timeout`` s pass."""
        return self._settled.wait(timeout)

    def start(self, train: Callable[..., TrainingJob], **extra) -> Run:
        """Start training now: ``train(**options, callbacks=[...], background=True)``; a watcher thread reports
        the end. Errors raised before the job exists are kept like errors of the job."""
        self.write(f"started: {self.description}")
        try:
            self.job = train(**self.options, callbacks=[_RunCallback(self)], background=True, **extra)
        except Exception as error:  # bad settings: the run fails with a readable message, nothing else stops
            self.job = TrainingJob(lambda cbs, cancel, error=error: _raise(error), [], self.description)
            self.job.start(background=False)
        threading.Thread(target=self._watch, name=f"watch {self.name}", daemon=True).start()
        return self

    def _watch(self) -> None:
        self.job.wait()
        if self.job.state == "done":
            self.write(f"done: {self.epochs} epochs in {self.job.wall_time_s:.1f} s")
        elif self.job.state == "cancelled":
            kept = "the best weights so far are kept" if self.job.model is not None else "no weights kept"
            self.write(f"cancelled after {self.epochs} epochs; {kept}")
        else:
            self.write(f"failed: {type(self.job.error).__name__}: {self.job.error}")
        try:
            self.emit("end")
        finally:
            self._settled.set()

    # ----------------------------------------------------------------------------- telling panels
    def write(self, line: str) -> None:
        with self._lock:
            self.log.append(f"{time.strftime('%H:%M:%S')}  {line}")
            del self.log[:-500]

    def subscribe(self, listener: Callable[[Run, str], None]) -> None:
        """Call ``listener(run, event)`` on ``"stage"``, ``"epoch"`` and ``"end"`` (from the training thread).
        Bound methods are held weakly, so a panel that is gone stops listening."""
        ref = weakref.WeakMethod(listener) if hasattr(listener, "__self__") else listener
        with self._lock:
            self._listeners.append(ref)

    def emit(self, event: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for ref in listeners:
            fn = ref() if isinstance(ref, weakref.WeakMethod) else ref
            if fn is None:
                continue
            try:
                fn(self, event)
            except Exception as error:  # one broken view must not stop training or the other views
                self.write(f"a view failed to update: {type(error).__name__}: {error}")
        with self._lock:  # forget the panels that are gone
            self._listeners = [r for r in self._listeners if not isinstance(r, weakref.WeakMethod) or r() is not None]


def _raise(error: BaseException):
    raise error


class _RunCallback(Callback):
    """Forwards the trainer's hooks to the run (in the training thread)."""

    def __init__(self, run: Run):
        self.run = run

    def on_stage_begin(self, stage: str, max_epochs: int) -> None:
        run = self.run
        run.stage, run.stage_epochs, run.stage_started = stage, int(max_epochs), time.monotonic()
        run.stage_first_record = run.epochs
        run.write(f"stage {stage}: up to {max_epochs} epochs")
        run.emit("stage")

    def on_epoch_end(self, stage: str, record: dict) -> None:
        self.run.emit("epoch")

    def on_stage_end(self, stage: str, reason: str) -> None:
        self.run.write(f"stage {stage} ended: {reason} after {self.run.epochs - self.run.stage_first_record} epochs")
        self.run.emit("stage")


def runs_html(runs: dict) -> str:
    """The runs as a table: name, strategy, state, epochs, best validation loss, wall time."""
    if not runs:
        return '<div class="wb-muted">No runs yet: choose the settings above and press Start.</div>'
    rows = []
    for run in runs.values():
        history = run.history
        best = history["val_loss"].min() if "val_loss" in history and history["val_loss"].notna().any() else np.nan
        wall = run.job.wall_time_s if run.job is not None and run.finished else np.nan
        rows.append(
            {
                "run": run.name,
                "what": run.description,
                "state": run.state,
                "epochs": run.epochs,
                "best val loss": best,
                "time (s)": wall,
            }
        )
    frame = pd.DataFrame(rows).set_index("run")
    return table(frame, {"best val loss": ".4g", "time (s)": ".1f"})
