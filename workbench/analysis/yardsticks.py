"""A level's own labels as a yardstick: how far the low level itself is from a higher one, on the configurations
where both have labels.

A head that learned from GFN2-xTB is only worth its cost where it beats GFN2-xTB's own labels against the target
level. :func:`label_residuals` gives the errors of one level's stored labels against a higher level's, and
:func:`workbench.analysis.metrics` shows them as rows named ``"<level> labels (no ML)"`` beside the models.

Total energies of two levels differ by a large per-element constant (about 5000 eV for ethanol between GFN2-xTB and
MP2), which says nothing about the surface. The yardstick removes it first: per-element reference energies of both
levels are fitted by least squares on composition (:func:`workbench.data.references.fit_atomic_references`, the
data layer's fit) on the configurations where both levels have energies, and the low level's energies are offset by
the difference, ``E_low + Σ_Z n_Z (e_Z[target] − e_Z[low])`` (eV). For a single molecule this is the mean energy
difference. Forces need no offset.

The offset is fitted on the very configurations it is judged on, so it takes as many constants from the target's
labels as the compositions determine (one for a single molecule): an advantage no model has, and a large one on a
handful of configurations. A pair of levels that shares fewer than :data:`MIN_SHARED` configurations (or no more than
the number of fitted constants) gets no errors, only a note that says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..data.fidelity import canonical_fidelities
from ..data.references import fit_atomic_references

#: The fewest configurations two levels must share (with energies, or with forces) before their labels are judged.
MIN_SHARED = 10


def yardstick_name(level: str) -> str:
    """The row name of a level's own labels in the metrics table, e.g. ``"gfn2-xtb labels (no ML)"``."""
    return f"{level} labels (no ML)"


@dataclass
class LabelResiduals:
    """Errors of one level's labels (offset by fitted per-element reference energies) against a higher level's.

    Attributes
    ----------
    level, target
        The level whose labels are judged and the level they are judged against (canonical names).
    energy_configurations
        Indices of the configurations whose energy errors count (both levels have energies; empty when too few).
    energy_error
        ``(n,)`` eV: offset low-level energy minus target energy, following ``energy_configurations``.
    n_atoms
        ``(n,)`` atoms of those configurations.
    offsets
        eV per element symbol: the target's fitted reference energies minus the level's (empty when not fitted).
    force_error
        ``(a, 3)`` eV/Å: low-level forces minus target forces on the atoms of configurations where both have forces.
    numbers, atom_configuration
        ``(a,)`` atomic number and configuration index of each of those atoms.
    n_shared_energy, n_shared_forces
        Configurations where both levels have energies, and where both have forces (also when too few to judge).
    note
        Why some errors are missing (too few shared configurations), else None.
    """

    level: str
    target: str
    energy_configurations: np.ndarray
    energy_error: np.ndarray
    n_atoms: np.ndarray
    offsets: pd.Series
    force_error: np.ndarray
    numbers: np.ndarray
    atom_configuration: np.ndarray
    n_shared_energy: int
    n_shared_forces: int
    note: str | None = None


def _too_few(level: str, target: str, shared: int, what: str, need: int) -> str:
    count = "no configuration" if shared == 0 else f"only {shared} configuration{'s' * (shared != 1)}"
    kind = {"energies": "energy", "forces": "force"}[what]
    return f"{level} and {target} share {count} with {what} (at least {need} needed): no {kind} errors"


