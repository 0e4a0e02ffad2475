"""sGDML / MD17 ``.npz`` datasets (Chmiela et al., Sci. Adv. 3, e1603015 (2017); Comput. Phys.
Commun. 240, 38 (2019)).

Arrays read: ``R`` (M, N, 3) positions, ``z`` (N,) atomic numbers (or (M, N)), ``E`` (M,) or
(M, 1) energies, ``F`` (M, N, 3) forces, ``theory`` (a string naming the level of theory) and the
optional unit strings ``e_unit``, ``r_unit``, ``f_unit``. The revised MD17 spelling
(``coords``, ``nuclear_charges``, ``energies``, ``forces``) is read too.

Units: stored unit strings win; where none is stored, the MD17 convention is assumed (kcal/mol,
Å, and forces in energy unit per length unit) and recorded in ``ds.provenance``, as is every
conversion. ``energy_unit=``/``force_unit=``/``length_unit=`` name the units of a file that stores
none; one that contradicts a stored unit is an error, not a silent choice.

The archive is opened with ``allow_pickle=False``: an array of Python objects could only be loaded
by unpickling, which runs whatever code the file holds, so such a file is refused.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import Dataset, Labels
from ..errors import DatasetError, reading
from ..fidelity import Fidelity
from ._common import UNKNOWN, common_fidelity, conversion, factor, note, source_columns

_KEYS = {
    "R": ("R", "coords"),
    "z": ("z", "nuclear_charges"),
    "E": ("E", "energies"),
    "F": ("F", "forces"),
}


def read(
    path: str | os.PathLike,
    *,
    fidelity: str | Fidelity | None = None,
    energy_unit: str | None = None,
    force_unit: str | None = None,
    length_unit: str | None = None,
) -> Dataset:
    """Read an sGDML / MD17 npz file (energies → eV, forces → eV/Å, positions → Å).

    Parameters
    ----------
    fidelity
        Level of theory of the labels; taken from the file's ``theory`` when None.
    energy_unit, force_unit, length_unit
        Units of a file that stores none (defaults: kcal/mol, energy unit per length unit, Å).

    Raises
    ------
    DatasetError
        A file that is not an npz archive, needs pickle, lacks ``R``/``z``, has arrays of
        inconsistent shapes, unknown elements or units, or NaN/infinite positions.
    """
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise DatasetError("no such file", file=file)
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):
            raise DatasetError(_PICKLE.format(what="the file"), file=file) from None
        raise DatasetError(f"cannot be read as an npz archive: {err}", file=file) from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetError(f"cannot be read as an npz archive: {err}", file=file) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(
            f"holds one array of shape {np.shape(archive)}, expected an npz archive with R, z, E, F", file
        )
    with archive, reading(file):
        arrays = {name: _get(archive, keys) for name, keys in _KEYS.items()}
        missing = [name for name in ("R", "z") if arrays[name] is None]
        if missing:
            raise DatasetError(f"no {' or '.join(missing)} array; the archive holds {sorted(archive.files)}")
        text = {key: _text(archive, key) for key in ("theory", "e_unit", "r_unit", "f_unit")}
        return _build(file, arrays, text, fidelity, energy_unit, force_unit, length_unit)


_PICKLE = (
    "{what} holds Python objects, which only pickle can load; refused, because unpickling an "
    "untrusted file can run any code. Save the arrays again as plain numbers and strings "
    "(np.savez(path, R=R, z=z, E=E, F=F, theory='...'))"
)


def _get(archive, keys: tuple[str, ...]) -> np.ndarray | None:
    key = next((k for k in keys if k in archive.files), None)
    if key is None:
        return None
    try:
        return archive[key]
    except ValueError as err:
        if "pickle" in str(err):
            raise DatasetError(_PICKLE.format(what=f"array {key!r}")) from None
        raise DatasetError(f"array {key!r} cannot be read: {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetError(f"array {key!r} cannot be read: {err}") from None


def _text(archive, key: str) -> str | None:
    value = _get(archive, (key,))
    if value is None:
        return None
    if value.dtype.kind not in "US" or value.size != 1:
        raise DatasetError(f"{key!r} should be one string, found an array of {value.dtype} with shape {value.shape}")
    value = value.reshape(()).item()
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).strip()


def _unit(kind, stored, given, key, option, default, file, provenance) -> str:
    """The stored unit, else the user's, else the MD17 default (recorded as an assumption)."""
    if stored is not None and given is not None:
        if factor(kind, stored, file, f"{key}: ") != factor(kind, given, file, f"{option}=: "):
            raise DatasetError(
                f"the file stores {key}={stored!r}, but {option}={given!r} was passed; leave {option} out",
                file=file,
            )
    if stored is not None:
        factor(kind, stored, file, f"{key}: ")  # an unknown unit is named by where it came from
        return stored
    if given is not None:
        factor(kind, given, file, f"{option}=: ")
        return given
    provenance.append(note(file, f"no {key} in the file: {kind} taken as {default} (sGDML/MD17 convention)"))
    return default


