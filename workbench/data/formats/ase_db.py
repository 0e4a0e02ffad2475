"""ASE SQLite databases (``ase.db``), e.g. the files schnetpack trains from.

Labels come from two places in each row:

- the row's calculator results ``energy``/``forces``: eV and eV/Å by ASE's convention;
- ``row.data`` (and numeric key-value pairs): ``energy``/``forces`` and per-fidelity
  ``energy_<fidelity>``/``forces_<fidelity>`` (``data`` keys may be any string, so
  ``"energy_ccsd(t)/cc-pvdz"`` works; key-value pairs must be identifiers, so there write the basis
  after the last ``_``, ``energy_ccsd(t)_cc-pvdz``). Their units come from the database metadata as
  schnetpack writes it (``_property_unit_dict``, ``_distance_unit``), else from ``energy_unit=``/
  ``force_unit=``. With neither, reading fails and says what the energies' size suggests: guessing
  a unit wrongly would scale every label by a constant and go unnoticed.

The plain ``energy``/``forces`` go to the fidelity named by ``fidelity=``, or to ``unknown`` with a
note in ``ds.provenance``. Scalar key-value pairs become ``ds.info`` columns, with ``db_id`` (the
row id), ``source`` and ``source_index``. The file is opened read-only first, so a file that is not
an ASE database is reported, never turned into one.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np

from ..dataset import Dataset
from ..errors import DatasetError, reading
from ..fidelity import Fidelity
from ._common import (
    add_source_columns,
    common_fidelity,
    conversion,
    factor,
    fidelity_from_key,
    guess_energy_unit,
    is_label_key,
    note,
)


def read(
    path: str | os.PathLike,
    *,
    fidelity: str | Fidelity | None = None,
    energy_unit: str | None = None,
    force_unit: str | None = None,
    selection=None,
) -> Dataset:
    """Read the rows of an ASE SQLite database (energies → eV, forces → eV/Å, positions Å).

    Parameters
    ----------
    fidelity
        Level of theory of the plain ``energy``/``forces`` labels; ``unknown`` when None.
    energy_unit
        Unit of the energies in ``row.data`` when the metadata does not say (``"kcal/mol"``).
    force_unit
        Unit of the forces in ``row.data`` when the metadata does not say; when None, the unit of
        the matching energy per length unit of the database (Å unless the metadata says otherwise).
    selection
        An ``ase.db`` query (``"natoms<10"``); all rows when None.

    Raises
    ------
    DatasetError
        A file that is not an ASE database, a row that cannot be read, labels of unknown unit.
    """
    import ase.db

    path = Path(path)
    file = str(path)
    _check_is_ase_db(path)
    common, named = common_fidelity(fidelity, file)
    for option, quantity, unit in (("energy_unit", "energy", energy_unit), ("force_unit", "forces", force_unit)):
        if unit is not None:
            factor(quantity, unit, file, f"{option}=: ")
    try:
        db = ase.db.connect(file, type="db", create_indices=False, use_lock_file=False)
        metadata = dict(db.metadata or {})
    except Exception as err:  # noqa: BLE001 - sqlite and ASE raise several types for a bad file
        raise DatasetError(f"cannot open as an ASE database: {type(err).__name__}: {err}", file=file) from None
    length_unit = metadata.get("_distance_unit")
    length = 1.0 if length_unit is None else factor("length", length_unit, file, "metadata _distance_unit: ")

    with reading(file):
        rows = [_raw_row(row, i, length) for i, row in _rows(db, file, selection)]
        if not rows:
            raise DatasetError("the database holds no rows" + (f" matching {selection!r}" if selection else ""))
        stored = {str(k): str(v) for k, v in (metadata.get("_property_unit_dict") or {}).items()}
        units, provenance = _resolve_units(rows, stored, energy_unit, force_unit, length_unit, file)
        if length != 1.0:
            provenance.insert(0, conversion(file, "positions", length_unit, "Å", length))
        fidelities: dict[str, Fidelity] = {}
        records = [_record(r, units, common, fidelities) for r in rows]
        for quantity, unit in (("energy", "eV"), ("forces", "eV/Å")):
            if any(r[f"calc_{quantity}"] is not None for r in rows):
                provenance.append(note(file, f"calculator {quantity} read as {unit} (ASE's convention)"))
        if common.name in fidelities and not named:
            provenance.append(
                note(
                    file,
                    f"plain energy/forces have no level of theory: stored as fidelity {common.name!r} "
                    "(pass fidelity= to name it)",
                )
            )
        ignored = sorted({k for r in rows for k in r["ignored"]})
        if ignored:
            provenance.append(note(file, f"row data entries that are not energies or forces were not read: {ignored}"))
        ds = Dataset.from_configurations(records, fidelities=fidelities, provenance=provenance)
    add_source_columns(ds.info, file)
    return ds


def _check_is_ase_db(path: Path) -> None:
    """Open read-only: ASE would create its tables in any SQLite file it is pointed at."""
    file = str(path)
    if not path.is_file():
        raise DatasetError("no such file", file=file)
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as err:
        raise DatasetError(f"not an SQLite database ({err})", file=file) from None
    if "systems" not in tables:
        raise DatasetError(
            f"an SQLite database but not an ASE one (no 'systems' table; tables: {sorted(tables)})", file=file
        )


def _rows(db, file: str, selection):
    rows = db.select(selection)
    i = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as err:  # noqa: BLE001 - a corrupt row surfaces as any of sqlite's or ASE's errors
            raise DatasetError(f"cannot read row: {type(err).__name__}: {err}", file=file, configuration=i) from None
        yield i, row
        i += 1


def _raw_row(row, i: int, length: float) -> dict:
    """One row with its labels still in the file's units."""
    numbers = np.asarray(row.numbers)
    n = len(numbers)
    bad = (numbers < 1) | (numbers > 118)
    if bad.any():
        raise DatasetError(f"unknown element with atomic number {numbers[bad][0]}", configuration=i)
    out = {
        "index": i,
        "numbers": numbers,
        "positions": np.asarray(row.positions, dtype=np.float64) * length,
        "calc_energy": row.get("energy"),
        "calc_forces": row.get("forces"),
        "energy": {},
        "forces": {},
        "info": {"db_id": int(row.id)},
        "ignored": [],
    }
    if out["calc_forces"] is not None:
        out["calc_forces"] = _forces(out["calc_forces"], "calculator forces", n, i)
    for key, value in (row.get("data") or {}).items():
        if is_label_key(key) and key.startswith("energy"):
            out["energy"][key] = _energy(value, key, i)
        elif is_label_key(key):
            out["forces"][key] = _forces(value, key, n, i)
        else:
            out["ignored"].append(key)
    for key, value in row.key_value_pairs.items():
        if key.startswith("energy_") and is_label_key(key):
            out["energy"][key] = _energy(value, key, i)
        else:
            out["info"][key] = value
    return out


