"""The Training panel: choose a model family, a strategy, the fidelities and their loss weights, the main
settings and a device; start runs (side by side or queued), watch their loss and errors live, stop them.

Training runs in the job's own thread (:func:`workbench.train` with ``background=True``): the kernel stays free,
and the figures follow the run through its callbacks, redrawn at most twice a second.
"""

from __future__ import annotations

import html
import math
import weakref
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from ..models import families
from ..viz.training import training_progress_figure
from .common import COMPACT, Throttle, row, section, update_figure
from .html import STYLE, error_box
from .runs import runs_html
from .state import WorkbenchState
from .training_choices import (
    HINTS,
    STRATEGIES,
    FidelityRow,
    LevelChooser,
    default_settings,
    devices,
    format_seconds,
    width_setting,
)

if TYPE_CHECKING:
    from ..training import TrainingJob


class TrainingPanel(widgets.VBox):
    """Train models on the shared dataset and watch them learn.

    Parameters
    ----------
    state
        Shared state (the dataset, and ``state.runs`` where every run is kept by name).

    Runs started here train on the ``train`` part of ``state.split()`` and validate on its ``validation``
    part; the ``test`` part is left for the Compare panel.
    """

    def __init__(self, state: WorkbenchState | None = None):
        super().__init__()
        self.add_class("wb-panel")
        self.add_class("wb-training-panel")
        self.state = state if state is not None else WorkbenchState.session()
        self._following: weakref.WeakSet = weakref.WeakSet()
        defaults = default_settings()
        self._families = families()

        # --- model and strategy
        self.family = widgets.Dropdown(
            options=list(self._families.index), value="hipnn", description="Family", style=COMPACT
        )
        self.family_info = widgets.HTML()
        self.strategy = widgets.ToggleButtons(
            options=[(k, v) for k, v in STRATEGIES.items()], value="multifidelity", style={"button_width": "122px"}
        )
        self.strategy.add_class("wb-strategy")
        self.strategy_info = widgets.HTML()
        self.inner = widgets.Dropdown(
            options=[(k, v) for k, v in STRATEGIES.items() if v != "learning_curve"],
            value="multifidelity",
            description="inner strategy",
            style=COMPACT,
            layout=widgets.Layout(width="250px"),
        )
        self.budgets = widgets.Text(value="", description="target labels", placeholder="e.g. 25 50 100", style=COMPACT)
        self.delta_base = widgets.Dropdown(
            options=[("the QM level itself", "qm"), ("a model of it, trained here", "model")],
            value="qm",
            description="add the correction to",
            style=COMPACT,
            layout=widgets.Layout(width="360px"),
        )
        # how the levels enter a multi-fidelity model (docs/multifidelity-defaults.md compares them)
        self.fidelity_mode = widgets.Dropdown(
            options=[
                ("the level below + a correction", "residual"),
                ("one readout head per level", "heads"),
                ("an input of the trunk", "embedding"),
            ],
            value="residual",
            description="levels enter as",
            style=COMPACT,
            layout=widgets.Layout(width="360px"),
        )
        # a last stage on the target alone, at a tenth of the learning rate (as transfer's fine-tuning)
        self.finetune = widgets.Checkbox(
            value=True,
            description="then fine-tune on the target (0.1× learning rate)",
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        # every head starts as a copy of the lowest level's, and a penalty keeps it near (tie_heads)
        self.tie_heads = widgets.Checkbox(
            value=False,
            description="tie each head to the lowest level's (λ = 0.1)",
            indent=False,
            layout=widgets.Layout(width="auto", margin="0 16px 0 8px"),
        )
        self.recipe_options = widgets.HBox()

        # --- levels of theory
        self.levels = LevelChooser()
        self.target = self.levels.target

        # --- settings
        self.epochs = widgets.BoundedIntText(defaults["max_epochs"], min=1, max=100_000, description="Epochs")
        self.lr = widgets.BoundedFloatText(defaults["lr"], min=1e-6, max=1.0, step=1e-4, description="Learning rate")
        self.patience = widgets.BoundedIntText(defaults["patience"], min=1, max=100_000, description="Patience")
        self.seed = widgets.IntText(defaults["seed"], description="Seed")
        self.width = widgets.BoundedIntText(defaults["width"], min=1, max=1024, description="Width")
        self.batch_size = widgets.BoundedIntText(defaults["batch_size"], min=1, max=100_000, description="Batch")
        for w in (self.epochs, self.lr, self.patience, self.seed, self.width, self.batch_size):
            w.style = COMPACT
            w.layout.width = "170px"
        self.device = widgets.Dropdown(options=devices(), value="cpu", description="Device", style=COMPACT)

        # --- runs
        self.run_name = widgets.Text(description="Run name", style=COMPACT, layout=widgets.Layout(width="290px"))
        self.queue = widgets.Checkbox(value=False, description="queue after the runs in progress", indent=False)
        self.start_button = widgets.Button(description="Start", icon="play", button_style="primary")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="warning")
        self.start_button.add_class("wb-start")
        self.stop_button.add_class("wb-stop")
        self.runs_table = widgets.HTML()
        self.runs_table.add_class("wb-runs")
        self.shown = widgets.Dropdown(description="Show run", style=COMPACT, layout=widgets.Layout(width="330px"))
        self.shown.add_class("wb-shown-run")
        self.progress = widgets.FloatProgress(min=0, max=1, layout=widgets.Layout(width="300px"))
        self.progress_text = widgets.HTML()
        self.progress_text.add_class("wb-progress-text")
        self.figure = go.FigureWidget(training_progress_figure(pd.DataFrame()).update_layout(width=1180))
        figure_box = widgets.Box([self.figure])
        figure_box.add_class("wb-training-curves")
        self.error = widgets.HTML()
        self.error.add_class("wb-error-box")
        self.log_view = widgets.HTML()
        self.log_view.add_class("wb-log")

        self.children = [
            widgets.HTML(STYLE + _CSS),
            row([self.family, self.family_info]),
            row([self.strategy]),
            self.strategy_info,
            self.recipe_options,
            section("Levels of theory", "which labels to learn from, and the weight of each term in the loss"),
            self.levels,
            section("Settings"),
            row([self.epochs, self.lr, self.patience, self.seed, self.width, self.batch_size, self.device]),
            row([self.run_name, self.queue, self.start_button, self.stop_button]),
            self.error,
            section("Runs"),
            self.runs_table,
            row([self.shown, self.progress, self.progress_text]),
            figure_box,
            self.log_view,
        ]

        self._draw = Throttle(self._draw_shown, interval=0.5)
        self.family.observe(self._on_family, "value")
        self.strategy.observe(self._on_strategy, "value")
        self.inner.observe(self._on_strategy, "value")
        self.fidelity_mode.observe(self._on_strategy, "value")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.shown.observe(lambda _: self._draw(now=True), "value")
        self.state.observe(self._on_dataset, "dataset")
        self.state.observe(self._on_runs, "runs_version")
        self._on_family(None)
        self._on_strategy(None)
        self._on_dataset(None)
        self._on_runs(None)  # follows the runs started before this panel was drawn

    # ----------------------------------------------------------------------------- choices
    def _on_family(self, _change) -> None:
        row_ = self._families.loc[self.family.value]
        self.family_info.value = f'<span class="wb-muted">{html.escape(row_["description"])}</span>'
        self.width.disabled = not width_setting(self.family.value, 1, row_["defaults"])
        self._on_strategy(None)

    def _on_strategy(self, _change) -> None:
        recipe = self.strategy.value
        self.strategy_info.value = f'<div class="wb-muted" style="margin:0 0 4px 4px">{HINTS[recipe]}</div>'
        extras = []
        if recipe == "learning_curve":
            extras = [self.inner, self.budgets]
        inner = self.inner.value if recipe == "learning_curve" else recipe
        if inner == "delta":
            extras.append(self.delta_base)
        if inner == "multifidelity" and self._takes_fidelity_mode():
            extras.append(self.fidelity_mode)
            if self.fidelity_mode.value != "embedding":  # options of a model with a head per level
                extras += [self.tie_heads, self.finetune]
        self.recipe_options.children = extras
        self._suggest_name()

    def _takes_fidelity_mode(self) -> bool:
        # the linear family fits one coefficient set per level: it has heads only
        return self.family.value != "linear"

    def _on_dataset(self, _change) -> None:
        self.levels.show(self.state.dataset)

    @property
    def rows(self) -> dict[str, FidelityRow]:
        """Level of theory -> its widgets (use it, which labels, loss weights)."""
        return self.levels.rows

    def _suggest_name(self) -> None:
        recipe = self.strategy.value if hasattr(self, "strategy") else "run"
        family = self.family.value
        self.run_name.placeholder = self.state.unique_run_name(f"{recipe}-{family}")

    # ----------------------------------------------------------------------------- starting
    def train_options(self) -> dict:
        """The keyword arguments of :func:`workbench.train` that the panel's choices make (ValueError when the
        choices cannot train anything)."""
        if self.state.dataset is None:
            raise ValueError("load a dataset first (Dataset tab)")
        target = self.target.value
        if target is None:
            raise ValueError("choose at least one level of theory to learn from")
        recipe = self.strategy.value
        fidelities = {n: r.properties for n, r in self.rows.items() if r.use.value and r.properties}
        if target not in fidelities:
            raise ValueError(f"the target {target!r} needs energy or force labels ticked")
        inner = self.inner.value if recipe == "learning_curve" else recipe
        if inner == "single":
            fidelities = {target: fidelities[target]}
        weights = {
            n: {"energy": r.energy_weight.value, "forces": r.force_weight.value}
            for n, r in self.rows.items()
            if n in fidelities
        }
        family = self.family.value
        options = {
            "train": self.state.subset("train"),
            "validation": self.state.subset("validation"),
            "family": family,
            "recipe": recipe,
            "fidelities": fidelities,
            "target": target,
            "model": width_setting(family, self.width.value, self._families.loc[family, "defaults"]),
            "device": self.device.value,
            "max_epochs": self.epochs.value,
            "lr": self.lr.value,
            "patience": self.patience.value,
            "seed": self.seed.value,
            "batch_size": self.batch_size.value,
            "weights": weights,
            "progress": False,
        }
        if inner == "meta":
            options["meta_epochs"] = self.epochs.value
        if inner == "delta":
            options["base"] = self.delta_base.value
        if inner == "multifidelity" and self._takes_fidelity_mode():
            options["model"]["fidelity_mode"] = self.fidelity_mode.value
            heads = self.fidelity_mode.value != "embedding"
            if heads and self.tie_heads.value:
                options["tie_heads"] = 0.1
            options["finetune_lr_factor"] = 0.1 if heads and self.finetune.value else None
        if recipe == "learning_curve":
            options["inner"] = inner
            if self.budgets.value.strip():
                try:
                    options["budgets"] = [int(b) for b in self.budgets.value.replace(",", " ").split()]
                except ValueError:
                    given = self.budgets.value
                    raise ValueError(f"target labels: whole numbers, e.g. 25 50 100; got {given!r}") from None
            else:
                have = int(options["train"].labels[target].energy_mask.sum())
                options["budgets"] = sorted({max(2, have // 4), max(2, have // 2), have})
        return options

    def start(self) -> TrainingJob | None:
        """Start a run with the panel's choices (or queue it); returns it, or None with the reason shown."""
        from ..training import train

        self.error.value = ""
        try:
            options = self.train_options()
            name = self.run_name.value.strip() or self.run_name.placeholder
            if name in self.state.runs:
                raise ValueError(f"a run named {name!r} exists already; choose another name")
        except ValueError as error:
            self.error.value = error_box(error, "start training")
            return None
        label = next(k for k, v in STRATEGIES.items() if v == options["recipe"])
        description = f"{label} {options['family']} → {options['target']} on {options['device']}"
        run = self.state.start_run(name, train, options, description, queue=self.queue.value)
        self._follow([run])
        self.run_name.value = ""
        self._suggest_name()
        self.shown.value = name
        return run

    def stop(self) -> None:
        """Stop the run on show."""
        run = self.state.runs.get(self.shown.value)
        if run is not None and not run.finished:
            run.cancel()
            self._draw(now=True)

    # ----------------------------------------------------------------------------- following runs
    def _follow(self, runs) -> None:
        for run in runs:
            if run not in self._following:
                self._following.add(run)
                run.subscribe(self._on_run_event)

    def _on_runs(self, _change) -> None:
        runs = self.state.runs
        self._follow(runs.values())
        names = list(runs)
        if list(self.shown.options) != names:
            current = self.shown.value
            self.shown.options = names
            self.shown.value = current if current in names else (names[-1] if names else None)
        self.runs_table.value = runs_html(runs)
        self._suggest_name()
        self._draw(now=True)

    def _on_run_event(self, run: TrainingJob, event: str) -> None:
        if event != "progress":
            self.runs_table.value = runs_html(self.state.runs)
        if run.name == self.shown.value:
            self._draw(now=event != "progress")

    def _draw_shown(self) -> None:
        run = self.state.runs.get(self.shown.value)
        if run is None:
            self.progress.value, self.progress_text.value, self.log_view.value = 0, "", ""
            return
        p = run.progress()
        if run.finished:
            self.progress.value = 1.0
            self.progress.bar_style = {"done": "success", "failed": "danger"}.get(run.state, "warning")
            self.progress_text.value = f"<b>{run.state}</b> · {run.epochs} epochs"
        else:
            total = p["total"] or 1
            self.progress.value = min(p["done"] / total, 1.0)
            self.progress.bar_style = "info"
            stage = f"{p['stage']} · " if p["stage"] else ""
            pace = f" · {p['seconds_per_unit']:.2g} s/epoch" if math.isfinite(p["seconds_per_unit"]) else ""
            self.progress_text.value = (
                f"<b>{run.state}</b> · {stage}epoch {p['done']} of at most {p['total'] or '?'}{pace}"
                f" · about {format_seconds(p['eta_s'])} left"
                if run.state == "running"
                else f"<b>{run.state}</b>"
            )
        history = run.history
        figure = training_progress_figure(history, title=f"{run.name}: {run.description}")
        update_figure(self.figure, figure.update_layout(width=1180))
        self.log_view.value = '<pre class="wb-log-text">' + html.escape("\n".join(run.log[-40:])) + "</pre>"
        if run.state == "failed" and run.error is not None:
            self.error.value = error_box(run.error, f"train {run.name}")
        elif self.error.value and "Could not train" in self.error.value:
            self.error.value = ""


_CSS = """
<style>
.wb-log-text { font-size: 12px; max-height: 150px; overflow-y: auto; background: #f5f7fa; padding: 6px 10px;
               border-radius: 4px; margin: 4px 0; }
.wb-fidelities .widget-checkbox { width: 24px; }
</style>
"""
