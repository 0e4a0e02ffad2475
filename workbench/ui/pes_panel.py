"""The PES panel: scan a bond, an angle or a dihedral (or two of them, as a map) with trained models and their
heads, against reference points from a level of theory computed on demand (and kept on disk), with the
smoothness scores of every curve beside it.

Atoms are picked from lists or by clicking them in the 3D view. The scan runs in a background thread
(:func:`workbench.analysis.scan`); scores come from :func:`workbench.analysis.smoothness`.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from ase import Atoms

from .. import analysis
from ..analysis.coordinates import KINDS, bond_graph
from ..jobs import Job
from ..viz.pes import scan_contour_figure, scan_figure
from ..viz.structure import structure_view
from .common import COMPACT, ModelChooser, fast_mode, panel_task, replace_figure, row, section
from .html import STYLE, error_box, table
from .state import WorkbenchState

SCORES = {
    "rmse": ".3g",
    "max_deviation": ".3g",
    "n_extrema": ".0f",
    "n_extrema_reference": ".0f",
    "spurious_extrema": ".0f",
    "roughness_ratio": ".3g",
}


def bonded_paths(atoms: Atoms, length: int) -> list[tuple[int, ...]]:
    """Chains of ``length`` bonded atoms (2: bonds, 3: angles, 4: dihedrals), those with heavy atoms in the middle
    first (a C-C-O-H dihedral turns a group; an H-C-H angle is rarely what a lesson scans)."""
    adj = bond_graph(atoms)
    paths: list[tuple[int, ...]] = []

    def grow(path):
        if len(path) == length:
            if path[0] < path[-1]:  # each chain once, not also backwards
                paths.append(tuple(path))
            return
        for nxt in np.flatnonzero(adj[path[-1]]):
            if int(nxt) not in path:
                grow([*path, int(nxt)])

    for start in range(len(atoms)):
        grow([start])
    heavy = atoms.numbers > 1
    return sorted(paths, key=lambda p: (-int(heavy[list(p[1:-1])].sum()), -int(heavy[list(p)].sum()), p))


def default_values(kind: str, atoms: Atoms, indices: tuple[int, ...]) -> tuple[float, float]:
    """A sensible scan range (Å or degrees) around the coordinate's value in ``atoms``."""
    if kind == "bond":
        d = float(atoms.get_distance(*indices))
        return round(0.8 * d, 3), round(1.6 * d, 3)
    if kind == "angle":
        a = float(atoms.get_angle(*indices))
        return round(max(a - 40, 1), 1), round(min(a + 40, 179), 1)
    return -180.0, 180.0


def grid(kind: str, start: float, stop: float, points: int) -> np.ndarray:
    """The values to visit; a dihedral over a full turn leaves out the end (it is the start again), which lets the
    analysis treat the scan as periodic."""
    if kind == "dihedral" and abs(abs(stop - start) - 360.0) < 1e-9:
        return start + (stop - start) * np.arange(points) / points
    return np.linspace(start, stop, points)


class CoordinateChooser(widgets.HBox):
    """Kind, atoms and range of one scan coordinate."""

    def __init__(self, kind: str = "dihedral", points: int = 24):
        self.kind = widgets.ToggleButtons(options=["bond", "angle", "dihedral"], value=kind)
        self.kind.style.button_width = "84px"
        self.atoms = [widgets.Dropdown(layout={"width": "86px"}) for _ in range(4)]
        self.start = widgets.FloatText(description="from", style=COMPACT, layout={"width": "130px"})
        self.stop = widgets.FloatText(description="to", style=COMPACT, layout={"width": "115px"})
        self.points = widgets.BoundedIntText(points, min=3, max=400, description="points", style=COMPACT)
        self.points.layout.width = "120px"
        self.molecule: Atoms | None = None
        super().__init__(
            [self.kind, *self.atoms, self.start, self.stop, self.points],
            layout={"flex_flow": "row wrap", "grid_gap": "4px 8px", "align_items": "center"},
        )
        self.kind.observe(self._on_kind, "value")
        for a in self.atoms:
            a.observe(self._on_atoms, "value")

    @property
    def indices(self) -> tuple[int, ...]:
        n = KINDS[self.kind.value]
        return tuple(int(a.value) for a in self.atoms[:n])

    def set_molecule(self, atoms: Atoms) -> None:
        self.molecule = atoms
        options = [(f"{i} {s}", i) for i, s in enumerate(atoms.get_chemical_symbols())]
        for a in self.atoms:
            a.options = options
        self._on_kind(None)

    def set_atoms(self, indices) -> None:
        for box, i in zip(self.atoms, indices, strict=False):
            box.value = int(i)
        self._on_atoms(None)

    def _on_kind(self, _change) -> None:
        n = KINDS[self.kind.value]
        for k, a in enumerate(self.atoms):
            a.layout.display = None if k < n else "none"
        if self.molecule is not None:
            paths = bonded_paths(self.molecule, n)
            self.set_atoms(paths[0] if paths else range(n))

    def _on_atoms(self, _change) -> None:
        if self.molecule is None or any(a.value is None for a in self.atoms[: KINDS[self.kind.value]]):
            return
        if len(set(self.indices)) < len(self.indices):
            return
        self.start.value, self.stop.value = default_values(self.kind.value, self.molecule, self.indices)

    def spec(self) -> dict:
        """``{kind: atoms, "values": grid}`` for :func:`workbench.analysis.scan`."""
        if len(set(self.indices)) < len(self.indices):
            raise ValueError(f"the atoms of a {self.kind.value} must be different, got {self.indices}")
        values = grid(self.kind.value, self.start.value, self.stop.value, self.points.value)
        return {self.kind.value: self.indices, "values": values}


