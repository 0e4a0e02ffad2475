"""Registry of model families: name -> class, default settings and a one-line description (for the UI)."""

from __future__ import annotations

import inspect

import pandas as pd

from .base import AtomisticModel
from .gmnn import GMNN
from .hipnn import HIPNN
from .hipnn_tensor import HIPNNTensor
from .linear import LinearModel

FAMILIES: dict[str, type[AtomisticModel]] = {cls.family: cls for cls in (HIPNN, HIPNNTensor, GMNN, LinearModel)}


def get_family(name: str) -> type[AtomisticModel]:
    """The model class of a family name; KeyError lists the known ones."""
    key = name.strip().lower().replace("-", "_")
    if key not in FAMILIES:
        raise KeyError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[key]


def default_settings(name: str) -> dict:
    """The constructor defaults of a family (``elements`` has no default and is left out)."""
    params = inspect.signature(get_family(name).__init__).parameters
    out = {}
    for key, p in params.items():
        if key == "self" or p.default is inspect.Parameter.empty:
            continue
        out[key] = list(p.default) if isinstance(p.default, tuple) else p.default
    return out


def build_model(family: str, elements, **settings) -> AtomisticModel:
    """A fresh model of ``family`` for ``elements`` (atomic numbers) with settings overriding the defaults."""
    return get_family(family)(elements=elements, **settings)


def families() -> pd.DataFrame:
    """One row per family: name, description and default settings."""
    rows = [
        {"family": name, "description": cls.description, "defaults": default_settings(name)}
        for name, cls in FAMILIES.items()
    ]
    return pd.DataFrame(rows).set_index("family")
