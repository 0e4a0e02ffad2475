"""The Vibrations panel: harmonic frequencies of model heads beside a reference, each head's per-mode error, mean
and largest, and any normal mode animated in 3D with arrows and an amplitude slider.

Each model relaxes and diagonalises its Hessian (:func:`workbench.analysis.vibrations`). The reference is, by
default, the harmonic frequencies shipped with a built-in molecule (``wb.datasets.vibrational_reference``,
no quantum chemistry in the panel): each head against its own level when it is shipped, else against the most
accurate level shipped, and relaxed from that reference's minimum so that both describe the same conformer. Or the
reference is computed here at a level of theory (:func:`workbench.analysis.reference_vibrations`, kept on disk),
and every model and the reference relax from the configuration looked at. Errors per mode, their mean and the
largest come from :func:`workbench.analysis.frequency_errors`. The work runs in a background thread.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import analysis
from ..data import builtin as datasets
from ..data.fidelity import canonical_name
from ..jobs import Job
from ..viz.vibrations import frequency_figure, mode_view
from .common import COMPACT, ModelChooser, panel_task, replace_figure, row, section
from .html import STYLE, error_box, table
from .state import WorkbenchState

#: Choices of the reference: shipped frequencies, a level computed here, none.
REFERENCE_CHOICES = (("shipped frequencies", "shipped"), ("computed at level", "level"), ("none", "none"))


def shipped_level_for(fidelity: str | None, levels: list[str]) -> str:
    """The shipped reference level for a head at ``fidelity``: its own level when shipped, else the most accurate
    one shipped (the last of ``levels``: an MP2 head against MP2, a CCSD(T) or DFT head against MP2)."""
    if not levels:
        raise ValueError("no shipped levels to choose from")
    try:
        own = canonical_name(fidelity) if fidelity else None
    except ValueError:
        own = None
    return own if own in levels else levels[-1]


def shipped_references(atoms, fidelities: dict[str, str | None]) -> tuple[str, dict]:
    """The built-in molecule whose shipped frequencies fit ``atoms`` and, per head (label -> fidelity), its
    reference (:func:`shipped_level_for`), its atoms numbered as in ``atoms`` (one result per level, shared)."""
    name = datasets.vibrational_reference_for(atoms)
    if name is None:
        raise ValueError(
            f"no shipped vibrational reference for {atoms.get_chemical_formula()}; choose 'computed at level'"
        )
    levels = datasets.vibrational_levels(name)
    loaded: dict[str, analysis.VibrationsResult] = {}
    out = {}
    for label, fidelity in fidelities.items():
        level = shipped_level_for(fidelity, levels)
        if level not in loaded:
            ref = datasets.vibrational_reference(name, level)
            loaded[level] = analysis.reorder_atoms(ref, analysis.atom_correspondence(atoms, ref.atoms))
        out[label] = loaded[level]
    return name, out


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
        self.task: Job | None = None
        self.results: dict = {}
        self.table = None
        self.view = None
        self._quiet = False

        self.errors: dict[str, dict] = {}
        self.references: dict = {}
        self.models = ModelChooser(self.state, rows=4)
        self.reference = widgets.Dropdown(
            options=REFERENCE_CHOICES, value="shipped", description="Reference", style=COMPACT
        )
        self.reference.layout.width = "260px"
        self.reference.add_class("wb-reference-choice")
        self.reference_level = widgets.Text(value="gfn2-xtb", layout={"width": "150px"})
        self.reference_level.add_class("wb-reference-level")
        self.reference_note = widgets.HTML()
        self.reference_note.add_class("wb-reference-note")
        self.summary_html = widgets.HTML()
        self.summary_html.add_class("wb-frequency-errors")
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
            self.reference_note,
            self.status,
            self.error,
            self.summary_html,
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
        self.reference.observe(lambda _: self._on_reference(), "value")
        self.source.observe(self._on_source, "value")
        self.mode.observe(lambda _: self._quiet or self.animate(), "value")
        self.amplitude.observe(lambda _: self.animate(), "value")
        self.state.observe(self._on_configuration, "configuration")
        self.state.observe(self._on_dataset, "dataset")
        self._on_dataset(None)

    def _atoms(self):
        ds = self.state.dataset
        return None if ds is None else ds.to_atoms(min(self.state.configuration, len(ds) - 1))

    def _shipped(self) -> str | None:
        """The built-in molecule whose shipped frequencies fit the configuration looked at, or None."""
        atoms = self._atoms()
        return None if atoms is None else datasets.vibrational_reference_for(atoms)

    def _on_dataset(self, _change) -> None:
        # Shipped frequencies are the default reference wherever they fit the molecule; else one computed here.
        self.reference.value = "shipped" if self._shipped() is not None else "level"
        self._on_reference()

    def _on_reference(self) -> None:
        self._on_configuration(None)
        choice = self.reference.value
        self.reference_level.layout.display = "" if choice == "level" else "none"
        if choice == "shipped":
            name = self._shipped()
            if name is None:
                self.reference_note.value = (
                    '<div class="wb-muted">No shipped frequencies for this molecule: choose <i>computed at '
                    "level</i>.</div>"
                )
                return
            levels = datasets.vibrational_levels(name)
            self.reference_note.value = (
                f'<div class="wb-muted" style="font-size:13.5px">Reference: the harmonic frequencies shipped with '
                f"the built-in <b>{name}</b> at {', '.join(levels)}, each at its level's own minimum (no quantum "
                f"chemistry runs here). Each head is compared with its own level when it is shipped, else with "
                f"{levels[-1]}, and relaxes from that reference's minimum (the same conformer).</div>"
            )
        elif choice == "level":
            self.reference_note.value = (
                '<div class="wb-muted" style="font-size:13.5px">Reference: computed here at the level typed, from '
                "the configuration relaxed at that level (kept on disk: asking again costs nothing).</div>"
            )
        else:
            self.reference_note.value = ""

    def _on_configuration(self, _change) -> None:
        ds = self.state.dataset
        if ds is None:
            return
        i = min(self.state.configuration, len(ds) - 1)
        start = (
            f"its reference's minimum ({ds.info['formula'].iloc[i]}, atoms numbered as in configuration <b>{i}</b>)"
            if self.reference.value == "shipped"
            else f"configuration <b>{i}</b> ({ds.info['formula'].iloc[i]})"
        )
        self.configuration.value = (
            f'<div style="font-size:14px">Each model first relaxes from {start}, then computes its Hessian at its own '
            "minimum.</div>"
        )

    def on_show(self) -> None:
        """Fit the 3D view to its box (called by the app when the tab is shown: a view drawn while hidden has no
        size)."""
        if self.view is not None:
            self.view.handle_resize()

    # ----------------------------------------------------------------------------- computing
    def compute(self, wait: bool = False) -> Job | None:
        """Frequencies of the chosen heads at the shared configuration, against the reference chosen: the shipped
        frequencies (read, not computed), a level computed here, or none."""
        self.error.value = ""
        choice = self.reference.value
        try:
            members = self.models.predictors()
            atoms = self._atoms()
            if atoms is None:
                raise ValueError("load a dataset first (Dataset tab)")
            level = self.reference_level.value.strip() if choice == "level" else None
            if choice == "level" and not level:
                raise ValueError("type the level of theory of the reference, e.g. gfn2-xtb")
            shipped = shipped_references(atoms, {p.label: p.fidelity for p in members}) if choice == "shipped" else None
        except (ValueError, KeyError) as error:
            self.error.value = error_box(error, "compute vibrations")
            return None
        ref = f" and {level}" if level else ""
        what = f"Relaxing and computing Hessians of {len(members)} model(s){ref}…"

        def work():
            if shipped is not None:
                # Each head starts from its reference's minimum, so that both describe the same conformer.
                return {p.label: analysis.vibrations(p, shipped[1][p.label].atoms) for p in members}, shipped[1]
            results = {p.label: analysis.vibrations(p, atoms) for p in members}
            reference = analysis.reference_vibrations(atoms, level) if level else None
            return results, dict.fromkeys(results, reference) if reference is not None else {}

        def done(out):
            results, references = out
            self.references = references
            distinct = list({id(r): r for r in references.values()}.values())
            if len(distinct) > 1:
                self.table = analysis.frequency_table(results, references)
            else:
                self.table = analysis.frequency_table(results, distinct[0] if distinct else None)
            self.errors = {name: analysis.frequency_errors(results[name], references[name]) for name in references}
            named = {f"reference: {r.name}": r for r in distinct}
            self.results = {**named, **results}
            worst = max(r.max_force for r in results.values())
            self.status.value = (
                f'<div class="wb-muted">Largest force left after relaxing the models: {worst:.2g} eV/Å.</div>'
            )
            heads = {p.label: p.fidelity for p in members}
            self.summary_html.value = _errors_html(self.errors, references, heads, choice)
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


def _errors_html(errors: dict[str, dict], references: dict, heads: dict[str, str | None], choice: str) -> str:
    """Per head: its reference (and whether that is another level than the head's), MAE and largest error."""
    if not errors:
        return ""
    rows = []
    notes = []
    for name, e in errors.items():
        ref = references[name]
        worst = e["table"].iloc[e["worst_mode"]]
        where = f"{worst['reference']:.0f} cm⁻¹" + (f" ({worst['character']})" if worst["character"] else "")
        source = "shipped" if choice == "shipped" else "computed here"
        try:
            same = heads.get(name) is not None and canonical_name(heads[name]) == ref.name
        except ValueError:
            same = False
        if not same:
            head = heads.get(name) or "unknown level"
            level = "" if head in name else f" ({html.escape(head)})"
            notes.append(f"<b>{html.escape(name)}</b>{level} is compared with {html.escape(ref.name)}")
        rows.append(
            {
                "model": name,
                "reference": f"{ref.name} ({source}" + (")" if same else ", another level than the head)"),
                "MAE (cm⁻¹)": e["mae"],
                "largest |error| (cm⁻¹)": e["max_abs"],
                "at": where,
            }
        )
    frame = pd.DataFrame(rows).set_index("model")
    why = "the most accurate level shipped with frequencies" if choice == "shipped" else "the level typed"
    note = (
        f'<div class="wb-muted" style="font-size:13px">A different level than the head: {"; ".join(notes)}, {why}.'
        "</div>"
        if notes
        else ""
    )
    return (
        '<div class="wb-section">Frequency errors <span class="wb-muted" style="font-size:13px; font-weight:400">'
        "cm⁻¹, each head against its reference, modes paired by shape</span></div>"
        + table(frame, {"MAE (cm⁻¹)": ".1f", "largest |error| (cm⁻¹)": ".1f"})
        + note
    )
