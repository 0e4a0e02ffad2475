"""Labeling controls of the Dataset panel: compute a level of theory on all, a random or a farthest-point subset of
the configurations shown, with progress and cancel; the labels join the dataset when the job ends.

The job is :func:`workbench.label` (resumable: every finished label is kept in an on-disk store, so a cancelled or
interrupted job loses nothing); the subset comes from :func:`workbench.qm.sampling.choose`.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from .common import COMPACT, fast_mode, row, section
from .html import error_box
from .state import WorkbenchState

#: Levels offered in the menu (any level name the QM engine knows can be typed).
LEVELS = ("gfn2-xtb", "gfn1-xtb", "hf/sto-3g", "hf/cc-pvdz", "b3lyp/6-31g*", "mp2/cc-pvdz", "ccsd(t)/cc-pvdz")
SUBSETS = [("all configurations", "all"), ("random", "random"), ("farthest-point", "fps")]


def default_store():
    """Where labels computed from the workbench are kept: ``<cache>/labels`` (see
    :func:`workbench.analysis.default_cache`)."""
    from ..analysis.pes import default_cache

    return default_cache() / "labels"


class LabelingControls(widgets.VBox):
    """Level, subset, properties, Start/Cancel and progress of one QM labeling job at a time.

    ``start()`` returns the running :class:`~workbench.qm.LabelJob` (also ``controls.job``); ``controls.wait()``
    blocks until its labels have joined ``state.dataset``.
    """

    def __init__(self, state: WorkbenchState):
        super().__init__()
        self.add_class("wb-labeling")
        self.state = state
        self.job = None
        self._dataset = None
        self.level = widgets.Combobox(
            value="gfn2-xtb", options=list(LEVELS), description="Level", style=COMPACT, ensure_option=False
        )
        self.level.layout.width = "250px"
        self.subset = widgets.Dropdown(options=SUBSETS, value="all", description="Subset", style=COMPACT)
        self.subset.layout.width = "230px"
        self.n = widgets.BoundedIntText(10 if fast_mode() else 100, min=1, max=10**9, description="N", style=COMPACT)
        self.n.layout.width = "120px"
        self.energy = widgets.Checkbox(value=True, description="energy", indent=False, layout={"width": "80px"})
        self.forces = widgets.Checkbox(value=True, description="forces", indent=False, layout={"width": "80px"})
        self.store = widgets.Text(value=str(default_store()), description="Store", style=COMPACT)
        self.store.layout.width = "420px"
        self.start_button = widgets.Button(description="Label", icon="flask", button_style="primary")
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", button_style="warning", disabled=True)
        self.start_button.add_class("wb-label-start")
        self.progress = widgets.IntProgress(min=0, max=1, layout={"width": "300px"})
        self.progress_text = widgets.HTML()
        self.error = widgets.HTML()
        self.children = [
            section("QM labels", "compute a level of theory for the configurations shown; the labels join the data"),
            row([self.level, self.subset, self.n, self.energy, self.forces]),
            row([self.store, self.start_button, self.cancel_button, self.progress, self.progress_text]),
            self.error,
        ]
        self.subset.observe(lambda _: self._on_subset(), "value")
        self.start_button.on_click(lambda _: self.start())
        self.cancel_button.on_click(lambda _: self.cancel())
        self._on_subset()

    def _on_subset(self) -> None:
        self.n.layout.display = "none" if self.subset.value == "all" else None

    def indices(self) -> np.ndarray | None:
        """The configurations to label (None: all)."""
        if self.subset.value == "all":
            return None
        from ..qm.select import choose

        ds = self.state.dataset
        return np.sort(choose(ds, min(self.n.value, len(ds)), method=self.subset.value, seed=0))

    def start(self):
        """Start labeling with the chosen settings; returns the job, or None with the reason shown."""
        from ..qm import label

        self.error.value = ""
        ds = self.state.dataset
        properties = tuple(p for p, box in (("energy", self.energy), ("forces", self.forces)) if box.value)
        try:
            if ds is None:
                raise ValueError("load a dataset first")
            if not properties:
                raise ValueError("tick energy, forces or both")
            if self.job is not None and self.job.state in ("queued", "running"):
                raise ValueError("a labeling job is running: cancel it or wait for it")
            indices = self.indices()
            store = self.store.value.strip() or None
            job = label(
                ds, self.level.value.strip(), store=store, indices=indices, properties=properties,
                progress=False, background=True,
            )  # fmt: skip
        except Exception as error:  # unknown level, bad subset size...: shown, nothing started
            self.error.value = error_box(error, "start labeling")
            return None
        self.job, self._dataset = job, ds
        self.start_button.disabled, self.cancel_button.disabled = True, False
        self.progress.max, self.progress.value, self.progress.bar_style = max(job.n_total, 1), 0, "info"
        job.subscribe(self._on_job_event)
        return job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.progress_text.value = "cancelling after the calculations now running…"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended and its labels joined the dataset."""
        return self.job is None or self.job.wait(timeout)

    def _on_job_event(self, job, event: str) -> None:
        if event == "progress":
            p = job.progress()
            self.progress.max, self.progress.value = max(p["total"], 1), p["done"]
            eta = f" · about {p['eta_s']:.0f} s left" if 0 < p["done"] < p["total"] and p["eta_s"] >= 0 else ""
            self.progress_text.value = f"{p['done']:,} of {p['total']:,} labels{eta}"
        elif event == "end":
            self._finish(job)

    def _finish(self, job) -> None:
        try:
            if job.state == "done":
                merged = job.result()
                if self.state.dataset is self._dataset:
                    keep = self.state.configuration
                    name = self.state.dataset_name
                    suffix = f" + {job.level.name}"
                    self.state.set_dataset(merged, name if name.endswith(suffix) else name + suffix)
                    self.state.configuration = min(keep, len(merged) - 1)
                failed = f", {job.n_failed} failed" if job.n_failed else ""
                self.progress.bar_style = "success" if not job.n_failed else "warning"
                self.progress_text.value = (
                    f"{job.n_total:,} labels at <b>{html.escape(job.level.name)}</b> ({job.n_computed:,} computed, "
                    f"the rest from the store{failed}) in {job.wall_time_s:.1f} s"
                )
            elif job.state == "cancelled":
                self.progress.bar_style = "warning"
                self.progress_text.value = f"cancelled: {job.n_done:,} labels kept in the store"
            else:
                self.progress.bar_style = "danger"
                self.error.value = error_box(job.error, f"label at {job.level.name}")
        except Exception as error:
            self.error.value = error_box(error, "add the labels to the dataset")
        finally:
            self.start_button.disabled, self.cancel_button.disabled = False, True
