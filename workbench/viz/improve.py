"""Figures of the improve loop: the error against the labels (and the QM time) spent, one line per loop."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import base_layout

#: What a record's error columns are, for axis titles.
METRICS = {
    "forces_mae": ("force MAE", "meV/Å", 1000.0),
    "energy_mae": ("energy MAE", "meV", 1000.0),
    "energy_rmse": ("energy RMSE", "meV", 1000.0),
    "scan_rmse": ("scan RMSE", "meV", 1000.0),
    "spurious_extrema": ("spurious extrema of the scan", "", 1.0),
}
#: One colour per loop, in the order given (the first is the chosen criterion, a random baseline grey).
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
BASELINE = "#8c8c8c"


def improvement_figure(loops: Mapping[str, pd.DataFrame], metric: str = "forces_mae", title: str = "") -> go.Figure:
    """The ``metric`` of each loop's rounds (:attr:`workbench.active.ImproveJob.rounds`) against the labels
    spent (left) and against the seconds of QM spent (right); a loop named ``random`` is drawn grey and dashed,
    as the baseline. Errors in meV or meV/Å."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {sorted(METRICS)}")
    name, unit, factor = METRICS[metric]
    axis = f"{name} ({unit})" if unit else name
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.12)
    k = 0
    for label, rounds in loops.items():
        if metric not in rounds or not len(rounds):
            continue
        baseline = label.startswith("random")
        color = BASELINE if baseline else COLORS[k % len(COLORS)]
        k += 0 if baseline else 1
        line = {"color": color, "dash": "dash" if baseline else "solid", "width": 2}
        y = rounds[metric] * factor
        for col, x in ((1, rounds["labels_total"]), (2, rounds["qm_s_total"])):
            figure.add_trace(
                go.Scatter(
                    x=x, y=y, mode="lines+markers", name=label, line=line, marker={"size": 7},
                    legendgroup=label, showlegend=col == 1,
                    hovertemplate=f"{label}<br>round %{{text}}<br>%{{x}}<br>{name} %{{y:.3g}} {unit}<extra></extra>",
                    text=rounds["round"],
                ),
                row=1, col=col,
            )  # fmt: skip
    figure.update_xaxes(title_text="labels spent", row=1, col=1, rangemode="tozero")
    figure.update_xaxes(title_text="QM time spent (s)", row=1, col=2, rangemode="tozero")
    figure.update_yaxes(title_text=axis, row=1, col=1, rangemode="tozero")
    figure.update_yaxes(rangemode="tozero", row=1, col=2)
    figure.update_layout(**base_layout(title or f"{name} as labels are bought", 360))
    return figure
