"""Built-in datasets: ``workbench.datasets.builtin("ethanol")``.

Each entry is a file inside the package (``workbench/data/builtin/``) with the options its reader
needs, a description, and where it came from (``SAMPLES.md`` and ``PROVENANCE-*.md`` beside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import pandas as pd

from .data.dataset import Dataset


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    file: str
    description: str
    options: dict = field(default_factory=dict)

    @property
    def path(self):
        return resources.files("workbench.data.builtin") / self.file

    @property
    def available(self) -> bool:
        return self.path.is_file()


_REGISTRY = [
    BuiltinDataset(
        "ethanol",
        "ethanol.h5",
        "ethanol MD at 500 K: GFN2-xTB energies+forces, MP2/cc-pVDZ energies+forces on a subset, "
        "CCSD(T)/cc-pVDZ energies on a smaller subset (made by workbench.qm)",
    ),
    BuiltinDataset(
        "malonaldehyde",
        "malonaldehyde.h5",
        "malonaldehyde (proton transfer): GFN2-xTB, MP2/cc-pVDZ and CCSD(T)/cc-pVDZ (made by workbench.qm)",
    ),
    BuiltinDataset(
        "ani1x-sample",
        "ani1x_sample.hdf5",
        "8 ANI-1x/ANI-1ccx conformations: ωB97x (two bases), HF, MP2, DLPNO-CCSD(T), CCSD(T)*/CBS",
    ),
    BuiltinDataset(
        "md17-ethanol-sample",
        "md17_ethanol_sample.db",
        "20 MD17 ethanol frames, PBE+vdW-TS energies and forces",
        {"fidelity": "pbe+vdw-ts", "energy_unit": "kcal/mol", "force_unit": "kcal/mol/angstrom"},
    ),
]


def catalogue() -> pd.DataFrame:
    """The built-in datasets: name, description, whether the file is installed."""
    return pd.DataFrame(
        [{"name": d.name, "description": d.description, "available": d.available} for d in _REGISTRY]
    ).set_index("name")


def names(available_only: bool = True) -> list[str]:
    """Names accepted by :func:`builtin`."""
    return [d.name for d in _REGISTRY if d.available or not available_only]


def builtin(name: str) -> Dataset:
    """Load a shipped dataset by name (see :func:`catalogue`); energies in eV, forces in eV/Å."""
    from .data.io import load

    entry = next((d for d in _REGISTRY if d.name == name), None)
    if entry is None:
        raise KeyError(f"no built-in dataset {name!r}; choose from {names(available_only=False)}")
    if not entry.available:
        raise FileNotFoundError(
            f"built-in dataset {name!r} is not installed ({entry.file} missing); available: {names()}"
        )
    with resources.as_file(entry.path) as path:
        ds = load(path, **entry.options)
    ds.info["source"] = pd.Categorical([f"builtin:{name}"] * len(ds))
    return ds
