"""extxyz / ASE-readable files and ASE SQLite databases, written with ASE itself and read back."""

import hashlib
import re
import sqlite3

import ase.db
import ase.io
import numpy as np
import pandas as pd
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

import workbench as wb
from workbench.data import DatasetError
from workbench.data.formats import ase_db, ase_files

KCAL = units.kcal / units.mol


def _water(shift: float, rng) -> Atoms:
    atoms = molecule("H2O")
    atoms.positions += shift + 0.01 * rng.normal(size=(3, 3))
    return atoms


def _frames(n=4, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = _water(0.1 * k, rng)
        atoms.info["energy_gfn2-xtb"] = -137.123456789 - k
        atoms.info["energy_ccsd(t)/cc-pvdz"] = -2075.98765432 - 0.5 * k
        atoms.arrays["forces_wb97x/6-31g*"] = rng.normal(size=(3, 3))
        atoms.info["temperature"] = 300.0 + k
        atoms.info["label"] = f"w{k}"
        atoms.info["step"] = k
        atoms.info["centre"] = np.array([0.1, 0.2, 0.3])  # not a scalar: not a column
        frames.append(atoms)
    return frames


def test_per_fidelity_keys_survive_an_extxyz_round_trip(tmp_path):
    frames = _frames()
    path = tmp_path / "water.extxyz"
    ase.io.write(path, frames)
    ds = ase_files.read(path)
    assert len(ds) == 4 and ds.n_atoms.tolist() == [3, 3, 3, 3]
    assert set(ds.fidelity_names) == {"gfn2-xtb", "ccsd(t)/cc-pvdz", "wb97x/6-31g*"}
    e, mask = ds.energy("ccsd(t)/cc-pvdz")
    assert mask.all()
    np.testing.assert_allclose(e, [a.info["energy_ccsd(t)/cc-pvdz"] for a in frames], rtol=0, atol=1e-9)
    f, fmask = ds.forces("wb97x/6-31g*")
    assert fmask.all()
    np.testing.assert_allclose(f, np.concatenate([a.arrays["forces_wb97x/6-31g*"] for a in frames]), atol=1e-8)
    np.testing.assert_allclose(ds.positions, np.concatenate([a.positions for a in frames]), atol=1e-8)
    # gfn2-xtb has energies but no forces: no block of NaN forces.
    assert ds.labels["gfn2-xtb"].forces is None
    assert ds.labels["ccsd(t)/cc-pvdz"].forces is None


def test_basis_after_underscore_names_the_same_fidelity(tmp_path):
    atoms = molecule("H2O")
    atoms.info["energy_ccsd(t)_cc-pvdz"] = -2075.5
    atoms.info["energy_b3lyp_6-31g*"] = -2076.5
    atoms.info["energy_wb97x_dz"] = -2077.5  # an ANI level name keeps its meaning
    path = tmp_path / "u.xyz"
    ase.io.write(path, atoms, format="extxyz")
    ds = ase_files.read(path)
    assert ds.energy("ccsd(t)/cc-pvdz")[0][0] == -2075.5
    assert ds.energy("b3lyp/6-31g*")[0][0] == -2076.5
    assert ds.energy("wb97x/6-31g*")[0][0] == -2077.5


def test_plain_energy_and_forces_go_to_the_named_fidelity(tmp_path):
    rng = np.random.default_rng(1)
    frames = []
    for k in range(3):
        atoms = _water(0.2 * k, rng)
        atoms.calc = SinglePointCalculator(atoms, energy=-10.0 - k, forces=np.full((3, 3), 0.5 * k))
        frames.append(atoms)
    path = tmp_path / "plain.extxyz"
    ase.io.write(path, frames)

    named = ase_files.read(path, fidelity="PBE/def2-SVP")
    assert named.fidelity_names == ["pbe/def2-svp"]
    assert named.energy("pbe/def2-svp")[0].tolist() == [-10.0, -11.0, -12.0]
    assert named.forces("pbe/def2-svp")[0][6:].tolist() == [[1.0, 1.0, 1.0]] * 3
    assert not any("unknown" in p.get("note", "") for p in named.provenance)

    anonymous = ase_files.read(path)
    assert anonymous.fidelity_names == ["unknown"]
    assert any("fidelity=" in p.get("note", "") and p["file"] == str(path) for p in anonymous.provenance)
    assert any("eV" in p.get("note", "") for p in anonymous.provenance)  # the ASE convention is stated


def test_other_units_are_converted_and_recorded(tmp_path):
    atoms = molecule("H2O")
    atoms.calc = SinglePointCalculator(atoms, energy=-47000.0, forces=np.ones((3, 3)))
    atoms.info["energy_mp2/cc-pvdz"] = -47001.0
    path = tmp_path / "kcal.extxyz"
    ase.io.write(path, atoms)
    ds = ase_files.read(path, fidelity="ccsd(t)/cc-pvdz", energy_unit="kcal/mol")
    assert ds.energy("ccsd(t)/cc-pvdz")[0][0] == pytest.approx(-47000.0 * KCAL, rel=1e-12)
    assert ds.energy("mp2/cc-pvdz")[0][0] == pytest.approx(-47001.0 * KCAL, rel=1e-12)
    np.testing.assert_allclose(ds.forces("ccsd(t)/cc-pvdz")[0], KCAL)  # kcal/mol/Å by default
    conv = {p["quantity"]: p for p in ds.provenance if "factor" in p}
    assert conv["energy"] == {"file": str(path), "quantity": "energy", "from": "kcal/mol", "to": "eV", "factor": KCAL}
    assert conv["forces"]["from"] == "kcal/mol/angstrom" and conv["forces"]["factor"] == pytest.approx(KCAL)

    hartree_bohr = ase_files.read(path, fidelity="x", energy_unit="hartree", force_unit="hartree/bohr")
    np.testing.assert_allclose(hartree_bohr.forces("x")[0], units.Hartree / units.Bohr)


def test_info_scalars_become_columns_with_the_source(tmp_path):
    path = tmp_path / "water.extxyz"
    ase.io.write(path, _frames())
    ds = ase_files.read(path)
    assert ds.info["temperature"].tolist() == [300.0, 301.0, 302.0, 303.0]
    assert ds.info["label"].tolist() == ["w0", "w1", "w2", "w3"]
    assert ds.info["step"].tolist() == [0, 1, 2, 3]
    assert "centre" not in ds.info
    assert any("centre" in p.get("note", "") for p in ds.provenance)
    assert isinstance(ds.info["source"].dtype, pd.CategoricalDtype)
    assert ds.info["source"].tolist() == [str(path)] * 4
    assert ds.info["source_index"].tolist() == [0, 1, 2, 3]


def test_mace_style_label_weights_stay_information_not_levels(tmp_path):
    frames = _frames(3)
    for k, atoms in enumerate(frames):
        atoms.info["energy_weight"] = 1.0 + k
        atoms.info["forces_weight"] = 0.5
        atoms.info["energy_std"] = 0.01
    path = tmp_path / "weights.extxyz"
    ase.io.write(path, frames)
    ds = ase_files.read(path)
    assert set(ds.fidelity_names) == {"gfn2-xtb", "ccsd(t)/cc-pvdz", "wb97x/6-31g*"}
    assert ds.info["energy_weight"].tolist() == [1.0, 2.0, 3.0]
    assert ds.info["forces_weight"].tolist() == [0.5] * 3

    db_path = tmp_path / "weights.db"
    with ase.db.connect(db_path) as db:
        for atoms in frames[:2]:
            db.write(atoms, data={"energy_mp2/cc-pvdz": -47000.0, "forces_std": np.ones((3, 3))}, energy_weight=2.0)
    db_ds = ase_db.read(db_path, energy_unit="eV")
    assert db_ds.fidelity_names == ["mp2/cc-pvdz"]
    assert db_ds.info["energy_weight"].tolist() == [2.0, 2.0]


def test_a_dataset_written_with_to_atoms_reads_back_whole(tmp_path):
    rng = np.random.default_rng(2)
    records = []
    for k in range(5):
        z = np.array([8, 1, 1]) if k % 2 else np.array([6, 1, 1, 1, 1])
        rec = {"numbers": z, "positions": rng.normal(size=(len(z), 3)) * 1.5, "energy": {"gfn2-xtb": -100.0 - k}}
        rec["forces"] = {"gfn2-xtb": rng.normal(size=(len(z), 3))}
        if k < 2:
            rec["energy"]["ccsd(t)/cc-pvdz"] = -2000.0 - k  # the high level on a subset
        records.append(rec)
    original = wb.Dataset.from_configurations(records)
    path = tmp_path / "mixed.extxyz"
    ase.io.write(path, [original.to_atoms(i) for i in range(len(original))])
    back = ase_files.read(path)
    assert back.fidelity_names == original.fidelity_names
    assert back.n_atoms.tolist() == original.n_atoms.tolist()
    for name in original.fidelity_names:
        e0, m0 = original.energy(name)
        e1, m1 = back.energy(name)
        assert m1.tolist() == m0.tolist()
        np.testing.assert_allclose(e1[m1], e0[m0], atol=1e-9)
        np.testing.assert_array_equal(back.forces(name)[1], original.forces(name)[1])
    np.testing.assert_allclose(back.forces("gfn2-xtb")[0], original.forces("gfn2-xtb")[0], atol=1e-8)
    assert "formula" in back.info and "configuration" not in back.info


@pytest.mark.parametrize("suffix", ["extxyz", "traj"])
def test_a_dataset_of_one_fidelity_reads_back_without_a_second_unknown_level(tmp_path, suffix):
    original = wb.datasets.builtin("md17-ethanol-sample").select(range(3))
    assert original.to_atoms(0).calc is not None  # the labels are also the calculator's results
    path = tmp_path / f"one.{suffix}"
    ase.io.write(path, [original.to_atoms(i) for i in range(len(original))])
    back = ase_files.read(path)
    assert back.fidelity_names == original.fidelity_names == ["pbe+vdw-ts"]
    assert not any("unknown" in str(p.get("note")) for p in back.provenance)
    np.testing.assert_allclose(back.energy("pbe+vdw-ts")[0], original.energy("pbe+vdw-ts")[0], atol=1e-9)
    np.testing.assert_allclose(back.forces("pbe+vdw-ts")[0], original.forces("pbe+vdw-ts")[0], atol=1e-8)
    # Plain labels that differ from the named level's are still another level.
    frames = [original.to_atoms(i) for i in range(len(original))]
    for a in frames:
        a.calc = SinglePointCalculator(a, energy=a.get_potential_energy() + 1.0)
    ase.io.write(path, frames)
    assert ase_files.read(path).fidelity_names == ["unknown", "pbe+vdw-ts"]


def test_any_ase_format_is_read_and_format_can_be_forced(tmp_path):
    frames = _frames(3)
    for a in frames:
        a.calc = SinglePointCalculator(a, energy=-5.0, forces=np.zeros((3, 3)))
    traj = tmp_path / "run.traj"
    ase.io.write(traj, frames)
    ds = ase_files.read(traj, fidelity="pbe")
    assert len(ds) == 3 and ds.energy("pbe")[0].tolist() == [-5.0] * 3
    assert ds.energy("gfn2-xtb")[0].tolist() == [a.info["energy_gfn2-xtb"] for a in frames]

    text = tmp_path / "frames.txt"
    ase.io.write(text, frames, format="extxyz")
    with pytest.raises(DatasetError, match="format="):
        ase_files.read(text)
    assert len(ase_files.read(text, format="extxyz")) == 3
    assert len(wb.load(text, format="extxyz")) == 3


def test_load_dispatches_extxyz_by_content(tmp_path):
    path = tmp_path / "water.xyz"
    ase.io.write(path, _frames(2))
    ds = wb.load(path)
    assert len(ds) == 2 and "ccsd(t)/cc-pvdz" in ds.fidelity_names


def test_two_values_for_one_fidelity_in_one_frame_are_refused(tmp_path):
    atoms = molecule("H2O")
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0)
    atoms.info["energy_gfn2-xtb"] = -2.0
    path = tmp_path / "two.extxyz"
    ase.io.write(path, atoms)
    with pytest.raises(DatasetError, match="two different labels at fidelity 'gfn2-xtb'") as err:
        ase_files.read(path, fidelity="gfn2-xtb")
    assert err.value.file == str(path) and err.value.configuration == 0


