"""Smoothness scores of scanned potential-energy curves and surfaces, in words a student can read.

For each model head of a :class:`~workbench.analysis.pes.ScanResult`:

- ``rmse`` and ``max_deviation``: how far the curve is from the reference points once the best constant shift
  is removed (only energy differences along the path are physical);
- ``n_extrema`` against ``n_extrema_reference``, and ``spurious_extrema`` / ``missing_extrema``: minima and
  maxima the reference does not have (wiggles, the classic failure of a poorly fitted potential) or that the
  model lost; changes smaller than ``tolerance`` are treated as flat;
- ``roughness``: the integrated squared second derivative ∫ (d²E/dx²)² dx (for a surface, the thin-plate energy
  ∫∫ E_xx² + 2 E_xy² + E_yy²), and ``roughness_ratio`` = roughness / the reference's: 1 is as smooth as the
  reference, 10 is ten times as wiggly.

Scores are invariant to rotating or translating the molecule, because the energies are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline

from ..data.units import energy_factor
from .pes import ScanResult


def _second_differences(x: np.ndarray, y: np.ndarray, axis: int = 0) -> np.ndarray:
    """Second derivative at the interior points along ``axis`` of a possibly non-uniform grid ``x``."""
    y = np.moveaxis(y, axis, 0)
    h = np.diff(x).reshape((-1,) + (1,) * (y.ndim - 1))
    d2 = 2.0 * ((y[2:] - y[1:-1]) / h[1:] - (y[1:-1] - y[:-2]) / h[:-1]) / (h[1:] + h[:-1])
    return np.moveaxis(d2, 0, axis)


def roughness_1d(x, y, periodic: bool = False, period: float = 360.0) -> float:
    """∫ (d²y/dx²)² dx by finite differences (units of y² per x³): over the interior points (the trapezoid rule),
    or over the whole turn when ``periodic``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return float("nan")
    if periodic:
        xp = np.concatenate([[x[-1] - period], x, [x[0] + period]])
        d2 = _second_differences(xp, np.concatenate([[y[-1]], y, [y[0]]]))
        return float(np.sum(d2**2 * 0.5 * (xp[2:] - xp[:-2])))
    return float(np.trapezoid(_second_differences(x, y) ** 2, x[1:-1]))


def count_extrema_1d(y, periodic: bool = False, tolerance: float = 0.0) -> int:
    """Number of local minima and maxima of a sampled curve; steps smaller than ``tolerance`` count as flat."""
    y = np.asarray(y, float)
    d = np.diff(np.concatenate([y, y[:1]])) if periodic else np.diff(y)
    s = np.sign(d)
    s = s[np.abs(d) > tolerance]
    if len(s) < 2:
        return 0
    if periodic:
        return int(np.sum(s != np.roll(s, 1)))
    return int(np.sum(s[1:] != s[:-1]))


