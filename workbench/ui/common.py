"""Pieces the panels share: fast mode, figures updated in place, work in a background job, throttling."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import ipywidgets as widgets
import plotly.graph_objects as go

from ..jobs import Job

COMPACT = {"description_width": "initial"}


def fast_mode() -> bool:
    """True when ``WORKBENCH_FAST=1``: panels and notebooks choose tiny settings (tests, quick looks)."""
    return os.environ.get("WORKBENCH_FAST", "") not in ("", "0")


def replace_figure(target: go.FigureWidget, figure: go.Figure) -> None:
    """Make a FigureWidget show ``figure`` (traces and layout) without creating a new widget."""
    with target.batch_update():
        target.data = []
        target.add_traces(list(figure.data))
        target.layout = figure.layout


def update_figure(target: go.FigureWidget, figure: go.Figure) -> None:
    """Like :func:`replace_figure`, but when the traces are the same ones (same names and types, in order) only
    their data move, which keeps the user's zoom and does not redraw the whole plot."""
    same = len(target.data) == len(figure.data) and all(
        (a.name, a.type) == (b.name, b.type) for a, b in zip(target.data, figure.data, strict=True)
    )
    if not same:
        replace_figure(target, figure)
        return
    with target.batch_update():
        for old, new in zip(target.data, figure.data, strict=True):
            old.x, old.y = new.x, new.y
        target.layout.title = figure.layout.title
        target.layout.shapes = figure.layout.shapes


def row(children, **layout) -> widgets.HBox:
    """A wrapping row of widgets with a gap."""
    layout = {"width": "100%", "align_items": "center", "flex_flow": "row wrap", "grid_gap": "6px 12px", **layout}
    return widgets.HBox(children, layout=widgets.Layout(**layout))


def section(title: str, note: str = "") -> widgets.HTML:
    note_html = f' <span class="wb-muted" style="font-size:13px; font-weight:400">{note}</span>' if note else ""
    return widgets.HTML(f'<div class="wb-section">{title}{note_html}</div>')


class Throttle:
    """Call ``draw()`` at most once per ``interval`` seconds; a call that comes too soon is made later, so the
    last state is always drawn. Safe to call from any thread; draws never overlap."""

    def __init__(self, draw: Callable[[], None], interval: float = 0.5):
        self.draw, self.interval = draw, interval
        self._last = 0.0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self, now: bool = False) -> None:
        with self._lock:
            wait = self.interval - (time.monotonic() - self._last)
            if not now and wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._fire)
                    self._timer.daemon = True
                    self._timer.start()
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._last = time.monotonic()
            self.draw()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
            self.draw()


class ModelChooser(widgets.VBox):
    """Choose model heads of the finished runs of a state (each run's target head by default), and levels of
    theory typed by name; :meth:`predictors` gives them as :class:`workbench.analysis.Predictor` objects."""

    def __init__(self, state, rows: int = 5, levels: str = ""):
        self.state = state
        self.members = widgets.SelectMultiple(description="Models", style=COMPACT, rows=rows, layout={"width": "420px"})
        self.levels = widgets.Text(value=levels, description="and levels", placeholder="e.g. gfn2-xtb", style=COMPACT)
        self.levels.layout.width = "420px"
        super().__init__([self.members, self.levels])
        state.observe(self._on_runs, "runs_version")
        self._on_runs(None)

    def _on_runs(self, _change) -> None:
        options = []
        for name, model in self.state.finished_runs().items():
            heads = list(model.fidelities)
            options += [(name if len(heads) == 1 else f"{name} · {head}", (name, head)) for head in heads]
        values = [v for _, v in options]
        if values != [v for _, v in self.members.options]:
            chosen = [v for v in self.members.value if v in values]
            self.members.options = options
            # Each run's target head by default (its last head is its highest level).
            targets = {name: (name, head) for name, head in values}
            self.members.value = tuple(chosen or targets.values())

    def predictors(self) -> list:
        """The chosen heads and levels (ValueError when nothing is chosen)."""
        from .. import analysis

        chosen = set(self.members.value)
        runs = {name: self.state.runs[name].model for name, _ in chosen}
        members = [p for p in analysis.predictors(runs) if (p.name, p.fidelity) in chosen] if runs else []
        levels = [s for s in self.levels.value.replace(",", " ").split() if s]
        if levels:
            members += analysis.predictors({level: level for level in levels})
        if not members:
            raise ValueError("choose a trained model, or type a level of theory such as gfn2-xtb")
        return members


def panel_task(button, status, error, work: Callable, done: Callable, action: str, busy: str, wait: bool = False):
    """Run ``work()`` for a panel as a :class:`~workbench.jobs.Job`: ``button`` is disabled and ``status`` says
    ``busy`` meanwhile; then ``done(result)``, or the error box shows why ``action`` failed. ``wait`` blocks until
    then (``job.wait()`` does too)."""
    from .html import error_box

    button.disabled = True
    status.value = f'<div class="wb-muted">{busy}</div>'

    def finished(job: Job) -> None:
        button.disabled = False
        try:
            if job.state != "done":
                raise job.error
            done(job.result())
        except Exception as exception:  # shown by the panel, never lost in a thread's stderr
            status.value = ""
            error.value = error_box(exception, action)

    job = Job(action, work)
    job.add_done_callback(finished)
    job.start()
    if wait:
        job.wait()
    return job