def _shape_error(name: str, shape, expected: str) -> DatasetError:
    return DatasetError(f"{name} has shape {tuple(shape)}, expected {expected}")


def _build(file, arrays, text, fidelity, energy_unit, force_unit, length_unit) -> Dataset:
    provenance: list[dict] = []
    R, z, E, F = (arrays[k] for k in ("R", "z", "E", "F"))
    if R.ndim != 3 or R.shape[2] != 3 or R.dtype.kind not in "fiu":
        raise _shape_error("R", R.shape, "(configurations, atoms, 3) of numbers")
    m, n = R.shape[:2]
    if m == 0:
        raise DatasetError("the file holds no configurations (R is empty)")
    if z.shape not in ((n,), (m, n)) or not (
        z.dtype.kind in "iu" or (z.dtype.kind == "f" and np.all(z == np.round(z)))
    ):
        raise _shape_error("z", z.shape, f"({n},) or ({m}, {n}) of atomic numbers (integers), dtype {z.dtype}")
    numbers = (np.tile(z, m) if z.ndim == 1 else z.reshape(-1)).astype(np.int64)
    bad = (numbers < 1) | (numbers > 118)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DatasetError(f"unknown element with atomic number {numbers[first]}", configuration=first // n)
    if E is not None and (E.shape not in ((m,), (m, 1)) or E.dtype.kind not in "fiu"):
        raise _shape_error("E", E.shape, f"({m},) or ({m}, 1) energies, one per configuration in R")
    if F is not None and (F.shape != (m, n, 3) or F.dtype.kind not in "fiu"):
        raise _shape_error("F", F.shape, f"({m}, {n}, 3) forces, like R")

    r_unit = _unit("length", text["r_unit"], length_unit, "r_unit", "length_unit", "angstrom", file, provenance)
    e_unit = f_unit = None
    if E is not None or F is not None:
        e_unit = _unit("energy", text["e_unit"], energy_unit, "e_unit", "energy_unit", "kcal/mol", file, provenance)
    if F is not None:
        f_unit = _unit(
            "forces", text["f_unit"], force_unit, "f_unit", "force_unit", f"{e_unit}/{r_unit}", file, provenance
        )
    positions = _scaled(R.reshape(-1, 3), "length", "positions", r_unit, "Å", file, provenance)
    ptr = np.arange(m + 1, dtype=np.int64) * n

    labels, fidelities = {}, {}
    if E is not None or F is not None:
        fid = _fidelity(fidelity, text["theory"], file, provenance)
        fidelities[fid.name] = fid
        energy = forces = None
        if E is not None:
            energy = _scaled(E.reshape(m).astype(np.float64), "energy", "energy", e_unit, "eV", file, provenance)
        if F is not None:
            forces = _scaled(F.reshape(-1, 3), "forces", "forces", f_unit, "eV/Å", file, provenance)
        labels[fid.name] = Labels.from_values(energy, forces, ptr)
    else:
        provenance.append(note(file, "no E or F array: configurations without labels"))
    info = pd.DataFrame(source_columns(file, m))
    return Dataset(numbers, positions, ptr, labels, fidelities, info, provenance)


def _scaled(values: np.ndarray, kind: str, quantity: str, unit: str, to: str, file: str, provenance) -> np.ndarray:
    """``values`` in the internal unit (floating dtype kept), the conversion recorded."""
    values = values if values.dtype.kind == "f" else values.astype(np.float64)
    scale = factor(kind, unit, file, f"unit of {quantity}: ")
    if scale == 1.0:
        return values
    provenance.append(conversion(file, quantity, unit, to, scale))
    return values * scale


def _fidelity(fidelity, theory: str | None, file: str, provenance: list[dict]) -> Fidelity:
    if fidelity is not None:
        fid, _ = common_fidelity(fidelity, file)
        if theory:
            provenance.append(note(file, f"the file's theory is {theory!r}; stored as fidelity {fid.name!r} as given"))
        return fid
    # Some files prefix the level with its kind ("DFT: PBE+vdW-TS"); the level follows the colon.
    level = (theory or "").rpartition(":")[2].strip()
    if not level or level.lower() == UNKNOWN:
        provenance.append(
            note(file, f"no level of theory in the file: labels stored as fidelity {UNKNOWN!r} (pass fidelity=)")
        )
        level = UNKNOWN
    return Fidelity.parse(level)
