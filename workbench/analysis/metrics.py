"""Error metrics of models on a dataset, per-configuration errors, disagreement and the worst configurations.

Errors are predicted minus reference. Energies are compared per configuration and per atom; forces per
Cartesian component (MAE, RMSE) and per atom as the norm of the error vector. Only configurations that carry a
label count. Tables come back in eV (energies), eV/atom and eV/Å (forces), or in any energy unit ``units`` names
(``"kcal/mol"`` gives kcal/mol and kcal/mol/Å); ``df.attrs["units"]`` says which.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase.data import chemical_symbols

from ..data.dataset import Dataset
from ..data.fidelity import canonical_fidelities
from ..data.units import energy_factor
from .evaluation import all_residuals, evaluate
from .yardsticks import label_residuals, yardstick_name, yardstick_pairs

#: Error columns where smaller is better (used by ranking and best-per-column).
ERROR_COLUMNS = (
    "energy_mae",
    "energy_rmse",
    "energy_mae_per_atom",
    "energy_rmse_per_atom",
    "force_mae",
    "force_rmse",
    "force_norm_mae",
    "force_norm_rmse",
    "force_max",
)


def _units(units: str) -> dict[str, str]:
    return {"energy": units, "energy_per_atom": f"{units}/atom", "forces": f"{units}/Å", "time": "s"}


def _mae(x: np.ndarray) -> float:
    return float(np.mean(np.abs(x))) if len(x) else np.nan


def _rmse(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else np.nan


def metrics(
    models,
    dataset: Dataset,
    fidelities: Sequence[str] | None = None,
    units: str = "eV",
    per_element: bool = True,
    energy_shift: str = "none",
    device: str | None = None,
    yardsticks: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (model, head, reference fidelity) with energy and force errors, and optionally rows of lower
    levels' own labels as yardsticks.

    Parameters
    ----------
    models
        A model, a list or a ``{name: model}`` dict: trained models, workbench models (every head),
        ``(model, fidelity)``, ASE calculators, level names (see :mod:`workbench.analysis._models`), or the
        :class:`~workbench.analysis.evaluation.Evaluation` list :func:`evaluate` returned.
    dataset
        The configurations and their labels (a test split).
    fidelities
        Reference fidelities to compare to (all in the dataset when None).
    units
        Energy unit of the table: ``"eV"``, ``"meV"``, ``"kcal/mol"``, ``"kJ/mol"``, ``"hartree"``.
    per_element
        Add force MAE and RMSE per element (``force_mae_H``, ``force_rmse_H``, ...).
    energy_shift
        ``"mean"`` removes each model's mean signed energy error (for comparing levels with different zeros).
    device
        Where torch models are evaluated (``"cpu"``, ``"cuda"``, ``"auto"``; None: where they already are).
    yardsticks
        Levels whose own stored labels are shown as rows beside the models, so a table says whether a head beats
        the method it learned from: a level name, a list of them, or ``"lower"`` (every level with labels in
        ``dataset`` that ranks below a fidelity the table judges against). Each level gets a row
        ``"<level> labels (no ML)"`` for every fidelity of the models' rows that it ranks below, judged on the
        configurations where both levels have labels, its energies offset by per-element reference energies of
        both levels fitted there (:func:`workbench.analysis.yardsticks.label_residuals`, which uses the data
        layer's :func:`~workbench.data.references.fit_atomic_references`). Where the two levels share fewer than
        :data:`~workbench.analysis.yardsticks.MIN_SHARED` configurations the errors are NaN and the row's
        ``note`` says so; ``n_energy``/``n_forces`` are then the shared counts. With ``energy_shift="mean"``
        the yardstick's mean signed energy error is removed too. A named level that ranks below none of the
        table's fidelities is an error; rows take part in :func:`rank` and the best mark as :func:`comparable`
        says.

    Notes
    -----
    Columns: ``model, head, fidelity, n_parameters, eval_time_s, time_per_configuration_ms, n_energy,
    energy_mae, energy_rmse, energy_mae_per_atom, energy_rmse_per_atom, energy_max, n_forces, force_mae,
    force_rmse, force_norm_mae, force_norm_rmse, force_max`` (component errors; ``force_norm_*`` and
    ``force_max`` are per atom, of the error vector's length). All but the component MAE are invariant under
    rotations of the molecules; the component MAE depends on the orientation of the axes. With ``yardsticks``
    two more: ``labels_of`` (the level whose labels a row shows; None for a model) and ``note``; the rows are
    then grouped by fidelity, models first. A yardstick row has no head, parameters or evaluation time.
    """
    scale = 1.0 / energy_factor(units)
    rows = []
    elements = [int(z) for z in dataset.elements] if per_element else []
    for r in all_residuals(models, dataset, fidelities, energy_shift, device=device):
        ev = r.evaluation
        row = {
            "model": ev.model,
            "head": ev.head,
            "fidelity": r.fidelity,
            "n_parameters": ev.n_parameters,
            "eval_time_s": ev.wall_time_s,
            "time_per_configuration_ms": 1e3 * ev.wall_time_s / max(ev.n_configurations, 1),
        }
        counts = len(r.energy_error), len(np.unique(r.atom_configuration))
        row.update(_errors(r.energy_error * scale, r.n_atoms, r.force_error * scale, r.numbers, counts, elements))
        rows.append(row)
    if not rows:
        raise ValueError(f"nothing to compare: the dataset has no labels at {fidelities or 'any fidelity'}")
    if yardsticks is not None:
        for row in rows:
            row["labels_of"], row["note"] = None, None
        targets = list(dict.fromkeys(row["fidelity"] for row in rows))
        for level, target in yardstick_pairs(dataset, yardsticks, targets):
            r = label_residuals(dataset, level, target)
            e = r.energy_error * scale
            if energy_shift == "mean" and len(e):
                e = e - e.mean()
            row = {"model": yardstick_name(level), "head": None, "fidelity": target, "n_parameters": None}
            row.update({"eval_time_s": np.nan, "time_per_configuration_ms": np.nan})
            counts = r.n_shared_energy, r.n_shared_forces
            row.update(_errors(e, r.n_atoms, r.force_error * scale, r.numbers, counts, elements))
            row.update({"labels_of": level, "note": r.note})
            rows.append(row)
        order = {fid: k for k, fid in enumerate(targets)}
        rows.sort(key=lambda row: (order[row["fidelity"]], row["labels_of"] is not None))
    out = pd.DataFrame(rows)
    out["n_parameters"] = out["n_parameters"].astype("Int64")
    out.attrs["units"] = _units(units)
    return out


