"""The vibrational references shipped with the built-in ethanol and malonaldehyde: harmonic frequencies at GFN2-xTB
and MP2/cc-pVDZ, each at its level's own minimum, read from the package with their provenance; and the frequency
errors computed from them."""

from datetime import datetime

import numpy as np
import pytest

import workbench as wb
from workbench import analysis
from workbench.analysis.coordinates import bond_graph
from workbench.qm import Level

LEVELS = ["gfn2-xtb", "mp2/cc-pvdz"]


@pytest.mark.parametrize("name, n_ch", [("ethanol", 5), ("malonaldehyde", 3)])
def test_shipped_frequencies_load_with_their_provenance(name, n_ch):
    assert wb.datasets.vibrational_levels(name) == LEVELS
    for level in LEVELS:
        ref = wb.datasets.vibrational_reference(name, level)
        assert ref.name == level and len(ref.atoms) == 9
        # 3n - 6 = 21 vibrations, all real and positive at a minimum
        assert ref.frequencies.shape == (21,) and np.all(ref.frequencies > 150)
        assert np.all(np.diff(ref.frequencies) >= 0)
        assert ref.characters.count("C-H stretch") == n_ch and ref.characters.count("O-H stretch") == 1
        assert ref.max_force < 1e-3 and ref.hessian.shape == (27, 27)
        p = ref.provenance
        assert p["molecule"] == name and p["file"] == f"{name}-vibrations.json"
        # the dataset's own level, with every setting (frozen core, SCF threshold, ...)
        assert p["level"]["settings"] == Level(level).settings and p["level"]["key"] == Level(level).key
        assert p["level"]["program"] in p["programs"] and {"ase", "numpy", "python"} <= set(p["programs"])
        assert p["max_force"] == ref.max_force and p["wall_time_s"] > 0
        assert p["procedure"]["fmax"] == 1e-3 and p["procedure"]["hessian"] == "finite-difference"
        assert datetime.fromisoformat(p["date"]).year >= 2024
    assert Level("mp2/cc-pvdz").settings["frozen_core"] is True
    assert wb.datasets.vibrational_reference(name).name == "mp2/cc-pvdz"  # the most accurate by default
    assert wb.datasets.vibrational_reference(name, "MP2/cc-pVDZ").name == "mp2/cc-pvdz"


def test_asking_for_a_reference_that_is_not_shipped_explains():
    with pytest.raises(KeyError, match="shipped levels"):
        wb.datasets.vibrational_reference("ethanol", "ccsd(t)/cc-pvdz")
    with pytest.raises(FileNotFoundError, match="ethanol"):
        wb.datasets.vibrational_reference("md17-ethanol-sample")
    with pytest.raises(KeyError, match="water-world"):
        wb.datasets.vibrational_reference("water-world")
    assert wb.datasets.vibrational_levels("md17-ethanol-sample") == []


@pytest.mark.parametrize("name", ["ethanol", "malonaldehyde"])
def test_gfn2_xtb_against_mp2_frequencies_from_the_shipped_data(name):
    xtb = wb.datasets.vibrational_reference(name, "gfn2-xtb")
    mp2 = wb.datasets.vibrational_reference(name, "mp2/cc-pvdz")
    errors = analysis.frequency_errors(xtb, mp2)
    t = errors["table"]
    print(f"\nGFN2-xTB vs MP2/cc-pVDZ, {name}: MAE {errors['mae']:.1f} cm^-1, largest {errors['max_abs']:.1f} cm^-1")
    print(t.round(1).to_string(index=False))
    # GFN2-xTB is a semi-empirical tight-binding method: tens of cm^-1 off MP2 on average, a few hundred at worst
    assert 10 < errors["mae"] < 150 and errors["mae"] < errors["max_abs"] < 400
    assert sorted(t["frequency"]) == pytest.approx(xtb.frequencies)  # every GFN2-xTB mode paired once
    np.testing.assert_allclose(t["error"], t["frequency"] - t["reference"])
    assert errors["max_abs"] == pytest.approx(np.abs(t["error"]).max())
    # the O-H stretch is paired with the O-H stretch (ethanol's highest mode; malonaldehyde's is hydrogen-bonded)
    oh = t[t["character"] == "O-H stretch"].iloc[0]
    assert oh["frequency"] == xtb.frequencies[xtb.characters.index("O-H stretch")]
    assert name != "ethanol" or oh["reference"] == mp2.frequencies[-1]


def test_a_table_with_a_reference_per_model_pairs_each_with_its_own():
    xtb = wb.datasets.vibrational_reference("ethanol", "gfn2-xtb")
    mp2 = wb.datasets.vibrational_reference("ethanol", "mp2/cc-pvdz")
    # each level as a "model" against itself: zero error, whatever row its modes land in
    table = analysis.frequency_table({"mp2": mp2, "xtb": xtb}, {"mp2": mp2, "xtb": xtb})
    assert table.attrs["references"] == {"mp2": "reference: mp2/cc-pvdz", "xtb": "reference: gfn2-xtb"}
    assert np.all(table["mp2 error"] == 0) and np.all(table["xtb error"] == 0)
    # rows follow the first model's reference; the other reference is paired onto them as a model would be
    np.testing.assert_array_equal(table["reference: mp2/cc-pvdz"], mp2.frequencies)
    paired = analysis.frequency_errors(xtb, mp2)["table"]["frequency"]
    np.testing.assert_array_equal(table["reference: gfn2-xtb"], paired)
    # two references of one name keep a column each
    again = wb.datasets.vibrational_reference("ethanol", "mp2/cc-pvdz")
    twice = analysis.frequency_table({"a": mp2, "b": again}, {"a": mp2, "b": again})
    assert twice.attrs["references"] == {"a": "reference: mp2/cc-pvdz", "b": "reference: mp2/cc-pvdz #2"}
    with pytest.raises(ValueError, match="no reference given"):
        analysis.frequency_table({"mp2": mp2, "xtb": xtb}, {"mp2": mp2})


def test_the_reference_renumbered_like_another_file_of_the_same_molecule():
    mp2 = wb.datasets.vibrational_reference("ethanol", "mp2/cc-pvdz")
    md17 = wb.datasets.builtin("md17-ethanol-sample").to_atoms(0)  # the same elements in order, other bonds
    assert not np.array_equal(bond_graph(md17), bond_graph(mp2.atoms))
    order = analysis.atom_correspondence(md17, mp2.atoms)
    renumbered = analysis.reorder_atoms(mp2, order)
    np.testing.assert_array_equal(bond_graph(renumbered.atoms), bond_graph(md17))
    np.testing.assert_allclose(renumbered.frequencies, mp2.frequencies, atol=1e-6)
    assert renumbered.characters == mp2.characters and renumbered.provenance == mp2.provenance
    # a mode moves the same atoms, under their new numbers
    np.testing.assert_allclose(np.abs(renumbered.modes[-1]), np.abs(mp2.modes[-1][order]), atol=1e-8)
    with pytest.raises(ValueError, match="not the same molecule"):
        analysis.atom_correspondence(md17[:8], mp2.atoms)
