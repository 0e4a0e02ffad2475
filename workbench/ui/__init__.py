"""The workbench's widgets: panels (ipywidgets, plotly, nglview) and the Workbench app that holds them.

Panels are thin: they keep state and layout and call the same public functions a script would
(:mod:`workbench.viz` for figures, :mod:`workbench.data` for data, :mod:`workbench.training`,
:mod:`workbench.analysis` and :mod:`workbench.qm` for the work).
"""

from .app import PANELS, Workbench
from .compare_panel import ComparePanel
from .dataset_panel import DatasetPanel
from .improve_panel import ImprovePanel
from .labeling import LabelingControls
from .pes_panel import PESPanel
from .state import WorkbenchState
from .training_panel import TrainingPanel
from .vibrations_panel import VibrationsPanel

__all__ = [
    "PANELS",
    "ComparePanel",
    "DatasetPanel",
    "ImprovePanel",
    "LabelingControls",
    "PESPanel",
    "TrainingPanel",
    "VibrationsPanel",
    "Workbench",
    "WorkbenchState",
]
