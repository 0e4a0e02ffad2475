"""Which candidates to label: a score per configuration, and a batch of high scores that are not near-duplicates.

Criteria (:data:`CRITERIA`):

- ``disagreement``: the spread of the predictions of an ensemble (several seeds or families; eV/Å for forces,
  eV/atom for energies), or of the heads of one model after per-element offsets between the levels are taken
  out (eV/atom): query by committee (Seung, Opper & Sompolinsky, COLT 1992).
- ``variance``: the model's own predictive variance from its last-layer gradient features,
  ``g(x)^T (G^T G + λ I)^{-1} g(x)`` with ``G`` the features of the training configurations (optimal
  experimental design: Zaverkin & Kästner, Mach. Learn.: Sci. Technol. 2, 035009 (2021)). No ensemble is
  needed; batches are chosen greedily, each choice added to ``G`` before the next, which keeps a batch diverse.
- ``error``: the model's error where the candidates carry labels at the level (eV/atom, or the forces MAE in eV/Å
  when there are forces), e.g. the worst configurations of a comparison.
- ``random``: the baseline every criterion is judged against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data.dataset import Dataset
from ..models.batch import Batch
from ..qm.select import descriptors

CRITERIA = ("disagreement", "variance", "error", "random")


# ----------------------------------------------------------------------------- scores
def _per_atom(ds: Dataset) -> np.ndarray:
    return np.asarray(ds.n_atoms, float)


def disagreement(models: Sequence, candidates: Dataset, quantity: str = "forces") -> np.ndarray:
    """``(N,)`` spread of the predictions: of the target heads of several models, or of the heads of one model.

    For an ensemble and ``quantity="forces"``: the root-mean-square over atoms of the standard deviation of the
    force vectors across members (eV/Å); ``"energy"``: the standard deviation of the energies per atom
    (eV/atom). The heads of one model predict different levels, so their energies differ by a smooth
    per-element offset that is no sign of error: it is fitted (least squares on the composition) and taken out
    before the spread of the energies per atom is taken.
    """
    models = list(models)
    if len(models) >= 2:
        preds = [m.predict(candidates, forces=quantity == "forces") for m in models]
        if quantity == "forces":
            f = np.stack([p["forces"] for p in preds])  # (M, A, 3)
            spread = ((f - f.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0)  # (A,)
            per_config = np.add.reduceat(spread, candidates.ptr[:-1]) / _per_atom(candidates)
            return np.sqrt(per_config)
        e = np.stack([p["energy"] for p in preds]) / _per_atom(candidates)
        return e.std(axis=0)
    if len(models) != 1:
        raise ValueError("disagreement needs several models (an ensemble) or one model with several heads")
    model = models[0]
    if len(model.fidelities) < 2:
        raise ValueError(
            f"disagreement: the model has one head ({model.fidelities}); pass an ensemble (several models), "
            "train with finetune_lr_factor=None to keep every head, or use criterion='variance'"
        )
    energies = np.stack([model.predict(candidates, f, forces=False)["energy"] for f in model.fidelities])
    composition = candidates.composition_matrix().astype(float)
    target = energies[-1]
    centred = [target]
    for e in energies[:-1]:
        offset, *_ = np.linalg.lstsq(composition, e - target, rcond=None)
        centred.append(e - composition @ offset)
    return np.stack(centred).std(axis=0) / _per_atom(candidates)


def last_layer_features(model, ds: Dataset, fidelity: str | None = None, batch_size: int = 256) -> np.ndarray:
    """``(N, H + 1)`` gradients of each configuration's energy with respect to the last layer of the head's
    readout (its weights and bias), up to the head's constant energy scale: the sum over atoms of the inputs
    of that layer, and the number of atoms."""
    module = model.module.eval()
    name = model._fidelity(fidelity)
    k = module.fidelity_index(name)
    readouts = module.heads.readouts
    last = readouts[0 if module.heads.shared else k][-1]
    captured = []
    hook = last.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0].detach()))
    device = next(module.parameters()).device
    dtype = next(p.dtype for n, p in module.named_parameters() if not n.endswith("references"))
    out = []
    try:
        with torch.no_grad():
            for lo in range(0, len(ds), batch_size):
                hi = min(lo + batch_size, len(ds))
                a, b = ds.ptr[lo], ds.ptr[hi]
                batch = Batch.from_arrays(ds.numbers[a:b], ds.positions[a:b], ds.ptr[lo : hi + 1] - a, device, dtype)
                captured.clear()
                module(batch, [name])
                h = captured[-1].double()  # (A, H): the target's own readout ran last for this head
                summed = torch.zeros(hi - lo, h.shape[1], dtype=h.dtype, device=h.device)
                summed.index_add_(0, batch.configuration, h)
                counts = torch.as_tensor(ds.n_atoms[lo:hi], dtype=h.dtype, device=h.device)[:, None]
                out.append(torch.cat([summed, counts], dim=1).cpu().numpy())
    finally:
        hook.remove()
    return np.concatenate(out) if out else np.zeros((0, last.in_features + 1))


def _inverse_information(train_features: np.ndarray, ridge: float) -> np.ndarray:
    a = train_features.T @ train_features
    lam = ridge * max(np.trace(a) / len(a), 1e-12)
    return np.linalg.inv(a + lam * np.eye(len(a)))


def variance(model, candidates: Dataset, train: Dataset, fidelity: str | None = None, ridge: float = 1e-6):
    """``(N,)`` predictive variance of each candidate from last-layer gradient features of the ``fidelity`` head
    (default: the target), relative to the training configurations (relative units: the head's energy scale
    squared is left out, which changes no ranking)."""
    g = last_layer_features(model, candidates, fidelity)
    inverse = _inverse_information(last_layer_features(model, train, fidelity), ridge)
    return np.einsum("ij,jk,ik->i", g, inverse, g)


def errors(model, candidates: Dataset, level: str) -> np.ndarray:
    """``(N,)`` the model's error against the candidates' labels at ``level``: the forces MAE (eV/Å) where the
    configuration has forces, else the energy error per atom (eV/atom); NaN where it has neither. The model
    and the level must share their energy zero (the same fidelity, or a model of it)."""
    lab = candidates.labels[level]
    pred = model.predict(candidates, forces=bool(lab.forces_mask.any()))
    out = np.full(len(candidates), np.nan)
    e = np.abs(pred["energy"] - lab.energy) / _per_atom(candidates)
    out[lab.energy_mask] = e[lab.energy_mask]
    if lab.forces is not None and lab.forces_mask.any():
        per_atom = np.abs(pred["forces"] - lab.forces).mean(axis=1)
        per_config = np.add.reduceat(np.nan_to_num(per_atom), candidates.ptr[:-1]) / _per_atom(candidates)
        out[lab.forces_mask] = per_config[lab.forces_mask]
    return out


# ----------------------------------------------------------------------------- batches
def diverse_batch(scores: np.ndarray, features: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` indices of high ``scores`` that are not near-duplicates: greedily the largest score times
    ``min(1, d / d0)``, where ``d`` is the distance (in ``features``) to the nearest configuration already
    chosen and ``d0`` the median distance between nearest neighbours among the candidates. Candidates without a
    finite score (no label to measure an error against) are never chosen, so fewer than ``n`` may come back."""
    from scipy.spatial import cKDTree

    scores = np.asarray(scores, float)
    finite = np.isfinite(scores)
    n = min(int(n), int(finite.sum()))
    if n <= 0:
        return np.zeros(0, np.int64)
    x = np.asarray(features, float)
    if len(x) > 1:  # nearest-neighbour distances by a k-d tree: no N x N matrix
        d, _ = cKDTree(x).query(x, k=2)
        d0 = float(np.median(d[:, 1])) or 1.0
    else:
        d0 = 1.0
    value = np.where(finite, np.maximum(np.nan_to_num(scores), 0.0), -np.inf)
    nearest = np.full(len(x), np.inf)
    chosen: list[int] = []
    for _ in range(n):
        weighted = np.full(len(x), -np.inf)
        open_ = np.isfinite(value)
        weighted[open_] = value[open_] * np.minimum(1.0, nearest[open_] / d0)
        best = int(np.argmax(weighted))
        chosen.append(best)
        value[best] = -np.inf  # taken
        nearest = np.minimum(nearest, np.linalg.norm(x - x[best], axis=1))
    return np.array(chosen, np.int64)