def _errors(e, n_atoms, f, numbers, counts: tuple[int, int], elements: Sequence[int]) -> dict:
    """Error columns of one row from energy errors ``e`` (of configurations of ``n_atoms`` atoms) and per-atom
    force errors ``f`` ``(a, 3)`` of atoms ``numbers``, in the table's units; ``counts`` are ``n_energy, n_forces``."""
    e_atom = e / n_atoms if len(e) else e
    norm = np.linalg.norm(f, axis=1)
    row = {
        "n_energy": counts[0],
        "energy_mae": _mae(e),
        "energy_rmse": _rmse(e),
        "energy_mae_per_atom": _mae(e_atom),
        "energy_rmse_per_atom": _rmse(e_atom),
        "energy_max": float(np.abs(e).max()) if len(e) else np.nan,
        "n_forces": counts[1],
        "force_mae": _mae(f),
        "force_rmse": _rmse(f),
        "force_norm_mae": _mae(norm),
        "force_norm_rmse": _rmse(norm),
        "force_max": float(norm.max()) if len(norm) else np.nan,
    }
    for z in elements:
        fz = f[numbers == z]
        row[f"force_mae_{chemical_symbols[z]}"] = _mae(fz)
        row[f"force_rmse_{chemical_symbols[z]}"] = _rmse(fz)
    return row


def error_columns(table: pd.DataFrame) -> list[str]:
    """The columns of a :func:`metrics` table where smaller is better."""
    extra = [c for c in table.columns if c.startswith(("force_mae_", "force_rmse_"))]
    return [c for c in ERROR_COLUMNS if c in table.columns] + extra


def comparable(table: pd.DataFrame, column: str) -> pd.Series:
    """Which rows of a :func:`metrics` table take part in ranking ``column`` and in its best mark.

    Every model row does. A yardstick row (a level's own labels, ``labels_of`` set) does where it was judged on
    the same configurations as the models of its fidelity: its count (``n_energy`` for energy columns, ``n_forces``
    for force columns) equals theirs, and as it is judged on a subset of their configurations, equal counts mean
    the same configurations. Then, if the raw level has the smallest error, it is the best, and that is the
    message: no head beats the level it learned from there. A yardstick judged on fewer configurations is shown but
    not ranked, since its errors are not comparable.
    """
    if "labels_of" not in table.columns:
        return pd.Series(True, index=table.index)
    yardstick = table["labels_of"].notna()
    count = "n_forces" if column.startswith("force") else "n_energy"
    if count not in table.columns:
        return ~yardstick
    models = table[count].where(~yardstick).groupby(table["fidelity"]).transform("max")
    return ~yardstick | (table[count] == models)