# ------------------------------------------------------------------------------------- ase.db


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_real_md17_database_reads_with_its_units(md17_db_path):
    before = _digest(md17_db_path)
    ds = wb.load(md17_db_path, fidelity="pbe+vdw-ts", energy_unit="kcal/mol")
    assert _digest(md17_db_path) == before  # reading never writes to the file
    assert len(ds) == 20
    assert ds.n_atoms.tolist() == [9] * 20
    assert ds.info["formula"].unique().tolist() == ["C2H6O"]
    assert ds.fidelity_names == ["pbe+vdw-ts"]
    energy, mask = ds.energy("pbe+vdw-ts")
    assert mask.all()
    assert energy[0] == pytest.approx(-97195.50478287 * KCAL, abs=1e-9)
    assert energy[0] == pytest.approx(-4214.795968, abs=1e-5)
    forces, fmask = ds.forces("pbe+vdw-ts")
    assert forces.shape == (180, 3) and fmask.all()
    assert forces[0, 0] == pytest.approx(-69.99323553 * KCAL, rel=1e-9)
    assert ds.info["db_id"].tolist() == list(range(1, 21))
    conv = [p for p in ds.provenance if "factor" in p]
    assert {(p["quantity"], p["from"]) for p in conv} == {("energy", "kcal/mol"), ("forces", "kcal/mol/angstrom")}