def count_extrema_2d(z, tolerance: float = 0.0, periodic: tuple[bool, bool] = (False, False)) -> int:
    """Number of strict local minima and maxima of a gridded surface (8 neighbours; edges only along periodic
    axes), differences smaller than ``tolerance`` treated as flat."""
    z = np.asarray(z, float)
    pad = np.pad(z, 1, mode="constant", constant_values=np.nan)
    if periodic[0]:
        pad[0, 1:-1], pad[-1, 1:-1] = z[-1], z[0]
    if periodic[1]:
        pad[1:-1, 0], pad[1:-1, -1] = z[:, -1], z[:, 0]
    if all(periodic):
        pad[0, 0], pad[0, -1], pad[-1, 0], pad[-1, -1] = z[-1, -1], z[-1, 0], z[0, -1], z[0, 0]
    n1, n2 = z.shape
    lower = np.ones_like(z, bool)
    higher = np.ones_like(z, bool)
    valid = np.ones_like(z, bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == dj == 0:
                continue
            nb = pad[1 + di : 1 + di + n1, 1 + dj : 1 + dj + n2]
            valid &= np.isfinite(nb)
            lower &= ~(nb < z + tolerance)  # every neighbour at least tolerance above: a minimum
            higher &= ~(nb > z - tolerance)
    return int(np.sum(valid & (lower | higher)))


def roughness_2d(x1, x2, z) -> float:
    """Thin-plate energy ∫∫ (z_11² + 2 z_12² + z_22²) dx1 dx2 over the interior of a rectangular grid."""
    x1, x2, z = np.asarray(x1, float), np.asarray(x2, float), np.asarray(z, float)
    if min(z.shape) < 3:
        return float("nan")
    z11 = _second_differences(x1, z, axis=0)[:, 1:-1]
    z22 = _second_differences(x2, z, axis=1)[1:-1, :]
    z12 = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / np.outer(x1[2:] - x1[:-2], x2[2:] - x2[:-2])
    density = z11**2 + 2 * z12**2 + z22**2
    return float(np.trapezoid(np.trapezoid(density, x2[1:-1], axis=1), x1[1:-1]))


def _reference_on_grid(x: np.ndarray, ref: np.ndarray, periodic: bool) -> np.ndarray:
    """The reference on every scan point: itself where computed, a cubic spline through its points elsewhere."""
    have = np.isfinite(ref)
    if have.all() or have.sum() < 4:
        return ref
    xs, ys = x[have], ref[have]
    if periodic:
        spline = CubicSpline(np.append(xs, xs[0] + 360.0), np.append(ys, ys[0]), bc_type="periodic")
        return spline((x - xs[0]) % 360.0 + xs[0])
    return np.where(have, ref, CubicSpline(xs, ys)(x))


def smoothness(result: ScanResult, units: str = "eV", tolerance: float = 1e-4) -> pd.DataFrame:
    """Scores per model head (rows) of a scan; see the module docstring for the columns.

    ``units`` is the energy unit of ``rmse``, ``max_deviation`` and the roughness values; ``tolerance`` (eV) is
    the smallest energy step that counts when finding extrema. Without a reference, the reference columns are
    NaN. A 2D scan with a sparse reference is compared on the reference's sub-grid.
    """
    scale = 1.0 / energy_factor(units)
    ref = result.reference
    have = np.isfinite(ref) if ref is not None else None
    rows = {}
    for member in result.members:
        e = result.energies[member].to_numpy()
        row = {}
        if ref is not None and have.any():
            diff = e[have] - ref[have]
            diff = diff - diff.mean()
            row["rmse"] = float(np.sqrt(np.mean(diff**2))) * scale
            row["max_deviation"] = float(np.abs(diff).max()) * scale
        else:
            row["rmse"] = row["max_deviation"] = np.nan
        if len(result.coordinates) == 1:
            row.update(_scores_1d(result, e, tolerance))
        else:
            row.update(_scores_2d(result, e, tolerance))
        for key in ("roughness", "roughness_reference"):
            row[key] = row[key] * scale**2
        rows[member] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out["spurious_extrema"] = (out["n_extrema"] - out["n_extrema_reference"]).clip(lower=0)
    out["missing_extrema"] = (out["n_extrema_reference"] - out["n_extrema"]).clip(lower=0)
    out["roughness_ratio"] = out["roughness"] / out["roughness_reference"]
    order = [
        "rmse",
        "max_deviation",
        "n_extrema",
        "n_extrema_reference",
        "spurious_extrema",
        "missing_extrema",
        "roughness",
        "roughness_reference",
        "roughness_ratio",
    ]
    out = out[order]
    out.index.name = "model"
    c = result.coordinates
    x_unit = c[0].unit if len(c) == 1 else f"{c[0].unit}·{c[1].unit}"
    out.attrs["units"] = {"energy": units, "roughness": f"{units}²/{x_unit}³" if len(c) == 1 else f"{units}²·…"}
    return out


def _scores_1d(result: ScanResult, e: np.ndarray, tolerance: float) -> dict:
    coord = result.coordinates[0]
    x, periodic = coord.values, coord.periodic
    row = {"n_extrema": count_extrema_1d(e, periodic, tolerance), "roughness": roughness_1d(x, e, periodic)}
    ref = result.reference
    if ref is None or not np.isfinite(ref).any():
        row.update(n_extrema_reference=np.nan, roughness_reference=np.nan)
        return row
    have = np.isfinite(ref)
    sub_periodic = periodic and _closes_turn(x[have])
    row["n_extrema_reference"] = count_extrema_1d(ref[have], sub_periodic, tolerance)
    row["roughness_reference"] = roughness_1d(x, _reference_on_grid(x, ref, periodic), periodic)
    return row


def _closes_turn(x: np.ndarray) -> bool:
    step = np.diff(x)
    return len(x) > 2 and np.allclose(step, step[0]) and abs(x[-1] + step[0] - x[0] - 360.0) < 1e-6


def _scores_2d(result: ScanResult, e: np.ndarray, tolerance: float) -> dict:
    c1, c2 = result.coordinates
    z = result.grid(e)
    ref = result.reference
    if ref is None or not np.isfinite(ref).any():
        wrap = (c1.periodic, c2.periodic)
        return {
            "n_extrema": count_extrema_2d(z, tolerance, wrap),
            "roughness": roughness_2d(c1.values, c2.values, z),
            "n_extrema_reference": np.nan,
            "roughness_reference": np.nan,
        }
    have = result.grid(np.isfinite(ref))
    rows, cols = np.flatnonzero(have.any(axis=1)), np.flatnonzero(have.any(axis=0))
    x1, x2 = c1.values[rows], c2.values[cols]
    zr = result.grid(ref)[np.ix_(rows, cols)]
    zm = z[np.ix_(rows, cols)]
    wrap = (c1.periodic and _closes_turn(x1), c2.periodic and _closes_turn(x2))
    return {
        "n_extrema": count_extrema_2d(zm, tolerance, wrap),
        "roughness": roughness_2d(x1, x2, zm),
        "n_extrema_reference": count_extrema_2d(zr, tolerance, wrap),
        "roughness_reference": roughness_2d(x1, x2, zr),
    }
