"""The ANI-1x / ANI-1ccx HDF5 release layout (Smith et al., Sci. Data 7, 134 (2020)).

One group per formula holding ``atomic_numbers (n,)``, ``coordinates (M, n, 3)`` in Å, and one
dataset per level and property, ``<level>.<property>``. Energies are in Hartree, forces in
Hartree/Å. Every level in the file becomes a fidelity:

- ``<level>.energy`` (and ``<level>.forces``) directly, e.g. ``wb97x_dz`` → ``wb97x/6-31g*``;
- ``<level>.corr_energy`` plus the Hartree-Fock total energy in the same basis (``mp2_dz`` + ``hf_dz``)
  → the total energy at that level, e.g. ``mp2/cc-pvdz``.

NaN labels are masked; their configurations are kept. Other properties (charges, multipoles) are
not energies or forces and are listed in the provenance as skipped.

The reader allocates the flat arrays once from the groups' shapes and reads each HDF5 dataset
straight into its slice, so a file of a million configurations costs about what its raw arrays cost,
with no Python object per configuration.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..dataset import Dataset, Labels, formula_of
from ..errors import DatasetError, reading
from ..fidelity import Fidelity
from ..units import energy_factor, force_factor


def _find_groups(fh: h5py.File) -> list[h5py.Group]:
    groups = []

    def visit(group):
        for item in group.values():
            if isinstance(item, h5py.Group):
                if "coordinates" in item and "atomic_numbers" in item:
                    groups.append(item)
                else:
                    visit(item)

    visit(fh)
    return groups


def _hf_partner(level: str) -> str:
    """The HF level whose total energy a correlation energy is added to: ``mp2_dz`` → ``hf_dz``."""
    return "hf_" + level.rsplit("_", 1)[-1]


def read(
    path,
    *,
    energy_unit: str = "hartree",
    force_unit: str = "hartree/angstrom",
    levels: list[str] | None = None,
) -> Dataset:
    """Read an ANI-layout HDF5 file (energies → eV, forces → eV/Å).

    Parameters
    ----------
    energy_unit, force_unit
        Units in the file; the ANI release uses Hartree and Hartree/Å.
    levels
        Only these ANI level names (e.g. ``["wb97x_dz", "ccsd(t)_cbs"]``); all by default.
    """
    path = Path(path)
    try:
        e_factor = energy_factor(energy_unit)
        f_factor = force_factor(force_unit)
    except KeyError as err:
        raise DatasetError(str(err.args[0]), file=str(path)) from None
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise DatasetError(f"cannot open as HDF5 ({err})", file=str(path)) from None
    with fh, reading(path):
        groups = _find_groups(fh)
        if not groups:
            found = list(fh.keys())[:5]
            raise DatasetError(
                f"no group with 'atomic_numbers' and 'coordinates': not an ANI-layout file (top-level entries: {found})"
            )
        # ---- shapes, from metadata only
        sizes, n_atoms = [], []
        for g in groups:
            coords, z = g["coordinates"], g["atomic_numbers"]
            if coords.ndim != 3 or coords.shape[2] != 3 or z.ndim != 1 or coords.shape[1] != z.shape[0]:
                raise DatasetError(
                    f"group {g.name!r}: coordinates {coords.shape} do not match atomic_numbers {z.shape} "
                    "(expected (M, n, 3) and (n,))",
                    configuration=int(sum(sizes)) if sizes else 0,
                )
            sizes.append(coords.shape[0])
            n_atoms.append(coords.shape[1])
        sizes, n_atoms = np.asarray(sizes, np.int64), np.asarray(n_atoms, np.int64)
        n_conf = int(sizes.sum())
        conf_start = np.concatenate([[0], np.cumsum(sizes)])
        atom_start = np.concatenate([[0], np.cumsum(sizes * n_atoms)])
        ptr = np.zeros(n_conf + 1, np.int64)
        np.cumsum(np.repeat(n_atoms, sizes), out=ptr[1:])

        # ---- which levels and properties exist
        energies, forces, corrections, skipped = set(), set(), set(), set()
        for g in groups:
            for key in g:
                level, _, prop = key.rpartition(".")
                if not level:
                    continue
                {"energy": energies, "forces": forces, "corr_energy": corrections}.get(prop, skipped).add(
                    level if prop in ("energy", "forces", "corr_energy") else prop
                )
        if levels is not None:
            energies &= set(levels) | {_hf_partner(c) for c in corrections if c in levels}
            forces &= set(levels)
            corrections &= set(levels)

        # ---- geometry, read straight into the flat arrays
        first = groups[0]["coordinates"]
        positions = np.empty((int(atom_start[-1]), 3), dtype=first.dtype if first.dtype.kind == "f" else np.float64)
        z_dtype = groups[0]["atomic_numbers"].dtype  # kept as stored (uint8 in the release): 1/8 of int64
        numbers = np.empty(int(atom_start[-1]), dtype=z_dtype if z_dtype.kind in "iu" else np.int64)
        group_code = np.repeat(np.arange(len(groups)), sizes)
        for k, g in enumerate(groups):
            lo, hi = atom_start[k], atom_start[k + 1]
            if hi > lo:
                # d[()] takes h5py's fast path; the copy into place is one small group at a time.
                positions[lo:hi] = g["coordinates"][()].reshape(-1, 3)
            numbers[lo:hi] = np.tile(g["atomic_numbers"][()], sizes[k])

        def read_energy(level: str, prop: str) -> np.ndarray:
            out = np.empty(n_conf, np.float64)
            key = f"{level}.{prop}"
            for k, g in enumerate(groups):
                lo, hi = conf_start[k], conf_start[k + 1]
                d = g.get(key)
                if d is not None and hi > lo:
                    if d.shape[:1] != (sizes[k],):
                        raise DatasetError(
                            f"group {g.name!r}: {key} has shape {d.shape}, expected ({sizes[k]},)",
                            configuration=int(lo),
                        )
                    out[lo:hi] = d[()].reshape(-1)
                else:
                    out[lo:hi] = np.nan
            return out

        labels, fidelity_info = {}, {}
        provenance = []

        def add(level: str, energy: np.ndarray | None, force_block: np.ndarray | None, forces_ok: np.ndarray | None):
            fid = Fidelity.parse(level)
            if energy is not None:
                energy *= e_factor
            if force_block is not None:
                force_block *= f_factor
            lab = Labels.from_values(energy, None, ptr)
            if force_block is not None:
                lab = Labels(lab.energy, lab.energy_mask, force_block, forces_ok)
            labels[fid.name] = lab
            fidelity_info[fid.name] = fid

        for level in sorted(energies | forces):
            energy = read_energy(level, "energy") if level in energies else None
            block, ok = None, None
            if level in forces:
                block = np.empty_like(positions, dtype=np.result_type(positions.dtype, np.float32))
                ok = np.zeros(n_conf, bool)
                for k, g in enumerate(groups):
                    lo, hi = atom_start[k], atom_start[k + 1]
                    view = block[lo:hi].reshape(sizes[k], n_atoms[k], 3)
                    d = g.get(f"{level}.forces")
                    if d is not None and hi > lo:
                        if d.shape != view.shape:
                            raise DatasetError(
                                f"group {g.name!r}: {level}.forces has shape {d.shape}, expected {view.shape}",
                                configuration=int(conf_start[k]),
                            )
                        view[...] = d[()]
                        ok[conf_start[k] : conf_start[k + 1]] = ~np.isnan(view).any(axis=(1, 2))
                    else:
                        view[...] = np.nan
            add(level, energy, block, ok)
        for level in sorted(corrections):
            hf = _hf_partner(level)
            if hf not in energies:
                provenance.append(
                    {"file": str(path), "note": f"{level}.corr_energy skipped: no {hf}.energy to add it to"}
                )
                continue
            # In Hartree, like the other energies before add() converts; NaN in either → missing.
            total = read_energy(level, "corr_energy")
            total += labels[Fidelity.parse(hf).name].energy / e_factor
            add(level, total, None, None)
            provenance.append(
                {"file": str(path), "note": f"{Fidelity.parse(level).name} = {hf}.energy + {level}.corr_energy"}
            )

        provenance.insert(
            0, {"file": str(path), "quantity": "energy", "from": energy_unit, "to": "eV", "factor": e_factor}
        )
        if forces:
            provenance.insert(
                1,
                {"file": str(path), "quantity": "forces", "from": force_unit, "to": "eV/angstrom", "factor": f_factor},
            )
        if skipped:
            provenance.append({"file": str(path), "note": f"properties not read: {sorted(skipped)}"})

        # Per group, not per configuration: formulas and group names as categoricals.
        formulas = [formula_of(g["atomic_numbers"][()]) for g in groups]
        uniq = list(dict.fromkeys(formulas))
        code = np.asarray([uniq.index(f) for f in formulas])
        info = pd.DataFrame(
            {
                "formula": pd.Categorical.from_codes(code[group_code], categories=uniq),
                "group": pd.Categorical.from_codes(group_code, categories=[g.name.lstrip("/") for g in groups]),
                "source": pd.Categorical.from_codes(np.zeros(n_conf, np.int8), categories=[str(path)]),
                "source_index": np.arange(n_conf),
            }
        )
        return Dataset(
            numbers=numbers,
            positions=positions,
            ptr=ptr,
            labels=labels,
            fidelity_info=fidelity_info,
            info=info,
            provenance=provenance,
        )
