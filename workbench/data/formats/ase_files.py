"""extxyz and any other file ASE reads (``ase.io.iread``), with labels at several fidelities.

Where labels are found in each frame:

- ``energy_<fidelity>`` in ``atoms.info`` and ``forces_<fidelity>`` in ``atoms.arrays``, the part
  after the prefix being a level of theory (:meth:`Fidelity.parse`). extxyz keeps any such key,
  ``/``, ``*`` and parentheses included, so ``energy_ccsd(t)/cc-pvdz=-4212.3`` and
  ``forces_wb97x/6-31g*:R:3`` work as written; ``energy_ccsd(t)_cc-pvdz`` (basis after the last
  ``_``) is read the same way for formats where ``/`` cannot appear in a key. This is what
  :meth:`Dataset.to_atoms` writes, so a Dataset written with ``ase.io.write`` reads back whole.
- the plain ``energy`` and ``forces`` (calculator results, or ``info``/``arrays`` keys; other names
  with ``energy_key=``/``forces_key=``, e.g. ``"REF_energy"``) carry no level of theory: they go to
  the fidelity named by ``fidelity=``, or to ``unknown`` with a note in ``ds.provenance``. Without
  ``fidelity=``, plain labels that repeat value for value those of a level named in the same frame
  (what :meth:`Dataset.to_atoms` writes, its calculator holding one level's labels) are that level's.

ASE's convention is eV, eV/Å and Å. ``energy_unit=``/``force_unit=`` name other units for every
energy/force in the file (forces default to the energy unit per Å); each conversion and each
assumption is recorded in ``ds.provenance``. Other scalar ``atoms.info`` entries become
``ds.info`` columns, beside ``source`` (the file) and ``source_index`` (the frame in it).
"""

from __future__ import annotations

import os
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
    is_label_key,
    note,
)

# info keys that a Dataset derives itself (written by Dataset.to_atoms) and so are not re-read.
_DERIVED = {"formula", "n_atoms", "configuration"}
# info keys that a Dataset sets itself; an incoming one is kept under "origin_<key>".
_RENAMED = {"source", "source_index"}


def read(
    path: str | os.PathLike,
    format: str | None = None,
    *,
    fidelity: str | Fidelity | None = None,
    energy_unit: str | None = None,
    force_unit: str | None = None,
    energy_key: str = "energy",
    forces_key: str = "forces",
    **kw,
) -> Dataset:
    """Read every frame of an ASE-readable file (energies → eV, forces → eV/Å, positions Å).

    Parameters
    ----------
    path
        The file.
    format
        An ASE format name (``"extxyz"``, ``"traj"``, ...); guessed by ASE when None.
    fidelity
        Level of theory of the plain ``energy``/``forces`` labels; ``unknown`` when None.
    energy_unit
        Unit of the file's energies (``"kcal/mol"``, ``"hartree"``, ...); eV when None.
    force_unit
        Unit of the file's forces (``"hartree/bohr"``); ``energy_unit`` per Å when None.
    energy_key, forces_key
        Names of the plain labels.
    **kw
        Passed to the ASE reader.

    Raises
    ------
    DatasetError
        For any unreadable frame, naming the file, the frame and what ASE or the checks found.
    """
    if "index" in kw:
        raise TypeError("read() reads every frame; choose configurations afterwards with ds.select(...)")
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise DatasetError("no such file", file=file)
    if path.stat().st_size == 0:
        raise DatasetError("the file is empty", file=file)
    common, named = common_fidelity(fidelity, file)
    e_factor = 1.0 if energy_unit is None else factor("energy", energy_unit, file, "energy_unit=: ")
    if force_unit is None and energy_unit is not None:
        force_unit = f"{energy_unit}/angstrom"
    f_factor = 1.0 if force_unit is None else factor("forces", force_unit, file, "force_unit=: ")

    records, fidelities = [], {}
    seen = {"energy": False, "forces": False, "common": False, "periodic": False, "skipped": set()}
    with reading(file):
        for i, atoms in _frames(path, format, kw):
            records.append(
                _record(atoms, i, common, named, energy_key, forces_key, e_factor, f_factor, fidelities, seen)
            )
        if not records:
            raise DatasetError("the file holds no configurations")
        provenance = _provenance(file, energy_unit, force_unit, e_factor, f_factor, common, named, seen)
        ds = Dataset.from_configurations(records, fidelities=fidelities, provenance=provenance)
    add_source_columns(ds.info, file)
    return ds


