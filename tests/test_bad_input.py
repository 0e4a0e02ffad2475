"""The catalogue of bad files: each gives one DatasetError naming the file, the configuration (where
one applies) and the problem; nothing is written or changed; the fixed file then loads."""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ase.db
import ase.io
import h5py
import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

import workbench as wb
from workbench.data import DatasetError

DATA = Path(__file__).parent / "data"
ANI_SAMPLE = DATA / "ani1x_ani1ccx_sample" / "ani1_n5.hdf5"
MD17_DB = DATA / "schnetpack_md17_ethanol" / "test_ethanol.db"

# Three distinct water frames in extxyz, the reference every xyz case is broken from.
WATER = [
    ("O", (0.0, 0.0, 0.119)),
    ("H", (0.0, 0.763, -0.477)),
    ("H", (0.0, -0.763, -0.477)),
]


def _frame(k: int, count: int | None = None, props: str = "species:S:1:pos:R:3", extra=None) -> list[str]:
    lines = [f"{3 if count is None else count}\n", f'Properties={props} energy={-2080.0 - k:.6f} pbc="F F F"\n']
    for symbol, (x, y, z) in WATER:
        lines.append(f"{symbol} {x + 0.05 * k:.6f} {y:.6f} {z:.6f}" + (f" {extra}" if extra else "") + "\n")
    return lines


def _xyz(frames: list[list[str]]) -> str:
    return "".join(line for frame in frames for line in frame)


def good_xyz(path: Path) -> None:
    path.write_text(_xyz([_frame(k) for k in range(3)]))