def _energy(value, key: str, i: int) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "fiu":
        raise DatasetError(f"energy {key!r} is {value!r}, expected one number", configuration=i)
    return float(arr.reshape(()))


def _forces(value, key: str, n: int, i: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise DatasetError(f"forces {key!r} are not numbers", configuration=i)
    if arr.shape != (n, 3):
        raise DatasetError(f"forces {key!r} have shape {arr.shape}, expected ({n}, 3)", configuration=i)
    return arr.astype(np.float64)


def _resolve_units(rows, stored, energy_unit, force_unit, length_unit, file) -> tuple[dict, list[dict]]:
    """Unit and factor of every label key in the rows' data: metadata first, then the user's."""
    units, provenance = {}, []
    e_keys = sorted({k for r in rows for k in r["energy"]})
    f_keys = sorted({k for r in rows for k in r["forces"]})
    # An option contradicting a stored unit is an error only where the option applies to no other label.
    e_strict = all(k in stored for k in e_keys)
    f_strict = all(k in stored for k in f_keys)
    for key in e_keys:
        unit = _choose(stored.get(key), energy_unit, key, "energy_unit", "energy", file, e_strict)
        if unit is None:
            with_key = [r for r in rows if key in r["energy"]][:200]
            hint = guess_energy_unit([r["numbers"] for r in with_key], [r["energy"][key] for r in with_key])
            raise DatasetError(
                f"the energies stored in row data under {key!r} have no unit: the database metadata has no "
                f"'_property_unit_dict' entry for them. Pass energy_unit= (e.g. energy_unit='kcal/mol'); {hint}"
            )
        units[key] = (unit, factor("energy", unit, file, f"unit of {key!r}: "))
    for key in f_keys:
        unit = _choose(stored.get(key), force_unit, key, "force_unit", "forces", file, f_strict)
        if unit is None:
            partner = "energy" + key[len("forces") :]
            if partner in units:
                unit = f"{units[partner][0]}/{length_unit or 'angstrom'}"
                provenance.append(note(file, f"unit of {key!r} taken as {unit} (the unit of {partner!r} per length)"))
            else:
                raise DatasetError(
                    f"the forces stored in row data under {key!r} have no unit (no '_property_unit_dict' entry); "
                    "pass force_unit= (e.g. force_unit='kcal/mol/angstrom')"
                )
        units[key] = (unit, factor("forces", unit, file, f"unit of {key!r}: "))
    for key, (unit, value) in units.items():
        if value != 1.0:
            quantity = "energy" if key.startswith("energy") else "forces"
            label = quantity if key == quantity else f"{quantity} ({key})"
            provenance.append(conversion(file, label, unit, "eV" if quantity == "energy" else "eV/Å", value))
    return units, provenance


def _choose(stored, given, key: str, option: str, quantity: str, file: str, strict: bool) -> str | None:
    """The stored unit, or the user's; with ``strict``, both and different is an error rather than a
    silent pick."""
    if strict and stored is not None and given is not None:
        if factor(quantity, stored, file, f"metadata unit of {key!r}: ") != factor(quantity, given, file):
            raise DatasetError(
                f"the database metadata gives {key!r} in {stored!r}, but {option}={given!r} was passed; "
                f"leave {option} out to use the stored unit",
                file=file,
            )
    return stored if stored is not None else given


def _record(raw: dict, units: dict, common: Fidelity, fidelities: dict) -> dict:
    """A configuration record in eV and eV/Å, the plain labels at ``common``."""
    i = raw["index"]
    energy, forces = {}, {}
    pairs = [(energy, "energy", raw["calc_energy"], 1.0, "calculator energy")]
    pairs += [(energy, k, v, units[k][1], k) for k, v in raw["energy"].items()]
    pairs += [(forces, "forces", raw["calc_forces"], 1.0, "calculator forces")]
    pairs += [(forces, k, v, units[k][1], k) for k, v in raw["forces"].items()]
    for store, key, value, scale, label in pairs:
        if value is None:
            continue
        rest = key.partition("_")[2]
        fid = common if not rest else _fidelity(rest, key, i)
        fidelities.setdefault(fid.name, fid)
        value = np.asarray(value, dtype=np.float64) * scale if store is forces else float(value) * scale
        if fid.name in store:
            if not np.allclose(store[fid.name], value, rtol=1e-8, atol=1e-8):
                raise DatasetError(
                    f"two different labels at fidelity {fid.name!r} (one of them {label})", configuration=i
                )
            continue
        store[fid.name] = value
    return {
        "numbers": raw["numbers"],
        "positions": raw["positions"],
        "energy": energy,
        "forces": forces,
        "info": raw["info"],
    }


def _fidelity(rest: str, key: str, i: int) -> Fidelity:
    try:
        return fidelity_from_key(rest)
    except ValueError as err:
        raise DatasetError(f"label {key!r} names no level of theory ({err})", configuration=i) from None
