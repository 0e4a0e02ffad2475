"""workbench: a Jupyter workbench for multi-fidelity machine-learning interatomic potentials.

>>> import workbench as wb
>>> ds = wb.load("ani1x_sample.h5")            # or wb.datasets.builtin("ethanol")
>>> job = wb.train(ds, family="hipnn", recipe="multifidelity")
>>> model = job.result()
>>> wb.analysis.metrics([model], ds)

Internal units are eV and Å (forces eV/Å).
"""

from importlib import import_module

from .data import Dataset, DatasetError, Fidelity
from .data import builtin as datasets
from .data.io import load

__version__ = "0.1.0"

# Entry points whose modules pull in torch, PySCF or the widget stack load on first use, so
# `import workbench` stays quick for a script that only reads data.
_LAZY = {
    "train": ("workbench.training", "train"),
    "TrainedModel": ("workbench.training", "TrainedModel"),
    "label": ("workbench.qm", "label"),
    "improve": ("workbench.active", "improve"),
    "active": ("workbench.active", None),
    "analysis": ("workbench.analysis", None),
    "models": ("workbench.models", None),
    "Workbench": ("workbench.ui", "Workbench"),
}

__all__ = ["Dataset", "DatasetError", "Fidelity", "datasets", "load", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = import_module(module)
        return value if attribute is None else getattr(value, attribute)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
