"""What a Dataset holds, summarised: the coverage table, the label matrix and the text a person reads
(:meth:`Dataset.coverage <workbench.data.dataset.Dataset.coverage>`, ``label_matrix``, ``summary``)."""

from __future__ import annotations

import pandas as pd
from ase.data import chemical_symbols


def coverage(ds) -> pd.DataFrame:
    """:meth:`Dataset.coverage <workbench.data.dataset.Dataset.coverage>` of ``ds``."""
    names = ds.fidelity_names
    rows = []
    for name in names:
        lab = ds.labels[name]
        fid = ds.fidelity_info[name]
        row = {
            "fidelity": name,
            "method": fid.method,
            "basis": fid.basis,
            "rank": fid.rank,
            "energy": int(lab.energy_mask.sum()),
            "forces": int(lab.forces_mask.sum()),
            "energy+forces": int((lab.energy_mask & lab.forces_mask).sum()),
        }
        for other in names:
            row[f"& {other}"] = int((lab.energy_mask & ds.labels[other].energy_mask).sum())
        rows.append(row)
    return pd.DataFrame(rows).set_index("fidelity") if rows else pd.DataFrame()


def label_matrix(ds) -> pd.DataFrame:
    """:meth:`Dataset.label_matrix <workbench.data.dataset.Dataset.label_matrix>` of ``ds``."""
    cols = {}
    for name in ds.fidelity_names:
        cols[(name, "energy")] = ds.labels[name].energy_mask
        cols[(name, "forces")] = ds.labels[name].forces_mask
    return pd.DataFrame(cols, index=ds.info.index)


def summary(ds) -> str:
    """:meth:`Dataset.summary <workbench.data.dataset.Dataset.summary>` of ``ds``."""
    elements = " ".join(chemical_symbols[z] for z in ds.elements)
    lines = [
        f"Dataset: {len(ds)} configurations, {len(ds.numbers)} atoms, "
        f"{ds.info['formula'].nunique()} formulas, elements {elements}"
    ]
    cov = ds.coverage()
    for name, row in cov.iterrows():
        lines.append(f"  {name:<32s} rank {row['rank']:6.2f}  energy {row['energy']:>9d}  forces {row['forces']:>9d}")
    for p in ds.provenance:
        if "factor" in p:
            lines.append(
                f"  converted {p['quantity']} from {p['from']} to {p['to']} (x{p['factor']:.10g}) in {p['file']}"
            )
        elif "note" in p:
            lines.append(f"  note: {p['note']}")
    return "\n".join(lines)
