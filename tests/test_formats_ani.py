"""The real ANI-1x/ANI-1ccx sample (tests/data/ani1x_ani1ccx_sample, CC BY 4.0, Smith et al. 2020)."""

import h5py
import numpy as np
import pytest
from ase import units

import workbench as wb

HARTREE = units.Hartree


def test_every_level_becomes_a_fidelity_and_configurations_are_kept(ani_path):
    ds = wb.load(ani_path)
    assert len(ds) == 8
    assert ds.n_atoms.tolist() == [13, 13, 14, 14, 14, 14, 19, 19]
    assert set(ds.fidelity_names) == {
        "wb97x/6-31g*",
        "wb97x/def2-tzvpp",
        "hf/cc-pvdz",
        "hf/cc-pvtz",
        "hf/cc-pvqz",
        "mp2/cc-pvdz",
        "mp2/cc-pvtz",
        "mp2/cc-pvqz",
        "dlpno-ccsd(t)-normal/cc-pvdz",
        "dlpno-ccsd(t)-normal/cc-pvtz",
        "dlpno-ccsd(t)-tight/cc-pvdz",
        "ccsd(t)/cbs",
    }
    cov = ds.coverage()
    assert cov.loc["wb97x/6-31g*", "energy"] == 8 and cov.loc["wb97x/6-31g*", "forces"] == 8
    # CCSD(T)*/CBS is NaN on two conformations of C1H6N2O5: masked, not dropped.
    assert cov.loc["ccsd(t)/cbs", "energy"] == 6 and cov.loc["ccsd(t)/cbs", "forces"] == 0
    energy, mask = ds.energy("ccsd(t)/cbs")
    assert mask.tolist() == [True, True, True, True, False, False, True, True]
    assert np.isnan(energy[~mask]).all()
    assert ds.labels["ccsd(t)/cbs"].forces is None  # no fake block of forces


def test_values_are_converted_from_hartree(ani_path):
    ds = wb.load(ani_path)
    energy, _ = ds.energy("wb97x_dz")
    assert energy[0] == pytest.approx(-559.96732665 * HARTREE, abs=1e-6)
    forces, fmask = ds.forces("wb97x/6-31g*")
    assert fmask.all()
    assert forces[0, 0] == pytest.approx(0.01657831 * HARTREE, rel=1e-6)
    # Correlation energies are added to the HF energy in the same basis.
    mp2, _ = ds.energy("mp2/cc-pvdz")
    assert mp2[0] == pytest.approx((-557.13758986 - 1.55397208) * HARTREE, abs=1e-6)
    assert any(p.get("from") == "hartree" and p.get("to") == "eV" for p in ds.provenance)


def test_arrays_match_raw_h5py(ani_path):
    ds = wb.load(ani_path)
    with h5py.File(ani_path) as fh:
        groups = list(fh.values())
        coords = np.concatenate([g["coordinates"][()].reshape(-1, 3) for g in groups])
        numbers = np.concatenate([np.tile(g["atomic_numbers"][()], len(g["coordinates"])) for g in groups])
    assert ds.positions.dtype == np.float32  # kept as stored
    np.testing.assert_array_equal(ds.positions, coords)
    np.testing.assert_array_equal(ds.numbers, numbers)
    assert ds.info["formula"].tolist()[:3] == ["CH4N4O4", "CH4N4O4", "CH5N3O5"]


def test_reference_energies_bring_levels_together(ani_path):
    from workbench.data.references import reference_report, residual_energies

    ds = wb.load(ani_path)
    refs = ds.atomic_references()
    assert list(refs.index) == ["H", "C", "N", "O"]
    # Totals at ωB97x and CCSD(T)/CBS differ by ~0.3 Hartree per molecule; residuals do not.
    e_dft, m1 = ds.energy("wb97x/6-31g*")
    e_cc, m2 = ds.energy("ccsd(t)/cbs")
    both = m1 & m2
    assert np.abs(e_dft[both] - e_cc[both]).mean() > 5.0  # eV
    res = residual_energies(ds, refs)
    assert np.abs(res["wb97x/6-31g*"][both] - res["ccsd(t)/cbs"][both]).mean() < 1.0
    report = reference_report(ds, refs)
    assert (report["std residual per atom (eV)"] < report["std total energy per atom (eV)"]).all()
