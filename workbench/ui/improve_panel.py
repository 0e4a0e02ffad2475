"""The Improve panel: close the loop from where a model is unsure to new labels at a chosen level and a better
model, round by round, with the error plotted against the labels (and the QM time) spent, a random baseline
beside it when asked, the scan of the configuration on show before and after, and the configurations each round
chose in 3D.

The loop is :func:`workbench.improve` (one :class:`~workbench.jobs.Job`, in the state's queue when a baseline
follows it); its labels go to the same resumable store as the Dataset tab's. The improved model joins the runs,
so every other tab can compare, scan and vibrate it.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from .. import analysis
from ..active import CRITERIA, ModelMD, Pool, ScanGeometries, improve
from ..analysis.coordinates import bond_graph
from ..qm import Level
from ..viz.improve import improvement_figure
from ..viz.pes import scan_figure
from ..viz.structure import replace_structure, structure_view
from .common import COMPACT, fast_mode, replace_figure, row, section
from .html import STYLE, error_box
from .labeling import LEVELS, default_store
from .state import WorkbenchState

#: Where the candidates come from: (label, key).
SOURCES = [
    ("training configurations without labels at the level", "pool"),
    ("MD driven by the model, from the configuration on show", "md"),
    ("a dihedral scan of the configuration on show", "scan"),
]
CRITERION_LABELS = {
    "variance": "the model's own uncertainty (last-layer variance)",
    "disagreement": "disagreement of the model's heads",
    "error": "the model's error where labels exist",
    "random": "random",
}


def scan_dihedral(atoms) -> tuple[int, int, int, int] | None:
    """A dihedral of ``atoms`` that turns a group: four bonded atoms, the middle two heavy, ending on a hydrogen
    if one can (e.g. ethanol's C-C-O-H)."""
    adj = bond_graph(atoms)
    heavy = atoms.numbers > 1
    best = None
    for b, c in zip(*np.nonzero(np.triu(adj)), strict=True):
        if not (heavy[b] and heavy[c]):
            continue
        for a in np.flatnonzero(adj[b]):
            for d in np.flatnonzero(adj[c]):
                if len({int(a), int(b), int(c), int(d)}) < 4:
                    continue
                score = int(atoms.numbers[d] == 1) + int(atoms.numbers[c] == 8)
                if best is None or score > best[0]:
                    best = (score, (int(a), int(b), int(c), int(d)))
    return None if best is None else best[1]


class ImprovePanel(widgets.VBox):
    """Run the improve loop on a finished run and watch its error fall as labels are bought.

    ``start()`` starts the loop (and, with the baseline ticked, a random-selection loop queued behind it) and
    returns the job; ``panel.jobs`` maps each loop's name to its :class:`~workbench.active.ImproveJob` and
    ``panel.wait()`` blocks until all have ended and been drawn.
    """

    def __init__(self, state: WorkbenchState | None = None):
        super().__init__()
        self.add_class("wb-panel")
        self.add_class("wb-improve-panel")
        self.state = state if state is not None else WorkbenchState.session()
        self.jobs: dict = {}
        self.scans: dict = {}
        fast = fast_mode()

        self.run = widgets.Dropdown(description="Model", style=COMPACT, layout={"width": "420px"})
        self.level = widgets.Combobox(
            value="", options=list(LEVELS), description="Labels at", style=COMPACT, ensure_option=False
        )
        self.level.layout.width = "260px"
        self.source = widgets.Dropdown(options=SOURCES, value="pool", description="Candidates", style=COMPACT)
        self.source.layout.width = "520px"
        self.criterion = widgets.Dropdown(
            options=[(CRITERION_LABELS[c], c) for c in CRITERIA if c != "random"] + [("random", "random")],
            value="variance", description="Choose by", style=COMPACT, layout={"width": "430px"},
        )  # fmt: skip
        self.baseline = widgets.Checkbox(value=True, description="and a random choice to compare", indent=False)
        self.baseline.layout.width = "260px"
        self.per_round = widgets.BoundedIntText(3 if fast else 10, min=1, max=10_000, description="labels per round",
                                                style=COMPACT, layout={"width": "180px"})  # fmt: skip
        self.rounds = widgets.BoundedIntText(2 if fast else 3, min=1, max=100, description="rounds", style=COMPACT,
                                             layout={"width": "120px"})  # fmt: skip
        self.epochs = widgets.BoundedIntText(10 if fast else 200, min=1, max=100_000, description="epochs a round",
                                             style=COMPACT, layout={"width": "170px"})  # fmt: skip
        self.store = widgets.Text(value=str(default_store()), description="Store", style=COMPACT)
        self.store.layout.width = "420px"
        self.start_button = widgets.Button(description="Improve", icon="refresh", button_style="primary")
        self.start_button.add_class("wb-improve-start")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="warning", disabled=True)
        self.progress = widgets.FloatProgress(min=0, max=1, layout={"width": "260px"})
        self.progress_text = widgets.HTML()
        self.progress_text.add_class("wb-improve-progress")
        self.error = widgets.HTML()
        self.error.add_class("wb-error-box")
        self.curve = go.FigureWidget()
        self.scan_figure = go.FigureWidget()
        self.scan_note = widgets.HTML()
        self.scan_note.add_class("wb-improve-scan-note")
        slider = {"style": COMPACT, "layout": {"width": "330px"}}
        self.chosen_round = widgets.IntSlider(description="Round", min=1, max=1, **slider)
        self.chosen_index = widgets.IntSlider(description="Chosen", min=0, max=0, **slider)
        self.chosen_note = widgets.HTML()
        self.view_box = widgets.Box(layout={"width": "362px", "height": "302px", "border": "1px solid #e4e7eb"})
        self.view_box.add_class("wb-improve-view")
        self.view = None
        curve_box, scan_box = widgets.Box([self.curve]), widgets.Box([self.scan_figure])
        scan_box.layout.display = "none"  # until a loop has a scan to show
        self._scan_box = scan_box
        curve_box.add_class("wb-improve-curve")
        scan_box.add_class("wb-improve-scan")

        self.children = [
            widgets.HTML(STYLE),
            section("Improve a model", "buy labels where it is unsure, train it further, and watch its error fall"),
            row([self.run, self.level]),
            row([self.source, self.criterion]),
            row([self.per_round, self.rounds, self.epochs, self.baseline]),
            row([self.store, self.start_button, self.stop_button, self.progress, self.progress_text]),
            self.error,
            curve_box,
            widgets.HBox(
                [
                    widgets.VBox([scan_box, self.scan_note]),
                    widgets.VBox(
                        [
                            section("Chosen configurations"),
                            self.chosen_round,
                            self.chosen_index,
                            self.view_box,
                            self.chosen_note,
                        ],
                    ),  # fmt: skip
                ],
                layout={"width": "100%", "align_items": "flex-start", "flex_flow": "row wrap"},
            ),
        ]
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.run.observe(self._on_run, "value")
        self.chosen_round.observe(lambda _: self._show_chosen(), "value")
        self.chosen_index.observe(lambda _: self._show_chosen(), "value")
        self.state.observe(self._on_runs, "runs_version")
        self._on_runs(None)

    def on_show(self) -> None:
        """Fit the 3D view to its box (a view drawn while its tab was hidden has no size)."""
        if self.view is not None:
            self.view.handle_resize()

    # ----------------------------------------------------------------------------- choices
    def _on_runs(self, _change) -> None:
        names = list(self.state.finished_runs())
        if list(self.run.options) != names:
            current = self.run.value
            self.run.options = names
            self.run.value = current if current in names else (names[0] if names else None)

    def _on_run(self, _change) -> None:
        model = self.state.finished_runs().get(self.run.value)
        if model is not None:
            self.level.value = model.target

    def _candidates(self, model, level: str, atoms):
        train = self.state.subset("train")
        key = self.source.value
        if key == "pool":
            lab = train.labels.get(level)
            lacking = np.arange(len(train)) if lab is None else np.flatnonzero(~lab.energy_mask)
            if not len(lacking):
                raise ValueError(f"every training configuration has labels at {level}; choose other candidates")
            return Pool(train.select(lacking).drop_fidelity(level) if lab is not None else train.select(lacking))
        if key == "md":
            n = 20 if fast_mode() else 100
            return ModelMD(atoms, temperature_K=500.0, n_samples=n, interval=10, equilibration_steps=50)
        dihedral = scan_dihedral(atoms)
        if dihedral is None:
            raise ValueError("the configuration on show has no dihedral that turns a group")
        return ScanGeometries(atoms, "dihedral", dihedral, np.arange(-180, 180, 30 if fast_mode() else 10))

    # ----------------------------------------------------------------------------- the loop
    def start(self):
        """Start the loop with the panel's choices; returns its job, or None with the reason shown."""
        self.error.value = ""
        try:
            name = self.run.value
            model = self.state.finished_runs().get(name)
            if model is None:
                raise ValueError("train a model first (Training tab)")
            if any(not job.finished for job in self.jobs.values()):
                raise ValueError("a loop is running: stop it or wait for it")
            level = self.level.value.strip()
            if not level:
                raise ValueError("choose the level to buy labels at")
            ds = self.state.dataset
            atoms = ds.to_atoms(min(self.state.configuration, len(ds) - 1))
            candidates = self._candidates(model, level, atoms)
            dihedral = scan_dihedral(atoms)
            scan = None
            if dihedral is not None:
                values = np.arange(-180, 180, 30 if fast_mode() else 15)
                scan = {"atoms": atoms, "dihedral": dihedral, "values": values, "reference": level}
            test = self.state.subset("test")
            # coupled-cluster gradients cost ~20x the energy (Level warns): the tab buys their energies only
            properties = ("energy",) if Level(level).method.startswith("ccsd") else ("energy", "forces")
            common = dict(
                dataset=self.state.subset("train"), candidates=candidates, level=level,
                n_per_round=self.per_round.value, rounds=self.rounds.value, store=self.store.value.strip() or None,
                max_epochs=self.epochs.value, test=test if level in test.labels else None, scan=scan,
                queue=self.state.queue, properties=properties,
            )  # fmt: skip
            criteria = [self.criterion.value]
            if self.baseline.value and self.criterion.value != "random":
                criteria.append("random")
            self.jobs, self.scans, self._scan, self._start_model = {}, {}, scan, model
            for criterion in criteria:
                job = improve(model, criterion=criterion, **common)
                job.name = f"{name}: {criterion}"
                job.subscribe(self._on_job_event)
                self.jobs[criterion] = job
        except Exception as error:  # bad choices: shown, nothing started
            self.error.value = error_box(error, "start improving")
            return None
        self.start_button.disabled, self.stop_button.disabled = True, False
        self._draw_curve()
        return self.jobs[criteria[0]]

    def stop(self) -> None:
        """Stop every loop of the panel; the labels bought and the last models are kept."""
        for job in self.jobs.values():
            job.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every loop has ended and been drawn."""
        return all(job.wait(timeout) for job in self.jobs.values())

    def _on_job_event(self, job, event: str) -> None:
        if event in ("progress", "stage", "start"):
            self._draw_progress(job)
        if event == "progress":
            self._draw_curve()
        if event == "end":
            self._finish(job)

    def _draw_progress(self, job) -> None:
        p = job.progress()
        total = p["total"] or 1
        self.progress.value = min(p["done"] / total, 1.0)
        self.progress_text.value = (
            f"<b>{html.escape(job.name)}</b> · {html.escape(p['stage'] or job.state)} · round {p['done']} of {total}"
        )

    def _draw_curve(self) -> None:
        loops = {criterion: job.rounds for criterion, job in self.jobs.items() if len(job.records)}
        metric = "forces_mae"
        if not any(metric in r for r in loops.values()):
            metric = "energy_mae" if any("energy_mae" in r for r in loops.values()) else "scan_rmse"
        if any(metric in r for r in loops.values()):
            replace_figure(self.curve, improvement_figure(loops, metric).update_layout(width=1180))

    def _finish(self, job) -> None:
        try:
            if job.state == "failed":
                self.error.value = error_box(job.error, f"improve ({job.name})")
            result = job.result() if job.state == "done" else job.partial
            if result is not None and result.chosen:
                name = self.state.unique_run_name(f"{self.run.value}-improved-{job.name.rsplit(': ', 1)[-1]}")
                rounds = len(result.rounds) - 1
                self.state.keep_model(name, result.model, f"{job.name}, {rounds} rounds at {job.level}")
                if job is next(iter(self.jobs.values())):
                    self._show_result(result)
            self._draw_curve()
        except Exception as error:
            self.error.value = error_box(error, "show the improved model")
        finally:
            if all(j.finished for j in self.jobs.values()):
                self.start_button.disabled, self.stop_button.disabled = False, True
                states = ", ".join(f"{html.escape(j.name)}: {j.state}" for j in self.jobs.values())
                self.progress_text.value = states

    def _show_result(self, result) -> None:
        self.result = result
        self.chosen_round.max = len(result.chosen)
        self.chosen_round.value = len(result.chosen)
        self._show_chosen()
        scan = self._scan
        if scan is None:
            self.scan_note.value = '<div class="wb-muted">No dihedral to scan in this molecule.</div>'
            return
        before, after = self._start_model, result.model
        scanned = analysis.scan({"before": before, "after": after}, **scan)
        self.scans[result.model] = scanned
        replace_figure(self.scan_figure, scan_figure(scanned).update_layout(width=700, title="Scan before and after"))
        self._scan_box.layout.display = None
        scores = analysis.smoothness(scanned)
        parts = [
            f"{m}: {scores.loc[m, 'n_extrema']:.0f} extrema (reference {scores.loc[m, 'n_extrema_reference']:.0f}), "
            f"RMSE {1000 * scores.loc[m, 'rmse']:.0f} meV"
            for m in scores.index
        ]
        self.scan_note.value = '<div class="wb-muted">' + "<br>".join(html.escape(p) for p in parts) + "</div>"

    def _show_chosen(self) -> None:
        result = getattr(self, "result", None)
        if result is None or not result.chosen:
            return
        chosen = result.chosen[self.chosen_round.value - 1]
        self.chosen_index.max = max(len(chosen) - 1, 0)
        i = min(self.chosen_index.value, len(chosen) - 1)
        atoms = chosen.to_atoms(i)
        if self.view is None:
            self.view = structure_view(atoms, width="360px", height="300px")
            self.view_box.children = [self.view]
        else:
            replace_structure(self.view, atoms)
        where = f"round {self.chosen_round.value}: configuration {i + 1} of {len(chosen)} chosen"
        self.chosen_note.value = f'<div class="wb-muted">{where}</div>'
