"""The state the panels of the workbench share: the dataset on show, the configuration looked at, the training
runs by name and the split that keeps test configurations out of training."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd
import traitlets

from ..data.dataset import Dataset, split_indices
from ..jobs import JobQueue
from ..training import TrainingJob

#: Fractions of the dataset for training, validation and test (the split every panel uses, seeded).
SPLIT = (0.8, 0.1, 0.1)


class WorkbenchState(traitlets.HasTraits):
    """Shared, observable state of one workbench.

    Panels observe its traits (``state.observe(callback, "dataset")``) and set them; they never
    reach into each other. Later panels add their own traits here (training runs, chosen models).

    Attributes
    ----------
    dataset
        The dataset every panel works on (energies eV, positions Å, forces eV/Å), or None.
    dataset_name
        Where it came from, in words (a built-in name or a file name).
    configuration
        Index of the configuration being looked at (structure browser, comparisons, scans, vibrations).
    runs
        Training runs by name (each a :class:`~workbench.training.TrainingJob`), in the order they were started.
    runs_version
        Goes up by one whenever a run is added, starts or ends: observe it to follow ``runs``.
    queue
        The :class:`~workbench.jobs.JobQueue` of runs started behind the others.
    split_seed
        Seed of the train/validation/test split of the dataset (:meth:`split`).
    """

    dataset = traitlets.Instance(Dataset, allow_none=True)
    dataset_name = traitlets.Unicode("")
    configuration = traitlets.Int(0)
    runs = traitlets.Dict()
    runs_version = traitlets.Int(0)
    split_seed = traitlets.Int(0)

    _session: WorkbenchState | None = None

    def __init__(self, dataset: Dataset | None = None, dataset_name: str = "", **kwargs):
        super().__init__(**kwargs)
        self._references: pd.DataFrame | None = None
        self._residuals: pd.DataFrame | None = None
        self._split: dict | None = None
        self.queue = JobQueue()
        self._version_lock = threading.Lock()
        self._version = 0
        if dataset is not None:
            self.set_dataset(dataset, dataset_name or "dataset")

    @classmethod
    def session(cls) -> WorkbenchState:
        """The state of this Python session: ``Workbench()`` without a state uses it, so running the app's cell
        again shows the same data and every run trained so far."""
        if cls._session is None:
            cls._session = cls()
        return cls._session

    def set_dataset(self, dataset: Dataset, name: str) -> None:
        """Show another dataset everywhere, from its configuration 0.

        All three traits change before any observer runs, so an observer of ``configuration`` never
        sees the new index with the old dataset.
        """
        self._references = None
        self._residuals = None
        self._split = None
        with self.hold_trait_notifications():
            self.dataset_name = name
            self.configuration = 0
            self.dataset = dataset

    @property
    def atomic_references(self) -> pd.DataFrame:
        """Per-element reference energies (eV) fitted on the current dataset, elements x fidelities."""
        if self._references is None:
            self._references = self.dataset.atomic_references()
        return self._references

    @property
    def residuals(self) -> pd.DataFrame:
        """Per-atom energies minus the atomic references (eV/atom), configurations x fidelities."""
        if self._residuals is None:
            from ..viz.dataset import per_atom_residuals

            self._residuals = per_atom_residuals(self.dataset, self.atomic_references)
        return self._residuals

    # ----------------------------------------------------------------------------- split
    def split(self) -> dict[str, np.ndarray]:
        """Indices of the ``train``, ``validation`` and ``test`` configurations of the dataset (fractions
        :data:`SPLIT`, seeded by ``split_seed``). Training sees train and validation; comparisons use test."""
        if self._split is None:
            parts = split_indices(len(self.dataset), SPLIT, self.split_seed)
            self._split = dict(zip(("train", "validation", "test"), (np.sort(p) for p in parts), strict=True))
        return self._split

    def subset(self, part: str) -> Dataset:
        """The configurations of one part of :meth:`split` (``"all"`` for the whole dataset)."""
        if part == "all":
            return self.dataset
        return self.dataset.select(self.split()[part])

    # ----------------------------------------------------------------------------- runs
    def start_run(self, name: str, train: Callable, options: dict, description: str = "", queue: bool = False):
        """Start ``train(**options)`` (:func:`workbench.train`) as the run ``name``, or, with ``queue``, once the
        runs queued before it have ended; returns the job. Settings that ``train`` refuses make a run that
        failed at once, kept and shown like any other, with the reason."""
        if name in self.runs:
            raise ValueError(f"a run named {name!r} exists already; choose another name")
        try:
            job = train(**options, background=True, queue=self.queue if queue else None)
        except Exception as error:  # bad settings: the run fails with a readable message, nothing else stops
            job = TrainingJob(lambda ctx, error=error: _raise(error), description=description or name)
            job.start(background=False)
        if not queue:
            self.queue.submit(job)  # running already: runs queued after it wait for it
        job.name = name
        job.description = description or job.description
        job.subscribe(self._on_run_event)
        self.runs = {**self.runs, name: job}
        self._bump()
        return job

    def keep_model(self, name: str, model, description: str = ""):
        """Keep a model made elsewhere (e.g. by the improve loop) as a finished run named ``name``, so that every
        panel can compare, scan and vibrate it; returns its (done) job."""
        if name in self.runs:
            raise ValueError(f"a run named {name!r} exists already; choose another name")
        job = TrainingJob(lambda ctx: model, description=description or name, recipe=model.recipe, name=name)
        job.records = model.history.to_dict("records")
        job.start(background=False)
        job.subscribe(self._on_run_event)
        self.runs = {**self.runs, name: job}
        self._bump()
        return job

    def remove_run(self, name: str) -> None:
        """Forget a run (cancelling it first if it still trains)."""
        job = self.runs[name]
        if not job.finished:
            job.cancel()
        self.runs = {k: v for k, v in self.runs.items() if k != name}
        self._bump()

    def finished_runs(self) -> dict:
        """``{name: model}`` of every run that has a model to analyse (done, or cancelled with weights)."""
        return {name: job.model for name, job in self.runs.items() if job.finished and job.model is not None}

    def unique_run_name(self, stem: str) -> str:
        """``stem``, or ``stem-2``, ``stem-3``... whichever no run has yet."""
        name, k = stem, 2
        while name in self.runs:
            name, k = f"{stem}-{k}", k + 1
        return name

    def _on_run_event(self, job, event: str) -> None:
        if event in ("start", "end") or (event == "stage" and job.epochs == 0):
            self._bump()

    def _bump(self) -> None:
        # Runs end in their own threads: count under a lock, notify outside it (observers draw widgets).
        with self._version_lock:
            self._version += 1
            version = self._version
        self.runs_version = version


def _raise(error: BaseException):
    raise error
