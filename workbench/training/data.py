"""Training data as tensors on the training device, cut into batches by configuration index.

The whole dataset is converted once (:class:`~workbench.models.Batch` of everything); a batch is then
a gather of its configurations' atoms, so no Python loop over configurations runs per step.
Units: positions Å, energies eV, forces eV/Å.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..data.dataset import PROPERTIES, Dataset
from ..data.fidelity import canonical_fidelities
from ..models.batch import Batch


def normalise_fidelities(ds: Dataset, fidelities) -> dict[str, tuple[str, ...]]:
    """``{fidelity: properties}`` in canonical names from a dict, a name or :class:`Fidelity`, a list of
    them (all their labels) or None (every fidelity of ``ds`` with every property it has)."""
    chosen = canonical_fidelities(fidelities, ds.fidelity_names, "in this dataset")
    if chosen is None:
        chosen = ds.fidelity_names
    if not isinstance(chosen, Mapping):
        chosen = dict.fromkeys(chosen)
    out = {}
    for key, props in chosen.items():
        if props is None:
            lab = ds.labels[key]
            props = ("energy", "forces") if lab.forces_mask.any() else ("energy",)
        props = (props,) if isinstance(props, str) else tuple(props)
        bad = set(props) - set(PROPERTIES)
        if bad or not props:
            raise ValueError(f"properties of {key!r} must be chosen from {PROPERTIES}, got {list(props)}")
        out[key] = props
    if not out:
        raise ValueError("no fidelities to train on")
    return out


def select_labels(ds: Dataset, fidelities: Mapping[str, Sequence[str]]) -> Dataset:
    """A copy of ``ds`` with only the named fidelities and, of each, only the named properties."""
    out = ds
    for name in list(ds.labels):
        if name not in fidelities:
            out = out.drop_fidelity(name)
    for name, props in fidelities.items():
        if name in out.labels:
            out = out.keep_labels(name, properties=tuple(props))
    return out


def labelled(ds: Dataset) -> Dataset:
    """The configurations of ``ds`` that carry at least one label (the others add nothing to a loss)."""
    keep = np.zeros(len(ds), bool)
    for lab in ds.labels.values():
        keep |= lab.energy_mask | lab.forces_mask
    return ds if keep.all() else ds.select(keep)


def data_hash(ds: Dataset) -> str:
    """SHA-256 (hex, first 16 characters) of the configurations and labels: identifies training data."""
    h = hashlib.sha256()
    for arr in (ds.numbers, ds.positions, ds.ptr):
        h.update(np.ascontiguousarray(arr).tobytes())
    for name in sorted(ds.labels):
        lab = ds.labels[name]
        h.update(name.encode())
        h.update(np.ascontiguousarray(np.where(lab.energy_mask, lab.energy, 0.0)).tobytes())
        h.update(lab.energy_mask.tobytes())
        h.update(lab.forces_mask.tobytes())
        if lab.forces is not None:
            h.update(np.ascontiguousarray(np.nan_to_num(lab.forces)).tobytes())
    return h.hexdigest()[:16]


class TensorData:
    """A dataset's configurations and labels as tensors on one device.

    Parameters
    ----------
    ds
        The dataset (labels already restricted to what should be trained on).
    heads
        ``{fidelity in ds: head name}`` (the names usually coincide; meta-learning maps every task
        onto one head) or a list of fidelity names. Fidelities absent from ``ds`` are skipped.
    device, dtype
        Where the tensors live, and the floating dtype of positions and forces.
    """

    def __init__(self, ds: Dataset, heads, device: torch.device, dtype: torch.dtype):
        heads = canonical_fidelities(heads)
        if not isinstance(heads, Mapping):
            heads = {h: h for h in heads}
        present = [name for name in heads if name in ds.labels]
        full = Batch.from_dataset(ds, fidelities=present, device=device, dtype=dtype)
        for attr in ("energy", "energy_mask", "forces", "forces_mask"):
            table = getattr(full, attr)
            setattr(full, attr, {heads[name]: table[name] for name in present})
        self.full = full
        self.n_atoms = ds.n_atoms.copy()
        self.device, self.dtype = device, dtype
        self.heads = [heads[name] for name in present]
        atoms_per_conf = full.n_atoms
        #: Per head: number of configurations with an energy and of atoms with forces.
        self.n_energies = {h: int(full.energy_mask[h].sum()) for h in self.heads}
        self.n_force_atoms = {h: int(atoms_per_conf[full.forces_mask[h]].sum()) for h in self.heads}

    def __len__(self) -> int:
        return self.full.n_configurations

    def batch(self, index) -> Batch:
        """Configurations ``index`` (array of positions) as one :class:`Batch`."""
        index_np = np.asarray(index, dtype=np.int64)
        full = self.full
        idx = torch.as_tensor(index_np, device=self.device)
        sizes = full.n_atoms[idx]
        ptr = torch.zeros(len(idx) + 1, dtype=torch.long, device=self.device)
        torch.cumsum(sizes, 0, out=ptr[1:])
        n_total = int(self.n_atoms[index_np].sum())
        atoms = torch.repeat_interleave(full.ptr[idx] - ptr[:-1], sizes, output_size=n_total)
        atoms = atoms + torch.arange(n_total, device=self.device)
        return Batch(
            numbers=full.numbers[atoms],
            positions=full.positions[atoms],
            configuration=torch.repeat_interleave(
                torch.arange(len(idx), device=self.device), sizes, output_size=n_total
            ),
            ptr=ptr,
            n_configurations=len(idx),
            energy={k: v[idx] for k, v in full.energy.items()},
            energy_mask={k: v[idx] for k, v in full.energy_mask.items()},
            forces={k: v[atoms] for k, v in full.forces.items()},
            forces_mask={k: v[idx] for k, v in full.forces_mask.items()},
            max_atoms=int(self.n_atoms[index_np].max()) if len(index_np) else 0,
        )

    def batches(self, order: np.ndarray, batch_size: int):
        """Batches of ``batch_size`` configurations in the given order (the last may be smaller)."""
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size])


def epoch_order(n: int, seed: int, epoch: int, passes: int = 1) -> np.ndarray:
    """The configuration order of one epoch: ``passes`` permutations fixed by ``(seed, epoch)`` alone,
    so a resumed run sees exactly the batches an uninterrupted one would."""
    rng = np.random.default_rng([int(seed), int(epoch)])
    return np.concatenate([rng.permutation(n) for _ in range(passes)]) if passes > 1 else rng.permutation(n)


def passes_per_epoch(n: int, batch_size: int, min_steps: int) -> int:
    """Passes over ``n`` configurations that make an epoch of at least ``min_steps`` batches."""
    steps = -(-n // batch_size)
    return max(1, -(-min_steps // max(steps, 1)))