def label_residuals(dataset: Dataset, level: str, target: str, min_shared: int = MIN_SHARED) -> LabelResiduals:
    """Errors of ``level``'s stored labels against ``target``'s, on the configurations where both have them.

    Energies (eV) are compared after offsetting the low level by the difference of the two levels' per-element
    reference energies, both fitted on the configurations where both have energies (see the module docstring);
    forces (eV/Å) as they are. Energies need at least ``min_shared`` shared configurations and more than the
    number of fitted constants, forces ``min_shared``; with fewer, that part is left empty and, where both levels
    have such labels somewhere in ``dataset``, ``note`` says why (a level without any forces needs no note).
    """
    low, high = dataset.fidelity(level).name, dataset.fidelity(target).name
    if low == high:
        raise ValueError(f"a level's labels cannot be a yardstick for themselves ({low!r})")
    lo, hi = dataset.labels[low], dataset.labels[high]
    notes = []

    conf = np.flatnonzero(lo.energy_mask & hi.energy_mask)
    n_shared_energy = len(conf)
    offsets = pd.Series(dtype=np.float64, name="offset (eV)")
    comp = dataset.composition_matrix()[conf]
    n_constants = int(np.linalg.matrix_rank(comp)) if len(conf) else 0
    need = max(min_shared, n_constants + 1)
    if len(conf) < need:
        if lo.energy_mask.any() and hi.energy_mask.any():
            notes.append(_too_few(low, high, len(conf), "energies", need))
        conf = conf[:0]
        e_err = np.zeros(0)
    else:
        shared = dataset.select(conf)
        refs = fit_atomic_references(shared, [low, high])
        offsets = (refs[high] - refs[low]).rename("offset (eV)")
        e_err = lo.energy[conf] + shared.composition_matrix() @ offsets.to_numpy() - hi.energy[conf]

    both_forces = lo.forces_mask & hi.forces_mask
    n_shared_forces = int(both_forces.sum())
    atom_conf = dataset.configuration_of_atoms()
    if n_shared_forces < min_shared:
        if lo.forces_mask.any() and hi.forces_mask.any():
            notes.append(_too_few(low, high, n_shared_forces, "forces", min_shared))
        atoms = np.zeros(0, np.int64)
        f_err = np.zeros((0, 3))
    else:
        atoms = np.flatnonzero(both_forces[atom_conf])
        f_err = np.asarray(lo.forces[atoms], dtype=np.float64) - np.asarray(hi.forces[atoms], dtype=np.float64)
    return LabelResiduals(
        level=low,
        target=high,
        energy_configurations=conf,
        energy_error=e_err,
        n_atoms=dataset.n_atoms[conf],
        offsets=offsets,
        force_error=f_err,
        numbers=dataset.numbers[atoms],
        atom_configuration=atom_conf[atoms],
        n_shared_energy=n_shared_energy,
        n_shared_forces=n_shared_forces,
        note="; ".join(notes) or None,
    )


def yardstick_pairs(dataset: Dataset, yardsticks: str | Sequence[str], targets: Sequence[str]) -> list[tuple[str, str]]:
    """``(level, target)`` pairs: each yardstick level with every target fidelity it ranks below.

    ``yardsticks`` is a level name, a list of them, or ``"lower"``: every level of ``dataset`` with labels that ranks
    below a target. A named level that ranks below none of ``targets`` is an error (its labels would be judged
    against nothing). Pairs come in the order of ``targets``, low levels first.
    """
    rank = {name: dataset.fidelity_info[name].rank for name in dataset.fidelity_names}
    targets = list(dict.fromkeys(dataset.fidelity(t).name for t in targets))
    if isinstance(yardsticks, str) and yardsticks == "lower":
        levels = [
            n
            for n in dataset.fidelity_names
            if dataset.labels[n].energy_mask.any() or dataset.labels[n].forces_mask.any()
        ]
    else:
        levels = canonical_fidelities(yardsticks, dataset.fidelity_names, "in this dataset")
        for level in levels:
            if not any(rank[level] < rank[t] for t in targets):
                raise ValueError(
                    f"the labels of {level!r} (rank {rank[level]:g}) can only be a yardstick for a higher level, and "
                    f"every fidelity the table judges against ranks no higher: {targets}"
                )
    levels = sorted(levels, key=lambda n: (rank[n], n))
    return [(level, t) for t in targets for level in levels if rank[level] < rank[t]]