def variance_batch(g: np.ndarray, inverse: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` candidates (rows of the last-layer features ``g``) of largest predictive variance, chosen one at a
    time, each added to the training information (``inverse`` is its inverse) before the next is scored: the
    greedy batch of optimal experimental design. Returns the indices and every candidate's variance before the
    first choice."""
    first = np.einsum("ij,jk,ik->i", g, inverse, g)
    var = first.copy()
    chosen: list[int] = []
    for _ in range(min(int(n), len(g))):
        var[chosen] = -np.inf
        best = int(np.argmax(var))
        chosen.append(best)
        v = inverse @ g[best]
        inverse = inverse - np.outer(v, v) / (1.0 + g[best] @ v)  # Sherman-Morrison: add g g^T
        var = np.einsum("ij,jk,ik->i", g, inverse, g)
    return np.array(chosen, np.int64), first


def select(
    criterion: str,
    models: Sequence,
    candidates: Dataset,
    n: int,
    train: Dataset | None = None,
    level: str | None = None,
    seed: int = 0,
    quantity: str = "forces",
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into ``candidates``) of the ``n`` configurations to label, in the order chosen, and the score
    of every candidate (NaN for ``random``)."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown selection criterion {criterion!r}; choose from {CRITERIA}")
    n = min(int(n), len(candidates))
    if criterion == "random":
        order = np.random.default_rng(seed).permutation(len(candidates))[:n]
        return order, np.full(len(candidates), np.nan)
    model = models[0]
    if criterion == "variance":
        if train is None:
            raise ValueError("criterion 'variance' needs the training data (the features it is measured against)")
        head = level if level in model.fidelities else None
        g = last_layer_features(model, candidates, head)
        inverse = _inverse_information(last_layer_features(model, train, head), 1e-6)
        return variance_batch(g, inverse, n)
    if criterion == "error":
        if level is None or level not in candidates.labels:
            raise ValueError(f"criterion 'error' needs candidates with labels at {level!r}")
        scores = errors(model, candidates, level)
    else:
        scores = disagreement(models, candidates, quantity)
    return diverse_batch(scores, descriptors(candidates), n), scores
