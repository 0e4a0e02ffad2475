"""The workbench's own HDF5 file: one Dataset per file, round-tripping exactly.

:func:`write` takes a Dataset; :func:`read_parts` gives back the arguments that rebuild it
(:meth:`Dataset.load <workbench.data.dataset.Dataset.load>` does), so that this module needs only
the pieces a Dataset is made of, not the class.

Layout (version 1)::

    /                     attrs: format="workbench-dataset", format_version=1,
                                 energy_unit="eV", length_unit="angstrom", force_unit="eV/angstrom",
                                 provenance (JSON)
    /numbers [A]  /positions [A,3]  /ptr [N+1]
    /fidelities/<k>/      attrs: name, method, basis, program, rank
        energy [N] (NaN where missing)  energy_mask [N]  forces_mask [N]  forces [A,3] (only if any)
    /info/<k>             one dataset per column, attrs: name, kind (numeric|string|categorical|json);
                          categoricals store codes, with categories in /info/<k>.categories

Writes go to a temporary file beside the target and are renamed into place, so a crash never
leaves half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DatasetError
from .fidelity import Fidelity
from .labels import Labels

FORMAT = "workbench-dataset"
VERSION = 1
UNITS = {"energy_unit": "eV", "length_unit": "angstrom", "force_unit": "eV/angstrom"}

# h5py is imported where a file is opened, not here: `import workbench` stays free of it (~0.1 s).


def is_native(path) -> bool:
    """Whether an HDF5 file was written by :func:`write`."""
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            return fh.attrs.get("format") == FORMAT
    except OSError:
        return False


def write(ds, path) -> None:
    """Write the Dataset ``ds`` to ``path`` atomically (temporary file + rename)."""
    import h5py

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as fh:
            fh.attrs["format"] = FORMAT
            fh.attrs["format_version"] = VERSION
            for key, unit in UNITS.items():
                fh.attrs[key] = unit
            fh.attrs["provenance"] = json.dumps(ds.provenance, default=str)
            fh.create_dataset("numbers", data=ds.numbers)
            fh.create_dataset("positions", data=ds.positions)
            fh.create_dataset("ptr", data=ds.ptr)
            fids = fh.create_group("fidelities")
            for k, name in enumerate(ds.labels):
                fid = ds.fidelity_info[name]
                lab = ds.labels[name]
                g = fids.create_group(str(k))
                g.attrs.update(
                    {
                        "name": name,
                        "method": fid.method,
                        "basis": fid.basis or "",
                        "program": fid.program or "",
                        "rank": fid.rank,
                    }
                )
                g.create_dataset("energy", data=lab.energy)
                g.create_dataset("energy_mask", data=lab.energy_mask)
                g.create_dataset("forces_mask", data=lab.forces_mask)
                if lab.forces is not None:
                    g.create_dataset("forces", data=lab.forces)
            _write_info(fh.create_group("info"), ds.info)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_info(group, info: pd.DataFrame) -> None:
    import h5py

    text = h5py.string_dtype("utf-8")
    for k, col in enumerate(info.columns):
        series = info[col]
        key = str(k)
        if isinstance(series.dtype, pd.CategoricalDtype):
            ds = group.create_dataset(key, data=series.cat.codes.to_numpy())
            cats = series.cat.categories
            if cats.dtype.kind in "biuf":
                group.create_dataset(key + ".categories", data=cats.to_numpy())
            else:
                group.create_dataset(
                    key + ".categories", data=np.asarray([str(c) for c in cats], dtype=object), dtype=text
                )
            ds.attrs["kind"] = "categorical"
        elif series.dtype.kind in "biuf":
            ds = group.create_dataset(key, data=series.to_numpy())
            ds.attrs["kind"] = "numeric"
        elif series.map(lambda v: isinstance(v, str)).all():
            ds = group.create_dataset(key, data=series.to_numpy(dtype=object), dtype=text)
            ds.attrs["kind"] = "string"
        else:  # mixed or missing values: JSON keeps them
            ds = group.create_dataset(
                key, data=np.asarray([json.dumps(v, default=str) for v in series], dtype=object), dtype=text
            )
            ds.attrs["kind"] = "json"
        ds.attrs["name"] = str(col)
        ds.attrs["pandas_dtype"] = str(series.dtype)


def _read_info(group, n: int) -> pd.DataFrame:
    columns = {}
    keys = sorted((k for k in group if not k.endswith(".categories")), key=int)
    for key in keys:
        ds = group[key]
        kind = ds.attrs["kind"]
        if kind == "categorical":
            cats = group[key + ".categories"][()]
            if cats.dtype.kind == "O":
                cats = [c.decode() if isinstance(c, bytes) else c for c in cats]
            values = pd.Categorical.from_codes(ds[()], categories=cats)
        elif kind == "numeric":
            values = ds[()]
        elif kind == "string":
            values = pd.array(ds.asstr()[()].tolist(), dtype=ds.attrs.get("pandas_dtype", "object"))
        else:
            values = [json.loads(v) for v in ds.asstr()[()]]
        columns[ds.attrs["name"]] = values
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def read_parts(path) -> dict:
    """The keyword arguments of the Dataset in a file written by :func:`write` (eV, Å): ``numbers``,
    ``positions``, ``ptr``, ``labels``, ``fidelity_info``, ``info`` and ``provenance``."""
    import h5py

    path = Path(path)
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise DatasetError(f"cannot open as HDF5 ({err})", file=str(path)) from None
    with fh:
        if fh.attrs.get("format") != FORMAT:
            raise DatasetError(
                f"not a workbench dataset file (attribute format={fh.attrs.get('format')!r})", file=str(path)
            )
        version = int(fh.attrs.get("format_version", -1))
        if version > VERSION:
            raise DatasetError(
                f"format version {version} is newer than this workbench reads ({VERSION})", file=str(path)
            )
        for key, unit in UNITS.items():
            if fh.attrs.get(key) is None:
                raise DatasetError(f"missing unit attribute {key!r}", file=str(path))
            if fh.attrs[key] != unit:
                raise DatasetError(f"{key} is {fh.attrs[key]!r}, expected {unit!r}", file=str(path))
        for name in ("numbers", "positions", "ptr", "fidelities", "info"):
            if name not in fh:
                raise DatasetError(f"missing {name!r}: the file is incomplete", file=str(path))
        ptr = fh["ptr"][()]
        n = len(ptr) - 1
        labels, fidelity_info = {}, {}
        for key in sorted(fh["fidelities"], key=int):
            g = fh["fidelities"][key]
            name = g.attrs["name"]
            fidelity_info[name] = Fidelity(
                name=name,
                method=g.attrs["method"],
                basis=g.attrs["basis"] or None,
                program=g.attrs["program"] or None,
                rank=float(g.attrs["rank"]),
            )
            labels[name] = Labels(
                energy=g["energy"][()],
                energy_mask=g["energy_mask"][()],
                forces=g["forces"][()] if "forces" in g else None,
                forces_mask=g["forces_mask"][()],
            )
        return {
            "numbers": fh["numbers"][()],
            "positions": fh["positions"][()],
            "ptr": ptr,
            "labels": labels,
            "fidelity_info": fidelity_info,
            "info": _read_info(fh["info"], n),
            "provenance": json.loads(fh.attrs["provenance"]),
        }