def test_database_with_calculator_results_data_labels_and_metadata(tmp_path):
    path = tmp_path / "mixed.db"
    rng = np.random.default_rng(3)
    with ase.db.connect(path) as db:
        for k in range(3):
            atoms = _water(0.1 * k, rng)
            atoms.calc = SinglePointCalculator(atoms, energy=-5.0 - k, forces=np.full((3, 3), 0.1))
            data = {"energy_mp2/cc-pvdz": np.array([-47000.0 - k]), "forces_mp2/cc-pvdz": np.ones((3, 3))}
            db.write(atoms, data=data, tag=f"t{k}", energy_gfn2_xtb=-137.0)
    with ase.db.connect(path) as db:
        db.metadata = {"_property_unit_dict": {"energy_mp2/cc-pvdz": "kcal/mol", "forces_mp2/cc-pvdz": "kcal/mol/Ang"}}
    # energy_gfn2_xtb is a key-value pair without a stored unit: the user names it.
    ds = ase_db.read(path, fidelity="pbe", energy_unit="eV")
    assert set(ds.fidelity_names) == {"pbe", "mp2/cc-pvdz", "gfn2-xtb"}
    assert ds.energy("gfn2-xtb")[0].tolist() == [-137.0] * 3
    assert ds.energy("pbe")[0].tolist() == [-5.0, -6.0, -7.0]  # calculator results are eV
    np.testing.assert_allclose(ds.forces("pbe")[0], 0.1)
    np.testing.assert_allclose(ds.energy("mp2/cc-pvdz")[0], (-47000.0 - np.arange(3)) * KCAL)
    np.testing.assert_allclose(ds.forces("mp2/cc-pvdz")[0], KCAL)
    assert ds.info["tag"].tolist() == ["t0", "t1", "t2"]
    assert any(p.get("quantity") == "energy (energy_mp2/cc-pvdz)" for p in ds.provenance)

    # Where every energy has a stored unit, an option that contradicts it is refused, not applied.
    stored_only = tmp_path / "stored.db"
    with ase.db.connect(stored_only) as db:
        db.write(molecule("H2O"), data={"energy": -47000.0})
        db.metadata = {"_property_unit_dict": {"energy": "kcal/mol"}}
    with pytest.raises(DatasetError, match="metadata gives 'energy' in 'kcal/mol', but energy_unit='hartree'"):
        ase_db.read(stored_only, energy_unit="hartree")
    assert ase_db.read(stored_only, energy_unit="kcal/mol").energy("unknown")[0][0] == pytest.approx(-47000.0 * KCAL)