def bad_xyz(edit: Callable[[list[list[str]]], None]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        frames = [_frame(k) for k in range(3)]
        edit(frames)
        path.write_text(_xyz(frames))

    return write


def _set(frame: int, line: int, text: str):
    def edit(frames):
        frames[frame][line] = text

    return edit


def _npz_arrays(m: int = 4) -> dict:
    rng = np.random.default_rng(0)
    water = molecule("H2O")
    return {
        "R": water.positions[None] + 0.02 * rng.normal(size=(m, 3, 3)),
        "z": water.numbers,
        "E": -47950.0 + rng.normal(size=m),
        "F": rng.normal(size=(m, 3, 3)),
        "theory": "PBE",
    }


def good_npz(path: Path) -> None:
    with open(path, "wb") as fh:  # np.savez would append .npz to a name without it
        np.savez(fh, **_npz_arrays())


def bad_npz(**changes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        arrays = {**_npz_arrays(), **changes}
        with open(path, "wb") as fh:
            np.savez(fh, **{k: v for k, v in arrays.items() if v is not None})

    return write


def good_hdf5(path: Path) -> None:
    shutil.copyfile(ANI_SAMPLE, path)


def good_db(path: Path) -> None:
    path.unlink(missing_ok=True)
    with ase.db.connect(path, type="db") as db:
        for k in range(3):
            atoms = molecule("H2O")
            atoms.positions[0, 2] += 0.05 * k
            atoms.calc = SinglePointCalculator(atoms, energy=-2080.0 - k, forces=np.zeros((3, 3)))
            db.write(atoms)


def text(content: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(content)


def copy(source: Path) -> Callable[[Path], None]:
    return lambda path: shutil.copyfile(source, path)


def hdf5_with_one_unrelated_dataset(path: Path) -> None:
    with h5py.File(path, "w") as fh:
        fh["temperature"] = np.linspace(300.0, 310.0, 11)


def sqlite_without_ase_tables(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE measurements (x REAL)")
    con.commit()
    con.close()


def db_with_short_forces(path: Path) -> None:
    with ase.db.connect(path, type="db") as db:
        for k in range(3):
            atoms = molecule("H2O")
            atoms.positions[0, 2] += 0.05 * k
            forces = np.zeros((2 if k == 1 else 3, 3))
            db.write(atoms, data={"energy": -2080.0 - k, "forces": forces})
        db.metadata = {"_property_unit_dict": {"energy": "eV", "forces": "eV/Ang"}}


def zip_of_text(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "not arrays")


@dataclass
class Case:
    id: str
    filename: str
    write: Callable[[Path], None]
    problem: str  # a regular expression the problem must match
    configuration: int | None
    fix: Callable[[Path], None] | None  # rewrites the file correctly; None: the fix is an option
    options: dict = field(default_factory=dict)
    fixed_options: dict = field(default_factory=dict)


CASES = [
    # ---- xyz text that does not hold together
    Case(
        "truncated xyz",
        "md.xyz",
        lambda p: p.write_text(_xyz([_frame(0), _frame(1), _frame(2)[:3]])),
        r"declares 3 atoms but the file ends after 1 atom lines \(a truncated file\)",
        2,
        good_xyz,
    ),
    Case(
        "atom count larger than the atom lines",
        "md.xyz",
        bad_xyz(_set(1, 0, "4\n")),
        r"declares 4 atoms but has 3",
        1,
        good_xyz,
    ),
    Case(
        "atom count smaller than the atom lines",
        "md.xyz",
        bad_xyz(_set(1, 0, "2\n")),
        r"more atom lines than its atom count \(2\)",
        1,
        good_xyz,
    ),
    Case("blank line inside", "md.xyz", bad_xyz(_set(1, 0, "\n3\n")), r"blank", 1, good_xyz),
    Case("not a number (ASE's own error)", "md.xyz", bad_xyz(_set(2, 3, "H 0.0 abc 0.1\n")), r"ASE.*abc", 2, good_xyz),
    Case("text that is not xyz", "md.xyz", text("hello world\nno atoms\n"), r"atom count", 0, good_xyz),
    # ---- values
    Case("NaN position", "md.xyz", bad_xyz(_set(1, 3, "H 0.0 nan -0.477\n")), r"NaN", 1, good_xyz),
    Case("infinite position", "md.xyz", bad_xyz(_set(2, 2, "O 0.0 0.0 inf\n")), r"infinite", 2, good_xyz),
    Case(
        "NaN position in npz",
        "md17.npz",
        bad_npz(R=np.where(np.arange(4)[:, None, None] == 3, np.nan, _npz_arrays()["R"])),
        r"NaN",
        3,
        good_npz,
    ),
    Case(
        "forces of the wrong shape (xyz)",
        "md.xyz",
        lambda p: p.write_text(_xyz([_frame(0, props="species:S:1:pos:R:3:forces:R:2", extra="0.1 0.2")])),
        r"forces 'forces' have shape \(3, 2\), expected \(3, 3\)",
        0,
        good_xyz,
    ),
    Case("forces of the wrong shape (npz)", "md17.npz", bad_npz(F=np.zeros((4, 3, 2))), r"F has shape", None, good_npz),
    Case("forces of the wrong shape (ase.db)", "md17.db", db_with_short_forces, r"shape \(2, 3\)", 1, good_db),
    Case(
        "unknown element symbol",
        "md.xyz",
        bad_xyz(_set(1, 2, "Xx 0.0 0.0 0.1\n")),
        r"unknown element.*'Xx'",
        1,
        good_xyz,
    ),
    Case(
        "atomic number 0",
        "md.xyz",
        text("3\nProperties=Z:I:1:pos:R:3\n0 0 0 0\n1 0 1 0\n1 1 0 0\n"),
        r"atomic number 0",
        0,
        good_xyz,
    ),
    Case("atomic number 200", "md17.npz", bad_npz(z=np.array([8, 1, 200])), r"atomic number 200", 0, good_npz),
    # ---- units
    Case("unknown unit in the file", "md17.npz", bad_npz(e_unit="furlong"), r"e_unit.*'furlong'", None, good_npz),
    Case(
        "unknown unit given",
        "md.xyz",
        good_xyz,
        r"energy_unit.*'kcal'.*known",
        None,
        None,
        {"energy_unit": "kcal"},
        {"energy_unit": "kcal/mol"},
    ),
    Case(
        "missing units (labels in row data, empty metadata)",
        "ethanol.db",
        copy(MD17_DB),
        r"no unit.*energy_unit=.*kcal/mol",
        None,
        None,
        {},
        {"energy_unit": "kcal/mol"},
    ),
    # ---- containers
    Case(
        "HDF5 without the expected groups",
        "data.h5",
        hdf5_with_one_unrelated_dataset,
        r"atomic_numbers.*coordinates.*temperature",
        None,
        good_hdf5,
    ),
    Case("SQLite that is not an ASE database", "data.db", sqlite_without_ase_tables, r"not an ASE one", None, good_db),
    Case(
        "npz that needs pickle",
        "md17.npz",
        bad_npz(R=np.array([np.zeros((3, 3)), np.zeros((2, 3))], dtype=object)),
        r"pickle",
        None,
        good_npz,
    ),
    Case("zip that is not an npz", "md17.npz", zip_of_text, r"no R or z array.*readme", None, good_npz),
    # ---- duplicates
    Case(
        "duplicate geometry with conflicting energies",
        "md.xyz",
        lambda p: p.write_text(_xyz([_frame(0), _frame(1), _frame(1)[:1] + [_frame(7)[1]] + _frame(1)[2:]])),
        r"same geometry appears twice",
        2,
        good_xyz,
    ),
    # ---- empty files and content that contradicts the extension
    *[
        Case(f"empty {ext}", f"empty{ext}", text(""), r"empty", None, fix)
        for ext, fix in ((".xyz", good_xyz), (".npz", good_npz), (".h5", good_hdf5), (".db", good_db))
    ],
    Case("text named .h5", "data.h5", good_xyz, r"'\.h5' says HDF5.*text", None, good_hdf5),
    Case("text named .npz", "data.npz", good_xyz, r"'\.npz' says ZIP.*text", None, good_npz),
    Case("text named .db", "data.db", good_xyz, r"'\.db' says SQLITE.*text", None, good_db),
    Case("HDF5 named .npz", "data.npz", good_hdf5, r"'\.npz' says ZIP.*HDF5", None, good_npz),
    Case("SQLite named .h5", "data.h5", good_db, r"'\.h5' says HDF5.*SQLite", None, good_hdf5),
    Case("npz named .db", "data.db", good_npz, r"'\.db' says SQLITE.*zip", None, good_db),
]


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_file_gives_one_clear_error_and_changes_nothing(tmp_path, case):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    path = inputs / case.filename
    case.write(path)
    before = _snapshot(inputs)
    saved = outputs / "dataset.h5"

    with pytest.raises(DatasetError) as caught:
        ds = wb.load(path, **case.options)
        ds.save(saved)  # never reached
    err = caught.value
    assert type(err) is DatasetError
    message = str(err)
    assert err.file == str(path) and str(path) in message
    assert err.configuration == case.configuration, message
    if case.configuration is not None:
        assert f"configuration {case.configuration}" in message
    assert re.search(case.problem, err.problem), message

    assert _snapshot(inputs) == before  # the input is untouched, and nothing was created beside it
    assert list(outputs.iterdir()) == []

    # After the fix, the same path loads and saves.
    if case.fix is not None:
        case.fix(path)
    ds = wb.load(path, **case.fixed_options)
    assert len(ds) > 0
    ds.save(saved)
    assert len(wb.Dataset.load(saved)) == len(ds)


def test_a_bad_file_among_several_is_named(tmp_path):
    good, bad = tmp_path / "good.xyz", tmp_path / "bad.xyz"
    good_xyz(good)
    bad_xyz(_set(1, 3, "H 0.0 nan -0.477\n"))(bad)
    with pytest.raises(DatasetError) as caught:
        wb.load([good, bad])
    assert caught.value.file == str(bad) and caught.value.configuration == 1


def test_wrapped_ase_errors_keep_their_cause(tmp_path):
    path = tmp_path / "md.xyz"
    bad_xyz(_set(2, 3, "H 0.0 abc 0.1\n"))(path)
    with pytest.raises(DatasetError) as caught:
        wb.load(path)
    assert isinstance(caught.value.__cause__, ValueError)  # ASE's own exception, for whoever debugs it