def _frames(path: Path, format: str | None, kw: dict):
    """Frames of the file as ``(index, atoms)``; ASE's exceptions become DatasetErrors naming the frame."""
    from ase.io import iread
    from ase.io.formats import UnknownFileTypeError, filetype

    file = str(path)
    try:
        if (format or filetype(file)) in ("extxyz", "xyz"):
            _scan_xyz(path)
        frames = iread(file, index=":", format=format, parallel=False, **kw)
    except UnknownFileTypeError as err:
        raise DatasetError(_unknown_format(path, err), file=file) from None
    i = 0
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except UnknownFileTypeError as err:
            raise DatasetError(_unknown_format(path, err), file=file) from None
        except DatasetError:
            raise
        except Exception as err:  # noqa: BLE001 - ASE's readers raise many types; all mean a bad frame
            raise DatasetError(_explain(err, i), file=file, configuration=i) from err
        yield i, atoms
        i += 1


def _scan_xyz(path: Path) -> None:
    """Check the frame layout of an xyz file (count line, comment, that many atom lines).

    ASE scans the whole file for frame starts before yielding the first frame, so its errors do
    not say which frame is broken; this scan does, with the line number.
    """
    file = str(path)

    def fail(problem: str, frame: int):
        return DatasetError(problem, file=file, configuration=frame)

    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = iter(enumerate(fh, start=1))
        frame, previous = 0, None
        for number, line in lines:
            if line.lstrip().startswith("VEC"):
                continue  # extxyz cell vectors after a frame's atoms
            if not line.strip():
                # ASE stops at the first blank line: refuse rather than silently drop what follows.
                rest = next((k for k, more in lines if more.strip()), None)
                if rest is not None:
                    raise fail(f"line {number} is blank but more follows at line {rest}; remove the blank line", frame)
                return
            if not line.strip().isdigit():
                if previous is not None and len(line.split()) >= 4:
                    raise fail(
                        f"has more atom lines than its atom count ({previous}) says: line {number} is an atom "
                        "line where the next configuration's atom count should be",
                        frame - 1,
                    )
                raise fail(f"line {number} should be an atom count but is {line.strip()[:60]!r}", frame)
            n = int(line)
            if next(lines, None) is None:
                raise fail(f"declares {n} atoms but the file ends after the count line (a truncated file)", frame)
            for k in range(n):
                item = next(lines, None)
                if item is None:
                    raise fail(f"declares {n} atoms but the file ends after {k} atom lines (a truncated file)", frame)
                if not item[1].strip() or item[1].strip().isdigit():
                    what = "blank" if not item[1].strip() else f"an atom count ({item[1].strip()})"
                    raise fail(
                        f"declares {n} atoms but has {k}: line {item[0]}, where atom {k + 1} should be, is {what}",
                        frame,
                    )
            previous = n
            frame += 1


def _unknown_format(path: Path, err: Exception) -> str:
    return (
        f"ASE does not recognise this file's format (extension {path.suffix!r}: {err}); "
        "pass format= with an ASE format name such as 'extxyz'"
    )


def _explain(err: Exception, i: int) -> str:
    text = str(err)
    if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str) and err.args[0].isalpha():
        return f"unknown element symbol {err.args[0]!r}"
    hint = ""
    if "Frame has" in text and "expected" in text:
        hint = " (the file is truncated, or the atom count line does not match the atom lines)"
    elif "could not assign tuple" in text:
        hint = " (an atom line has a different number of columns than the Properties header declares)"
    elif "Expected xyz header" in text and i > 0:
        hint = (
            f" (configuration {i} does not start with an atom count: configuration {i - 1} may have "
            "more atom lines than its count says, or the file ends with stray text)"
        )
    elif "Expected xyz header" in text:
        hint = " (the first line should be the number of atoms)"
    return f"cannot be read by ASE: {type(err).__name__}: {text}{hint}"


def _scalar(value) -> bool:
    return np.ndim(value) == 0 and isinstance(value, (str, bool, int, float, np.generic))


def _energy(value, key: str, i: int) -> float:
    if isinstance(value, (bool, np.bool_, str)) or not _scalar(value):
        raise DatasetError(f"energy {key!r} is {value!r}, expected one number", configuration=i)
    return float(value)


def _forces(value, key: str, n: int, i: int) -> np.ndarray:
    try:
        forces = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"forces {key!r} are not numbers", configuration=i) from None
    if forces.shape != (n, 3):
        raise DatasetError(f"forces {key!r} have shape {forces.shape}, expected ({n}, 3)", configuration=i)
    return forces


def _put(store: dict, name: str, value, key: str, i: int) -> None:
    """Store one label, refusing two different values for one fidelity in one frame."""
    if name in store:
        if not np.allclose(store[name], value, rtol=1e-10, atol=1e-10, equal_nan=True):
            raise DatasetError(f"two different labels at fidelity {name!r} (one of them {key!r})", configuration=i)
        return
    store[name] = value


