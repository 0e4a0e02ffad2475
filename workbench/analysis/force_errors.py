"""Force errors atom by atom: on one configuration (for a 3D view) and per element over a dataset.

The error of atom ``i`` is the vector ``F_pred,i - F_ref,i`` (eV/Å); its length is what the structure view
colours by. Per-element statistics show which kind of atom a model gets wrong (often the rare one, such as O
in a hydrocarbon-heavy set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols

from ..data.dataset import Dataset
from ..data.fidelity import canonical_name
from ..data.units import energy_factor
from ._models import predictors
from .evaluation import all_residuals


@dataclass
class ForceErrors:
    """Predicted and reference forces (eV/Å) on the atoms of one configuration.

    Attributes
    ----------
    model
        The model head's label; ``fidelity`` the reference level.
    atoms
        The configuration (Å).
    predicted, reference, error
        ``(n, 3)`` eV/Å; ``error = predicted - reference``.
    configuration
        The dataset index, when it came from one.
    """

    model: str
    fidelity: str | None
    atoms: Atoms = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    reference: np.ndarray = field(repr=False)
    configuration: int | None = None

    @property
    def error(self) -> np.ndarray:
        return self.predicted - self.reference

    @property
    def norm(self) -> np.ndarray:
        """``(n,)`` length of each atom's error vector, eV/Å."""
        return np.linalg.norm(self.error, axis=1)

    def table(self) -> pd.DataFrame:
        """One row per atom: ``atom``, ``element``, predicted, reference and error components, ``error_norm``,
        ``reference_norm`` and ``relative_error`` (error length over reference length)."""
        ref_norm = np.linalg.norm(self.reference, axis=1)
        out = pd.DataFrame(
            {
                "atom": np.arange(len(self.atoms)),
                "element": [chemical_symbols[z] for z in self.atoms.numbers],
            }
        )
        for name, values in (("predicted", self.predicted), ("reference", self.reference), ("error", self.error)):
            for k, axis in enumerate("xyz"):
                out[f"{name}_{axis}"] = values[:, k]
        out["error_norm"] = self.norm
        out["reference_norm"] = ref_norm
        with np.errstate(divide="ignore", invalid="ignore"):
            out["relative_error"] = np.where(ref_norm > 0, self.norm / ref_norm, np.nan)
        return out


def force_errors(
    model,
    data: Dataset | Atoms,
    index: int = 0,
    fidelity: str | None = None,
    reference: np.ndarray | None = None,
    device: str | None = None,
) -> ForceErrors:
    """Per-atom force errors of one model head on one configuration.

    ``data`` is a :class:`~workbench.data.Dataset` (configuration ``index``, reference forces at ``fidelity``, which
    also picks the model's head when it has one of that name) or an ``ase.Atoms`` with ``reference`` forces given
    (or a calculator attached whose forces are the reference).
    """
    if isinstance(data, Dataset):
        names = data.fidelity_names
        if fidelity is None:
            with_forces = [f for f in names if data.labels[f].forces_mask[index]]
            if not with_forces:
                raise ValueError(f"configuration {index} has no forces at any fidelity ({names})")
            if len(with_forces) > 1:
                raise ValueError(f"configuration {index} has forces at {with_forces}: name the fidelity")
            fidelity = with_forces[0]
        fid = data.fidelity(fidelity).name
        if not data.labels[fid].forces_mask[index]:
            raise ValueError(f"configuration {index} has no forces at fidelity {fid!r}")
        atoms = data.to_atoms(index)
        lo, hi = data.ptr[index], data.ptr[index + 1]
        ref = np.asarray(data.labels[fid].forces[lo:hi], dtype=float)
    else:
        atoms, fid = data, (canonical_name(fidelity) if fidelity is not None else None)
        if reference is None:
            if atoms.calc is None:
                raise ValueError("give reference forces (eV/Å) or attach a calculator to the atoms")
            reference = atoms.get_forces()
        ref = np.asarray(reference, dtype=float)
        if ref.shape != (len(atoms), 3):
            raise ValueError(f"reference forces have shape {ref.shape}, expected ({len(atoms)}, 3)")
        index = None
    heads = predictors(model, device=device)
    if len(heads) > 1:
        chosen = [p for p in heads if p.fidelity == fid]
        if len(chosen) != 1:
            raise ValueError(f"choose one head with (model, fidelity); heads: {[p.label for p in heads]}")
        heads = chosen
    _, forces = heads[0].evaluate_atoms([atoms])
    clean = Atoms(numbers=atoms.numbers, positions=atoms.positions.copy())
    return ForceErrors(heads[0].label, fid, clean, forces[0], ref, index)


def atom_force_errors(
    models, dataset: Dataset, fidelities: Sequence[str] | None = None, units: str = "eV"
) -> pd.DataFrame:
    """Long table, one row per (model, fidelity, atom with a force label): ``configuration``, ``atom`` (index in
    its configuration), ``element``, error components ``error_x/y/z`` and ``error_norm`` in ``units``/Å."""
    scale = 1.0 / energy_factor(units)
    frames = []
    for r in all_residuals(models, dataset, fidelities):
        err = r.force_error * scale
        frames.append(
            pd.DataFrame(
                {
                    "model": r.evaluation.label,
                    "fidelity": r.fidelity,
                    "configuration": r.atom_configuration,
                    "atom": r.force_atoms - dataset.ptr[r.atom_configuration],
                    "element": np.array(chemical_symbols)[r.numbers],
                    "error_x": err[:, 0],
                    "error_y": err[:, 1],
                    "error_z": err[:, 2],
                    "error_norm": np.linalg.norm(err, axis=1),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["units"] = f"{units}/Å"
    return out


def force_error_statistics(
    models, dataset: Dataset | None = None, fidelities: Sequence[str] | None = None, units: str = "eV"
) -> pd.DataFrame:
    """Per (model, fidelity, element): ``n_atoms``, component ``mae`` and ``rmse``, and of the per-atom error
    length ``norm_mean``, ``norm_p95`` (95th percentile) and ``norm_max``, in ``units``/Å.

    Pass the table of :func:`atom_force_errors` instead of models to avoid evaluating twice.
    """
    table = models if isinstance(models, pd.DataFrame) else atom_force_errors(models, dataset, fidelities, units)
    comps = table[["error_x", "error_y", "error_z"]].to_numpy()
    work = table.assign(abs_mean=np.abs(comps).mean(axis=1), sq_mean=np.square(comps).mean(axis=1))
    grouped = work.groupby(["model", "fidelity", "element"], sort=False)
    out = grouped.agg(
        n_atoms=("error_norm", "size"),
        mae=("abs_mean", "mean"),
        rmse=("sq_mean", lambda s: float(np.sqrt(s.mean()))),
        norm_mean=("error_norm", "mean"),
        norm_p95=("error_norm", lambda s: float(np.percentile(s, 95))),
        norm_max=("error_norm", "max"),
    ).reset_index()
    out.attrs["units"] = table.attrs.get("units", f"{units}/Å")
    return out
