"""Learning curves (test error against the number of high-level labels) and training histories in long form.

A learning curve answers the question a label budget raises: how many high-level configurations does a
strategy need to reach a given error? Report means and spreads over several seeds: the seed-to-seed spread of
force errors can reach tens of per cent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from .metrics import metrics

#: History columns written by the trainer: ``{split}_{quantity}_{statistic}[{head}]``.
HISTORY_COLUMN = re.compile(r"^(?P<split>[a-z]+)_(?P<quantity>energy|forces)_(?P<statistic>mae|rmse)\[(?P<head>.+)\]$")


def _budget_models(curve) -> dict[int, object]:
    models = getattr(curve, "models", curve)
    if not isinstance(models, Mapping):
        raise TypeError(f"expected a LearningCurve or a {{budget: model}} dict, got {type(curve).__name__}")
    return {int(n): m for n, m in models.items()}


def learning_curve(curves, test: Dataset, fidelity: str | None = None, units: str = "eV") -> pd.DataFrame:
    """Test errors of the models of one or several learning curves, one row per (strategy, seed, budget).

    ``curves`` is a :class:`workbench.training.LearningCurve` (or a ``{budget: model}`` dict), or a dict of them
    keyed by strategy name, or by ``(strategy, seed)`` for several seeds. ``fidelity`` is the high level the budget
    counts (default: the test set's highest-ranked). Columns: ``strategy``, ``seed``, ``n_high``, then the
    :func:`~workbench.analysis.metrics.metrics` columns (``energy_mae``, ``force_rmse``, ...) in ``units``.
    """
    if not isinstance(curves, Mapping) or all(isinstance(k, (int, np.integer)) for k in curves):
        curves = {"model": curves}
    fidelity = test.fidelity(fidelity).name if fidelity is not None else test.fidelity_names[-1]
    rows = []
    for key, curve in curves.items():
        strategy, seed = key if isinstance(key, tuple) else (key, 0)
        for n, model in sorted(_budget_models(curve).items()):
            table = metrics(
                (model, fidelity) if _has_head(model, fidelity) else model, test, [fidelity], units, per_element=False
            )
            for row in table.to_dict("records"):
                rows.append({"strategy": str(strategy), "seed": seed, "n_high": n, **row})
    out = pd.DataFrame(rows)
    out.attrs["units"] = {"energy": units, "forces": f"{units}/Å"}
    out.attrs["fidelity"] = fidelity
    return out


def _has_head(model, fidelity: str) -> bool:
    heads = getattr(model, "fidelities", None)
    if heads is None:
        inner = getattr(model, "module", None)
        heads = getattr(inner, "fidelities", [])
    return fidelity in list(heads)


def summarise_learning_curve(table: pd.DataFrame, metric: str = "force_rmse") -> pd.DataFrame:
    """Mean, standard deviation and number of seeds of ``metric`` per (strategy, budget).

    Accepts the table of :func:`learning_curve`, or a :class:`~workbench.training.LearningCurve`'s own
    ``table`` (index ``budget``, columns ``energy_mae``, ``forces_rmse``, ...).
    """
    table = _as_learning_table(table)
    if metric not in table.columns:
        # the trainer's tables say "forces_rmse", the metrics tables "force_rmse"
        alias = (
            metric.replace("force_", "forces_", 1)
            if metric.startswith("force_")
            else metric.replace("forces_", "force_", 1)
        )
        if alias not in table.columns:
            raise KeyError(f"no column {metric!r}; choose from {list(table.columns)}")
        metric = alias
    grouped = table.groupby(["strategy", "n_high"], sort=False)[metric]
    out = grouped.agg(mean="mean", std="std", n_seeds="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    order = {name: k for k, name in enumerate(dict.fromkeys(table["strategy"]))}  # strategies as given
    out = out.sort_values(["strategy", "n_high"], key=lambda c: c.map(order) if c.name == "strategy" else c)
    out = out.reset_index(drop=True)
    out.attrs = dict(table.attrs)
    out.attrs["metric"] = metric
    return out


def _as_learning_table(table: pd.DataFrame) -> pd.DataFrame:
    if "n_high" in table.columns:
        return table
    if table.index.name == "budget":  # a LearningCurve's own table
        out = table.reset_index().rename(columns={"budget": "n_high"})
        out.insert(0, "strategy", "model")
        out.insert(1, "seed", 0)
        return out
    raise KeyError("expected a learning-curve table with an 'n_high' column or a 'budget' index")


def training_curves(history: pd.DataFrame) -> pd.DataFrame:
    """A training history (one row per epoch, columns such as ``val_forces_rmse[ccsd(t)/cc-pvdz]``) in long form:
    ``step`` (epochs counted across stages), ``stage``, ``epoch``, ``split`` (train/val), ``quantity``
    (energy/forces), ``statistic`` (mae/rmse), ``head`` and ``value`` (eV, eV/Å); the losses appear with
    ``quantity="loss"`` and no head."""
    if history is None or len(history) == 0:
        return pd.DataFrame(columns=["step", "stage", "epoch", "split", "quantity", "statistic", "head", "value"])
    step = np.arange(len(history))
    stage = history["stage"].to_numpy() if "stage" in history else np.array(["train"] * len(history))
    epoch = history["epoch"].to_numpy() if "epoch" in history else step
    parts = []
    for col in history.columns:
        m = HISTORY_COLUMN.match(col)
        if m:
            meta = m.groupdict()
        elif col in ("train_loss", "val_loss"):
            meta = {"split": col.split("_")[0], "quantity": "loss", "statistic": "loss", "head": None}
        else:
            continue
        values = pd.to_numeric(history[col], errors="coerce").to_numpy()
        parts.append(pd.DataFrame({"step": step, "stage": stage, "epoch": epoch, **meta, "value": values}))
    if not parts:
        raise KeyError(f"no per-head error or loss columns in the history; columns are {list(history.columns)}")
    out = pd.concat(parts, ignore_index=True)
    return out[np.isfinite(out["value"].to_numpy(dtype=float))].reset_index(drop=True)
