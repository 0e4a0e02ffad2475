"""The Workbench app: the panels as tabs on one shared state."""

from __future__ import annotations

import ipywidgets as widgets

from ..data.dataset import Dataset
from .compare_panel import ComparePanel
from .dataset_panel import DatasetPanel
from .html import STYLE
from .improve_panel import ImprovePanel
from .pes_panel import PESPanel
from .state import WorkbenchState
from .training_panel import TrainingPanel
from .vibrations_panel import VibrationsPanel

#: The tabs, in order: (title, panel class). A panel class takes the shared state as its first argument.
PANELS: list[tuple[str, type]] = [
    ("Dataset", DatasetPanel),
    ("Training", TrainingPanel),
    ("Compare", ComparePanel),
    ("PES", PESPanel),
    ("Vibrations", VibrationsPanel),
    ("Improve", ImprovePanel),
]


class Workbench(widgets.VBox):
    """The multi-fidelity MLIP workbench: ``wb.Workbench()`` in a notebook cell.

    Parameters
    ----------
    dataset
        Open on this dataset; by default the built-in ``ethanol`` (or the first built-in installed).
    state
        Share state with panels shown elsewhere. By default the session's state
        (:meth:`WorkbenchState.session`): running the cell again keeps the data and every training run.

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
        self.state = state if state is not None else WorkbenchState.session()
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
            '<div class="wb-subtitle">Data labelled at several levels of theory → train potentials on them → '
            "compare the models → scan their energy surfaces → see how they vibrate → buy labels where they are unsure."
            "</div>"
        )
        self.children = [header, self.tabs]
        self.tabs.observe(self._on_tab, "selected_index")

    def _on_tab(self, change) -> None:
        # A 3D view drawn while its tab was hidden has no size yet: the panel fits its views when shown.
        if change["new"] is None:
            return
        panel = self.tabs.children[change["new"]]
        if hasattr(panel, "on_show"):
            panel.on_show()
