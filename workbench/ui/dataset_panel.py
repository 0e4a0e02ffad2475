"""The Dataset panel: choose data, see which labels exist, how energies are spread, and browse structures."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
from ase.data import chemical_symbols

from ..data import builtin as datasets
from ..data.dataset import Dataset
from ..viz.dataset import coverage_figure, energy_distribution_figure, highlight_points, labels_table
from ..viz.structure import replace_structure, structure_view
from .html import STYLE, error_box, table
from .labeling import LabelingControls
from .state import WorkbenchState

#: Extensions offered by the upload button (every format ``workbench.load`` reads by content).
UPLOAD_ACCEPT = ".h5,.hdf5,.hdf,.db,.sqlite,.npz,.xyz,.extxyz,.traj"
_COMPACT = {"description_width": "initial"}
#: Widths of the two figures (px): side by side in a wide notebook, one above the other in a narrow one.
COVERAGE_WIDTH, ENERGIES_WIDTH = 480, 720
_LABEL_FORMATS = {"energy (eV)": ",.4f", "energy − refs (eV)": "+.4f", "max |F| (eV/Å)": ".3f", "RMS F (eV/Å)": ".3f"}


def default_builtin() -> str | None:
    """The built-in dataset the panel opens with: ``ethanol`` when installed, else the first available."""
    names = datasets.names()
    if "ethanol" in names:
        return "ethanol"
    return names[0] if names else None


def parse_options(text: str) -> dict[str, str]:
    """Reader options typed as ``key=value`` pairs separated by spaces or commas."""
    options = {}
    for item in text.replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"options are key=value pairs (e.g. energy_unit=kcal/mol), got {item!r}")
        options[key] = value
    return options


def replace_figure(target: go.FigureWidget, figure: go.Figure) -> None:
    """Make a FigureWidget show ``figure`` (traces and layout) without creating a new widget."""
    with target.batch_update():
        target.data = []
        target.add_traces(list(figure.data))
        target.layout = figure.layout


class DatasetPanel(widgets.VBox):
    """Choose a built-in dataset, a file path or an upload; look at its label coverage, its energy
    distributions per level of theory, and each configuration in 3D with its labels.

    Works alone (``DatasetPanel()`` in a cell) or as a tab of :class:`~workbench.ui.Workbench`,
    where it shares ``state`` with the other panels.

    Parameters
    ----------
    state
        Shared state; a new one when not given.
    dataset
        Show this dataset instead of a built-in one.
    builtin
        Name of the built-in dataset to open (default: ``ethanol`` when installed, else the first).
    """

    def __init__(self, state: WorkbenchState | None = None, dataset: Dataset | None = None, builtin: str | None = None):
        super().__init__()
        self.add_class("wb-panel")
        self.add_class("wb-dataset-panel")
        self.state = state if state is not None else WorkbenchState()
        self._quiet = False
        self._shown_dataset: Dataset | None = None
        self._shown_formula: str | None = None

        # --- choosing data
        names = datasets.names()
        self.builtin = widgets.Dropdown(
            options=names, value=None, description="Built-in", style=_COMPACT, layout=widgets.Layout(width="250px")
        )
        self.path = widgets.Text(
            placeholder="or a file: data.h5, frames.extxyz, md17.db, sgdml.npz",
            description="File",
            style=_COMPACT,
            layout=widgets.Layout(width="360px"),
        )
        self.options = widgets.Text(
            placeholder="energy_unit=kcal/mol fidelity=pbe",
            description="Options",
            tooltip="reader options for the file, as key=value pairs",
            style=_COMPACT,
            layout=widgets.Layout(width="270px"),
        )
        self.load_button = widgets.Button(description="Load file", icon="folder-open", button_style="primary")
        self.upload = widgets.FileUpload(accept=UPLOAD_ACCEPT, multiple=False, description="Upload")
        self.error = widgets.HTML(layout=widgets.Layout(display="none"))
        self.error.add_class("wb-error-box")
        self.summary = widgets.HTML()
        self.summary.add_class("wb-summary-box")

        # --- figures
        self.coverage = go.FigureWidget()
        self.energies = go.FigureWidget()
        coverage_box = widgets.Box([self.coverage], layout=widgets.Layout(margin="0 12px 0 0"))
        energies_box = widgets.Box([self.energies])
        coverage_box.add_class("wb-coverage")
        energies_box.add_class("wb-energies")

        # --- structure browser
        self.configuration = widgets.IntSlider(
            min=0,
            max=0,
            description="Configuration",
            continuous_update=False,
            readout=False,
            layout=widgets.Layout(width="380px"),
        )
        self.configuration_text = widgets.IntText(layout=widgets.Layout(width="90px"))
        self.configuration_text.add_class("wb-configuration-text")
        widgets.link((self.configuration, "value"), (self.configuration_text, "value"))
        self.configuration_info = widgets.HTML()
        self.configuration_info.add_class("wb-configuration-info")
        self.labels = widgets.HTML()
        self.labels.add_class("wb-labels")
        self.view_box = widgets.Box(
            layout=widgets.Layout(width="442px", height="362px", border="1px solid #e4e7eb", margin="4px 0 0 0")
        )
        self.view_box.add_class("wb-structure")
        self.view = None

        #: QM labeling of all, a random or a farthest-point subset of the configurations at a chosen level.
        self.labeling = LabelingControls(self.state)

        self.children = [
            widgets.HTML(STYLE),
            widgets.HBox(
                [self.builtin, self.path, self.options, self.load_button, self.upload],
                layout=_row(grid_gap="8px", flex_flow="row wrap"),
            ),
            self.error,
            self.summary,
            widgets.HBox([coverage_box, energies_box], layout=_row(flex_flow="row wrap")),
            widgets.HTML(
                '<div class="wb-muted" style="font-size:13px; margin:0 0 4px 10px">Total energies at different '
                "levels differ by tens to hundreds of eV. Subtracting per-element reference energies, fitted at "
                "each level by least squares, puts all levels on one axis.</div>"
            ),
            widgets.HTML('<div class="wb-section">Structure browser</div>'),
            widgets.HBox(
                [
                    self.view_box,
                    widgets.VBox(
                        [
                            widgets.HBox([self.configuration, self.configuration_text]),
                            self.configuration_info,
                            self.labels,
                        ],
                        layout=widgets.Layout(padding="0 0 0 16px", flex="1 1 auto"),
                    ),
                ],
                layout=_row(),
            ),
            self.labeling,
        ]

        self.builtin.observe(self._on_builtin, "value")
        self.load_button.on_click(self._on_load_path)
        self.upload.observe(self._on_upload, "value")
        self.configuration.observe(self._on_slider, "value")
        self.state.observe(self._on_dataset, "dataset")
        self.state.observe(self._on_state_configuration, "configuration")

        if dataset is not None:
            self.state.set_dataset(dataset, "dataset given in Python")
        elif self.state.dataset is not None:
            self._on_dataset(None)
        else:
            name = builtin or default_builtin()
            if name is None:
                self.summary.value = "No built-in dataset is installed: type a file path or upload a file."
            else:
                self.builtin.value = name  # loads it through _on_builtin

    # ----------------------------------------------------------------------------- loading
    def load_builtin(self, name: str) -> bool:
        """Show a built-in dataset; on failure show the error and keep the current data. Returns success."""
        return self._load(lambda: datasets.builtin(name), f"builtin:{name}", f"load the built-in dataset {name!r}")

    def load_path(self, path: str | os.PathLike, **options) -> bool:
        """Show the dataset in a file (any format :func:`workbench.load` reads, with its reader
        ``options``, e.g. ``energy_unit="kcal/mol"``). Returns success."""
        from ..data.io import load

        path = Path(str(path).strip()).expanduser()
        return self._load(lambda: load(path, **options), path.name, f"load {path}")

    def _load(self, read, name: str, action: str) -> bool:
        self._set_busy(True)
        try:
            ds = read()
            if len(ds) == 0:
                raise ValueError("the file holds no configurations")
        except Exception as error:  # shown in the panel: the kernel and the current data stay as they were
            self.show_error(error, action)
            return False
        finally:
            self._set_busy(False)
        self.clear_error()
        self.state.set_dataset(ds, name)
        return True

    def _set_busy(self, busy: bool) -> None:
        for w in (self.builtin, self.path, self.load_button, self.upload):
            w.disabled = busy

    def show_error(self, error: BaseException, action: str) -> None:
        self.error.value = error_box(error, action)
        self.error.layout.display = None

    def clear_error(self) -> None:
        self.error.value = ""
        self.error.layout.display = "none"

    def _on_builtin(self, change) -> None:
        if self._quiet or change["new"] is None:
            return
        if not self.load_builtin(change["new"]):
            # Point the menu back at what is shown, so the menu never claims data that is not there.
            with self._quietly():
                shown = self.state.dataset_name.removeprefix("builtin:")
                self.builtin.value = shown if shown in self.builtin.options else None

    def _on_load_path(self, _button=None) -> None:
        if not self.path.value.strip():
            self.show_error(FileNotFoundError("type the path of a file first"), "load a file")
            return
        options = self._typed_options()
        if options is not None:
            self.load_path(self.path.value, **options)

    def _on_upload(self, change) -> None:
        files = change["new"]
        options = self._typed_options() if files else None
        if options is None:
            return
        upload = files[0]
        with tempfile.TemporaryDirectory(prefix="workbench-upload-") as folder:
            path = Path(folder) / Path(upload["name"]).name
            path.write_bytes(bytes(upload["content"]))
            self.load_path(path, **options)
        # Forget the upload, so choosing the same file again loads it again.
        with self._quietly():
            self.upload.value = ()

    def _typed_options(self) -> dict | None:
        """The reader options typed in the panel, or None (with the error shown) when they do not parse."""
        try:
            return parse_options(self.options.value)
        except ValueError as error:
            self.show_error(error, "read the options")
            return None

    # ----------------------------------------------------------------------------- showing
    def show_configuration(self, i: int) -> None:
        """Look at configuration ``i`` (shared with the other panels through the state)."""
        self.state.configuration = min(max(int(i), 0), len(self.state.dataset) - 1)

    def _on_dataset(self, _change) -> None:
        if self.state.dataset is None:
            return
        try:
            self._show_dataset()
        except Exception as error:  # a figure that cannot be drawn is reported, not lost in a log
            self.show_error(error, f"show {self.state.dataset_name}")

    def _show_dataset(self) -> None:
        ds, state = self.state.dataset, self.state
        self._shown_dataset = ds
        self.summary.value = _summary_html(ds, state.dataset_name)
        replace_figure(self.coverage, coverage_figure(ds).update_layout(width=COVERAGE_WIDTH))
        energies = energy_distribution_figure(ds, state.residuals)
        replace_figure(self.energies, energies.update_layout(width=ENERGIES_WIDTH))
        with self._quietly():
            self.configuration.max = max(len(ds) - 1, 0)
            builtin = state.dataset_name.removeprefix("builtin:")
            is_builtin = state.dataset_name.startswith("builtin:") and builtin in self.builtin.options
            self.builtin.value = builtin if is_builtin else None
        self._shown_formula = None
        self._show(min(state.configuration, len(ds) - 1))

    def _on_slider(self, change) -> None:
        if not self._quiet:
            self.show_configuration(change["new"])

    def _on_state_configuration(self, change) -> None:
        # While a new dataset is being set, its own observer shows the configuration.
        if self.state.dataset is self._shown_dataset:
            try:
                self._show(change["new"])
            except Exception as error:
                self.show_error(error, f"show configuration {change['new']}")

    def _show(self, i: int) -> None:
        """Show configuration ``i``: 3D view, facts, labels and its marker in the energy plot."""
        ds = self.state.dataset
        with self._quietly():
            self.configuration.value = i
        atoms = ds.to_atoms(i)
        info = ds.info.iloc[i]
        formula = str(info["formula"])
        if self.view is None:
            self.view = structure_view(atoms)
            self.view_box.children = [self.view]
        else:
            replace_structure(self.view, atoms, recenter=formula != self._shown_formula)
        self._shown_formula = formula
        source = str(info["source"]) if "source" in info else self.state.dataset_name
        where = f", entry {info['source_index']}" if "source_index" in info else ""
        self.configuration_info.value = (
            f'<div style="font-size:14px; margin:6px 0">Configuration <b>{i}</b> of {len(ds):,} · '
            f"<b>{formula}</b> · {int(info['n_atoms'])} atoms · "
            f'<span class="wb-muted">{source}{where}</span></div>'
        )
        self.labels.value = table(labels_table(ds, i, self.state.atomic_references), _LABEL_FORMATS)
        hx, hy = highlight_points(self.state.residuals, i, ds.fidelity_names)
        if self.energies.data:
            with self.energies.batch_update():
                marker = self.energies.data[-1]
                marker.x, marker.y = hx, hy
                marker.name = f"configuration {i}"
                marker.showlegend = True

    @contextmanager
    def _quietly(self):
        """Change widgets without their observers loading or showing anything."""
        self._quiet, before = True, self._quiet
        try:
            yield
        finally:
            self._quiet = before


def _row(**layout) -> widgets.Layout:
    return widgets.Layout(width="100%", align_items="flex-start", **layout)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _summary_html(ds: Dataset, name: str) -> str:
    elements = " ".join(chemical_symbols[z] for z in ds.elements)
    n_formulas = ds.info["formula"].nunique()
    formulas = _count(n_formulas, "composition")
    if n_formulas == 1:
        formulas = f"composition {ds.info['formula'].iloc[0]}"
    description = ""
    builtin = name.removeprefix("builtin:")
    if name.startswith("builtin:") and builtin in datasets.catalogue().index:
        description = f'<br><span class="wb-muted">{datasets.catalogue().loc[builtin, "description"]}</span>'
    return (
        f'<div class="wb-summary"><b>{name.removeprefix("builtin:")}</b>: {len(ds):,} configurations · '
        f"{formulas} · elements {elements} · {_count(len(ds.fidelity_names), 'level')} of theory{description}</div>"
    )
