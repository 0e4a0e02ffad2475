"""Figures of harmonic frequencies and animated normal modes (from :mod:`workbench.analysis.vibrations`).

The frequency figure draws each model's wavenumbers as ticks on one row per model beside the reference, and below
them each mode's error; shaded bands mark where C-H and O-H stretches appear, the region where a model trained on
too few high-level labels usually goes wrong first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nglview
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from ase import Atoms
from plotly.subplots import make_subplots

from .compare import model_colors
from .structure import VIEW_HEIGHT, VIEW_WIDTH
from .style import base_layout

if TYPE_CHECKING:  # the analysis package pulls in torch; figures need only its results
    from ..analysis.vibrations import VibrationsResult

REGION_COLORS = {
    "C-H stretch": "rgba(31, 119, 180, 0.10)",
    "O-H stretch": "rgba(214, 39, 40, 0.10)",
    "N-H stretch": "rgba(44, 160, 44, 0.10)",
}


def frequency_figure(table: pd.DataFrame, regions: tuple[str, ...] = ("C-H stretch", "O-H stretch")) -> go.Figure:
    """Harmonic wavenumbers (cm^-1) per model next to the reference, and each mode's error.

    ``table`` is :func:`workbench.analysis.frequency_table`. Top: one row of ticks per model (and per reference:
    one, or one per level when each model has its own); bottom (with a reference): each model's error against its
    reference's wavenumber. Every point's ``customdata`` is ``[mode, character]``. The ``regions`` of
    :data:`~workbench.analysis.vibrations.STRETCH_REGIONS` are shaded.
    """
    from ..analysis.vibrations import STRETCH_REGIONS

    models = table.attrs.get("models") or [
        c
        for c in table.columns
        if c not in ("mode", "character") and not c.startswith("reference") and not c.endswith(" error")
    ]
    references = table.attrs.get("references") or (
        dict.fromkeys(models, "reference") if "reference" in table.columns else {}
    )
    has_ref = bool(references)
    rows = 2 if has_ref else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, row_heights=[0.55, 0.45][:rows], vertical_spacing=0.08)
    ref_columns = list(dict.fromkeys(references.values()))
    names = ref_columns + list(models)
    colors = {**dict(zip(ref_columns, ("#1f2933", "#7b8794", "#3e4c59"), strict=False)), **model_colors(models)}
    custom = table[["mode", "character"]].to_numpy(dtype=object)
    for name in names:
        fig.add_trace(
            go.Scatter(
                x=table[name].to_numpy(),
                y=[name] * len(table),
                customdata=custom,
                mode="markers",
                name=name,
                legendgroup=name,
                # an open symbol is drawn in marker.color: set it, or the ticks take the default colour cycle
                marker={"symbol": "line-ns-open", "size": 18, "color": colors[name], "line": {"width": 2}},
                hovertemplate=f"{name}<br>mode %{{customdata[0]}} %{{customdata[1]}}<br>%{{x:.1f}} cm⁻¹<extra></extra>",
            ),
            row=1,
            col=1,
        )
    if has_ref:
        for name in models:
            fig.add_trace(
                go.Scatter(
                    x=table[references[name]].to_numpy(),
                    y=table[f"{name} error"].to_numpy(),
                    customdata=custom,
                    mode="markers",
                    name=f"{name} error",
                    legendgroup=name,
                    showlegend=False,
                    marker={"color": colors[name], "size": 7},
                    hovertemplate=f"{name}<br>mode %{{customdata[0]}} %{{customdata[1]}}<br>"
                    f"{references[name]} %{{x:.1f}} cm⁻¹<br>error %{{y:+.1f}} cm⁻¹<extra></extra>",
                ),
                row=2,
                col=1,
            )
        fig.add_hline(y=0, line={"color": "#9aa5b1", "width": 1}, row=2, col=1)
        fig.update_yaxes(title={"text": "model − reference (cm⁻¹)"}, row=2, col=1)
    for region in regions:
        lo, hi = STRETCH_REGIONS[region]
        for r in range(1, rows + 1):
            fig.add_vrect(
                x0=lo,
                x1=hi,
                fillcolor=REGION_COLORS.get(region, "rgba(0,0,0,0.06)"),
                line_width=0,
                layer="below",
                row=r,
                col=1,
            )
        fig.add_annotation(
            x=(lo + hi) / 2,
            y=1.0,
            yref="paper",
            yanchor="bottom",
            text=region,
            showarrow=False,
            font={"size": 11, "color": "#52606d"},
        )
    fig.update_yaxes(categoryorder="array", categoryarray=names[::-1], row=1, col=1)
    fig.update_xaxes(title={"text": "harmonic wavenumber (cm⁻¹)"}, row=rows, col=1)
    fig.update_layout(
        **base_layout(
            "Harmonic frequencies",
            260 + 30 * len(names) + (200 if has_ref else 0),
            legend={"orientation": "h", "y": -0.2},
        )
    )
    return fig


def _centred(frames: list[Atoms]) -> tuple[list[Atoms], np.ndarray]:
    centre = frames[0].positions.mean(axis=0) if frames else np.zeros(3)
    out = []
    for f in frames:
        a = Atoms(numbers=f.numbers, positions=f.positions - centre)
        out.append(a)
    return out, centre


def mode_view(
    result: VibrationsResult,
    mode: int,
    amplitude: float = 0.25,
    n_frames: int = 24,
    arrow_scale: float = 3.0,
    width: str = VIEW_WIDTH,
    height: str = VIEW_HEIGHT,
) -> nglview.NGLWidget:
    """An nglview animation of one normal mode (frames of :func:`workbench.analysis.mode_trajectory`, the atom
    that moves most travelling ``amplitude`` Å) with an arrow on each atom along its displacement (``arrow_scale``
    times the amplitude, so small motions stay visible). Press play, or set ``view.frame``."""
    from ..analysis.vibrations import mode_trajectory

    frames, centre = _centred(mode_trajectory(result, mode, amplitude, n_frames))
    view = nglview.NGLWidget(nglview.ASETrajectory(frames), width=width, height=height)
    view.clear_representations()
    view.add_ball_and_stick(aspectRatio=2.2, radiusScale=1.0)
    view.background = "white"
    view.stage.set_parameters(clip_dist=2)
    displacement = mode_trajectory(result, mode, amplitude, 1)[0].arrays["mode"]
    origin = result.atoms.positions - centre
    arrows = [
        ("arrow", start.tolist(), (start + arrow_scale * d).tolist(), [0.85, 0.33, 0.1], 0.08)
        for start, d in zip(origin, displacement, strict=True)
        if np.linalg.norm(d) >= 0.05 * amplitude  # atoms that barely move get no arrow
    ]
    if arrows:
        view._add_shape(arrows, name=f"mode {mode}")
    view.center()
    return view
