"""Built-in datasets: ``wb.datasets.builtin("ethanol")``.

Each entry is a file inside the package (``workbench/data/builtin/``) with the options its reader
needs, a description, and where it came from (``SAMPLES.md`` and ``PROVENANCE-*.md`` beside it).
The sets made by :mod:`workbench.qm` also ship a vibrational reference: harmonic frequencies of the
molecule at their levels with gradients (:func:`vibrational_reference`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd
from ase import Atoms

from ...harmonic import VibrationsResult, harmonic_analysis
from ..dataset import Dataset
from ..fidelity import canonical_name
from ..io import load


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    file: str
    description: str
    options: dict = field(default_factory=dict)
    #: File of the shipped vibrational reference (``<name>-vibrations.json``), or "" when there is none.
    vibrations: str = ""

    @property
    def path(self):
        return resources.files("workbench.data.builtin") / self.file

    @property
    def vibrations_path(self):
        return resources.files("workbench.data.builtin") / self.vibrations if self.vibrations else None

    @property
    def available(self) -> bool:
        return self.path.is_file()


_REGISTRY = [
    BuiltinDataset(
        "ethanol",
        "ethanol.h5",
        "ethanol MD at 500 K: GFN2-xTB energies+forces, MP2/cc-pVDZ energies+forces on a subset, "
        "CCSD(T)/cc-pVDZ energies on a smaller subset (made by workbench.qm)",
        vibrations="ethanol-vibrations.json",
    ),
    BuiltinDataset(
        "malonaldehyde",
        "malonaldehyde.h5",
        "malonaldehyde (proton transfer): GFN2-xTB, MP2/cc-pVDZ and CCSD(T)/cc-pVDZ (made by workbench.qm)",
        vibrations="malonaldehyde-vibrations.json",
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


# --------------------------------------------------------------------------------------------- vibrations
def _entry(name: str) -> BuiltinDataset:
    entry = next((d for d in _REGISTRY if d.name == name), None)
    if entry is None:
        raise KeyError(f"no built-in dataset {name!r}; choose from {names(available_only=False)}")
    return entry


#: Names the layout of the vibrational reference files (written by
#: :func:`workbench.qm.recipe.make_vibrational_reference`), for readers to check.
VIBRATIONS_FORMAT = "workbench-vibrational-reference/1"


def _vibrations_data(name: str) -> dict | None:
    """The parsed vibrational reference file of ``name``, or None when it ships none."""
    path = _entry(name).vibrations_path
    if path is None or not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != VIBRATIONS_FORMAT:
        raise ValueError(f"{path}: expected format {VIBRATIONS_FORMAT!r}, found {data.get('format')!r}")
    return data


def vibrational_levels(name: str) -> list[str]:
    """Levels (fidelity names, cheapest first) at which the built-in molecule ``name`` ships harmonic frequencies;
    ``[]`` when it ships none."""
    data = _vibrations_data(name)
    return [] if data is None else list(data["levels"])


def vibrational_reference(name: str, level: str | None = None) -> VibrationsResult:
    """Shipped harmonic frequencies of the built-in molecule ``name`` at ``level`` (None: the most accurate one
    shipped), at that level's own minimum; see :func:`vibrational_levels`.

    No quantum chemistry runs: the Hessian (eV/Å^2) and the relaxed geometry (Å) are read from the file and
    diagonalised, giving frequencies in cm^-1 (checked against the stored ones) and normal modes. The result's
    ``provenance`` holds the level with all its settings, program versions, the largest force left (eV/Å), the
    optimizer and Hessian settings, the wall time (s) and the date. Made by
    :func:`workbench.qm.recipe.make_vibrational_reference`.
    """
    data = _vibrations_data(name)
    if data is None:
        with_reference = [d.name for d in _REGISTRY if d.vibrations and _vibrations_data(d.name) is not None]
        raise FileNotFoundError(f"built-in {name!r} ships no vibrational reference; those that do: {with_reference}")
    levels = list(data["levels"])
    key = levels[-1] if level is None else canonical_name(level)
    if key not in data["levels"]:
        raise KeyError(f"no shipped frequencies of {name!r} at {level!r}; shipped levels: {levels}")
    entry = data["levels"][key]
    geometry = Atoms(numbers=entry["geometry"]["numbers"], positions=entry["geometry"]["positions"])
    result = harmonic_analysis(geometry, np.array(entry["hessian"]), key, float(entry["max_force"]))
    stored = np.asarray(entry["frequencies"])
    if stored.shape != result.frequencies.shape or not np.allclose(result.frequencies, stored, atol=0.01):
        raise ValueError(
            f"{_entry(name).vibrations}, level {key!r}: the stored Hessian gives frequencies that differ from the "
            "stored ones (cm^-1); the file is damaged"
        )
    skip = ("hessian", "frequencies", "characters", "geometry")
    result.provenance = {
        "molecule": name,
        "file": _entry(name).vibrations,
        **{k: v for k, v in entry.items() if k not in skip},
    }
    return result


def vibrational_reference_for(atoms: Atoms) -> str | None:
    """The built-in molecule whose shipped vibrational reference has the elements of ``atoms`` (in any order), or
    None."""
    formula = sorted(int(z) for z in atoms.numbers)
    for d in _REGISTRY:
        data = _vibrations_data(d.name) if d.vibrations else None
        if data is not None and sorted(data["start"]["numbers"]) == formula:
            return d.name
    return None