def test_sqlite_file_that_is_not_an_ase_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE measurements (x REAL)")
    con.commit()
    con.close()
    before = _digest(path)
    with pytest.raises(DatasetError, match="not an ASE one") as err:
        wb.load(path)
    assert err.value.file == str(path)
    assert _digest(path) == before  # ASE would have created its tables here
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


@pytest.mark.parametrize(
    "unit, scale",
    [("kcal/mol", 1.0), ("hartree", KCAL / units.Hartree), ("eV", KCAL), ("kJ/mol", KCAL / (units.kJ / units.mol))],
)
def test_missing_unit_error_says_what_the_magnitudes_suggest(tmp_path, md17_db_path, unit, scale):
    """The real ethanol energies (kcal/mol in the file), rewritten in other units without metadata."""
    source = ase.db.connect(md17_db_path)
    path = tmp_path / "ethanol.db"
    with ase.db.connect(path) as db:
        for row in source.select():
            db.write(row.toatoms(), data={"energy": row.data["energy"] * scale})
    with pytest.raises(DatasetError, match=f"look like total energies in {re.escape(unit)}") as err:
        ase_db.read(path)
    assert err.value.file == str(path) and "energy_unit=" in err.value.problem


def test_relative_energies_get_no_unit_guess(tmp_path):
    path = tmp_path / "relative.db"
    with ase.db.connect(path) as db:
        db.write(molecule("H2O"), data={"energy": 0.25})
    with pytest.raises(DatasetError, match="relative or atomization energies"):
        ase_db.read(path)
