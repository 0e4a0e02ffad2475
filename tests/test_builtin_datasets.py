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
