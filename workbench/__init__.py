"""workbench: a Jupyter workbench for multi-fidelity machine-learning interatomic potentials.

Internal units are eV and Å (forces eV/Å).
"""

from . import datasets
from .data import Dataset, DatasetError, Fidelity
from .data.io import load

__version__ = "0.1.0"

__all__ = ["Dataset", "DatasetError", "Fidelity", "datasets", "load", "Workbench", "__version__"]


def __getattr__(name):
    # The UI pulls in ipywidgets, plotly and nglview: import it only when asked for.
    if name == "Workbench":
        from .ui import Workbench

        return Workbench
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
