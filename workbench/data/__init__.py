"""Data layer: fidelities, the Dataset, units, atomic references and one reader per file format."""

from .dataset import Dataset, Labels, concatenate, split_indices
from .errors import DatasetError
from .fidelity import Fidelity, canonical_fidelities, canonical_name

__all__ = [
    "Dataset",
    "DatasetError",
    "Fidelity",
    "Labels",
    "canonical_fidelities",
    "canonical_name",
    "concatenate",
    "split_indices",
]
