import numpy as np
import pytest
from ase import units

import workbench as wb


def test_catalogue_lists_the_shipped_files():
    cat = wb.datasets.catalogue()
    assert {"ani1x-sample", "md17-ethanol-sample"} <= set(cat.index[cat["available"]])
    assert set(wb.datasets.names()) == set(cat.index[cat["available"]])


def test_ani_sample_is_the_real_file():
    ds = wb.datasets.builtin("ani1x-sample")
    assert len(ds) == 8 and "ccsd(t)/cbs" in ds.fidelity_names
    assert set(ds.info["source"]) == {"builtin:ani1x-sample"}


def test_md17_sample_loads_with_its_units():
    ds = wb.datasets.builtin("md17-ethanol-sample")
    assert len(ds) == 20 and ds.fidelity_names == ["pbe+vdw-ts"]
    energy, mask = ds.energy("pbe+vdw-ts")
    assert mask.all()
    assert energy[0] == pytest.approx(-97195.50478287 * units.kcal / units.mol, abs=1e-6)
    assert np.all(ds.n_atoms == 9)


def test_unknown_name_lists_the_choices():
    with pytest.raises(KeyError, match="ani1x-sample"):
        wb.datasets.builtin("water-world")


@pytest.mark.parametrize("name, counts", [("ethanol", (2000, 300, 200)), ("malonaldehyde", (1000, 150, 50))])
def test_qm_built_sets_nest_their_levels_and_agree_on_the_surface(name, counts):
    """The sets made by workbench.qm: xTB E+F everywhere, MP2 E+F on a subset, CCSD(T) energies on a subset of
    that; the two correlated levels, computed on the same geometries, differ by a nearly constant offset."""
    ds = wb.datasets.builtin(name)
    low, mid, top = "gfn2-xtb", "mp2/cc-pvdz", "ccsd(t)/cc-pvdz"
    assert ds.fidelity_names == [low, mid, top]
    lab = {f: ds.labels[f] for f in ds.fidelity_names}
    assert (len(ds), int(lab[mid].energy_mask.sum()), int(lab[top].energy_mask.sum())) == counts
    assert lab[low].energy_mask.all() and lab[low].forces_mask.all()
    assert np.array_equal(lab[mid].energy_mask, lab[mid].forces_mask)
    assert lab[top].forces is None  # the top level has energies only, as in real life
    assert not np.any(lab[top].energy_mask & ~lab[mid].energy_mask)  # CCSD(T) only where MP2 is
    both = lab[top].energy_mask
    gap = lab[top].energy[both] - lab[mid].energy[both]
    assert gap.std() < 0.25 * lab[mid].energy[both].std()  # mismatched geometries would give ~1.4
    assert np.isfinite(lab[mid].forces[np.repeat(lab[mid].forces_mask, ds.n_atoms)]).all()
