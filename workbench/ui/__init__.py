"""The workbench's widgets: panels (ipywidgets, plotly, nglview) and the Workbench app that holds them.

Panels are thin: they keep state and layout and call the same public functions a script would
(:mod:`workbench.viz` for figures, :mod:`workbench.data` for data).
"""

from .app import PANELS, Workbench
from .dataset_panel import DatasetPanel
from .state import WorkbenchState

__all__ = ["PANELS", "DatasetPanel", "Workbench", "WorkbenchState"]
