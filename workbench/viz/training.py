"""The live figure of a training run: loss, and energy and force errors per fidelity head, against epochs.

Drawn from a training history (``TrainingJob.history`` or ``TrainedModel.history``) through
:func:`workbench.analysis.training_curves`, so a run in progress and a finished one look the same. Validation is
solid, training dashed; a dotted line marks where a new stage (pre-training, fine-tuning, meta-learning) starts.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.curves import training_curves
from .style import base_layout, fidelity_colors

LOSS_COLOR = "#1f2933"
PANELS = ("loss", "energy", "forces")
TITLES = {"loss": "loss (weighted, dimensionless)", "energy": "energy {s} (eV)", "forces": "force {s} (eV/Å)"}


def training_progress_figure(
    history: pd.DataFrame, statistic: str = "rmse", title: str = "Training", height: int = 340
) -> go.Figure:
    """Three panels against the epoch counted over all stages: the loss (training and validation), the energy
    error of each head (eV) and the force error of each head (eV/Å), ``statistic`` ``"rmse"`` or ``"mae"``,
    log scale. Trace names are ``"loss (val)"``, ``"<head> energy (train)"``, ``"<head> forces (val)"``...
    An empty history gives the empty panels, ready to be filled."""
    try:
        long = training_curves(history)
    except KeyError:  # a closed-form fit has no per-epoch errors
        long = training_curves(None)
    long = long[(long["quantity"] == "loss") | (long["statistic"] == statistic)]
    heads = [h for h in dict.fromkeys(long["head"]) if isinstance(h, str)]
    colors = fidelity_colors(heads)
    with_energy = set(long.loc[long["quantity"] == "energy", "head"])
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=[TITLES[p].format(s=statistic.upper()) for p in PANELS],
        horizontal_spacing=0.07,
    )
    for col, quantity in enumerate(PANELS, start=1):
        part = long[long["quantity"] == quantity]
        for (head, split), curve in part.groupby(["head", "split"], sort=False, dropna=False):
            is_loss = quantity == "loss"
            name = f"loss ({split})" if is_loss else f"{head} {quantity} ({split})"
            fig.add_trace(
                go.Scatter(
                    x=curve["step"].to_numpy(),
                    y=curve["value"].to_numpy(),
                    mode="lines+markers" if len(curve) < 30 else "lines",
                    marker={"size": 4},
                    name=name,
                    legendgroup="loss" if is_loss else head,
                    showlegend=quantity != "forces" or head not in with_energy,
                    line={
                        "color": LOSS_COLOR if is_loss else colors[head],
                        "dash": "solid" if split == "val" else "dash",
                        "width": 2,
                    },
                    hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    stages = long.drop_duplicates("step")[["step", "stage"]].sort_values("step")
    for x in stages[stages["stage"] != stages["stage"].shift()]["step"].to_numpy()[1:]:
        fig.add_vline(x=float(x) - 0.5, line={"dash": "dot", "color": "#9aa5b1"})
    fig.update_yaxes(type="log")
    fig.update_xaxes(title={"text": "epoch"})
    legend = {"orientation": "h", "y": -0.3, "font": {"size": 11}}
    fig.update_layout(**base_layout(title, height, legend=legend))
    fig.update_layout(margin={"t": 78})  # room for the title above the panel titles
    if long.empty:
        fig.add_annotation(
            text="waiting for the first epoch…", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False
        )
    return fig
