"""Potential-energy scans in one or two coordinates, evaluated by any number of models and heads, with
reference points from a level of theory computed once and kept on disk.

>>> res = scan([model, "gfn2-xtb"], atoms, dihedral=(0, 1, 2, 3), values=range(0, 360, 10),
...            reference="b3lyp/6-31g*", reference_every=3)
>>> smoothness(res)          # deviation, spurious extrema, roughness relative to the reference
>>> viz.scan_figure(res)

Reference points go through the QM engine's labeling job (:func:`workbench.qm.label`), whose on-disk store is
keyed by the configuration (atomic numbers and positions to 1e-8 Å) and the level with all its settings, so a
scan asked for again, or extended, computes only what is new. Energies in eV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.calculator import Calculator

from ..qm import Level, label
from ..qm.store import default_cache
from ._models import predictors
from .coordinates import Coordinate, coordinate_from


@dataclass
class ScanResult:
    """A scan: the coordinates, the frames visited and every member's energies (eV).

    Attributes
    ----------
    coordinates
        One or two :class:`~workbench.analysis.coordinates.Coordinate`.
    frames
        The geometries, in row-major order over the grid (first coordinate slowest).
    energies
        ``(n_points, n_members)`` DataFrame of energies (eV), one column per model head (its label).
    reference
        ``(n_points,)`` reference energies (eV), NaN where not computed; None without a reference.
    reference_name
        The level (or calculator) that gave the reference.
    measured
        ``(n_points, n_coordinates)`` values of the coordinates measured in each frame (Å or degrees).
    reference_computed
        How many reference points were computed by this call (the rest came from the cache).
    """

    coordinates: list[Coordinate]
    frames: list[Atoms] = field(repr=False)
    energies: pd.DataFrame
    reference: np.ndarray | None = None
    reference_name: str | None = None
    measured: np.ndarray | None = field(default=None, repr=False)
    reference_computed: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(c.values) for c in self.coordinates)

    @property
    def members(self) -> list[str]:
        return list(self.energies.columns)

    def grid(self, values: np.ndarray) -> np.ndarray:
        """Per-point values reshaped to the scan's grid, e.g. ``(K1, K2)`` for a 2D scan."""
        return np.asarray(values).reshape(self.shape)

    def relative(self, align: str = "minimum") -> tuple[pd.DataFrame, np.ndarray | None]:
        """Energies relative to a zero that makes curves comparable (eV).

        ``align="minimum"``: each curve minus its own minimum. ``align="reference"``: each curve shifted by the
        constant that best matches the reference points (least squares), the reference minus its minimum.
        """
        if align not in ("minimum", "reference"):
            raise ValueError(f"align must be 'minimum' or 'reference', got {align!r}")
        have = np.isfinite(self.reference) if self.reference is not None else np.zeros(len(self.energies), bool)
        ref = self.reference - self.reference[have].min() if have.any() else None
        if align == "minimum" or ref is None:
            return self.energies - self.energies.min(), ref
        shift = (self.energies[have].to_numpy() - ref[have, None]).mean(axis=0)
        return self.energies - shift, ref

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per (point, member) with the coordinate values and the energy (eV); the reference
        appears as member ``"reference"``."""
        cols = {}
        axes = np.meshgrid(*[c.values for c in self.coordinates], indexing="ij")
        for c, axis in zip(self.coordinates, axes, strict=True):
            cols[c.name] = axis.ravel()
        base = pd.DataFrame(cols)
        base.insert(0, "point", np.arange(len(base)))
        parts = [base.assign(member=m, energy=self.energies[m].to_numpy()) for m in self.members]
        if self.reference is not None:
            parts.append(base.assign(member="reference", energy=self.reference))
        return pd.concat(parts, ignore_index=True)


def _coordinate(kwargs: dict, values, what: str) -> Coordinate:
    given = [(k, v) for k, v in kwargs.items() if v is not None]
    if len(given) != 1:
        raise ValueError(f"{what}: give exactly one of bond=, angle=, dihedral=, mode=; got {[k for k, _ in given]}")
    if values is None:
        raise ValueError(f"{what}: give the values to visit (Å for bonds and modes, degrees for angles)")
    kind, spec = given[0]
    return coordinate_from(kind, spec, values)


def frames_for(atoms: Atoms, coordinates: Sequence[Coordinate]) -> tuple[list[Atoms], np.ndarray]:
    """The geometries of a 1D or 2D scan from ``atoms`` and the coordinate values measured in each."""
    for c in coordinates:
        c.prepare(atoms)
    frames = []
    if len(coordinates) == 1:
        frames = [coordinates[0].apply(atoms, v) for v in coordinates[0].values]
    else:
        first, second = coordinates
        for v1 in first.values:
            row = first.apply(atoms, v1)
            frames.extend(second.apply(row, v2) for v2 in second.values)
    measured = np.array([[c.measure(f) for c in coordinates] for f in frames])
    return frames, measured


def reference_energies(
    frames: Sequence[Atoms],
    reference,
    cache: str | Path | None | bool = None,
    workers: int | None = None,
    progress=False,
) -> tuple[np.ndarray, str, int]:
    """Energies (eV) of ``frames`` with a reference, its name, and how many were computed now (not cached).

    ``reference`` is a level name or :class:`~workbench.qm.Level` (through the QM engine, cached in ``cache``: a
    directory, None for :func:`default_cache`, False for memory only), or any ASE calculator (computed directly).
    Failed calculations give NaN."""
    if isinstance(reference, Calculator):
        out = np.zeros(len(frames))
        for k, frame in enumerate(frames):
            a = frame.copy()
            a.calc = reference
            out[k] = a.get_potential_energy()
        name = getattr(getattr(reference, "level", None), "name", None) or type(reference).__name__
        return out, name, len(frames)
    level = reference if isinstance(reference, Level) else Level(reference)
    store = None if cache is False else Path(default_cache() if cache in (None, True) else cache) / "labels"
    job = label(
        list(frames), level, store=store, properties=("energy",), workers=workers, progress=progress, background=False
    )
    ds = job.result()
    energy, mask = ds.energy(level.name)
    return np.where(mask, energy, np.nan), level.name, int(job.n_computed)


def scan(
    models,
    atoms: Atoms,
    values=None,
    *,
    bond: Sequence[int] | None = None,
    angle: Sequence[int] | None = None,
    dihedral: Sequence[int] | None = None,
    mode=None,
    second: dict | None = None,
    fidelity: str | Sequence[str] | None = None,
    reference=None,
    reference_every: int = 1,
    cache: str | Path | None | bool = None,
    workers: int | None = None,
    device: str | None = None,
) -> ScanResult:
    """Scan the energy along one coordinate (or two, with ``second``) from the geometry ``atoms``.

    Parameters
    ----------
    models
        One or several models (every head of each, or those in ``fidelity``), ASE calculators or level names.
    atoms
        The starting configuration (Å); it is not modified.
    values
        Values to visit: Å for ``bond``, degrees for ``angle`` and ``dihedral``, Å of Cartesian displacement
        along the unit-norm mode vector for ``mode``.
    bond, angle, dihedral, mode
        Exactly one: 2, 3 or 4 atom indices, or for ``mode`` a displacement vector ``(n, 3)`` or
        ``(vibrations_result, k)`` for the k-th mode of :func:`~workbench.analysis.vibrations.vibrations`.
    second
        A second coordinate for a 2D scan, e.g. ``dict(bond=(0, 1), values=np.linspace(0.9, 1.2, 7))``.
    reference
        A level of theory (``"b3lyp/6-31g*"``, a :class:`~workbench.qm.Level`) or an ASE calculator whose energies
        are the reference points. Levels are cached on disk (``cache``, see :func:`reference_energies`).
    reference_every
        Compute the reference on every k-th value along each coordinate only (QM is expensive).
    workers
        Dask workers for the reference calculations (serial when None).
    """
    coords = [_coordinate({"bond": bond, "angle": angle, "dihedral": dihedral, "mode": mode}, values, "scan")]
    if second is not None:
        extra = dict(second)
        coords.append(_coordinate(extra, extra.pop("values", None), "second"))
    frames, measured = frames_for(atoms, coords)
    columns = {}
    for p in predictors(models, fidelity, device=device):
        columns[p.label], _ = p.evaluate_atoms(frames)
    energies = pd.DataFrame(columns)
    ref, ref_name, computed = None, None, 0
    if reference is not None:
        step = max(int(reference_every), 1)
        chosen = np.zeros(tuple(len(c.values) for c in coords), bool)
        chosen[tuple(slice(None, None, step) for _ in coords)] = True
        idx = np.flatnonzero(chosen.ravel())
        ref = np.full(len(frames), np.nan)
        ref[idx], ref_name, computed = reference_energies([frames[i] for i in idx], reference, cache, workers)
    return ScanResult(coords, frames, energies, ref, ref_name, measured, computed)
