"""Model families with fidelity heads, and the pieces they share.

Every family maps a :class:`Batch` to ``{fidelity: energies (eV)}``; forces come from autograd
(:func:`energy_and_forces`). Build one by name with :func:`build_model`, list them with
:func:`families`, save and load with :func:`save_model` / :func:`load_model` (safetensors + JSON).
"""

from .base import AtomisticModel, energy_and_forces, predict
from .batch import Batch
from .gmnn import GMNN
from .hipnn import HIPNN
from .hipnn_tensor import HIPNNTensor
from .linear import LinearModel
from .neighbors import Neighbourhood, scatter_sum
from .registry import FAMILIES, build_model, default_settings, families, get_family
from .serialization import ModelFileError, load_model, read_metadata, save_model

__all__ = [
    "FAMILIES",
    "GMNN",
    "HIPNN",
    "HIPNNTensor",
    "LinearModel",
    "AtomisticModel",
    "Batch",
    "ModelFileError",
    "Neighbourhood",
    "build_model",
    "default_settings",
    "energy_and_forces",
    "families",
    "get_family",
    "load_model",
    "predict",
    "read_metadata",
    "save_model",
    "scatter_sum",
]