def rank(table: pd.DataFrame, by: str = "force_rmse") -> pd.DataFrame:
    """The :func:`metrics` table sorted by ``by`` within each fidelity, with a ``rank`` column (1 = best).

    Missing values (a model with no forces against that fidelity) and yardstick rows not :func:`comparable` with
    the models rank last.
    """
    if by not in table.columns:
        raise KeyError(f"no column {by!r} to rank by; choose from {error_columns(table)}")
    out = table.copy()
    values = out[by].astype(float).where(comparable(out, by))
    out["rank"] = values.groupby(out["fidelity"]).rank(method="min", na_option="bottom").astype(int)
    out = out.sort_values(["fidelity", "rank"], kind="stable").reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def best_per_column(table: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """For each fidelity (rows) and error column (columns), the model with the smallest value.

    Several heads of one model are told apart as ``model · head``. Yardstick rows compete where they are
    :func:`comparable` with the models (then ``"gfn2-xtb labels (no ML)"`` may be the best).
    """
    columns = list(columns) if columns is not None else error_columns(table)
    names = _row_names(table)
    out = {}
    for fid, group in table.groupby("fidelity", sort=False):
        best = {}
        for col in columns:
            values = group[col].astype(float).where(comparable(table, col).loc[group.index])
            best[col] = names[values.idxmin()] if values.notna().any() else None
        out[fid] = best
    return pd.DataFrame.from_dict(out, orient="index")[columns]


def _row_names(table: pd.DataFrame) -> pd.Series:
    several = table.groupby("model")["head"].transform("nunique") > 1
    return table["model"].where(~several, table["model"] + " · " + table["head"].astype(str))


def configuration_errors(
    models,
    dataset: Dataset,
    fidelities: Sequence[str] | None = None,
    units: str = "eV",
    energy_shift: str = "none",
) -> pd.DataFrame:
    """One row per (model, head, reference fidelity, configuration) that has an energy or force label.

    Columns: ``configuration`` (dataset index), ``formula``, ``n_atoms``, ``energy_reference``,
    ``energy_predicted``, ``energy_error``, ``energy_error_per_atom`` (NaN without an energy label),
    ``force_mae``, ``force_rmse`` (components) and ``force_max`` (largest per-atom error norm), NaN without forces.
    """
    scale = 1.0 / energy_factor(units)
    frames = []
    for r in all_residuals(models, dataset, fidelities, energy_shift):
        ev = r.evaluation
        n = len(dataset)
        table = pd.DataFrame(
            {"configuration": np.arange(n), "formula": dataset.info["formula"].to_numpy(), "n_atoms": dataset.n_atoms}
        )
        for col in ("energy_reference", "energy_predicted", "energy_error", "energy_error_per_atom"):
            table[col] = np.nan
        conf = r.energy_configurations
        table.loc[conf, "energy_reference"] = r.energy_reference * scale
        table.loc[conf, "energy_error"] = r.energy_error * scale
        table.loc[conf, "energy_predicted"] = (r.energy_reference + r.energy_error) * scale
        table.loc[conf, "energy_error_per_atom"] = r.energy_error * scale / r.n_atoms
        sq = np.bincount(r.atom_configuration, np.square(r.force_error).sum(axis=1), minlength=n)
        ab = np.bincount(r.atom_configuration, np.abs(r.force_error).sum(axis=1), minlength=n)
        count = np.bincount(r.atom_configuration, minlength=n) * 3
        norm_max = np.full(n, np.nan)
        np.fmax.at(norm_max, r.atom_configuration, np.linalg.norm(r.force_error, axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            table["force_mae"] = np.where(count > 0, ab / count, np.nan) * scale
            table["force_rmse"] = np.where(count > 0, np.sqrt(sq / count), np.nan) * scale
        table["force_max"] = norm_max * scale
        table = table[table["energy_error"].notna() | table["force_rmse"].notna()]
        table.insert(0, "fidelity", r.fidelity)
        table.insert(0, "head", ev.head)
        table.insert(0, "model", ev.model)
        frames.append(table)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["units"] = _units(units)
    return out


def _aligned(energies: np.ndarray, composition: np.ndarray) -> np.ndarray:
    """Energies ``(M, N)`` of M members, each shifted by per-element constants (least squares on composition)
    towards the members' mean: a constant offset between levels is not a disagreement about the surface."""
    centre = energies.mean(axis=0)
    out = energies.copy()
    for m in range(len(energies)):
        coef, *_ = np.linalg.lstsq(composition, energies[m] - centre, rcond=None)
        out[m] = energies[m] - composition @ coef
    return out


def disagreement(
    models, dataset: Dataset, fidelities: Sequence[str] | None = None, units: str = "eV", device: str | None = None
) -> pd.DataFrame:
    """Spread between heads or models on every configuration: a label-free, per-configuration uncertainty.

    Every head of every model is a member (restrict the heads with ``fidelities``; at least two members). Energies
    are first aligned per member by per-element constants, so the levels' different zeros do not count.
    Columns: ``configuration``, ``formula``, ``n_atoms``, ``energy_std`` (standard deviation over members, in
    ``units``), ``energy_std_per_atom``, ``force_std`` (root mean square over the atoms of the members' spread of
    the force vector, ``units``/Å) and ``force_std_max`` (largest per-atom spread) — the query-by-committee
    measure of e.g. Smith et al., J. Chem. Phys. 148, 241733 (2018).
    """
    members = evaluate(models, dataset, device=device, all_heads=True)
    if fidelities is not None:
        wanted = set(canonical_fidelities(fidelities))  # heads, which need not be levels of the dataset
        members = [m for m in members if m.head is None or m.head in wanted]
    if len(members) < 2:
        raise ValueError(f"disagreement needs at least two heads or models, got {[m.label for m in members]}")
    scale = 1.0 / energy_factor(units)
    energies = _aligned(np.stack([m.energy for m in members]), dataset.composition_matrix().astype(float))
    forces = np.stack([m.forces for m in members])  # (M, A, 3)
    spread = np.sqrt(forces.var(axis=0).sum(axis=1))  # (A,) length of the per-atom standard deviation vector
    n = len(dataset)
    atom_conf = np.repeat(np.arange(n), dataset.n_atoms)
    e_std = energies.std(axis=0) * scale
    rms = np.sqrt(np.bincount(atom_conf, spread**2, minlength=n) / np.maximum(dataset.n_atoms, 1)) * scale
    worst = np.zeros(n)
    np.maximum.at(worst, atom_conf, spread * scale)
    out = pd.DataFrame(
        {
            "configuration": np.arange(n),
            "formula": dataset.info["formula"].to_numpy(),
            "n_atoms": dataset.n_atoms,
            "energy_std": e_std,
            "energy_std_per_atom": e_std / dataset.n_atoms,
            "force_std": rms,
            "force_std_max": worst,
        }
    )
    out.attrs["units"] = _units(units)
    out.attrs["members"] = [m.label for m in members]
    return out


def worst_configurations(
    table_or_models,
    dataset: Dataset | None = None,
    n: int = 10,
    by: str | None = None,
    fidelities: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The ``n`` configurations with the largest error or disagreement, worst first: candidates for relabeling
    at the high level.

    Pass a table from :func:`configuration_errors` or :func:`disagreement`, or models and a dataset (then the
    errors are computed; ``by`` may be ``"disagreement"`` to rank by :func:`disagreement` ``force_std``). ``by``
    is a column (default ``force_rmse`` for errors, ``force_std`` for disagreement; energies rank by absolute
    value). With several models or fidelities in the table, each configuration counts with its worst row.
    """
    if isinstance(table_or_models, pd.DataFrame):
        table = table_or_models
    else:
        if dataset is None:
            raise ValueError("worst_configurations needs the dataset when given models")
        if by == "disagreement":
            table, by = disagreement(table_or_models, dataset, fidelities), "force_std"
        else:
            table = configuration_errors(table_or_models, dataset, fidelities)
    if by is None:
        by = "force_std" if "force_std" in table else "force_rmse"
        if table[by].isna().all():
            by = "energy_std_per_atom" if "energy_std_per_atom" in table else "energy_error_per_atom"
    if by not in table.columns:
        raise KeyError(f"no column {by!r}; choose from {list(table.columns)}")
    score = table[by].abs() if by.startswith("energy") else table[by]
    ranked = table.assign(score=score).dropna(subset=["score"])
    ranked = ranked.sort_values("score", ascending=False, kind="stable").drop_duplicates("configuration")
    out = ranked.head(n).reset_index(drop=True)
    out.attrs = dict(table.attrs)
    out.attrs["ranked_by"] = by
    return out
