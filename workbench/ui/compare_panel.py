"""The Compare panel: trained runs side by side on held-out configurations.

The metrics table (eV or kcal/mol, best value of each column marked; by default with rows of the lower levels' own
labels, "no ML", as yardsticks the heads must beat), parity plots per fidelity (WebGL; click a point to see that
configuration in 3D, atoms coloured by the length of their force error, with predicted and reference force arrows),
the worst configurations, training curves and learning curves. Every number comes from :mod:`workbench.analysis`,
every figure from :mod:`workbench.viz`.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import analysis
from ..jobs import Job
from ..viz.compare import learning_curve_figure, metrics_table, parity_figure, training_curves_figure
from ..viz.force_errors import force_error_colorbar, force_error_view
from ..viz.structure import structure_view
from .common import COMPACT, panel_task, replace_figure, row, section
from .html import STYLE, error_box
from .state import WorkbenchState

PARTS = [("test split", "test"), ("validation split", "validation"), ("training split", "train"), ("all", "all")]
METRIC_COLUMNS = [
    "model",
    "head",
    "fidelity",
    "n_parameters",
    "n_energy",
    "energy_mae",
    "energy_rmse",
    "energy_mae_per_atom",
    "n_forces",
    "force_mae",
    "force_rmse",
    "force_max",
]


class ComparePanel(widgets.VBox):
    """Compare the runs of the shared state on one part of the dataset.

    ``compare()`` evaluates the chosen runs (in a background thread; ``panel.task.wait()`` follows it);
    a click on a parity point (or :meth:`show_configuration`) shows that configuration's force errors in 3D
    and makes it the shared ``state.configuration``.
    """

    def __init__(self, state: WorkbenchState | None = None):
        super().__init__()
        self.add_class("wb-panel")
        self.add_class("wb-compare-panel")
        self.state = state if state is not None else WorkbenchState.session()
        self.task: Job | None = None
        self.evaluations: list = []
        self.dataset = None  # the part of the dataset evaluated
        self.part = "test"
        self.errors_table: pd.DataFrame | None = None
        self.table: pd.DataFrame | None = None  # the metrics table shown
        self.shown: dict | None = None  # the configuration in the 3D view: index, model, fidelity
        self._trace_keys: dict[int, tuple[str, str]] = {}
        self._view = None

        self.runs = widgets.SelectMultiple(description="Runs", style=COMPACT, rows=4, layout={"width": "380px"})
        self.part_choice = widgets.Dropdown(options=PARTS, value="test", description="Evaluate on", style=COMPACT)
        self.units = widgets.ToggleButtons(options=["eV", "kcal/mol"], value="eV", style={"button_width": "80px"})
        self.quantity = widgets.ToggleButtons(
            options=[("energies", "energy"), ("forces", "forces")], value="energy", style={"button_width": "90px"}
        )
        self.compare_button = widgets.Button(description="Compare", icon="balance-scale", button_style="primary")
        self.compare_button.add_class("wb-compare")
        self.status = widgets.HTML()
        self.error = widgets.HTML()
        self.error.add_class("wb-error-box")
        self.yardsticks = widgets.Checkbox(
            value=True,
            description="show the lower levels' own labels as rows (no ML)",
            indent=False,
            layout={"width": "auto"},
        )
        self.yardsticks.add_class("wb-yardsticks")
        self.metrics = widgets.HTML()
        self.metrics.add_class("wb-metrics")
        self.metrics_note = widgets.HTML()
        self.metrics_note.add_class("wb-metrics-note")
        self.parity = go.FigureWidget()
        parity_box = widgets.Box([self.parity], layout={"width": "100%"})
        parity_box.add_class("wb-parity")
        self.view_box = widgets.Box(layout={"width": "442px", "min_height": "362px", "border": "1px solid #e4e7eb"})
        self.view_box.add_class("wb-force-view")
        self.view_info = widgets.HTML('<div class="wb-muted">Click a point of the parity plot.</div>')
        self.view_info.add_class("wb-force-info")
        self.colorbar = widgets.HTML()
        self.worst = widgets.Select(rows=10, layout={"width": "620px"})
        self.worst.add_class("wb-worst")
        self.curves_run = widgets.Dropdown(description="Training curves of", style=COMPACT)
        self.curves = go.FigureWidget()
        self.learning = go.FigureWidget()
        self.learning_box = widgets.Box([self.learning])
        self.learning_note = widgets.HTML()

        self.children = [
            widgets.HTML(STYLE),
            row([self.runs, widgets.VBox([self.part_choice, row([self.units, self.quantity])]), self.compare_button]),
            self.status,
            self.error,
            section("Metrics", "per model head and reference level; the best value of each column is marked"),
            self.yardsticks,
            self.metrics,
            self.metrics_note,
            section("Parity", "click a point to see that configuration's force errors"),
            parity_box,
            row(
                [
                    self.view_box,
                    widgets.VBox(
                        [self.view_info, self.colorbar, section("Worst configurations"), self.worst],
                        layout={"padding": "0 0 0 12px"},
                    ),
                ],
                align_items="flex-start",
            ),
            section("Training curves"),
            self.curves_run,
            widgets.Box([self.curves]),
            section("Learning curve", "test error against the number of target-level labels"),
            self.learning_note,
            self.learning_box,
        ]
        self.compare_button.on_click(lambda _: self.compare())
        self.units.observe(lambda _: self._redraw(), "value")
        self.yardsticks.observe(lambda _: self._draw_metrics(), "value")
        self.quantity.observe(lambda _: self._draw_parity(), "value")
        self.worst.observe(self._on_worst, "value")
        self.curves_run.observe(lambda _: self._draw_curves(), "value")
        self.state.observe(self._on_runs, "runs_version")
        self.state.observe(self._on_dataset, "dataset")
        self._on_runs(None)

    def on_show(self) -> None:
        """Fit the 3D view to its box (called by the app when the tab is shown: a view drawn while hidden has no
        size)."""
        if self._view is not None:
            self._view.handle_resize()

    # ----------------------------------------------------------------------------- choices
    def _on_runs(self, _change) -> None:
        finished = list(self.state.finished_runs())
        if list(self.runs.options) != finished:
            chosen = [n for n in self.runs.value if n in finished]
            self.runs.options = finished
            # New runs are chosen by default, so "Compare" right after training compares everything.
            self.runs.value = tuple(chosen or finished)
            current = self.curves_run.value
            self.curves_run.options = finished
            self.curves_run.value = current if current in finished else (finished[-1] if finished else None)
        if not finished:
            self.status.value = '<div class="wb-muted">Train a model in the Training tab, then compare here.</div>'
        elif not self.evaluations:
            self.status.value = ""

    def _on_dataset(self, _change) -> None:
        self.evaluations, self.dataset, self.errors_table = [], None, None
        self.metrics.value = self.metrics_note.value = ""
        replace_figure(self.parity, go.Figure())

    # ----------------------------------------------------------------------------- evaluating
    def compare(self, wait: bool = False) -> Job | None:
        """Evaluate the chosen runs on the chosen part of the dataset, then draw everything."""
        names = list(self.runs.value)
        self.error.value = ""
        if not names:
            self.error.value = error_box(KeyError("choose at least one finished run"), "compare")
            return None
        models = {n: self.state.runs[n].model for n in names}
        self.part = self.part_choice.value
        dataset = self.state.subset(self.part)
        what = f"Evaluating {len(names)} run(s) on {len(dataset):,} configurations…"

        def work():
            evaluations = analysis.evaluate(models, dataset)
            return evaluations, analysis.configuration_errors(evaluations, dataset)

        def done(result):
            self.evaluations, self.errors_table = result
            self.dataset = dataset
            where = f"{len(names)} run(s) on the {self.part} part: {len(dataset):,} configurations"
            self.status.value = f'<div class="wb-muted">{where}</div>'
            self._redraw()

        self.task = panel_task(self.compare_button, self.status, self.error, work, done, "compare the runs", what, wait)
        return self.task

    def _redraw(self) -> None:
        if not self.evaluations:
            return
        try:
            self._draw_metrics(raise_errors=True)
            self._draw_parity()
            self._draw_worst()
            self._draw_curves()
            self._draw_learning()
        except Exception as error:
            self.error.value = error_box(error, "draw the comparison")

    def _draw_metrics(self, raise_errors: bool = False) -> None:
        """The metrics table, with the lower levels' own labels as "no ML" rows when the checkbox asks for them."""
        if not self.evaluations:
            return
        labelled = [n for n, lab in self.dataset.labels.items() if lab.energy_mask.any() or lab.forces_mask.any()]
        self.yardsticks.disabled = len(labelled) < 2
        try:
            table = analysis.metrics(
                self.evaluations,
                self.dataset,
                units=self.units.value,
                per_element=False,
                yardsticks="lower" if self.yardsticks.value else None,
            )
        except Exception as error:
            if raise_errors:
                raise
            self.error.value = error_box(error, "tabulate the metrics")
            return
        self.table = table
        columns = [c for c in METRIC_COLUMNS if c in table.columns]
        self.metrics.value = metrics_table(table, columns).to_html()
        self.metrics_note.value = _yardstick_note(table, self.yardsticks.value)

    def _draw_parity(self) -> None:
        if not self.evaluations:
            return
        data = analysis.parity_data(self.evaluations, self.dataset, self.quantity.value, units=self.units.value)
        if data.empty:
            replace_figure(self.parity, go.Figure())
            self.status.value += f'<div class="wb-muted">No {self.quantity.value} labels in this part.</div>'
            return
        fidelities = list(dict.fromkeys(data["fidelity"]))
        figure = parity_figure(data).update_layout(width=max(480, 420 * len(fidelities)) + 60, height=440)
        # Each head is a trace in its own level's panel: give every model head its legend entry.
        named = set()
        for trace in figure.data:
            if trace.mode == "markers" and trace.name not in named:
                trace.showlegend = True
                named.add(trace.name)
        replace_figure(self.parity, figure)
        labels = {ev.label: ev for ev in self.evaluations}
        self._trace_keys = {}
        for k, trace in enumerate(self.parity.data):
            if trace.name in labels:
                axis = trace.xaxis or "x"
                col = int(axis[1:] or 1)
                self._trace_keys[k] = (trace.name, fidelities[col - 1])
                trace.on_click(self._on_point)

    def _on_point(self, trace, points, _state=None) -> None:
        if not points.point_inds:
            return
        index = next((k for k, t in enumerate(self.parity.data) if t is trace), points.trace_index)
        label, fidelity = self._trace_keys[index]
        configuration = int(np.asarray(trace.customdata)[points.point_inds[0]][0])
        self.show_configuration(configuration, label, fidelity)

    # ----------------------------------------------------------------------------- one configuration
    def show_configuration(self, configuration: int, label: str, fidelity: str) -> None:
        """Show configuration ``configuration`` (an index into the evaluated part) in 3D, atoms coloured by the force
        error of the model head ``label`` against ``fidelity``, and make it the shared configuration."""
        ev = next(e for e in self.evaluations if e.label == label)
        model = self.state.runs[ev.model].model
        ds = self.dataset
        self.shown = {"configuration": configuration, "model": label, "fidelity": fidelity}
        formula = ds.info["formula"].iloc[configuration]
        try:
            if ds.labels[fidelity].forces_mask[configuration]:
                head = (model, ev.head) if ev.head is not None else model
                errors = analysis.force_errors(head, ds, index=configuration, fidelity=fidelity)
                vmax = self._color_top(label, fidelity, errors.norm.max())
                view = force_error_view(errors, vmax=vmax)
                self.colorbar.value = force_error_colorbar(vmax) + _ARROWS
                worst = int(np.argmax(errors.norm))
                detail = (
                    f"force RMSE {np.sqrt(np.mean(errors.error**2)):.3g} eV/Å · largest error on atom {worst} "
                    f"({errors.atoms.get_chemical_symbols()[worst]}): {errors.norm[worst]:.3g} eV/Å"
                )
            else:
                view = structure_view(ds.to_atoms(configuration))
                self.colorbar.value = ""
                detail = f"no {html.escape(fidelity)} forces for this configuration: atoms not coloured"
        except Exception as error:
            self.error.value = error_box(error, f"show configuration {configuration}")
            return
        old, self._view = self._view, view
        self.view_box.children = [view]
        if old is not None:
            old.close()  # one WebGL context per view: free the old one
        original = int(self.state.split()[self.part][configuration]) if self.part != "all" else configuration
        self.view_info.value = (
            f'<div style="font-size:14px"><b>Configuration {original}</b> ({formula}) · {html.escape(label)} vs '
            f'{html.escape(fidelity)}</div><div class="wb-muted" style="font-size:13px">{detail}</div>'
        )
        self.state.configuration = original

    def _color_top(self, label: str, fidelity: str, fallback: float) -> float:
        """One colour scale for every configuration of a model head: its largest per-atom force error here."""
        t = self.errors_table
        if t is not None and "force_max" in t:
            ev = next(e for e in self.evaluations if e.label == label)
            part = t[(t["model"] == ev.model) & (t["fidelity"] == fidelity)]
            if ev.head is not None:
                part = part[part["head"] == ev.head]
            top = part["force_max"].max()
            if np.isfinite(top) and top > 0:
                return float(top)
        return float(max(fallback, 1e-6))

    def _draw_worst(self) -> None:
        worst = analysis.worst_configurations(self.errors_table, n=10)
        by = worst.attrs.get("ranked_by", "")
        options = []
        for _, r in worst.iterrows():
            label = next(
                (e.label for e in self.evaluations if e.model == r["model"] and e.head == r["head"]), r["model"]
            )
            text = f"configuration {int(r['configuration'])} · {r['formula']} · {label} vs {r['fidelity']} · "
            text += f"{by.replace('_', ' ')} {r['score']:.3g}"
            options.append((text, (int(r["configuration"]), label, r["fidelity"])))
        self.worst.options = options
        self.worst.value = None

    def _on_worst(self, change) -> None:
        if change["new"] is not None:
            self.show_configuration(*change["new"])

    # ----------------------------------------------------------------------------- curves
    def _draw_curves(self) -> None:
        run = self.state.runs.get(self.curves_run.value)
        history = run.model.history if run is not None and run.model is not None else None
        try:
            figure = training_curves_figure(history) if history is not None and len(history) else go.Figure()
        except (ValueError, KeyError):  # a closed-form fit has no per-epoch errors
            figure = go.Figure()
        replace_figure(self.curves, figure.update_layout(width=1100))

    def _draw_learning(self) -> None:
        done = [self.state.runs[n] for n in self.runs.value if self.state.runs[n].state == "done"]
        curves = {job.name: job.result() for job in done if hasattr(job.result(), "models")}
        if not curves:
            self.learning_note.value = (
                '<div class="wb-muted">Train with the <i>learning curve</i> strategy to see how the error falls '
                "with the number of target-level labels.</div>"
            )
            self.learning_box.layout.display = "none"
            return
        table = analysis.learning_curve(curves, self.dataset, units=self.units.value)
        metric = "force_rmse" if table["force_rmse"].notna().any() else "energy_mae"
        replace_figure(self.learning, learning_curve_figure(table, metric).update_layout(width=700))
        self.learning_note.value = ""
        self.learning_box.layout.display = None


