"""The Vibrations panel: harmonic frequencies of model heads beside a reference level, and any normal mode
animated in 3D with arrows and an amplitude slider.

Each model relaxes the shared configuration and diagonalises its Hessian (:func:`workbench.analysis.vibrations`);
the reference does the same at a level of theory (:func:`workbench.analysis.reference_vibrations`, kept on disk).
The work runs in a background thread.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from .. import analysis
from ..viz.vibrations import frequency_figure, mode_view
from .common import COMPACT, BackgroundTask, ModelChooser, panel_task, replace_figure, row, section
from .html import STYLE, error_box, table
from .state import WorkbenchState


class VibrationsPanel(widgets.VBox):
    """Frequencies per model vs a reference, and animated modes.

    ``compute()`` runs in a background thread (``panel.task.wait()`` follows it); the results are kept as
    ``panel.results`` (name -> :class:`~workbench.analysis.VibrationsResult`, the reference included) and the
    table as ``panel.table``. Choosing a mode (:meth:`animate`) shows it in 3D.
    """

    def __init__(self, state: WorkbenchState | None = None):
        super().__init__()
        self.add_class("wb-panel")
        self.add_class("wb-vibrations-panel")
        self.state = state if state is not None else WorkbenchState.session()
        self.task: BackgroundTask | None = None
        self.results: dict = {}
        self.table = None
        self.view = None
        self._quiet = False

        self.models = ModelChooser(self.state, rows=4)
        self.reference = widgets.Checkbox(value=True, description="reference at", indent=False)
        self.reference.layout.width = "110px"
        self.reference_level = widgets.Text(value="gfn2-xtb", layout={"width": "170px"})
        self.compute_button = widgets.Button(description="Compute", icon="music", button_style="primary")
        self.compute_button.add_class("wb-vibrate")
        self.configuration = widgets.HTML()
        self.status = widgets.HTML()
        self.error = widgets.HTML()
        self.error.add_class("wb-error-box")
        self.table_html = widgets.HTML()
        self.table_html.add_class("wb-frequencies")
        self.figure = go.FigureWidget()
        self.source = widgets.Dropdown(description="Animate", style=COMPACT, layout={"width": "330px"})
        self.mode = widgets.Dropdown(description="mode", style=COMPACT, layout={"width": "330px"})
        self.mode.add_class("wb-mode")
        self.amplitude = widgets.FloatSlider(
            value=0.3, min=0.05, max=0.8, step=0.05, description="amplitude (Å)", style=COMPACT, continuous_update=False
        )
        self.view_box = widgets.Box(layout={"width": "442px", "min_height": "402px", "border": "1px solid #e4e7eb"})
        self.view_box.add_class("wb-mode-view")

        self.children = [
            widgets.HTML(STYLE),
            row([self.models, widgets.VBox([row([self.reference, self.reference_level]), self.compute_button])]),
            self.configuration,
            self.status,
            self.error,
            row(
                [
                    widgets.VBox(
                        [section("Harmonic frequencies", "cm⁻¹; errors are model − reference"), self.table_html],
                        layout={"max_height": "470px", "overflow": "auto", "flex": "1 1 560px"},
                    ),
                    widgets.VBox([self.source, self.mode, self.amplitude, self.view_box]),
                ],
                align_items="flex-start",
            ),
            widgets.Box([self.figure]),
        ]
        self.compute_button.on_click(lambda _: self.compute())
        self.source.observe(self._on_source, "value")
        self.mode.observe(lambda _: self._quiet or self.animate(), "value")
        self.amplitude.observe(lambda _: self.animate(), "value")
        self.state.observe(self._on_configuration, "configuration")
        self.state.observe(self._on_configuration, "dataset")
        self._on_configuration(None)

    def _atoms(self):
        ds = self.state.dataset
        return None if ds is None else ds.to_atoms(min(self.state.configuration, len(ds) - 1))

    def _on_configuration(self, _change) -> None:
        ds = self.state.dataset
        if ds is None:
            return
        i = min(self.state.configuration, len(ds) - 1)
        self.configuration.value = (
            f'<div style="font-size:14px">Each model (and the reference) first relaxes configuration <b>{i}</b> '
            f"({ds.info['formula'].iloc[i]}), then computes its Hessian at its own minimum.</div>"
        )

    def on_show(self) -> None:
        """Fit the 3D view to its box (called by the app when the tab is shown: a view drawn while hidden has no
        size)."""
        if self.view is not None:
            self.view.handle_resize()

    # ----------------------------------------------------------------------------- computing
    def compute(self, wait: bool = False) -> BackgroundTask | None:
        """Frequencies of the chosen heads (and the reference level) at the shared configuration."""
        self.error.value = ""
        try:
            members = self.models.predictors()
            atoms = self._atoms()
            if atoms is None:
                raise ValueError("load a dataset first (Dataset tab)")
        except ValueError as error:
            self.error.value = error_box(error, "compute vibrations")
            return None
        level = self.reference_level.value.strip() if self.reference.value else None
        ref = f" and {level}" if level else ""
        what = f"Relaxing and computing Hessians of {len(members)} model(s){ref}…"

        def work():
            results = {p.label: analysis.vibrations(p, atoms) for p in members}
            return results, analysis.reference_vibrations(atoms, level) if level else None

        def done(out):
            results, reference = out
            self.table = analysis.frequency_table(results, reference)
            named = {f"reference: {reference.name}": reference} if reference is not None else {}
            self.results = {**named, **results}
            worst = max(r.max_force for r in self.results.values())
            self.status.value = f'<div class="wb-muted">Largest force left after relaxing: {worst:.2g} eV/Å.</div>'
            self._draw()

        self.task = panel_task(
            self.compute_button, self.status, self.error, work, done, "compute vibrations", what, wait
        )
        return self.task

    def _draw(self) -> None:
        try:
            t = self.table
            numbers = [c for c in t.columns if c not in ("mode", "character")]
            formats = {c: "+.1f" if c.endswith(" error") else ".1f" for c in numbers}
            self.table_html.value = table(t.set_index("mode"), formats)
            replace_figure(self.figure, frequency_figure(t).update_layout(width=1100))
            self._quiet = True
            try:
                self.source.options = list(self.results)
                self.source.value = next(iter(self.results))
            finally:
                self._quiet = False
            self._on_source(None)
        except Exception as error:
            self.error.value = error_box(error, "draw the frequencies")

    def _on_source(self, _change) -> None:
        result = self.results.get(self.source.value)
        if result is None:
            return
        options = [
            (f"{k} · {f:.0f} cm⁻¹" + (f" · {c}" if c else ""), k)
            for k, (f, c) in enumerate(zip(result.frequencies, result.characters, strict=True))
        ]
        if self._quiet:
            return
        # Open on the highest mode (a stretch, the easiest motion to recognise); one new view, not one per change.
        self._quiet = True
        try:
            self.mode.options = options
            self.mode.value = options[-1][1] if options else None
        finally:
            self._quiet = False
        self.animate()

    def animate(self, source: str | None = None, mode: int | None = None) -> None:
        """Show ``mode`` of ``source`` (a key of :attr:`results`) moving in 3D, at the slider's amplitude."""
        if source is not None:
            self.source.value = source
        if mode is not None:
            self.mode.value = int(mode)
        result = self.results.get(self.source.value)
        if result is None or self.mode.value is None:
            return
        try:
            view = mode_view(result, int(self.mode.value), amplitude=self.amplitude.value)
        except Exception as error:
            self.error.value = error_box(error, f"animate mode {self.mode.value}")
            return
        player = view._iplayer.children[0] if view._iplayer is not None else None
        if player is not None:  # nglview's own Play widget loops the frames once the view has loaded
            player.repeat = True
            view.observe(lambda change: setattr(player, "playing", bool(change["new"])), "loaded")
        old, self.view = self.view, view
        self.view_box.children = [view]
        if old is not None:
            old.close()

    @property
    def frequencies(self) -> dict[str, np.ndarray]:
        """Wavenumbers (cm⁻¹) of every result, by name."""
        return {name: r.frequencies for name, r in self.results.items()}
