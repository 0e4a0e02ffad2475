"""The Workbench app: the panels as tabs on one shared state."""

from __future__ import annotations

import ipywidgets as widgets

from ..data.dataset import Dataset
from .dataset_panel import DatasetPanel
from .html import STYLE
from .state import WorkbenchState

#: The tabs, in order: (title, panel class). A panel class takes the shared state as its first
#: argument; each later panel (training, comparison, PES scans, vibrations) is one more entry.
PANELS: list[tuple[str, type]] = [("Dataset", DatasetPanel)]


class Workbench(widgets.VBox):
    """The multi-fidelity MLIP workbench: ``wb.Workbench()`` in a notebook cell.

    Parameters
    ----------
    dataset
        Open on this dataset; by default the built-in ``ethanol`` (or the first built-in installed).
    state
        Share state with panels shown elsewhere.

    Attributes
    ----------
    state
        The :class:`~workbench.ui.state.WorkbenchState` all tabs share.
    panels
        Title → panel, e.g. ``app.panels["Dataset"]``.
    """

    def __init__(self, dataset: Dataset | None = None, state: WorkbenchState | None = None):
        super().__init__(layout=widgets.Layout(max_width="1280px"))
        self.add_class("wb-app")
        self.state = state if state is not None else WorkbenchState()
        self.panels: dict[str, widgets.Widget] = {}
        for title, panel in PANELS:
            if title == "Dataset":
                self.panels[title] = panel(self.state, dataset=dataset)
            else:
                self.panels[title] = panel(self.state)
        self.tabs = widgets.Tab(children=list(self.panels.values()), titles=list(self.panels))
        self.tabs.add_class("wb-tabs")
        header = widgets.HTML(
            STYLE + '<div class="wb-title">Multi-fidelity MLIP workbench</div>'
            '<div class="wb-subtitle">Data labelled at several levels of theory: which labels exist, '
            "how the energies are spread, and every structure in 3D.</div>"
        )
        self.children = [header, self.tabs]
