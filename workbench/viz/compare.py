"""Figures that compare models: parity plots, error histograms per element, learning and training curves, and the
metrics table with the best value of each column marked.

Pure functions of the tables in :mod:`workbench.analysis`; each returns a new plotly figure (or a pandas Styler).
Parity plots use WebGL (``Scattergl``) so that 100k points stay fluid, and every point carries its configuration
index in ``customdata`` (first column), so a click can open that structure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .style import base_layout, fidelity_colors

#: Axis labels of the quantities in the analysis tables.
QUANTITY_LABELS = {
    "energy": "energy",
    "forces": "force component",
    "energy_mae": "energy MAE",
    "energy_rmse": "energy RMSE",
    "energy_mae_per_atom": "energy MAE per atom",
    "energy_rmse_per_atom": "energy RMSE per atom",
    "force_mae": "force MAE",
    "force_rmse": "force RMSE",
    "forces_mae": "force MAE",
    "forces_rmse": "force RMSE",
}


def model_colors(names: Sequence[str]) -> dict[str, str]:
    """A distinct colour per model (qualitative palette, in the order given; repeats after ten)."""
    palette = qualitative.D3
    return {name: palette[k % len(palette)] for k, name in enumerate(dict.fromkeys(names))}


def _unit_of(table: pd.DataFrame, quantity: str) -> str:
    units = table.attrs.get("units", "eV")
    if isinstance(units, dict):
        key = "forces" if quantity.startswith("force") else "energy_per_atom" if "per_atom" in quantity else "energy"
        return units.get(key, "")
    return str(units)


def parity_figure(data: pd.DataFrame, max_points: int = 200_000, seed: int = 0) -> go.Figure:
    """Predicted against reference values, one panel per fidelity, one colour per model.

    ``data`` is :func:`workbench.analysis.parity_data` (energies or forces). Each trace's ``customdata`` holds the
    configuration index (and, for forces, the atom index) of every point. A model with more than ``max_points``
    values in a panel is drawn from a fixed random sample of that many. The grey diagonal is a perfect model.
    """
    if data.empty:
        raise ValueError("no labelled values to plot: the models share no fidelity with the dataset's labels")
    quantity = data.attrs.get("quantity", "forces" if "atom" in data.columns else "energy")
    unit = data.attrs.get("units", "eV")
    fidelities = list(dict.fromkeys(data["fidelity"]))
    colors = model_colors(data["model"].unique())
    fig = make_subplots(rows=1, cols=len(fidelities), subplot_titles=fidelities, horizontal_spacing=0.08)
    rng = np.random.default_rng(seed)
    for col, fid in enumerate(fidelities, start=1):
        panel = data[data["fidelity"] == fid]
        lo = float(np.nanmin(panel[["reference", "predicted"]].to_numpy()))
        hi = float(np.nanmax(panel[["reference", "predicted"]].to_numpy()))
        pad = 0.03 * (hi - lo or 1.0)
        fig.add_trace(
            go.Scattergl(
                x=[lo - pad, hi + pad],
                y=[lo - pad, hi + pad],
                mode="lines",
                line={"color": "#9aa5b1", "dash": "dash", "width": 1},
                name="y = x",
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        for model, part in panel.groupby("model", sort=False):
            if len(part) > max_points:
                part = part.iloc[np.sort(rng.choice(len(part), max_points, replace=False))]
            custom = part[["configuration", "atom"]] if "atom" in part else part[["configuration"]]
            where = "configuration %{customdata[0]}" + (", atom %{customdata[1]}" if "atom" in part else "")
            fig.add_trace(
                go.Scattergl(
                    x=part["reference"].to_numpy(),
                    y=part["predicted"].to_numpy(),
                    customdata=custom.to_numpy(),
                    mode="markers",
                    marker={"size": 4 if quantity == "forces" else 6, "color": colors[model], "opacity": 0.65},
                    name=model,
                    legendgroup=model,
                    showlegend=col == 1,
                    hovertemplate=f"{model}<br>{where}<br>reference %{{x:.4g}}<br>predicted %{{y:.4g}} {unit}"
                    "<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(
            title={"text": f"reference {QUANTITY_LABELS.get(quantity, quantity)} ({unit})"}, row=1, col=col
        )
        fig.update_yaxes(title={"text": f"predicted ({unit})"} if col == 1 else None, row=1, col=col)
    title = "Parity: " + ("energies" if quantity == "energy" else "force components")
    fig.update_layout(**base_layout(title, 420, legend={"orientation": "h", "y": -0.2}))
    return fig


def error_histogram_figure(atom_errors: pd.DataFrame, bins: int = 40, log_y: bool = False) -> go.Figure:
    """Distribution of per-atom force-error lengths, one panel per element, overlaid per model (and fidelity).

    ``atom_errors`` is :func:`workbench.analysis.atom_force_errors`. All panels share bin edges, so bars of
    different models line up.
    """
    if atom_errors.empty:
        raise ValueError("no force errors to plot: no configuration has force labels")
    unit = atom_errors.attrs.get("units", "eV/Å")
    elements = list(dict.fromkeys(atom_errors["element"]))
    series = atom_errors["model"]
    if atom_errors["fidelity"].nunique() > 1:
        series = atom_errors["model"] + " vs " + atom_errors["fidelity"]
    work = atom_errors.assign(series=series)
    colors = model_colors(work["series"].unique())
    top = float(np.nanmax(work["error_norm"])) or 1.0
    size = top / bins
    fig = make_subplots(rows=1, cols=len(elements), subplot_titles=elements, shared_yaxes=False)
    for col, element in enumerate(elements, start=1):
        for name, part in work[work["element"] == element].groupby("series", sort=False):
            fig.add_trace(
                go.Histogram(
                    x=part["error_norm"].to_numpy(),
                    xbins={"start": 0.0, "end": top + size, "size": size},
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    marker_color=colors[name],
                    opacity=0.6,
                    hovertemplate=f"{name}<br>{element}: %{{x}} {unit}<br>%{{y}} atoms<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title={"text": f"|ΔF| ({unit})"}, row=1, col=col)
    fig.update_yaxes(title={"text": "atoms"}, type="log" if log_y else "linear", row=1, col=1)
    fig.update_layout(**base_layout("Force errors per element", 360, barmode="overlay", legend={"orientation": "h"}))
    return fig


def learning_curve_figure(table: pd.DataFrame, metric: str = "force_rmse", log: bool = True) -> go.Figure:
    """Test error against the number of high-level configurations, one line per strategy, mean over seeds with
    the standard deviation as error bars (log-log by default: learning curves are straight lines there).

    ``table`` is :func:`workbench.analysis.learning_curve` or a ``LearningCurve.table`` from training.
    """
    from ..analysis.curves import summarise_learning_curve

    summary = summarise_learning_curve(table, metric)
    metric = summary.attrs["metric"]
    unit = (
        _unit_of(table, metric)
        if isinstance(table.attrs.get("units"), dict)
        else "eV" + ("/Å" if "force" in metric else "")
    )
    colors = model_colors(summary["strategy"].unique())
    fig = go.Figure()
    for strategy, part in summary.groupby("strategy", sort=False):
        fig.add_trace(
            go.Scatter(
                x=part["n_high"].to_numpy(),
                y=part["mean"].to_numpy(),
                error_y={"type": "data", "array": part["std"].to_numpy(), "visible": bool((part["n_seeds"] > 1).any())},
                customdata=part[["n_seeds"]].to_numpy(),
                mode="lines+markers",
                name=str(strategy),
                line={"color": colors[strategy]},
                hovertemplate=f"{strategy}<br>%{{x}} configurations<br>%{{y:.4g}} {unit}"
                "<br>%{customdata[0]} seeds<extra></extra>",
            )
        )
    axis = "log" if log else "linear"
    fig.update_layout(**base_layout("Learning curve", 380))
    fig.update_xaxes(title={"text": "high-level configurations in training"}, type=axis)
    fig.update_yaxes(title={"text": f"test {QUANTITY_LABELS.get(metric, metric)} ({unit})"}, type=axis)
    return fig


def training_curves_figure(history: pd.DataFrame, statistic: str = "rmse", log_y: bool = True) -> go.Figure:
    """Training history per head: energy (left) and force (right) errors against epochs, one colour per head,
    validation solid and training dashed; dotted lines mark where a new stage (pre-training, fine-tuning) starts.

    ``history`` is a ``TrainedModel.history`` (columns such as ``val_forces_rmse[ccsd(t)/cc-pvdz]``) or its long
    form from :func:`workbench.analysis.training_curves`.
    """
    from ..analysis.curves import training_curves

    long = history if "quantity" in history.columns else training_curves(history)
    long = long[(long["statistic"] == statistic) & long["quantity"].isin(["energy", "forces"])]
    if long.empty:
        raise ValueError(f"the history has no {statistic} errors per head")
    heads = list(dict.fromkeys(long["head"]))
    colors = fidelity_colors(heads)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["energy", "forces"], horizontal_spacing=0.1)
    in_legend = set()  # one legend entry per head and split, for both panels
    for col, quantity in enumerate(["energy", "forces"], start=1):
        for (head, split), part in long[long["quantity"] == quantity].groupby(["head", "split"], sort=False):
            fig.add_trace(
                go.Scatter(
                    x=part["step"].to_numpy(),
                    y=part["value"].to_numpy(),
                    mode="lines",
                    name=f"{head} ({split})",
                    legendgroup=head,
                    showlegend=(head, split) not in in_legend,
                    line={"color": colors[head], "dash": "solid" if split == "val" else "dash"},
                    customdata=part[["stage", "epoch"]].to_numpy(),
                    hovertemplate=f"{head}, {split}<br>%{{customdata[0]}} epoch %{{customdata[1]}}<br>%{{y:.4g}}"
                    "<extra></extra>",
                ),
                row=1,
                col=col,
            )
            in_legend.add((head, split))
    stages = long.drop_duplicates("step")[["step", "stage"]]
    starts = stages[stages["stage"] != stages["stage"].shift()]["step"].to_numpy()[1:]
    for x in starts:
        fig.add_vline(x=float(x) - 0.5, line={"dash": "dot", "color": "#9aa5b1"})
    fig.update_xaxes(title={"text": "epoch (all stages)"})
    fig.update_yaxes(type="log" if log_y else "linear")
    fig.update_yaxes(title={"text": f"energy {statistic.upper()} (eV)"}, row=1, col=1)
    fig.update_yaxes(title={"text": f"force {statistic.upper()} (eV/Å)"}, row=1, col=2)
    fig.update_layout(**base_layout("Training curves per head", 380, legend={"orientation": "h", "y": -0.25}))
    return fig


def metrics_table(table: pd.DataFrame, columns: Sequence[str] | None = None, digits: int = 4):
    """The :func:`workbench.analysis.metrics` table as a pandas Styler: units in the column titles and the best
    (smallest) value of each error column within each fidelity in bold on a green background.

    Yardstick rows (a level's own labels, ``"<level> labels (no ML)"``) are in grey italics. They compete for the
    best mark where :func:`workbench.analysis.comparable` says they were judged on the models' configurations: if
    the raw level is the best there, it is marked, since that is what the table has to say. One judged on fewer
    configurations is never marked.
    """
    from ..analysis.metrics import comparable, error_columns

    columns = (
        list(columns)
        if columns is not None
        else ["model", "head", "fidelity", "n_parameters", "time_per_configuration_ms", *error_columns(table)]
    )
    columns = [c for c in columns if c in table.columns]
    full = table.reset_index(drop=True)
    shown = full[columns]
    best = pd.DataFrame(False, index=shown.index, columns=shown.columns)
    for col in error_columns(shown):
        values = shown[col].astype(float).where(comparable(full, col))
        best[col] = values.eq(values.groupby(shown["fidelity"]).transform("min")) & values.notna()
    yardstick = full["labels_of"].notna().to_numpy() if "labels_of" in full else np.zeros(len(full), bool)
    styles = np.where(np.broadcast_to(yardstick[:, None], best.shape), YARDSTICK_STYLE, "")
    styles = np.where(best.to_numpy(), np.char.add(styles, BEST_STYLE), styles)
    titles = {
        c: f"{c} ({_unit_of(table, c)})" if c in error_columns(shown) or c == "energy_max" else c for c in columns
    }
    styler = shown.style.format(precision=digits, na_rep="–")
    styler = styler.apply(lambda _: styles, axis=None)
    return styler.relabel_index([titles[c] for c in columns], axis="columns").hide(axis="index")


#: Cell style of the best value of an error column.
BEST_STYLE = "font-weight: bold; background-color: #d9f2e3;"
#: Cell style of a yardstick row (a level's own labels, no ML).
YARDSTICK_STYLE = "font-style: italic; color: #52606d; background-color: #f5f7fa;"
