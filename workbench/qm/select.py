"""Choosing which configurations get the expensive labels: random, or farthest-point sampling in a
descriptor space, so that a small budget covers the sampled geometries evenly."""

from __future__ import annotations

import numpy as np

from ..data.dataset import Dataset

DESCRIPTORS = ("auto", "inverse_distances", "sorted_inverse_distances", "coulomb_eigenvalues")


def _same_atoms(ds: Dataset) -> bool:
    sizes = ds.n_atoms
    if len(ds) == 0 or np.any(sizes != sizes[0]):
        return False
    return bool(np.all(ds.numbers.reshape(len(ds), -1) == ds.numbers[: sizes[0]]))


def descriptors(ds: Dataset, kind: str = "auto") -> np.ndarray:
    """``(N, d)`` descriptor vectors of the configurations.

    ``inverse_distances``: 1/r_ij (Å⁻¹) for every atom pair in the stored order (all
    configurations must have the same atoms in the same order, as along an MD run).
    ``sorted_inverse_distances``: the same values sorted per configuration (invariant to atom
    order), zero-padded. ``coulomb_eigenvalues``: sorted eigenvalues of the Coulomb matrix
    (M. Rupp et al., Phys. Rev. Lett. 108, 058301 (2012); Z_i Z_j / r_ij with r in Å and
    0.5 Z_i^2.4 on the diagonal), zero-padded. ``auto``: inverse distances when every
    configuration has the same atoms in the same order, Coulomb eigenvalues otherwise.
    """
    if kind not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor {kind!r}; choose from {DESCRIPTORS}")
    if kind == "auto":
        kind = "inverse_distances" if _same_atoms(ds) else "coulomb_eigenvalues"
    if kind == "inverse_distances":
        if not _same_atoms(ds):
            raise ValueError("inverse_distances needs the same atoms in the same order in every configuration")
        n = int(ds.n_atoms[0])
        r = ds.positions.reshape(len(ds), n, 3).astype(np.float64)
        iu = np.triu_indices(n, 1)
        d = np.linalg.norm(r[:, iu[0]] - r[:, iu[1]], axis=-1)
        return 1.0 / d
    width = int(ds.n_atoms.max()) if len(ds) else 0
    if kind == "sorted_inverse_distances":
        width = width * (width - 1) // 2
    out = np.zeros((len(ds), width))
    for i in range(len(ds)):
        lo, hi = ds.ptr[i], ds.ptr[i + 1]
        r = ds.positions[lo:hi].astype(np.float64)
        dist = np.linalg.norm(r[:, None] - r[None], axis=-1)
        if kind == "sorted_inverse_distances":
            v = np.sort(1.0 / dist[np.triu_indices(hi - lo, 1)])[::-1]
        else:
            z = ds.numbers[lo:hi].astype(np.float64)
            with np.errstate(divide="ignore"):
                cm = np.outer(z, z) / dist
            np.fill_diagonal(cm, 0.5 * z**2.4)
            v = np.sort(np.linalg.eigvalsh(cm))[::-1]
        out[i, : len(v)] = v
    return out


def farthest_point(x: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Greedy farthest-point sampling: ``n`` row indices of ``x``, each the farthest (Euclidean)
    from those already chosen, beginning at ``start``. Any prefix of the result is itself a
    farthest-point choice, so nested budgets (300 then the first 200) stay consistent."""
    n = min(int(n), len(x))
    chosen = np.empty(n, dtype=np.int64)
    if n == 0:
        return chosen
    chosen[0] = start
    nearest = np.linalg.norm(x - x[start], axis=1)
    for k in range(1, n):
        chosen[k] = int(np.argmax(nearest))
        nearest = np.minimum(nearest, np.linalg.norm(x - x[chosen[k]], axis=1))
    return chosen


def choose(
    ds: Dataset,
    n: int,
    method: str = "fps",
    descriptor: str = "auto",
    among=None,
    seed: int = 0,
) -> np.ndarray:
    """Indices (into ``ds``) of ``n`` configurations for an expensive level, in the order chosen.

    ``method``: ``"fps"`` (farthest-point sampling in ``descriptor`` space, starting from a
    seeded random configuration) or ``"random"``. ``among`` restricts the choice to these indices.
    """
    pool = np.arange(len(ds)) if among is None else ds._as_index(among)
    if n > len(pool):
        raise ValueError(f"cannot choose {n} configurations out of {len(pool)}")
    rng = np.random.default_rng(seed)
    if method == "random":
        return pool[rng.permutation(len(pool))[:n]]
    if method != "fps":
        raise ValueError(f"unknown method {method!r}; choose 'fps' or 'random'")
    x = descriptors(ds.select(pool), descriptor)
    return pool[farthest_point(x, n, start=int(rng.integers(len(pool))))]