class PESPanel(widgets.VBox):
    """Scan the potential energy along internal coordinates of the shared configuration.

    ``scan()`` runs :func:`workbench.analysis.scan` in a background thread (``panel.task.wait()`` follows it);
    the result is kept as ``panel.result`` and its scores as ``panel.scores``.
    """

    def __init__(self, state: WorkbenchState | None = None):
        super().__init__()
        self.add_class("wb-panel")
        self.add_class("wb-pes-panel")
        self.state = state if state is not None else WorkbenchState.session()
        self.task: Job | None = None
        self.result = None
        self.scores = None
        self._picks = 0

        self.models = ModelChooser(self.state)
        self.configuration = widgets.HTML()
        self.first = CoordinateChooser("dihedral", 12 if fast_mode() else 36)
        self.two_d = widgets.Checkbox(value=False, description="2D map: a second coordinate", indent=False)
        self.second = CoordinateChooser("bond", 5 if fast_mode() else 15)
        self.second.layout.display = "none"
        self.reference = widgets.Checkbox(value=True, description="reference QM at", indent=False)
        self.reference.layout.width = "140px"
        self.reference_level = widgets.Text(value="gfn2-xtb", layout={"width": "160px"})
        self.reference_level.add_class("wb-reference-level")
        self.reference_every = widgets.BoundedIntText(1, min=1, max=50, description="every", style=COMPACT)
        self.reference_every.layout.width = "110px"
        self.units = widgets.ToggleButtons(options=["eV", "kcal/mol"], value="eV", style={"button_width": "80px"})
        self.scan_button = widgets.Button(description="Scan", icon="line-chart", button_style="primary")
        self.scan_button.add_class("wb-scan")
        self.status = widgets.HTML()
        self.error = widgets.HTML()
        self.error.add_class("wb-error-box")
        self.figure = go.FigureWidget()
        figure_box = widgets.Box([self.figure])
        figure_box.add_class("wb-pes-figure")
        self.scores_html = widgets.HTML(layout={"flex": "1 1 0", "min_width": "420px", "padding": "0 0 0 8px"})
        self.scores_html.add_class("wb-smoothness")
        self.view_box = widgets.Box(layout={"width": "362px", "height": "302px", "border": "1px solid #e4e7eb"})
        self.view_box.add_class("wb-pes-view")
        self.view = None

        self.children = [
            widgets.HTML(STYLE),
            widgets.HBox(
                [
                    widgets.VBox(
                        [
                            self.models,
                            self.configuration,
                            section("Coordinate", "choose atoms from the lists, or click them in the 3D view"),
                            self.first,
                            self.two_d,
                            self.second,
                            row([self.reference, self.reference_level, self.reference_every]),
                            row([self.units, self.scan_button]),
                            self.status,
                        ],
                        layout={"flex": "1 1 0", "min_width": "0", "padding": "0 12px 0 0"},
                    ),
                    self.view_box,
                ],
                layout={"width": "100%", "align_items": "flex-start"},
            ),
            self.error,
            widgets.HBox(
                [figure_box, self.scores_html],
                layout={"width": "100%", "align_items": "flex-start", "flex_flow": "row wrap"},
            ),
        ]
        self.two_d.observe(self._on_two_d, "value")
        self.scan_button.on_click(lambda _: self.scan())
        self.units.observe(lambda _: self._draw(), "value")
        self.state.observe(self._on_configuration, "configuration")
        self.state.observe(self._on_configuration, "dataset")
        self._on_configuration(None)

    def on_show(self) -> None:
        """Fit the 3D view to its box (called by the app when the tab is shown: a view drawn while hidden has no
        size)."""
        if self.view is not None:
            self.view.handle_resize()

    # ----------------------------------------------------------------------------- choices
    def _on_configuration(self, _change) -> None:
        ds = self.state.dataset
        if ds is None:
            return
        i = min(self.state.configuration, len(ds) - 1)
        atoms = ds.to_atoms(i)
        same = self.first.molecule is not None and np.array_equal(self.first.molecule.numbers, atoms.numbers)
        keep = (self.first.kind.value, self.first.indices, self.second.kind.value, self.second.indices) if same else ()
        self.first.set_molecule(atoms)
        self.second.set_molecule(atoms)
        if same:  # the same molecule in another geometry: keep the chosen atoms
            self.first.kind.value, self.second.kind.value = keep[0], keep[2]
            self.first.set_atoms(keep[1])
            self.second.set_atoms(keep[3])
        self.configuration.value = (
            f'<div style="font-size:14px; margin:6px 0">Scans start from configuration <b>{i}</b> '
            f"({ds.info['formula'].iloc[i]}) of the dataset: choose another in the Dataset tab or by clicking a point "
            "in Compare.</div>"
        )
        self._show_molecule(atoms)

    def _show_molecule(self, atoms: Atoms) -> None:
        view = structure_view(atoms, width="360px", height="300px")
        view.observe(self._on_pick, "picked")
        old, self.view = self.view, view
        self.view_box.children = [view]
        if old is not None:
            old.close()

    def _on_pick(self, change) -> None:
        """A click on an atom in the 3D view fills the next atom slot of the first coordinate."""
        atom = (change["new"] or {}).get("atom1") or {}
        if "index" not in atom:
            return
        n = KINDS[self.first.kind.value]
        slot = self._picks % n
        self.first.atoms[slot].value = int(atom["index"])
        self._picks += 1
        self.first._on_atoms(None)

    def _on_two_d(self, _change) -> None:
        self.second.layout.display = None if self.two_d.value else "none"

    # ----------------------------------------------------------------------------- scanning
    def scan(self, wait: bool = False) -> Job | None:
        """Scan with the panel's choices (background thread; ``wait=True`` blocks until drawn)."""
        self.error.value = ""
        try:
            members = self.models.predictors()
            first = self.first.spec()
            values = first.pop("values")
            kwargs = dict(first)
            if self.two_d.value:
                kwargs["second"] = self.second.spec()
            if self.reference.value:
                kwargs.update(reference=self.reference_level.value.strip(), reference_every=self.reference_every.value)
            atoms = self.first.molecule
            if atoms is None:
                raise ValueError("load a dataset first (Dataset tab)")
        except (ValueError, KeyError) as error:
            self.error.value = error_box(error, "scan")
            return None
        n_points = len(values) * (len(kwargs["second"]["values"]) if "second" in kwargs else 1)
        ref = f", reference {kwargs['reference']}" if "reference" in kwargs else ""
        what = f"Scanning {n_points} geometries with {len(members)} curve(s){ref}…"

        def work():
            return analysis.scan(members, atoms, values, **kwargs)

        def done(result):
            self.result = result
            cached = ""
            if result.reference is not None:
                n_ref = int(np.isfinite(result.reference).sum())
                cached = f"; reference: {n_ref} points, {n_ref - result.reference_computed} from the cache"
            self.status.value = f'<div class="wb-muted">{n_points} geometries{cached}.</div>'
            self._draw()

        self.task = panel_task(self.scan_button, self.status, self.error, work, done, "scan", what, wait)
        return self.task

    def _draw(self) -> None:
        if self.result is None:
            return
        units = self.units.value
        try:
            if len(self.result.coordinates) == 1:
                figure = scan_figure(self.result, units=units)
            else:
                figure = scan_contour_figure(self.result, units=units)
            width = 600 if len(self.result.coordinates) == 1 else 240 + 330 * (len(self.result.members) + 1)
            replace_figure(self.figure, figure.update_layout(width=width))
            self.scores = analysis.smoothness(self.result, units=units)
            shown = self.scores[[c for c in SCORES if c in self.scores.columns]].dropna(axis=1, how="all")
            self.scores_html.value = _scores_html(shown, units, self.result.reference is not None)
        except Exception as error:
            self.error.value = error_box(error, "draw the scan")


def _scores_html(scores, units: str, has_reference: bool) -> str:
    names = {
        "rmse": f"RMSE ({units})",
        "max_deviation": f"max dev. ({units})",
        "n_extrema": "extrema",
        "n_extrema_reference": "extrema (ref.)",
        "spurious_extrema": "spurious",
        "roughness_ratio": "roughness ÷ ref.",
    }
    shown = scores.rename(columns=names)
    formats = {names[k]: v for k, v in SCORES.items()}
    note = (
        "<b>spurious</b>: minima and maxima the reference does not have (wiggles). <b>roughness ÷ ref.</b>: "
        "the curve's integrated squared curvature over the reference's; 1 is as smooth as the reference."
        if has_reference
        else "Tick <b>reference QM</b> to score the curves against a level of theory."
    )
    return (
        '<div class="wb-section">Smoothness</div>'
        + table(shown, formats)
        + f'<div class="wb-muted" style="font-size:12.5px; max-width:420px; margin-top:6px">{note}</div>'
    )
