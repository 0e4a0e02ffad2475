"""Per-fidelity atomic reference energies, fitted by least squares on composition.

Total energies at two levels of theory differ by hundreds of kcal/mol per molecule (ωB97x and
CCSD(T)/CBS by ~0.3 Hartree for small organics), almost all of it a per-element constant. Fitting
``E_i ≈ Σ_Z n_iZ e_Z`` at each level and subtracting leaves residual energies of comparable size at
every level, which is what a model head should learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase.data import chemical_symbols

from .fidelity import canonical_fidelities


def fit_atomic_references(ds, fidelities: Sequence[str] | None = None, rcond: float | None = None) -> pd.DataFrame:
    """Least-squares per-element energies (eV), one column per fidelity, one row per element symbol.

    Only configurations with an energy at a level enter its fit. Where the compositions do not
    determine every element (e.g. a single molecule), the minimum-norm solution is returned, which
    still reproduces every composition's mean energy. A fidelity with no energies gets NaN.
    """
    names = canonical_fidelities(fidelities, ds.fidelity_names, "in this dataset") or ds.fidelity_names
    comp = ds.composition_matrix().astype(np.float64)
    symbols = [chemical_symbols[z] for z in ds.elements]
    columns = {}
    for name in names:
        energy, mask = ds.energy(name)
        if not mask.any():
            columns[name] = np.full(len(symbols), np.nan)
            continue
        coef, *_ = np.linalg.lstsq(comp[mask], energy[mask], rcond=rcond)
        columns[name] = coef
    return pd.DataFrame(columns, index=pd.Index(symbols, name="element"))


def reference_energy(ds, references: pd.DataFrame, fidelity: str) -> np.ndarray:
    """Sum of atomic reference energies of each configuration at ``fidelity`` (eV, ``(N,)``)."""
    name = ds.fidelity(fidelity).name
    symbols = [chemical_symbols[z] for z in ds.elements]
    per_element = references[name].reindex(symbols).to_numpy()
    if np.isnan(per_element).any():
        missing = [s for s, v in zip(symbols, per_element, strict=True) if np.isnan(v)]
        raise ValueError(f"no reference energy for elements {missing} at fidelity {name!r}")
    return ds.composition_matrix() @ per_element


def residual_energies(ds, references: pd.DataFrame | None = None) -> pd.DataFrame:
    """Energies minus atomic references (eV), ``(N, fidelities)``, NaN where a label is missing."""
    references = fit_atomic_references(ds) if references is None else references
    out = {}
    for name in ds.fidelity_names:
        energy, mask = ds.energy(name)
        out[name] = np.where(mask, energy - reference_energy(ds, references, name), np.nan)
    return pd.DataFrame(out, index=ds.info.index)


def reference_report(ds, references: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per fidelity: how much the references explain (eV): spread of total energies per atom
    before, and of residual energies per atom after, subtracting them."""
    references = fit_atomic_references(ds) if references is None else references
    residual = residual_energies(ds, references)
    rows = []
    for name in ds.fidelity_names:
        energy, mask = ds.energy(name)
        n_atoms = ds.n_atoms[mask]
        rows.append(
            {
                "fidelity": name,
                "configurations": int(mask.sum()),
                "std total energy per atom (eV)": float(np.std(energy[mask] / n_atoms)) if mask.any() else np.nan,
                "std residual per atom (eV)": float(np.std(residual[name][mask] / n_atoms)) if mask.any() else np.nan,
                "mean |residual| (eV)": float(np.mean(np.abs(residual[name][mask]))) if mask.any() else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("fidelity")
