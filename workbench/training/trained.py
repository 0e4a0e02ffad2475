"""A trained model: the module with its fidelity heads, its settings, history and provenance.

Saved as a folder or a zip file holding ``model.safetensors`` (tensors + family settings, see
:mod:`workbench.models.serialization`), ``trained.json`` (recipe, settings, provenance) and
``history.json``; a Δ-learning model keeps the low-level model it adds to (when it is a model) in
``base/``. Loading reads safetensors and JSON only: nothing in the file is executed.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..models.base import AtomisticModel
from ..models.batch import Batch
from ..models.serialization import ModelFileError, load_model, save_model

FORMAT = "workbench-trained/1"


class TrainedModel:
    """A model trained by a recipe.

    Attributes
    ----------
    module
        The :class:`~workbench.models.AtomisticModel` (a torch module).
    fidelities
        The heads this model answers for (after transfer learning only the target's).
    recipe
        ``"single"``, ``"multifidelity"``, ``"delta"``, ``"transfer"`` or ``"meta"``.
    settings
        Family, model settings, training settings and recipe options (JSON).
    history
        Per-epoch losses and errors of every stage (pandas DataFrame).
    provenance
        Data hash, package versions, seed, wall time.
    base
        Δ-learning only: what the model adds to, ``{"fidelity": low, "kind": "qm"}`` (the QM method at
        prediction time) or a :class:`TrainedModel` of the low level.
    """

    def __init__(
        self,
        module: AtomisticModel,
        recipe: str,
        fidelities=None,
        settings: dict | None = None,
        history: pd.DataFrame | None = None,
        provenance: dict | None = None,
        base=None,
        status: str = "done",
    ):
        self.module = module
        self.recipe = recipe
        self.fidelities = list(fidelities or module.fidelities)
        self.settings = dict(settings or {})
        self.history = history if history is not None else pd.DataFrame()
        self.provenance = dict(provenance or {})
        self.base = base
        #: ``"done"``, or ``"cancelled"`` for the best weights of a cancelled run.
        self.status = status

    def __repr__(self) -> str:
        return (
            f"<TrainedModel {self.recipe} {self.family}: heads {self.fidelities}, "
            f"{self.n_parameters} parameters, {len(self.history)} epochs>"
        )

    @property
    def family(self) -> str:
        return self.module.family

    @property
    def target(self) -> str:
        """The default fidelity: the last (highest-ranked) head."""
        return self.fidelities[-1]

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for n, p in self.module.named_parameters() if not n.endswith("references"))

    def _fidelity(self, fidelity: str | None) -> str:
        if fidelity is None:
            return self.target
        name = self.module.fidelities[self.module.fidelity_index(fidelity)]
        if name not in self.fidelities:
            raise KeyError(
                f"the {name!r} head was not kept trained by the {self.recipe!r} recipe; use {self.fidelities}"
            )
        return name

    # ----------------------------------------------------------------------------- use
    def calculator(self, fidelity: str | None = None, device: str | torch.device = "cpu"):
        """An ASE calculator (eV, eV/Å) for one fidelity (default: :attr:`target`). A Δ-learning model
        sums its correction and the low level (a QM calculation or the low-level model)."""
        from ..models.ase_calculator import WorkbenchCalculator

        name = self._fidelity(fidelity)
        calc = WorkbenchCalculator(self.module, fidelity=name, device=device)
        if self.base is None:
            return calc
        from ase.calculators.mixing import SumCalculator

        return SumCalculator([self._base_calculator(device), calc])

    def _base_calculator(self, device):
        if isinstance(self.base, TrainedModel):
            return self.base.calculator(device=device)
        from ..qm import QMCalculator

        return QMCalculator(self.base["fidelity"])

    @torch.no_grad()
    def predict(
        self,
        ds,
        fidelity: str | None = None,
        forces: bool = True,
        batch_size: int = 256,
        device: str | torch.device | None = None,
    ) -> dict[str, np.ndarray]:
        """``{"energy": (N,) eV, "forces": (A, 3) eV/Å}`` for every configuration of a Dataset
        (on ``device``; default: where the model is)."""
        name = self._fidelity(fidelity)
        module = (self.module if device is None else self.module.to(device)).eval()
        device = next(module.parameters()).device
        dtype = next(p.dtype for n, p in module.named_parameters() if not n.endswith("references"))
        energy = np.empty(len(ds))
        force = np.empty((len(ds.numbers), 3)) if forces else None
        for lo in range(0, len(ds), batch_size):
            hi = min(lo + batch_size, len(ds))
            a, b = ds.ptr[lo], ds.ptr[hi]
            batch = Batch.from_arrays(ds.numbers[a:b], ds.positions[a:b], ds.ptr[lo : hi + 1] - a, device, dtype)
            if forces:
                with torch.enable_grad():
                    batch = batch.requires_grad()
                    e = module(batch, [name])[name]
                    (g,) = torch.autograd.grad(e.sum(), batch.positions)
                force[a:b] = -g.double().cpu().numpy()
            else:
                e = module(batch, [name])[name]
            energy[lo:hi] = e.detach().double().cpu().numpy()
        out = {"energy": energy, "forces": force}
        if self.base is not None:
            base = self._base_predict(ds, forces, batch_size, device)
            out["energy"] = out["energy"] + base["energy"]
            if forces:
                out["forces"] = out["forces"] + base["forces"]
        return out

    def _base_predict(self, ds, forces: bool, batch_size: int, device) -> dict[str, np.ndarray]:
        if isinstance(self.base, TrainedModel):
            return self.base.predict(ds, forces=forces, batch_size=batch_size, device=device)
        from ..qm import Level, compute_labels

        low = self.base["fidelity"]
        energy = np.full(len(ds), np.nan)
        force = np.full((len(ds.numbers), 3), np.nan)
        have = np.zeros(len(ds), bool)
        if low in ds.labels:  # labels the dataset already has at the low level are used as they are
            lab = ds.labels[low]
            have = lab.energy_mask & (lab.forces_mask if forces else True)
            energy[have] = lab.energy[have]
            if forces and lab.forces is not None:
                atoms = np.repeat(have, ds.n_atoms)
                force[atoms] = lab.forces[atoms]
        missing = np.flatnonzero(~have)
        props = ("energy", "forces") if forces else ("energy",)
        spans = [(ds.ptr[i], ds.ptr[i + 1]) for i in missing]
        todo = [(ds.numbers[lo:hi], ds.positions[lo:hi], None, None) for lo, hi in spans]
        for i, (lo, hi), rec in zip(missing, spans, compute_labels(todo, Level(low), props), strict=True):
            if rec["status"] != "done":
                raise RuntimeError(f"configuration {i}: the {low} calculation Δ-learning needs failed: {rec['error']}")
            energy[i] = rec["energy"]
            if forces:
                force[lo:hi] = rec["forces"]
        return {"energy": energy, "forces": force if forces else None}

    def evaluate(self, ds, fidelity: str | None = None, reference: str | None = None) -> dict:
        """Errors against the labels of ``ds`` at ``reference`` (default: the same fidelity):
        energy MAE/RMSE and the largest error in eV per configuration, forces MAE/RMSE and the largest
        error in eV/Å per component."""
        name = self._fidelity(fidelity)
        ref = ds.fidelity(reference or name).name
        lab = ds.labels[ref]
        want_forces = bool(lab.forces_mask.any())
        pred = self.predict(ds, name, forces=want_forces)
        out = {"fidelity": name, "reference": ref}
        de = (pred["energy"] - lab.energy)[lab.energy_mask]
        out.update(n_energies=len(de), energy_mae=float(np.abs(de).mean()) if len(de) else np.nan)
        out["energy_rmse"] = float(np.sqrt((de**2).mean())) if len(de) else np.nan
        out["energy_max"] = float(np.abs(de).max()) if len(de) else np.nan
        if want_forces:
            atoms = np.repeat(lab.forces_mask, ds.n_atoms)
            df = (pred["forces"] - lab.forces)[atoms]
            out.update(forces_mae=float(np.abs(df).mean()), forces_rmse=float(np.sqrt((df**2).mean())))
            out["forces_max"] = float(np.abs(df).max())
        return out

    # ----------------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike, folder: bool | None = None) -> Path:
        """Write to ``path``: a zip file, or a folder when ``folder`` is True (None: when ``path`` is an
        existing folder or a string ending in a slash). Written under a temporary name and renamed,
        so a crash never leaves half a model."""
        as_dir = folder if folder is not None else (str(path).endswith(("/", os.sep)) or Path(path).is_dir())
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            staging = Path(tmp) / "model"
            self._write(staging)
            if as_dir:
                old = Path(tmp) / "old"
                if path.exists():
                    os.replace(path, old)
                os.replace(staging, path)
            else:
                archive = Path(tmp) / "model.zip"
                with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                    for f in sorted(staging.rglob("*")):
                        if f.is_file():
                            zf.write(f, f.relative_to(staging).as_posix())
                os.replace(archive, path)
        return path

    def _write(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        save_model(self.module, folder / "model.safetensors")
        base = None
        if isinstance(self.base, TrainedModel):
            self.base._write(folder / "base")
            base = {"kind": "model", "fidelity": self.base.target}
        elif self.base is not None:
            base = dict(self.base)
        meta = {
            "format": FORMAT,
            "recipe": self.recipe,
            "fidelities": self.fidelities,
            "settings": self.settings,
            "provenance": self.provenance,
            "base": base,
            "status": self.status,
        }
        (folder / "trained.json").write_text(json.dumps(meta, indent=1, default=_json_default))
        # Python's json writes floats exactly (shortest repr), so the history survives a round trip bit for bit.
        history = {
            "columns": [str(c) for c in self.history.columns],
            "data": self.history.astype(object).where(self.history.notna(), None).values.tolist(),
        }
        (folder / "history.json").write_text(json.dumps(history, default=_json_default))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> TrainedModel:
        """Read a model written by :meth:`save` (folder or zip)."""
        path = Path(path)
        if path.is_dir():
            return cls._read(path, device)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such trained model")
        if not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path}: not a trained workbench model (expected a zip of JSON and safetensors)")
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                target = (Path(tmp) / member).resolve()
                if not str(target).startswith(str(Path(tmp).resolve())) or not member.endswith(
                    (".json", ".safetensors")
                ):
                    raise ModelFileError(f"{path}: unexpected member {member!r}; not a trained workbench model")
            zf.extractall(tmp)
            return cls._read(Path(tmp), device)

    @classmethod
    def _read(cls, folder: Path, device) -> TrainedModel:
        meta_file = folder / "trained.json"
        if not meta_file.is_file():
            raise ModelFileError(f"{folder}: no trained.json; not a trained workbench model")
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != FORMAT:
            raise ModelFileError(f"{folder}: unknown format {meta.get('format')!r}, expected {FORMAT!r}")
        module = load_model(folder / "model.safetensors", device=device)
        history = pd.DataFrame()
        if (folder / "history.json").is_file():
            table = json.loads((folder / "history.json").read_text())
            history = pd.DataFrame(table["data"], columns=table["columns"])
        base = meta.get("base")
        if base is not None and base.get("kind") == "model":
            base = cls._read(folder / "base", device)
        return cls(
            module,
            meta["recipe"],
            meta["fidelities"],
            meta["settings"],
            history,
            meta["provenance"],
            base,
            meta.get("status", "done"),
        )


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in trained.json")
