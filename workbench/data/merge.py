"""Matching geometries: merging files that label the same configurations at different levels.

Two configurations match when they have the same atoms in the same order and every coordinate
agrees within a tolerance (Å). Candidates are found without comparing all pairs: each configuration
is projected onto one fixed random direction in coordinate space, the projections are sorted, and
only neighbours closer than the tolerance allows are compared in full. The cost is one pass over the
atoms plus a sort of ``N`` numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .dataset import Dataset, Labels, concatenate
from .errors import DatasetError

_CHUNK_CONFIGURATIONS = 1 << 13


def _projections(ds: Dataset, n_directions: int = 4, seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:
    """``(N, n_directions)`` projections of each configuration, and per direction the largest
    change a coordinate tolerance of 1 Å may cause in it."""
    max_n = int(ds.n_atoms.max()) if len(ds) else 0
    rng = np.random.default_rng(seed)
    directions = rng.uniform(-1.0, 1.0, size=(max_n * 3, n_directions))
    # Atomic numbers enter too, so different molecules rarely land side by side.
    number_weight = rng.uniform(1.0, 2.0, size=(max_n, n_directions)) * 1e3
    proj = np.zeros((len(ds), n_directions))
    # Configurations of equal size are projected together with one matrix product, a chunk at a
    # time, so temporaries stay small even for millions of configurations.
    for lo in range(0, len(ds), _CHUNK_CONFIGURATIONS):
        chunk = np.arange(lo, min(lo + _CHUNK_CONFIGURATIONS, len(ds)))
        sizes = ds.n_atoms[chunk]
        for n in np.unique(sizes):
            if n == 0:
                continue
            sel = chunk[sizes == n]
            atoms = ds.ptr[sel][:, None] + np.arange(n)
            proj[sel] = ds.positions[atoms].reshape(len(sel), 3 * n) @ directions[: 3 * n]
            proj[sel] += ds.numbers[atoms] @ number_weight[:n]
    return proj, np.abs(directions).sum(axis=0)


def find_duplicates(ds: Dataset, tolerance: float = 1e-4) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, of configurations with the same atoms within ``tolerance`` (Å)."""
    if len(ds) < 2:
        return np.zeros((0, 2), np.int64)
    proj, spread = _projections(ds)
    window = tolerance * spread * (1 + 1e-9) + 1e-9
    order = np.argsort(proj[:, 0], kind="stable")
    first = proj[order, 0]
    pairs = []
    # Positions k whose neighbour k + shift is still within the window along the sorted direction;
    # the set only shrinks as the shift grows, so the total work is the number of candidates.
    active = np.arange(len(ds) - 1, dtype=np.int32 if len(ds) < 2**31 else np.int64)
    for shift in range(1, len(ds)):
        active = active[active + shift < len(ds)]
        active = active[first[active + shift] - first[active] <= window[0]]
        if len(active) == 0:
            break
        for lo in range(0, len(active), _CHUNK_CONFIGURATIONS):  # bounded temporaries
            a = order[active[lo : lo + _CHUNK_CONFIGURATIONS]]
            b = order[active[lo : lo + _CHUNK_CONFIGURATIONS] + shift]
            near = np.all(np.abs(proj[a, 1:] - proj[b, 1:]) <= window[1:], axis=1)
            for i, j in zip(a[near], b[near], strict=True):
                if _same_geometry(ds, i, j, tolerance):
                    pairs.append((min(i, j), max(i, j)))
    return np.asarray(sorted(pairs), np.int64).reshape(-1, 2)


def _same_geometry(ds: Dataset, a: int, b: int, tolerance: float) -> bool:
    sa = slice(ds.ptr[a], ds.ptr[a + 1])
    sb = slice(ds.ptr[b], ds.ptr[b + 1])
    if ds.n_atoms[a] != ds.n_atoms[b] or not np.array_equal(ds.numbers[sa], ds.numbers[sb]):
        return False
    return bool(np.max(np.abs(ds.positions[sa] - ds.positions[sb]), initial=0.0) <= tolerance)


def _where(ds: Dataset, i: int) -> tuple[str | None, int]:
    """(source file, index in it) of configuration ``i``, as far as the info table knows."""
    info = ds.info.iloc[i]
    return (str(info["source"]) if "source" in info else None), int(info.get("source_index", i))


