"""Harmonic vibrational analysis: relax, Hessian, frequencies (cm^-1) and normal modes, for a model or a
level of theory, and the table that sets them side by side.

A model's Hessian is exact, by autograd through the network (:func:`workbench.models.ase_calculator.hessian`); an ASE
calculator's comes from central differences of its forces. Reference Hessians come from PySCF's analytic
second derivatives for HF and DFT or from central differences of the QM engine's gradients for other
levels (:func:`workbench.qm.hessian`), through :func:`workbench.qm.vibrations.reference_vibrations`, which
keeps them on disk, keyed by the starting geometry and the level with all its settings. Translations and
rotations are projected out of the mass-weighted Hessian before diagonalising (Wilson, Decius & Cross,
*Molecular Vibrations*, 1955). Units: eV/Å^2 for Hessians, cm^-1 for wavenumbers (imaginary ones as
negative numbers), Å for displacements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from ase import Atoms

from ..harmonic import STRETCH_REGIONS, VibrationsResult, harmonic_analysis, minimize, stretch_characters  # noqa: F401
from ..qm.vibrations import reference_vibrations  # noqa: F401  (wb.analysis.reference_vibrations)
from ._models import predictors


def vibrations(
    model,
    atoms: Atoms,
    fidelity: str | None = None,
    relax: bool = True,
    fmax: float = 1e-3,
    steps: int = 1000,
    device: str | None = None,
) -> VibrationsResult | list[VibrationsResult]:
    """Relax ``atoms`` with the model (BFGS to ``fmax`` eV/Å), then harmonic frequencies and modes at the minimum.

    ``model`` as for every analysis (a trained model, a workbench model and ``fidelity``, an ASE calculator, a level
    name). A model with several heads and no ``fidelity`` gives a list, one result per head.
    """
    heads = predictors(model, fidelity, device=device)
    out = []
    for head in heads:
        geometry, max_force = minimize(atoms, head.calculator(), fmax, steps if relax else 0)
        out.append(harmonic_analysis(geometry, head.hessian(geometry), head.label, max_force))
    return out[0] if len(out) == 1 else out


# --------------------------------------------------------------------------------------------- comparison
def _rotation_onto(moving: Atoms, fixed: Atoms) -> np.ndarray:
    """The rotation matrix that best superimposes ``moving`` on ``fixed`` (mass-weighted Kabsch, about the
    centres of mass; Kabsch, Acta Cryst. A32, 922 (1976))."""
    w = fixed.get_masses()[:, None]
    a = moving.positions - moving.get_center_of_mass()
    b = fixed.positions - fixed.get_center_of_mass()
    u, _, vt = np.linalg.svd((w * a).T @ b)
    sign = np.sign(np.linalg.det(u @ vt))
    return (u @ np.diag([1.0, 1.0, sign]) @ vt).T


#: Weight of the frequency term in :func:`match_modes`: pairing modes a factor e apart in frequency costs as much
#: as losing half of the overlap.
FREQUENCY_PENALTY = 0.5


def match_modes(result: VibrationsResult, reference: VibrationsResult) -> np.ndarray:
    """For each reference mode, the index of the model's mode that looks most like it, one-to-one: the largest
    overlap of the mass-weighted eigenvectors (after turning the model's geometry onto the reference's), less
    :data:`FREQUENCY_PENALTY` times ``|ln(ω_model / ω_ref)|``. The frequency term matters when the model relaxes to
    another conformer: there the hydroxyl's stretch and torsion both move mostly its hydrogen, in directions the
    rotation cannot bring together, and overlap alone can pair a 3500 cm^-1 stretch with a 300 cm^-1 torsion.
    Plain frequency order when the molecules or the mode counts differ."""
    from scipy.optimize import linear_sum_assignment

    m_ref, m = reference.mass_weighted.shape[1], result.mass_weighted.shape[1]
    same = np.array_equal(result.atoms.numbers, reference.atoms.numbers)
    if m != m_ref or not same:
        return np.arange(min(m, m_ref))
    rotation = _rotation_onto(result.atoms, reference.atoms)
    n = len(result.atoms)
    turned = (result.mass_weighted.T.reshape(m, n, 3) @ rotation.T).reshape(m, 3 * n).T
    overlap = np.abs(reference.mass_weighted.T @ turned)
    floor = 10.0  # cm^-1: keeps near-zero and imaginary (negative) wavenumbers finite in the logarithm
    ratio = np.log(np.maximum(np.abs(reference.frequencies), floor)[:, None])
    ratio = np.abs(ratio - np.log(np.maximum(np.abs(result.frequencies), floor)[None, :]))
    rows, cols = linear_sum_assignment(FREQUENCY_PENALTY * ratio - overlap)
    return cols[np.argsort(rows)]


def frequency_table(
    results: VibrationsResult | Sequence[VibrationsResult] | Mapping[str, VibrationsResult],
    reference: VibrationsResult | Mapping[str, VibrationsResult] | None = None,
    match: str = "overlap",
) -> pd.DataFrame:
    """Frequencies of several models side by side (cm^-1), with the reference and each model's error.

    One row per mode (of the reference, or of the first result): ``mode``, ``character`` (e.g. ``"C-H stretch"``,
    from the reference's mode shapes), ``reference``, then per model ``<name>`` and ``<name> error`` (model minus
    reference). ``match="overlap"`` pairs modes by shape (:func:`match_modes`), ``"order"`` by rank.

    ``reference`` may also give each model its own reference, ``{model name: reference}`` (a GFN2-xTB head against
    GFN2-xTB, an MP2 head against MP2): then each distinct reference has a column ``reference: <its name>``, the
    rows follow the first model's reference, the others are matched onto it like models, and each model's error is
    against its own reference. ``table.attrs["references"]`` names each model's reference column.
    """
    if isinstance(results, VibrationsResult):
        results = [results]
    named = dict(results) if isinstance(results, Mapping) else {r.name: r for r in results}
    if not named:
        raise ValueError("no vibrational results to tabulate")
    if isinstance(reference, Mapping):
        missing = [name for name in named if name not in reference]
        if missing:
            raise ValueError(f"no reference given for {missing}; references are given for {list(reference)}")
        return _table_per_reference(named, reference, match)
    base = reference if reference is not None else next(iter(named.values()))
    table = pd.DataFrame({"mode": np.arange(len(base.frequencies)), "character": base.characters})
    if reference is not None:
        table["reference"] = reference.frequencies
    for name, res in named.items():
        values = _matched(res, base, match if reference is not None else "order")
        table[name] = values
        if reference is not None:
            table[f"{name} error"] = values - reference.frequencies
    table.attrs["units"] = "cm^-1"
    table.attrs["models"] = list(named)
    if reference is not None:
        table.attrs["references"] = dict.fromkeys(named, "reference")
    return table


def _matched(result: VibrationsResult, base: VibrationsResult, match: str) -> np.ndarray:
    """``result``'s wavenumbers (cm^-1) in the order of ``base``'s modes (NaN where it has fewer modes)."""
    if match == "overlap":
        idx = match_modes(result, base)
    elif match == "order":
        idx = np.arange(min(len(result.frequencies), len(base.frequencies)))
    else:
        raise ValueError(f"match must be 'overlap' or 'order', got {match!r}")
    values = np.full(len(base.frequencies), np.nan)
    values[: len(idx)] = result.frequencies[idx]
    return values


def _table_per_reference(
    named: dict[str, VibrationsResult], references: Mapping[str, VibrationsResult], match: str
) -> pd.DataFrame:
    """:func:`frequency_table` with one reference per model."""
    columns: dict[int, str] = {}  # id(reference) -> its column (two references of one name: "#2")
    for name in named:
        ref = references[name]
        if id(ref) not in columns:
            column, k = f"reference: {ref.name}", 2
            while column in columns.values():
                column, k = f"reference: {ref.name} #{k}", k + 1
            columns[id(ref)] = column
    base = references[next(iter(named))]
    table = pd.DataFrame({"mode": np.arange(len(base.frequencies)), "character": base.characters})
    rows_of: dict[int, np.ndarray] = {}  # row k holds mode rows_of[id(ref)][k] of each reference
    for name in named:
        ref = references[name]
        if id(ref) not in rows_of:
            same = ref is base or match == "order"
            rows_of[id(ref)] = (
                np.arange(min(len(ref.frequencies), len(base.frequencies))) if same else match_modes(ref, base)
            )
            table[columns[id(ref)]] = _matched(ref, base, "order" if ref is base else match)
    for name, res in named.items():
        ref = references[name]
        idx = rows_of[id(ref)]
        values = np.full(len(base.frequencies), np.nan)
        values[: len(idx)] = _matched(res, ref, match)[idx]  # the model's modes paired with ref's, in row order
        table[name] = values
        table[f"{name} error"] = values - table[columns[id(ref)]].to_numpy()
    table.attrs["units"] = "cm^-1"
    table.attrs["models"] = list(named)
    table.attrs["references"] = {name: columns[id(references[name])] for name in named}
    return table


def frequency_errors(result: VibrationsResult, reference: VibrationsResult, match: str = "overlap") -> dict:
    """Per-mode harmonic frequency errors of ``result`` against ``reference``, in cm^-1.

    Modes are paired by shape (:func:`match_modes`; ``match="order"`` pairs them by rank). Returns a dict:

    - ``mae``: mean of ``|model − reference|`` over the paired modes (cm^-1),
    - ``max_abs``: the largest ``|model − reference|`` (cm^-1),
    - ``worst_mode``: the reference mode where that largest error is,
    - ``table``: one row per reference mode, ``mode``, ``character``, ``reference``, ``frequency`` (the model's
      paired mode) and ``error`` (model − reference), all cm^-1; NaN where the model has no mode to pair.
    """
    values = _matched(result, reference, match)
    table = pd.DataFrame(
        {
            "mode": np.arange(len(reference.frequencies)),
            "character": reference.characters,
            "reference": reference.frequencies,
            "frequency": values,
            "error": values - reference.frequencies,
        }
    )
    table.attrs["units"] = "cm^-1"
    table.attrs["model"], table.attrs["reference"] = result.name, reference.name
    errors = np.abs(table["error"].to_numpy())
    if np.all(np.isnan(errors)):
        raise ValueError(f"{result.name!r} has no mode to pair with those of the reference {reference.name!r}")
    worst = int(np.nanargmax(errors))
    return {"mae": float(np.nanmean(errors)), "max_abs": float(errors[worst]), "worst_mode": worst, "table": table}


def reorder_atoms(result: VibrationsResult, order: Sequence[int]) -> VibrationsResult:
    """The same vibrations with the atoms relabelled: atom ``k`` of the new result is atom ``order[k]`` of
    ``result`` (the Hessian's 3x3 blocks permuted alike), so that it can be compared with a model that numbers
    the atoms of the molecule in another order (see :func:`workbench.analysis.atom_correspondence`)."""
    order = np.asarray(order, dtype=int)
    n = len(result.atoms)
    if sorted(order.tolist()) != list(range(n)):
        raise ValueError(f"order must be a permutation of the {n} atoms, got {order.tolist()}")
    atoms = Atoms(numbers=result.atoms.numbers[order], positions=result.atoms.positions[order])
    idx = (3 * order[:, None] + np.arange(3)).ravel()
    out = harmonic_analysis(atoms, result.hessian[np.ix_(idx, idx)], result.name, result.max_force)
    out.provenance = dict(result.provenance)
    return out


def mode_trajectory(result: VibrationsResult, mode: int, amplitude: float = 0.25, n_frames: int = 24) -> list[Atoms]:
    """Frames of one period of ``mode``: ``x0 + amplitude sin(2πk/n_frames) d`` with ``d`` scaled so that the
    atom that moves most moves ``amplitude`` Å. Every frame carries the displacement (Å) in
    ``atoms.arrays["mode"]`` for drawing arrows, and the wavenumber in ``atoms.info["frequency_cm-1"]``."""
    d = result.modes[int(mode)]
    d = d / np.linalg.norm(d, axis=1).max()
    frames = []
    for k in range(n_frames):
        a = Atoms(
            numbers=result.atoms.numbers,
            positions=result.atoms.positions + amplitude * np.sin(2 * np.pi * k / n_frames) * d,
        )
        a.arrays["mode"] = amplitude * d
        a.info["frequency_cm-1"] = float(result.frequencies[int(mode)])
        a.info["mode"] = int(mode)
        frames.append(a)
    return frames
