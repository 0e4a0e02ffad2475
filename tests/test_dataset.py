import ase.io
import h5py
import numpy as np
import pandas as pd
import pytest
from ase.build import molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator

import workbench as wb
from workbench.data import Dataset, DatasetError, concatenate
from workbench.data.merge import find_duplicates, merge


def _configs(n=12, seed=0, fidelities=("gfn2-xtb", "ccsd(t)/cc-pvdz"), every=(1, 3)):
    """Water and methane geometries with made-up-but-consistent labels: label k every ``every[k]``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = molecule("H2O" if i % 2 == 0 else "CH4")
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        conf = {"numbers": atoms.numbers, "positions": atoms.positions, "energy": {}, "forces": {}, "info": {"step": i}}
        for k, fid in enumerate(fidelities):
            if i % every[k] == 0:
                conf["energy"][fid] = -100.0 * len(atoms) - i - 10 * k
                if k == 0:
                    conf["forces"][fid] = rng.normal(size=(len(atoms), 3))
        out.append(conf)
    return out


@pytest.fixture
def ds():
    return Dataset.from_configurations(_configs())


def test_layout_is_flat_and_ragged(ds):
    assert len(ds) == 12
    assert ds.ptr[-1] == len(ds.numbers) == 6 * 3 + 6 * 5
    assert ds.n_atoms.tolist() == [3, 5] * 6
    assert ds.fidelity_names == ["gfn2-xtb", "ccsd(t)/cc-pvdz"]  # low to high
    assert ds.info["formula"].tolist()[:2] == ["H2O", "CH4"]


def test_missing_labels_are_masked_never_zero(ds):
    energy, mask = ds.energy("ccsd(t)/cc-pvdz")
    assert mask.tolist() == [i % 3 == 0 for i in range(12)]
    assert np.isnan(energy[~mask]).all()
    assert ds.labels["ccsd(t)/cc-pvdz"].forces is None
    cov = ds.coverage()
    assert cov.loc["gfn2-xtb", "energy"] == 12 and cov.loc["gfn2-xtb", "forces"] == 12
    assert cov.loc["ccsd(t)/cc-pvdz", "energy"] == 4 and cov.loc["ccsd(t)/cc-pvdz", "forces"] == 0
    assert cov.loc["ccsd(t)/cc-pvdz", "& gfn2-xtb"] == 4
    lm = ds.label_matrix()
    assert lm[("ccsd(t)/cc-pvdz", "energy")].sum() == 4


def test_select_keeps_atoms_and_labels_together(ds):
    sub = ds.select([5, 0, 3])
    assert sub.n_atoms.tolist() == [5, 3, 5]
    np.testing.assert_array_equal(sub.positions[:5], ds.positions[ds.ptr[5] : ds.ptr[6]])
    f, _ = ds.forces("gfn2-xtb")
    fs, _ = sub.forces("gfn2-xtb")
    np.testing.assert_array_equal(fs[5:8], f[0:3])
    assert sub.info["step"].tolist() == [5, 0, 3]
    assert len(ds.select(np.arange(12) % 2 == 0)) == 6


def test_split_is_seeded_disjoint_and_shared_by_all_fidelities(ds):
    train, val, test = ds.split([0.5, 0.25, 0.25], seed=3)
    steps = [set(part.info["step"]) for part in (train, val, test)]
    assert sum(len(s) for s in steps) == 12
    assert not (steps[0] & steps[1]) and not (steps[0] & steps[2]) and not (steps[1] & steps[2])
    again = ds.split([0.5, 0.25, 0.25], seed=3)
    assert [set(p.info["step"]) for p in again] == steps
    other = ds.split([0.5, 0.25, 0.25], seed=4)
    assert [set(p.info["step"]) for p in other] != steps
    # A configuration's labels travel with it: every label of a test configuration is in test.
    for part in (train, val, test):
        for i, step in enumerate(part.info["step"]):
            assert part.labels["ccsd(t)/cc-pvdz"].energy_mask[i] == (step % 3 == 0)


def test_keep_labels_simulates_a_budget(ds):
    budget = ds.keep_labels("ccsd(t)/cc-pvdz", indices=[0, 3], properties=("energy",))
    assert budget.labels["ccsd(t)/cc-pvdz"].energy_mask.sum() == 2
    assert len(budget) == len(ds)  # nothing dropped
    assert budget.labels["gfn2-xtb"].energy_mask.sum() == 12  # other fidelities untouched
    no_forces = ds.keep_labels("gfn2-xtb", properties=("energy",))
    assert no_forces.labels["gfn2-xtb"].forces_mask.sum() == 0
    assert ds.labels["gfn2-xtb"].forces_mask.sum() == 12  # the original is unchanged


def test_to_atoms_carries_every_label(ds):
    atoms = ds.to_atoms(3, fidelity="gfn2-xtb")
    assert atoms.get_chemical_formula() == "CH4"
    assert atoms.get_potential_energy() == pytest.approx(ds.energy("gfn2-xtb")[0][3])
    np.testing.assert_allclose(atoms.get_forces(), ds.forces("gfn2-xtb")[0][ds.ptr[3] : ds.ptr[4]])
    assert atoms.info["energy_ccsd(t)/cc-pvdz"] == pytest.approx(ds.energy("ccsd(t)/cc-pvdz")[0][3])
    assert "energy_ccsd(t)/cc-pvdz" not in ds.to_atoms(1).info


def test_to_atoms_of_a_dataset_with_one_fidelity_attaches_its_labels_as_ase_io_read_does(ds, tmp_path):
    one = ds.drop_fidelity("ccsd(t)/cc-pvdz")
    atoms = one.to_atoms(3)
    assert isinstance(atoms.calc, SinglePointCalculator)
    assert atoms.get_potential_energy() == ds.energy("gfn2-xtb")[0][3]  # eV, no argument needed
    np.testing.assert_array_equal(atoms.get_forces(), ds.forces("gfn2-xtb")[0][ds.ptr[3] : ds.ptr[4]])
    ase.io.write(tmp_path / "one.extxyz", atoms)
    read = ase.io.read(tmp_path / "one.extxyz")
    assert type(read.calc) is type(atoms.calc)
    assert read.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(read.get_forces(), atoms.get_forces(), atol=1e-6)  # extxyz keeps 8 decimals


def test_to_atoms_of_several_fidelities_attaches_nothing_until_one_is_named(ds):
    atoms = ds.to_atoms(3)
    assert atoms.calc is None  # which level would get_potential_energy() mean? the caller says
    with pytest.raises(RuntimeError, match="no calculator"):
        atoms.get_potential_energy()
    assert atoms.info["energy_gfn2-xtb"] == ds.energy("gfn2-xtb")[0][3]  # the labels are still all there
    high = ds.to_atoms(3, fidelity="CCSD(T)/cc-pVDZ")
    assert high.get_potential_energy() == ds.energy("ccsd(t)/cc-pvdz")[0][3]
    with pytest.raises(PropertyNotImplementedError):
        high.get_forces()  # the high level has no forces here: not a block of zeros
    with pytest.raises(KeyError, match=r"present: \['gfn2-xtb', 'ccsd\(t\)/cc-pvdz'\]"):
        ds.to_atoms(3, fidelity="b3lyp/6-31g*")


def test_to_atoms_never_makes_up_a_masked_label(ds):
    one = ds.drop_fidelity("gfn2-xtb").keep_labels("ccsd(t)/cc-pvdz", indices=[0])  # one fidelity, mostly masked
    assert one.to_atoms(0).get_potential_energy() == ds.energy("ccsd(t)/cc-pvdz")[0][0]
    masked = one.to_atoms(3)  # had an energy before keep_labels masked it
    assert "energy_ccsd(t)/cc-pvdz" not in masked.info
    with pytest.raises(PropertyNotImplementedError):
        masked.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError):
        masked.get_forces()
    assert not masked.calc.results  # nothing stored, so nothing is a stand-in 0


def test_concatenate_unions_fidelities():
    a = Dataset.from_configurations(_configs(4, fidelities=("gfn2-xtb",), every=(1,)))
    b = Dataset.from_configurations(_configs(3, seed=1, fidelities=("mp2/cc-pvdz",), every=(1,)))
    c = concatenate([a, b])
    assert len(c) == 7
    assert c.labels["gfn2-xtb"].energy_mask.tolist() == [True] * 4 + [False] * 3
    assert c.labels["mp2/cc-pvdz"].forces_mask.tolist() == [False] * 4 + [True] * 3


def test_save_load_round_trips_exactly(tmp_path, ds, ani_path):
    for original in (ds, wb.load(ani_path)):
        path = tmp_path / "ds.h5"
        original.save(path)
        back = wb.load(path)
        np.testing.assert_array_equal(back.numbers, original.numbers)
        assert back.positions.dtype == original.positions.dtype
        np.testing.assert_array_equal(back.positions, original.positions)
        assert back.fidelity_names == original.fidelity_names
        for name, lab in original.labels.items():
            got = back.labels[name]
            np.testing.assert_array_equal(got.energy, lab.energy)  # NaN where NaN
            np.testing.assert_array_equal(got.energy_mask, lab.energy_mask)
            np.testing.assert_array_equal(got.forces_mask, lab.forces_mask)
            assert (got.forces is None) == (lab.forces is None)
            if lab.forces is not None:
                np.testing.assert_array_equal(got.forces, lab.forces)
            assert back.fidelity_info[name] == original.fidelity_info[name]
        pd.testing.assert_frame_equal(back.info, original.info)
        assert back.provenance == original.provenance


def test_save_is_atomic(tmp_path, ds):
    path = tmp_path / "ds.h5"
    ds.save(path)
    before = path.read_bytes()
    broken = ds.select(slice(None))

    class Unwritable:
        def __str__(self):
            raise RuntimeError("cannot be written")

    broken.info["bad"] = [Unwritable()] * len(broken)  # the write fails midway, after the arrays
    with pytest.raises(RuntimeError):
        broken.save(path)
    assert path.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ds.h5"]  # and no temporary file is left


def test_set_rank_reorders_fidelities(ds):
    ds.set_rank("gfn2-xtb", 100)
    assert ds.fidelity_names == ["ccsd(t)/cc-pvdz", "gfn2-xtb"]


def test_invalid_content_names_the_configuration():
    confs = _configs(4)
    confs[2]["positions"] = np.array(confs[2]["positions"])
    confs[2]["positions"][1, 0] = np.nan
    with pytest.raises(DatasetError, match="configuration 2: positions contain NaN"):
        Dataset.from_configurations(confs)
    confs = _configs(4)
    confs[3]["forces"] = {"gfn2-xtb": np.zeros((2, 3))}
    with pytest.raises(DatasetError, match="configuration 3: forces at fidelity 'gfn2-xtb' have shape"):
        Dataset.from_configurations(confs)


def test_merge_combines_levels_of_the_same_geometries():
    low = Dataset.from_configurations(_configs(6, fidelities=("gfn2-xtb",), every=(1,)))
    high_confs = _configs(6, fidelities=("ccsd(t)/cc-pvdz",), every=(1,))
    high_confs = [high_confs[i] for i in (4, 1, 2)]
    for c in high_confs:  # the same geometries written with round-off
        c["positions"] = np.round(c["positions"], 6)
    high = Dataset.from_configurations(high_confs)
    merged = merge([low, high], tolerance=1e-4)
    assert len(merged) == 6
    mask = merged.labels["ccsd(t)/cc-pvdz"].energy_mask
    assert mask.tolist() == [False, True, True, False, True, False]
    assert merged.labels["gfn2-xtb"].energy_mask.all()


def test_conflicting_labels_for_one_geometry_are_an_error():
    a = Dataset.from_configurations(_configs(3, fidelities=("gfn2-xtb",), every=(1,)))
    b_confs = _configs(3, fidelities=("gfn2-xtb",), every=(1,))
    b_confs[1]["energy"]["gfn2-xtb"] += 0.5
    b = Dataset.from_configurations(b_confs)
    with pytest.raises(DatasetError, match="different gfn2-xtb energies"):
        merge([a, b])


def test_duplicate_search_finds_exactly_the_planted_pairs():
    rng = np.random.default_rng(1)
    confs = []
    for _ in range(300):  # a dense cloud of one molecule, as in an MD trajectory
        atoms = molecule("CH3CH2OH")
        atoms.positions += rng.normal(scale=0.02, size=atoms.positions.shape)
        confs.append({"numbers": atoms.numbers, "positions": atoms.positions})
    confs.append({"numbers": confs[10]["numbers"], "positions": confs[10]["positions"] + 5e-5})
    confs.append({"numbers": confs[200]["numbers"], "positions": confs[200]["positions"] - 3e-5})
    confs.append({"numbers": confs[50]["numbers"], "positions": confs[50]["positions"] + 5e-3})  # not a duplicate
    ds = Dataset.from_configurations(confs)
    assert find_duplicates(ds, 1e-4).tolist() == [[10, 300], [200, 301]]


def test_native_file_without_units_is_refused(tmp_path, ds):
    path = tmp_path / "ds.h5"
    ds.save(path)
    with h5py.File(path, "a") as fh:
        del fh.attrs["energy_unit"]
    with pytest.raises(DatasetError, match="missing unit attribute 'energy_unit'") as err:
        wb.load(path)
    assert str(path) in str(err.value)


def test_atomic_number_beyond_the_table_is_a_dataset_error():
    confs = _configs(2)
    confs[1]["numbers"] = np.array(confs[1]["numbers"]) * 0 + 200
    with pytest.raises(DatasetError, match="configuration 1: unknown element with atomic number 200"):
        Dataset.from_configurations(confs)


def test_ase_trajectory_loads_by_content(tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for i in range(3):
        atoms = molecule("H2O")
        atoms.positions[0, 0] += 0.01 * i
        atoms.calc = SinglePointCalculator(atoms, energy=-10.0 - i, forces=np.zeros((3, 3)))
        frames.append(atoms)
    write(tmp_path / "run.traj", frames)
    ds = wb.load(tmp_path / "run.traj", fidelity="gfn2-xtb")
    assert len(ds) == 3 and ds.energy("gfn2-xtb")[0].tolist() == [-10.0, -11.0, -12.0]