def _describe(ds: Dataset, i: int) -> str:
    file, index = _where(ds, i)
    return f"configuration {index}" + (f" of {file}" if file else "")


def _conflicts(ds: Dataset, pairs: np.ndarray, energy_atol: float, forces_atol: float) -> None:
    for a, b in pairs:
        for name, lab in ds.labels.items():
            if lab.energy_mask[a] and lab.energy_mask[b] and abs(lab.energy[a] - lab.energy[b]) > energy_atol:
                file, index = _where(ds, b)
                raise DatasetError(
                    f"the same geometry appears twice with different {name} energies: "
                    f"{lab.energy[a]:.6f} eV ({_describe(ds, a)}) vs {lab.energy[b]:.6f} eV ({_describe(ds, b)})",
                    file=file,
                    configuration=index,
                )
            if lab.forces_mask[a] and lab.forces_mask[b]:
                fa = lab.forces[ds.ptr[a] : ds.ptr[a + 1]]
                fb = lab.forces[ds.ptr[b] : ds.ptr[b + 1]]
                diff = float(np.max(np.abs(fa - fb)))
                if diff > forces_atol:
                    file, index = _where(ds, b)
                    raise DatasetError(
                        f"the same geometry appears twice with {name} forces differing by up to {diff:.6f} eV/Å "
                        f"({_describe(ds, a)} and {_describe(ds, b)})",
                        file=file,
                        configuration=index,
                    )


def check_conflicts(
    ds: Dataset, tolerance: float = 1e-4, energy_atol: float = 1e-4, forces_atol: float = 1e-3
) -> np.ndarray:
    """Raise :class:`DatasetError` if a geometry appears twice with different labels at one level.

    Returns the duplicate pairs found (identical duplicates are allowed and kept).
    ``energy_atol`` in eV, ``forces_atol`` in eV/Å.
    """
    pairs = find_duplicates(ds, tolerance)
    _conflicts(ds, pairs, energy_atol, forces_atol)
    return pairs


def merge(
    datasets: Sequence[Dataset], tolerance: float = 1e-4, energy_atol: float = 1e-4, forces_atol: float = 1e-3
) -> Dataset:
    """One Dataset from several that label (partly) the same geometries.

    Matching configurations (same atoms, coordinates within ``tolerance`` Å) become one, in the
    order of first appearance, carrying the labels of all; a label present twice must agree within
    ``energy_atol`` (eV) / ``forces_atol`` (eV/Å), otherwise :class:`DatasetError` names both places.
    """
    combined = concatenate(datasets)
    pairs = check_conflicts(combined, tolerance, energy_atol, forces_atol)
    if len(pairs) == 0:
        return combined
    # Union-find: every configuration points to the first of its duplicate group.
    root = np.arange(len(combined))

    def find(i):
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for a, b in pairs:
        ra, rb = find(a), find(b)
        root[max(ra, rb)] = min(ra, rb)
    root = np.asarray([find(i) for i in range(len(combined))])
    keep = np.flatnonzero(root == np.arange(len(combined)))
    out = combined.select(keep)
    new_index = np.full(len(combined), -1)
    new_index[keep] = np.arange(len(keep))
    target = new_index[root]
    for name, lab in combined.labels.items():
        o = out.labels[name]
        energy, emask = o.energy.copy(), o.energy_mask.copy()
        forces = (
            None
            if lab.forces is None
            else (o.forces.copy() if o.forces is not None else np.full((len(out.numbers), 3), np.nan, lab.forces.dtype))
        )
        fmask = o.forces_mask.copy()
        for i in np.flatnonzero(root != np.arange(len(combined))):
            t = target[i]
            if lab.energy_mask[i] and not emask[t]:
                energy[t], emask[t] = lab.energy[i], True
            if lab.forces_mask[i] and not fmask[t]:
                forces[out.ptr[t] : out.ptr[t + 1]] = lab.forces[combined.ptr[i] : combined.ptr[i + 1]]
                fmask[t] = True
        out.labels[name] = Labels(energy, emask, forces if fmask.any() else None, fmask)
    out.provenance.append(
        {
            "note": f"merged {len(datasets)} files: "
            f"{len(combined) - len(keep)} configurations matched within {tolerance} Å"
        }
    )
    return out
