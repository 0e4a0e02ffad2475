"""The improve loop: from where a model is unsure or wrong to new labels at the chosen level and a better model.

``wb.improve(model, dataset, candidates, level=...)`` starts an :class:`ImproveJob`. Each round:

1. candidates from the source (:mod:`workbench.active.candidates`), minus the geometries the data already has
   labels at the level for;
2. a batch chosen by the criterion (:mod:`workbench.active.selection`);
3. labels at the level by :func:`workbench.label` (the same resumable store; Dask when configured), or, for a
   pool that carries them and ``reveal=True``, taken from the pool;
4. the labels joined to the data (:func:`workbench.data.merge.merge`): a geometry the data has already (with
   labels at other levels) gains the new ones, a new geometry is added with exactly those (other levels masked);
5. every model trained further from its current weights with its recipe's own schedule
   (:func:`workbench.training.continue_training`), then evaluated.

A record per round (labels and QM seconds spent, training seconds, test errors, scan scores) is kept in
:attr:`ImproveJob.rounds`. With a ``workdir``, each finished round's models, data and record are written there
(atomically), and the same call after a kill goes on from the last finished round; the labels of a round that
was cut short are in the store, so none is computed twice. A cancel keeps the labels and the last round's models
(:attr:`~workbench.jobs.Job.partial`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.pes import scan as pes_scan
from ..analysis.smoothness import smoothness
from ..data.dataset import Dataset
from ..data.fidelity import canonical_name
from ..data.merge import merge
from ..jobs import Job, JobCancelled, JobQueue, callback_list
from ..qm.labeling_job import label
from ..qm.store import configuration_keys
from ..training.continuation import continue_training
from ..training.stages import RunContext
from ..training.trained import TrainedModel
from .candidates import as_source
from .selection import CRITERIA, select

#: Names the layout of a work folder, for readers to check.
WORKDIR_FORMAT = "workbench-improve/1"


@dataclass
class ImproveResult:
    """What the loop made: the models after the last round, the data with every label it bought, a record
    per round (round 0: before any label) and the configurations chosen in each round."""

    models: list[TrainedModel]
    dataset: Dataset
    rounds: pd.DataFrame
    chosen: list[Dataset] = field(default_factory=list)

    @property
    def model(self) -> TrainedModel:
        """The first (or only) model."""
        return self.models[0]


def _keys(ds: Dataset) -> list[str]:
    if len(ds) == 0:
        return []
    zeros = [0] * len(ds)
    return configuration_keys(ds.numbers, ds.positions, ds.ptr[:-1], ds.ptr[1:], zeros, [None] * len(ds))


def _geometries(ds: Dataset) -> Dataset:
    """The configurations of ``ds`` with no labels at all (info kept)."""
    out = ds.select(slice(None))
    out.labels.clear()
    out.fidelity_info.clear()
    return out


class ImproveJob(Job):
    """Rounds of choose, label, train, evaluate, as one job (:class:`workbench.jobs.Job`). A stop or a failure
    keeps the last finished round's :class:`ImproveResult` as :attr:`partial` (the labels of the round cut short
    are in the store).

    ``rounds`` is the record so far (a DataFrame, one row per round, round 0 before any label): ``labels``
    (bought this round), ``labels_total``, ``computed`` (of this round's labels, those computed now rather
    than found in the store or revealed), ``qm_s`` and ``qm_s_total`` (seconds of QM computed, store hits
    free), ``train_s``, ``n_candidates``, ``chosen_from`` (how many came from each candidate source), the test
    errors of the first model at the level (``energy_mae``, ``energy_rmse`` and the largest, ``energy_max``, in
    eV; ``forces_mae`` and ``forces_max`` in eV/Å; when a test set with those labels is given) and, with a scan,
    ``n_extrema``, ``spurious_extrema`` and ``scan_rmse`` (eV, against the scan's reference). Callbacks get each
    row as it is made, as training callbacks get each epoch's.
    """

    def __init__(self, models, dataset, source, level, settings: dict, callbacks=()):
        super().__init__(f"improve at {level}")
        self.models = list(models)
        self.dataset = dataset
        self.source = source
        self.level = level
        self.settings = settings
        self.records: list[dict] = []
        self.chosen: list[Dataset] = []
        self.phase: str | None = None
        self._callbacks = list(callbacks)
        self._inner: Job | None = None
        self._resumed = 0

    def __repr__(self) -> str:
        return f"<ImproveJob at {self.level}: {self.state}, {max(len(self.records) - 1, 0)} rounds>"

    @property
    def rounds(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)

    def progress(self) -> dict:
        done = max(len(self.records) - 1, 0)
        total = self.settings["rounds"]
        here = done - self._resumed  # the pace of the rounds run by this job, not those found in a workdir
        pace, eta = self._pace(here, total - self._resumed, self.started_at)
        return {"stage": self.phase, "done": done, "total": total, "unit": "round", "seconds_per_unit": pace,
                "eta_s": eta}  # fmt: skip

    def cancel(self) -> None:
        """Stop after the calculation or batch now running; the labels bought are kept in the store and the
        last finished round's models and data are :attr:`partial`."""
        super().cancel()
        inner = self._inner
        if inner is not None:
            inner.cancel()

    def _so_far(self) -> ImproveResult:
        return ImproveResult(list(self.models), self.dataset, self.rounds, list(self.chosen))

    def _summary(self) -> str:
        last = self.records[-1] if self.records else {}
        return f"done: {len(self.records) - 1} rounds, {last.get('labels_total', 0)} labels in {self.wall_time_s:.1f} s"

    # ----------------------------------------------------------------------------- the work
    def _phase(self, name: str) -> None:
        self.phase = name
        self.write(name)
        self._emit("stage")

    def _execute(self) -> ImproveResult:
        s = self.settings
        workdir = Path(s["workdir"]) if s["workdir"] else None
        first = self._resume(workdir) if workdir is not None else 1
        self._resumed = first - 1
        if not self.records:
            self._phase("evaluating the starting model")
            self._record(0, labels=0, computed=0, qm_s=0.0, train_s=0.0, n_candidates=0, chosen_from="")
            self._save(workdir)
        for r in range(first, s["rounds"] + 1):
            try:
                self._round(r)
            except BaseException:  # cancelled or failed: the last finished round is what is kept
                self.partial = self._so_far() if len(self.records) > 1 else None
                raise
            self._save(workdir)
        return self._so_far()

    def _check(self) -> None:
        if self.cancelled:
            raise JobCancelled(f"improve was cancelled after {len(self.records) - 1} rounds")

    def _round(self, r: int) -> None:
        """One round; the job's models, data and record change together at its end, so that a stop in the
        middle leaves the last finished round whole."""
        s = self.settings
        self._check()
        self._phase(f"round {r}: candidates")
        candidates = self.source(self.models[0], r)
        if len(candidates) == 0:
            raise ValueError(f"round {r}: the candidate source gave no configurations")
        usable = ~self._labelled(candidates)
        if s["reveal"]:  # only those whose answer is known can be revealed
            lab = candidates.labels.get(self.level)
            usable &= lab.energy_mask if lab is not None else False
        pool = candidates.select(np.flatnonzero(usable))
        if len(pool) == 0:
            raise ValueError(
                f"round {r}: every candidate has labels at {self.level} in the data already; give the loop new ones"
            )
        self._check()
        self._phase(f"round {r}: choosing {min(s['n_per_round'], len(pool))} of {len(pool)} by {s['criterion']}")
        chosen, _scores = select(
            s["criterion"], self.models, pool, s["n_per_round"], self.dataset, self.level, s["seed"] + r,
            s["quantity"],
        )  # fmt: skip
        picked = pool.select(chosen)
        self._check()
        qm_s, computed = 0.0, 0
        if s["reveal"] and self.level in picked.labels:
            new = picked
            for name in [f for f in picked.labels if f != self.level]:
                new = new.drop_fidelity(name)
        else:
            self._phase(f"round {r}: labelling {len(picked)} at {self.level}")
            job = label(
                _geometries(picked), self.level, store=s["store"], properties=s["properties"],
                workers=s["workers"], client=s["client"], progress=False, background=True,
            )  # fmt: skip
            self._inner = job  # so that a cancel reaches the calculations
            try:
                if self.cancelled:
                    job.cancel()
                new = job.result()
            finally:
                self._inner = None
            qm_s, computed = (job.wall_time_s if job.n_computed else 0.0), job.n_computed
            if job.n_failed:
                self.write(f"round {r}: {job.n_failed} calculations failed; those configurations stay unlabelled")
        dataset = merge([self.dataset, new])
        self._check()
        self._phase(f"round {r}: training")
        start = time.perf_counter()
        ctx = RunContext(cancel=self._cancel)
        models = [
            continue_training(m, dataset, s["validation"], max_epochs=s["max_epochs"], ctx=ctx,
                              stage=f"improve round {r}")
            for m in self.models
        ]  # fmt: skip
        train_s = time.perf_counter() - start
        self.models, self.dataset = models, dataset
        self.chosen.append(new)
        self._phase(f"round {r}: evaluating")
        sources = picked.info["source"].astype(str).value_counts() if "source" in picked.info else None
        chosen_from = "" if sources is None else ", ".join(f"{k}: {v}" for k, v in sources.items())
        self._record(r, labels=len(new), computed=computed, qm_s=qm_s, train_s=train_s, n_candidates=len(pool),
                     chosen_from=chosen_from)  # fmt: skip

    def _labelled(self, candidates: Dataset) -> np.ndarray:
        """``(N,)`` whether the data has each candidate's geometry with an energy at the level already."""
        lab = self.dataset.labels.get(self.level)
        if lab is None:
            return np.zeros(len(candidates), bool)
        have = {k for k, e in zip(_keys(self.dataset), lab.energy_mask, strict=True) if e}
        return np.array([k in have for k in _keys(candidates)], bool)

    def _record(
        self, r: int, labels: int, computed: int, qm_s: float, train_s: float, n_candidates: int, chosen_from: str
    ) -> None:
        s = self.settings
        before = self.records[-1] if self.records else {"labels_total": 0, "qm_s_total": 0.0}
        row = {
            "round": r,
            "labels": labels,
            "labels_total": before["labels_total"] + labels,
            "computed": computed,
            "qm_s": qm_s,
            "qm_s_total": before["qm_s_total"] + qm_s,
            "train_s": train_s,
            "n_candidates": n_candidates,
            "chosen_from": chosen_from,
        }
        test = s["test"]
        model = self.models[0]
        if test is not None and self.level in test.labels:
            errors = model.evaluate(test, reference=self.level)
            keep = ("energy_mae", "energy_rmse", "energy_max", "forces_mae", "forces_max")
            row.update({k: errors[k] for k in keep if k in errors})
        if s["scan"] is not None:
            result = pes_scan([model], **s["scan"])
            scores = smoothness(result).iloc[0]
            row.update(
                n_extrema=int(scores["n_extrema"]),
                spurious_extrema=float(scores["spurious_extrema"]),
                scan_rmse=float(scores["rmse"]),
            )
        self.records.append(row)
        for callback in self._callbacks:
            callback(dict(row))
        self._emit("progress")

    # ----------------------------------------------------------------------------- the work folder
    def _fingerprint(self) -> dict:
        s = self.settings
        return {
            "format": WORKDIR_FORMAT,
            "level": self.level,
            "criterion": s["criterion"],
            "n_per_round": s["n_per_round"],
            "seed": s["seed"],
            "n_models": len(self.models),
            "n_start": int(s["n_start"]),
        }

    def _save(self, workdir: Path | None) -> None:
        """Write the round's models, data and record; the record last, so that a kill while writing leaves
        the previous round as the one to go on from."""
        if workdir is None:
            return
        workdir.mkdir(parents=True, exist_ok=True)
        r = int(self.records[-1]["round"])
        for m, model in enumerate(self.models):
            model.save(workdir / f"model{m}-round{r}.wb")
        self.dataset.save(workdir / f"data-round{r}.h5")
        if r > 0:
            self.chosen[-1].save(workdir / f"chosen-round{r}.h5")
        state = {**self._fingerprint(), "round": r, "records": self.records}
        tmp = workdir / "rounds.json.tmp"
        tmp.write_text(json.dumps(state, indent=1, default=float), encoding="utf-8")
        os.replace(tmp, workdir / "rounds.json")

    def _resume(self, workdir: Path) -> int:
        """The first round to run: after the last one recorded in ``workdir`` (its models and data loaded)."""
        path = workdir / "rounds.json"
        if not path.is_file():
            return 1
        state = json.loads(path.read_text(encoding="utf-8"))
        mine = self._fingerprint()
        differ = {k: (state.get(k), v) for k, v in mine.items() if state.get(k) != v}
        if differ:
            raise ValueError(f"{workdir}: the work folder belongs to another loop (differs in {differ}); use a new one")
        r = int(state["round"])
        self.models = [TrainedModel.load(workdir / f"model{m}-round{r}.wb") for m in range(len(self.models))]
        self.dataset = Dataset.load(workdir / f"data-round{r}.h5")
        self.records = list(state["records"])
        self.chosen = [Dataset.load(workdir / f"chosen-round{k}.h5") for k in range(1, r + 1)]
        self.write(f"going on from round {r} in {workdir}")
        return r + 1


def improve(
    model,
    dataset: Dataset,
    candidates,
    level: str | None = None,
    *,
    criterion: str = "variance",
    n_per_round: int = 10,
    rounds: int = 3,
    store=None,
    reveal: bool = False,
    properties: Sequence[str] = ("energy", "forces"),
    test: Dataset | None = None,
    validation: Dataset | None = None,
    scan: dict | None = None,
    max_epochs: int | None = None,
    workdir: str | os.PathLike | None = None,
    quantity: str = "forces",
    seed: int = 0,
    workers: int | None = None,
    client=None,
    callbacks=None,
    queue: JobQueue | None = None,
    background: bool = True,
) -> ImproveJob:
    """Improve a model where it is unsure, in rounds of labels at ``level``; returns a running
    :class:`ImproveJob` (``.result()`` is an :class:`ImproveResult`).

    Parameters
    ----------
    model
        A :class:`~workbench.training.TrainedModel`, or a list of them (an ensemble, for
        ``criterion="disagreement"``; every member is trained further each round).
    dataset
        The data the model was trained on; the new configurations join it.
    candidates
        Where to look: a Dataset or a file (a :class:`~workbench.active.candidates.Pool`),
        :class:`~workbench.active.candidates.ScanGeometries`, :class:`~workbench.active.candidates.ModelMD`,
        a list of these, or any function ``(model, round) -> Dataset``.
    level
        The level of theory to buy labels at (default: the model's target).
    criterion
        ``"variance"`` (the default: the model's own predictive variance, no ensemble needed),
        ``"disagreement"``, ``"error"`` or ``"random"`` (see :mod:`workbench.active.selection`).
    n_per_round, rounds
        Labels bought per round, and how many rounds.
    store
        The label store (a folder), as for :func:`workbench.label`: a label is never computed twice. Default:
        ``workdir / "labels"`` with a ``workdir``, else in memory.
    reveal
        Take the labels at ``level`` that the candidates carry instead of computing them (a pool with known
        answers: benchmarks and lessons).
    properties
        What to compute at ``level``: ``("energy",)`` or ``("energy", "forces")``.
    test
        Configurations with labels at ``level`` to measure the model on after every round.
    validation
        Held out for early stopping while training further (default: 10% of the grown data).
    scan
        Keyword arguments of :func:`workbench.analysis.scan` (``atoms``, ``dihedral``, ``values``,
        ``reference``...) for a scan scored after every round (extrema, deviation from the reference).
    max_epochs
        Epochs of each round's training (default: the model's recipe's own, e.g. its fine-tuning epochs).
    workdir
        A folder for each round's models, data and record; the same call goes on from there after a kill.
    quantity
        What ``disagreement`` compares: ``"forces"`` or ``"energy"``.
    seed
        Seeds the random choices of every round (``seed + round``).
    workers, client
        Dask for the labels, as for :func:`workbench.label`.
    callbacks
        Functions of one record, called after each round with its row.
    queue
        A :class:`~workbench.jobs.JobQueue`: the loop starts when the jobs before it have ended.
    background
        Run in a background thread (default); ``job.result()`` waits for it.
    """
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models or not all(isinstance(m, TrainedModel) for m in models):
        raise TypeError("model: a TrainedModel or a list of them")
    if criterion not in CRITERIA:
        raise ValueError(f"unknown selection criterion {criterion!r}; choose from {CRITERIA}")
    if n_per_round < 1 or rounds < 0:
        raise ValueError(f"need n_per_round >= 1 and rounds >= 0, got {n_per_round} and {rounds}")
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a workbench Dataset, got {type(dataset).__name__}")
    level = canonical_name(level) if level is not None else models[0].target
    for m in models:
        if level not in m.fidelities:
            raise ValueError(
                f"the model has no head for {level!r} (it has {m.fidelities}), so labels at that level "
                "cannot teach it; choose one of its levels"
            )
    callbacks = callback_list(callbacks)
    settings = {
        "criterion": criterion,
        "n_per_round": int(n_per_round),
        "rounds": int(rounds),
        "store": store if store is not None or workdir is None else Path(workdir) / "labels",
        "reveal": bool(reveal),
        "properties": tuple(properties),
        "test": test,
        "validation": validation,
        "scan": scan,
        "max_epochs": max_epochs,
        "workdir": workdir,
        "quantity": quantity,
        "seed": int(seed),
        "workers": workers,
        "client": client,
        "n_start": len(dataset),
    }
    job = ImproveJob(models, dataset, as_source(candidates), level, settings, callbacks)
    return job.begin(background, queue)
