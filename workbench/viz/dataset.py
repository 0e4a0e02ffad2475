"""Figures and tables that describe a Dataset: label coverage, energy distributions, one configuration's labels.

Pure functions of the data: each returns a new plotly figure or a pandas table; no widget state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..data.dataset import Dataset
from ..data.references import fit_atomic_references, residual_energies
from .style import base_layout, fidelity_colors

#: Axis title of residual energies, used wherever they are plotted.
RESIDUAL_AXIS = "energy − fitted atomic references, per atom (eV/atom)"


def _row_height(n_rows: int) -> int:
    """Figure height (px) for ``n_rows`` categories on the y axis."""
    return int(max(260, 110 + 30 * n_rows))


def coverage_figure(ds: Dataset) -> go.Figure:
    """Heatmap of which labels exist: rows are fidelities (low rank at the top), columns energy and forces.

    The colour is the fraction of configurations labelled; each cell prints the count.
    """
    names = ds.fidelity_names
    n = len(ds)
    counts = np.array([[ds.labels[f].energy_mask.sum(), ds.labels[f].forces_mask.sum()] for f in names], dtype=int)
    counts = counts.reshape(len(names), 2)
    fraction = counts / max(n, 1)
    text = [[f"{c:,}" for c in row] for row in counts]
    heatmap = go.Heatmap(
        z=fraction,
        x=["energy", "forces"],
        y=names,
        text=text,
        texttemplate="%{text}",
        textfont={"size": 13},
        customdata=counts,
        colorscale="Blues",
        zmin=0.0,
        zmax=1.0,
        xgap=3,
        ygap=3,
        colorbar={"title": {"text": "fraction<br>labelled", "side": "top"}, "thickness": 12, "len": 0.9},
        hovertemplate="%{y}<br>%{x}: %{customdata:,} of " + f"{n:,}" + " configurations<extra></extra>",
        name="coverage",
    )
    fig = go.Figure(heatmap)
    fig.update_layout(
        **base_layout(f"Labels per level of theory ({n:,} configurations)", _row_height(len(names))),
    )
    fig.update_xaxes(side="top", showgrid=False, tickfont={"size": 13})
    fig.update_yaxes(autorange="reversed", showgrid=False, title={"text": "level of theory (low → high)"})
    return fig


def per_atom_residuals(ds: Dataset, references: pd.DataFrame | None = None) -> pd.DataFrame:
    """Energies minus fitted atomic references, divided by the number of atoms (eV/atom).

    ``(N, fidelities)``, NaN where a configuration has no energy at that level. Subtracting per-element
    references fitted separately at each level removes the large constant offsets between levels, so
    the distributions of different levels can share one axis.
    """
    if not ds.fidelity_names:
        return pd.DataFrame(index=ds.info.index)
    references = fit_atomic_references(ds) if references is None else references
    return residual_energies(ds, references).div(ds.n_atoms, axis=0)


def energy_distribution_figure(
    ds: Dataset, residuals: pd.DataFrame | None = None, highlight: int | None = None, max_points: int = 20_000
) -> go.Figure:
    """Distribution of per-atom residual energies (eV/atom) at each fidelity, one violin per level.

    ``residuals`` is :func:`per_atom_residuals` (computed when not given). With ``highlight``, a marked
    point shows where that configuration lies at each level (the last trace, named ``"highlight"``).
    A level with more than ``max_points`` energies is drawn from a fixed random sample of that many
    (its hover text says so), which keeps the browser fast on large datasets.
    """
    residuals = per_atom_residuals(ds) if residuals is None else residuals
    names = ds.fidelity_names
    colors = fidelity_colors(names)
    fig = go.Figure()
    for name in names:
        values = residuals[name].to_numpy()
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        shown = f"{len(values):,} configurations"
        if len(values) > max_points:
            shown = f"a random {max_points:,} of {len(values):,} configurations"
            values = np.random.default_rng(0).choice(values, size=max_points, replace=False)
        fig.add_trace(
            go.Violin(
                x=values,
                y=[name] * len(values),
                name=name,
                orientation="h",
                line_color=colors[name],
                fillcolor=colors[name],
                opacity=0.75,
                points="all" if len(values) <= 300 else False,
                pointpos=0,
                jitter=0.4,
                marker={"size": 5, "color": "white", "line": {"width": 1, "color": "rgba(30,30,30,0.75)"}},
                box_visible=True,
                meanline_visible=True,
                spanmode="hard",
                width=0.8,
                hoveron="violins+points",
                hovertemplate=f"{name}<br>%{{x:.4f}} eV/atom<extra>{shown}</extra>",
                showlegend=False,
            )
        )
    hx, hy = highlight_points(residuals, highlight, names)
    fig.add_trace(
        go.Scatter(
            x=hx,
            y=hy,
            mode="markers",
            name="highlight",
            marker={"symbol": "diamond", "size": 11, "color": "#e4572e", "line": {"width": 1.5, "color": "white"}},
            hovertemplate="shown configuration<br>%{y}: %{x:.4f} eV/atom<extra></extra>",
            showlegend=highlight is not None,
        )
    )
    if highlight is not None:
        fig.data[-1].name = f"configuration {highlight}"
    fig.update_layout(
        **base_layout(
            "Energy distributions per level",
            _row_height(len(names)),
            legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
        )
    )
    fig.update_xaxes(title={"text": RESIDUAL_AXIS}, zeroline=True, zerolinecolor="#c8ced6")
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=names, showgrid=False, automargin=True)
    return fig


def highlight_points(residuals: pd.DataFrame, i: int | None, names: list[str]) -> tuple[list, list]:
    """``(x, y)`` of configuration ``i`` in :func:`energy_distribution_figure`: its residual (eV/atom) at
    every level where it has an energy."""
    if i is None or len(residuals) == 0:
        return [], []
    row = residuals.iloc[int(i)]
    pairs = [(float(row[n]), n) for n in names if n in row and np.isfinite(row[n])]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def labels_table(ds: Dataset, i: int, references: pd.DataFrame | None = None) -> pd.DataFrame:
    """The labels of configuration ``i`` at every fidelity (low to high).

    Columns: ``energy (eV)``, ``energy − refs (eV)`` (minus the fitted atomic references),
    ``max |F| (eV/Å)`` and ``RMS F (eV/Å)`` (over the atoms' force components); NaN where missing.
    """
    if not -len(ds) <= int(i) < len(ds):
        raise IndexError(f"configuration {i} is out of range for a dataset of {len(ds)}")
    i = int(i) % len(ds)
    lo, hi = ds.ptr[i], ds.ptr[i + 1]
    references = fit_atomic_references(ds) if references is None and ds.fidelity_names else references
    residual = residual_energies(ds.select([i]), references) if ds.fidelity_names else None
    rows = []
    for name in ds.fidelity_names:
        lab = ds.labels[name]
        row = {"fidelity": name, "energy (eV)": np.nan, "energy − refs (eV)": np.nan}
        row.update({"max |F| (eV/Å)": np.nan, "RMS F (eV/Å)": np.nan})
        if lab.energy_mask[i]:
            row["energy (eV)"] = float(lab.energy[i])
            row["energy − refs (eV)"] = float(residual[name].iloc[0])
        if lab.forces_mask[i]:
            forces = np.asarray(lab.forces[lo:hi], dtype=np.float64)
            row["max |F| (eV/Å)"] = float(np.linalg.norm(forces, axis=1).max())
            row["RMS F (eV/Å)"] = float(np.sqrt(np.mean(forces**2)))
        rows.append(row)
    columns = ["fidelity", "energy (eV)", "energy − refs (eV)", "max |F| (eV/Å)", "RMS F (eV/Å)"]
    return pd.DataFrame(rows, columns=columns).set_index("fidelity")