def _yardstick_note(table: pd.DataFrame, asked: bool) -> str:
    """What the "no ML" rows of the metrics table are, and which of them could not be judged or compared."""
    if not asked:
        return ""
    if "labels_of" not in table or not table["labels_of"].notna().any():
        return '<div class="wb-muted">No lower level has labels on these configurations: no "no ML" rows.</div>'
    lines = [
        "<i>no ML</i> rows: a lower level's own labels against a higher level, on the configurations where both "
        "have labels, energies offset by per-element reference energies of both levels fitted there. They take "
        "part in the best mark where judged on the same configurations as the models."
    ]
    yard = table[table["labels_of"].notna()]
    lines += [html.escape(n) for n in yard["note"].dropna()]
    for col in ("energy_mae", "force_mae"):
        apart = yard[~analysis.comparable(table, col).loc[yard.index] & yard[col].notna()]
        what = "energies" if col.startswith("energy") else "forces"
        lines += [
            f"{html.escape(r['model'])} vs {html.escape(r['fidelity'])}: {what} judged on fewer configurations "
            "than the models, so not marked"
            for _, r in apart.iterrows()
        ]
    return '<div class="wb-muted" style="font-size:12px">' + "<br>".join(lines) + "</div>"


_ARROWS = (
    '<div style="font-size:11px;color:#1f2933">arrows: <span style="color:#1f77b4">■ predicted</span> '
    '<span style="color:#2ca02c">■ reference</span></div>'
)