def _record(atoms, i, common, named, energy_key, forces_key, e_factor, f_factor, fidelities, seen) -> dict:
    n = len(atoms)
    bad = (atoms.numbers < 1) | (atoms.numbers > 118)
    if bad.any():
        raise DatasetError(f"unknown element with atomic number {atoms.numbers[bad][0]}", configuration=i)
    results = dict(getattr(atoms.calc, "results", None) or {})
    energy, forces, info = {}, {}, {}
    plain_e = results.get(energy_key, atoms.info.get(energy_key))
    if plain_e is not None:
        _put(energy, common.name, _energy(plain_e, energy_key, i) * e_factor, energy_key, i)
    plain_f = results.get(forces_key)
    if plain_f is None:
        plain_f = atoms.arrays.get(forces_key)
    if plain_f is not None:
        _put(forces, common.name, _forces(plain_f, forces_key, n, i) * f_factor, forces_key, i)
    for key, value in atoms.info.items():
        if key == energy_key:
            continue
        if key.startswith("energy_") and is_label_key(key):
            fid = _fidelity(key, fidelities, i)
            _put(energy, fid, _energy(value, key, i) * e_factor, key, i)
        elif key in _DERIVED:
            continue
        elif _scalar(value):
            info[f"origin_{key}" if key in _RENAMED else key] = value.item() if isinstance(value, np.generic) else value
        else:
            seen["skipped"].add(key)
    for key, value in atoms.arrays.items():
        if key.startswith("forces_") and key != forces_key and is_label_key(key):
            _put(forces, _fidelity(key, fidelities, i), _forces(value, key, n, i) * f_factor, key, i)
    plain = plain_e is not None or plain_f is not None
    level = _repeated_level(energy, forces, common.name) if plain and not named else None
    if level is not None:
        # Dataset.to_atoms attaches one level's labels as the calculator too: they are that level's, not a
        # second level's (and a format that keeps only the calculator's forces keeps them for that level).
        for store in (energy, forces):
            if common.name in store:
                store.setdefault(level, store.pop(common.name))
        plain = False
    if plain:
        seen["common"] = True
    seen["energy"] |= bool(energy)
    seen["forces"] |= bool(forces)
    seen["periodic"] |= bool(np.any(atoms.pbc))
    if plain:
        fidelities.setdefault(common.name, common)
    return {"numbers": atoms.numbers, "positions": atoms.positions, "energy": energy, "forces": forces, "info": info}


def _repeated_level(energy: dict, forces: dict, name: str) -> str | None:
    """The level named in the frame whose labels the plain ones (stored at ``name``) repeat value for value, where
    both have a label; None if there is no such level or they share none."""
    for other in dict.fromkeys([*energy, *forces]):
        if other == name:
            continue
        shared = [store for store in (energy, forces) if name in store and other in store]
        if shared and all(np.allclose(s[other], s[name], rtol=1e-10, atol=1e-10) for s in shared):
            return other
    return None


def _fidelity(key: str, fidelities: dict, i: int) -> str:
    try:
        fid = fidelity_from_key(key.split("_", 1)[1])
    except ValueError as err:
        raise DatasetError(f"label {key!r} names no level of theory ({err})", configuration=i) from None
    fidelities.setdefault(fid.name, fid)
    return fid.name


def _provenance(file, energy_unit, force_unit, e_factor, f_factor, common, named, seen) -> list[dict]:
    out = []
    if seen["energy"]:
        if energy_unit is None:
            out.append(note(file, "energies read as eV (ASE's convention; pass energy_unit= for another unit)"))
        elif e_factor != 1.0:
            out.append(conversion(file, "energy", energy_unit, "eV", e_factor))
    if seen["forces"]:
        if force_unit is None:
            out.append(note(file, "forces read as eV/Å (ASE's convention; pass force_unit= for another unit)"))
        elif f_factor != 1.0:
            out.append(conversion(file, "forces", force_unit, "eV/Å", f_factor))
    if seen["common"] and not named:
        out.append(
            note(
                file,
                f"plain energy/forces have no level of theory: stored as fidelity {common.name!r} "
                "(pass fidelity= to name it)",
            )
        )
    if seen["periodic"]:
        out.append(note(file, "periodic cells were dropped: the Dataset holds molecules (positions as given, in Å)"))
    if seen["skipped"]:
        out.append(note(file, f"non-scalar info entries not kept: {sorted(seen['skipped'])}"))
    return out
