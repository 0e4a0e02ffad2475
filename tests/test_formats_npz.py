"""sGDML / MD17 npz files, written with numpy as those tools write them."""

import numpy as np
import pytest
from ase import units
from ase.build import molecule

import workbench as wb
from workbench.data import DatasetError
from workbench.data.formats import sgdml_npz

KCAL = units.kcal / units.mol


def _arrays(m=5, seed=0):
    rng = np.random.default_rng(seed)
    water = molecule("H2O")
    R = water.positions[None] + 0.02 * rng.normal(size=(m, 3, 3))
    E = -47950.0 + rng.normal(size=(m, 1))  # kcal/mol, shaped (M, 1) like the MD17 files
    F = 10.0 * rng.normal(size=(m, 3, 3))
    return {"R": R, "z": water.numbers, "E": E, "F": F}


def test_md17_conventions_are_assumed_and_recorded(tmp_path):
    a = _arrays()
    path = tmp_path / "water_ccsd_t.npz"
    np.savez(path, **a, theory="CCSD(T)/cc-pVDZ", name="water", type="d")
    ds = sgdml_npz.read(path)
    assert len(ds) == 5 and ds.n_atoms.tolist() == [3] * 5
    assert ds.info["formula"].unique().tolist() == ["H2O"]
    assert ds.fidelity_names == ["ccsd(t)/cc-pvdz"]
    energy, mask = ds.energy("ccsd(t)/cc-pvdz")
    assert mask.all()
    np.testing.assert_allclose(energy, a["E"][:, 0] * KCAL, rtol=1e-14)
    forces, fmask = ds.forces("ccsd(t)/cc-pvdz")
    assert fmask.all()
    np.testing.assert_allclose(forces, a["F"].reshape(-1, 3) * KCAL, rtol=1e-14)
    np.testing.assert_array_equal(ds.positions, a["R"].reshape(-1, 3))
    notes = " ".join(p.get("note", "") for p in ds.provenance)
    assert "kcal/mol" in notes and "e_unit" in notes and "angstrom" in notes
    conv = {p["quantity"]: p for p in ds.provenance if "factor" in p}
    assert conv["energy"] == {"file": str(path), "quantity": "energy", "from": "kcal/mol", "to": "eV", "factor": KCAL}
    assert conv["forces"]["from"] == "kcal/mol/angstrom"
    assert ds.info["source"].tolist() == [str(path)] * 5 and ds.info["source_index"].tolist() == list(range(5))


def test_stored_units_are_used(tmp_path):
    a = _arrays()
    path = tmp_path / "bohr.npz"
    np.savez(path, **a, theory="PBE", e_unit="Ha", r_unit="bohr", f_unit="Ha/bohr")
    ds = sgdml_npz.read(path)
    np.testing.assert_allclose(ds.positions, a["R"].reshape(-1, 3) * units.Bohr, rtol=1e-14)
    np.testing.assert_allclose(ds.energy("pbe")[0], a["E"][:, 0] * units.Hartree, rtol=1e-14)
    np.testing.assert_allclose(ds.forces("pbe")[0], a["F"].reshape(-1, 3) * units.Hartree / units.Bohr, rtol=1e-14)
    assert {p["quantity"] for p in ds.provenance if "factor" in p} == {"positions", "energy", "forces"}
    assert not any("note" in p for p in ds.provenance)  # nothing assumed


def test_fidelity_option_overrides_theory_and_one_dimensional_energies_work(tmp_path):
    a = _arrays()
    a["E"] = a["E"][:, 0]
    path = tmp_path / "e1d.npz"
    np.savez(path, **a, theory="unknown")
    ds = sgdml_npz.read(path, fidelity="pbe+vdW-TS")
    assert ds.fidelity_names == ["pbe+vdw-ts"]
    np.testing.assert_allclose(ds.energy("pbe+vdw-ts")[0], a["E"] * KCAL)
    anonymous = sgdml_npz.read(path)
    assert anonymous.fidelity_names == ["unknown"]
    assert any("fidelity=" in p.get("note", "") for p in anonymous.provenance)


def test_revised_md17_key_names_and_user_units(tmp_path):
    a = _arrays()
    path = tmp_path / "rmd17_water.npz"
    np.savez(path, nuclear_charges=a["z"], coords=a["R"], energies=a["E"][:, 0], forces=a["F"])
    ds = sgdml_npz.read(path, fidelity="pbe/def2-svp", energy_unit="kJ/mol")
    np.testing.assert_allclose(ds.energy("pbe/def2-svp")[0], a["E"][:, 0] * units.kJ / units.mol)
    np.testing.assert_allclose(ds.forces("pbe/def2-svp")[0], a["F"].reshape(-1, 3) * units.kJ / units.mol)


def test_nan_energies_are_masked_and_configurations_kept(tmp_path):
    a = _arrays()
    a["E"][2] = np.nan
    a["F"][3, 1, 0] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, **a, theory="b3lyp/6-31g*")
    ds = sgdml_npz.read(path)
    assert len(ds) == 5
    assert ds.energy("b3lyp/6-31g*")[1].tolist() == [True, True, False, True, True]
    assert ds.forces("b3lyp/6-31g*")[1].tolist() == [True, True, True, False, True]


def test_float32_positions_keep_their_dtype(tmp_path):
    a = _arrays()
    a["R"] = a["R"].astype(np.float32)
    path = tmp_path / "f32.npz"
    np.savez(path, **a, theory="pbe")
    assert sgdml_npz.read(path).positions.dtype == np.float32


def test_load_dispatches_npz_by_content_and_merges_with_extxyz(tmp_path):
    """The same geometries labelled by an npz and an extxyz at two levels become one dataset."""
    import ase.io

    a = _arrays(m=3)
    npz = tmp_path / "high.npz"
    np.savez(npz, **a, theory="CCSD(T)/cc-pVDZ")
    frames = []
    for k in range(3):
        atoms = molecule("H2O")
        atoms.positions = a["R"][k]
        atoms.info["energy_gfn2-xtb"] = -137.0 - k
        frames.append(atoms)
    xyz = tmp_path / "low.xyz"
    ase.io.write(xyz, frames)
    ds = wb.load([npz, xyz])
    assert len(ds) == 3
    assert set(ds.fidelity_names) == {"ccsd(t)/cc-pvdz", "gfn2-xtb"}
    assert ds.coverage().loc["gfn2-xtb", "& ccsd(t)/cc-pvdz"] == 3


def test_unknown_and_contradicting_units_are_refused(tmp_path):
    a = _arrays()
    path = tmp_path / "furlong.npz"
    np.savez(path, **a, e_unit="furlong")
    with pytest.raises(DatasetError, match="e_unit: unknown energy unit 'furlong'") as err:
        sgdml_npz.read(path)
    assert err.value.file == str(path)
    stored = tmp_path / "stored.npz"
    np.savez(stored, **a, e_unit="kcal/mol")
    with pytest.raises(DatasetError, match="stores e_unit='kcal/mol', but energy_unit='eV'"):
        sgdml_npz.read(stored, energy_unit="eV")
    assert len(sgdml_npz.read(stored, energy_unit="kcal/mol")) == 5
