"""Figures of potential-energy scans and MD stability runs (from :mod:`workbench.analysis`).

1D scans: one line per model head, the reference as black points, and a grey band between the lowest and the
highest head wherever they disagree. 2D scans: contour maps side by side on one colour scale. Energies are
relative (a curve's zero is its minimum, or the constant that best matches the reference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..data.units import energy_factor
from .compare import model_colors
from .style import base_layout

if TYPE_CHECKING:  # the analysis package pulls in torch; figures need only its results
    from ..analysis.md import MDStability
    from ..analysis.pes import ScanResult

REFERENCE_COLOR = "#1f2933"
BAND_COLOR = "rgba(120, 130, 145, 0.25)"


def scan_figure(result: ScanResult, units: str = "eV", align: str = "reference") -> go.Figure:
    """A 1D scan: energy (relative, in ``units``) against the coordinate.

    Traces, in order: the disagreement band (two traces, ``"spread"``, only with two or more heads), one line per
    head, then the reference points (``"reference: <level>"``). ``align="reference"`` shifts each curve by the
    constant that best matches the reference points; ``"minimum"`` puts each curve's minimum at zero.
    """
    if len(result.coordinates) != 1:
        raise ValueError("scan_figure draws 1D scans; use scan_contour_figure for a 2D scan")
    scale = 1.0 / energy_factor(units)
    energies, ref = result.relative(align)
    energies = energies * scale
    x = result.coordinates[0].values
    fig = go.Figure()
    if len(result.members) > 1:
        low, high = energies.min(axis=1).to_numpy(), energies.max(axis=1).to_numpy()
        fig.add_trace(
            go.Scatter(x=x, y=low, mode="lines", line={"width": 0}, hoverinfo="skip", showlegend=False, name="spread")
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=high,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=BAND_COLOR,
                name="spread",
                customdata=(high - low)[:, None],
                hovertemplate=f"spread between heads: %{{customdata[0]:.4g}} {units}<extra></extra>",
            )
        )
    colors = model_colors(result.members)
    for member in result.members:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=energies[member].to_numpy(),
                mode="lines",
                name=member,
                line={"color": colors[member], "width": 2},
                hovertemplate=f"{member}<br>%{{x:.4g}}: %{{y:.4g}} {units}<extra></extra>",
            )
        )
    if ref is not None:
        have = np.isfinite(ref)
        fig.add_trace(
            go.Scatter(
                x=x[have],
                y=ref[have] * scale,
                mode="markers",
                name=f"reference: {result.reference_name}",
                marker={"color": REFERENCE_COLOR, "size": 8, "symbol": "circle"},
                hovertemplate=f"{result.reference_name}<br>%{{x:.4g}}: %{{y:.4g}} {units}<extra></extra>",
            )
        )
    fig.update_layout(**base_layout("Potential-energy scan", 400, legend={"orientation": "h", "y": -0.2}))
    fig.update_xaxes(title={"text": result.coordinates[0].name})
    fig.update_yaxes(title={"text": f"relative energy ({units})"})
    return fig


def scan_contour_figure(result: ScanResult, units: str = "eV", align: str = "reference") -> go.Figure:
    """A 2D scan as contour maps on one colour scale: one panel per head, then the reference (on the points where
    it was computed). Energies relative as in :func:`scan_figure`."""
    if len(result.coordinates) != 2:
        raise ValueError("scan_contour_figure draws 2D scans")
    scale = 1.0 / energy_factor(units)
    energies, ref = result.relative(align)
    c1, c2 = result.coordinates
    panels = [(m, c1.values, c2.values, result.grid(energies[m].to_numpy() * scale)) for m in result.members]
    if ref is not None:
        have = result.grid(np.isfinite(ref))
        rows, cols = np.flatnonzero(have.any(axis=1)), np.flatnonzero(have.any(axis=0))
        z = result.grid(ref * scale)[np.ix_(rows, cols)]
        panels.append((f"reference: {result.reference_name}", c1.values[rows], c2.values[cols], z))
    finite = np.concatenate([p[3][np.isfinite(p[3])] for p in panels])
    zmin, zmax = float(finite.min()), float(finite.max())
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], horizontal_spacing=0.06)
    for k, (name, x1, x2, z) in enumerate(panels, start=1):
        fig.add_trace(
            go.Contour(
                x=x2,
                y=x1,
                z=z,
                zmin=zmin,
                zmax=zmax,
                colorscale="Viridis",
                name=name,
                showscale=k == len(panels),
                colorbar={"title": {"text": units, "side": "right"}, "thickness": 12},
                contours={"coloring": "heatmap", "showlabels": False},
                hovertemplate=f"{name}<br>{c2.name}: %{{x:.4g}}<br>{c1.name}: %{{y:.4g}}<br>%{{z:.4g}} {units}"
                "<extra></extra>",
            ),
            row=1,
            col=k,
        )
        fig.update_xaxes(title={"text": c2.name}, row=1, col=k)
    fig.update_yaxes(title={"text": c1.name}, row=1, col=1)
    fig.update_layout(**base_layout("Potential-energy surface", 420))
    return fig


def md_energy_figure(result: MDStability) -> go.Figure:
    """Total, potential and kinetic energy (eV, relative to the first total) of an NVE run against time (ps), with
    the fitted drift as a dashed line; the title says the drift and whether bonds broke."""
    t = result.time_ps
    e0 = result.total[0] if len(result.total) else 0.0
    fig = go.Figure()
    for name, values, color in (
        ("total", result.total, "#1f2933"),
        ("potential", result.potential, "#1f77b4"),
        ("kinetic", result.kinetic, "#ff7f0e"),
    ):
        fig.add_trace(go.Scatter(x=t, y=values - e0, mode="lines", name=name, line={"color": color, "width": 1.5}))
    if np.isfinite(result.drift_per_ps):
        mean_t, mean_e = t.mean(), (result.total - e0).mean()
        fig.add_trace(
            go.Scatter(
                x=t,
                y=mean_e + result.drift_per_ps * (t - mean_t),
                mode="lines",
                name="drift",
                line={"color": "#e4572e", "dash": "dash"},
            )
        )
    verdict = "stable" if result.stable else "bonds broke" if result.bonds_broken else "unstable"
    title = f"NVE with {result.model}: drift {result.drift_per_ps:.3g} eV/ps, {verdict}"
    fig.update_layout(**base_layout(title, 360, legend={"orientation": "h", "y": -0.25}))
    fig.update_xaxes(title={"text": "time (ps)"})
    fig.update_yaxes(title={"text": "energy − initial total (eV)"})
    return fig
