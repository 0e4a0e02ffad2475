"""Sampling configurations (MD, normal modes, random) and choosing subsets for expensive levels."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from ase import units
from ase.build import molecule

from workbench.data import Dataset
from workbench.qm.sampling import (
    hessian,
    langevin_md,
    normal_mode_sample,
    normal_modes,
    random_displacements,
    wavenumbers,
)
from workbench.qm.select import choose, descriptors, farthest_point

pytestmark = pytest.mark.qm


def test_langevin_md_samples_bonded_configurations_with_xtb_labels():
    ds = langevin_md(
        molecule("H2O"), 20, temperature_K=500, interval=5, equilibration_steps=20, seed=1, label_as="gfn2-xtb"
    )
    assert len(ds) == 20 and ds.info["step"].tolist() == list(range(25, 125, 5))
    r = ds.positions.reshape(20, 3, 3)
    oh = np.linalg.norm(r[:, 1:] - r[:, :1], axis=-1)
    assert 0.85 < oh.min() and oh.max() < 1.3  # vibrating, not dissociating
    assert np.ptp(oh) > 0.02  # and actually moving
    com = np.einsum("i,nij->nj", molecule("H2O").get_masses(), r) / molecule("H2O").get_masses().sum()
    np.testing.assert_allclose(com, 0, atol=1e-10)
    assert ds.energy("gfn2-xtb")[1].all() and ds.forces("gfn2-xtb")[1].all()
    again = langevin_md(molecule("H2O"), 3, interval=5, equilibration_steps=20, seed=1)
    np.testing.assert_allclose(again.positions, ds.positions[:9], atol=1e-10)  # the seed fixes the trajectory


def test_normal_modes_match_ase_vibrations():
    """Our projected finite-difference Hessian against ASE's Vibrations module (independent code)."""
    from ase.optimize import BFGS
    from ase.vibrations import Vibrations

    from workbench.qm.sampling import default_calculator

    atoms = molecule("H2O")
    atoms.calc = default_calculator()
    BFGS(atoms, logfile=None).run(fmax=1e-4)
    w2, modes = normal_modes(atoms, hessian(atoms))
    ours = wavenumbers(w2)
    assert len(ours) == 3 and modes.shape == (9, 3)
    with tempfile.TemporaryDirectory() as tmp:
        vib = Vibrations(atoms, name=f"{tmp}/vib", delta=0.005)
        vib.run()
        theirs = np.sort(np.real(vib.get_frequencies()))[-3:]
    np.testing.assert_allclose(ours, theirs, atol=5.0)  # cm^-1
    assert 1400 < ours[0] < 1700 and 3400 < ours[2] < 3900


def test_normal_mode_samples_follow_the_harmonic_boltzmann_distribution():
    ds = normal_mode_sample(molecule("H2O"), 3000, temperature_K=300, seed=2)
    e = ds.info["harmonic_energy_eV"].to_numpy()
    # three modes, each kT/2 on average: mean 1.5 kT; standard error ~ kT*sqrt(1.5/3000)
    assert e.mean() == pytest.approx(1.5 * units.kB * 300, rel=0.05)
    assert "wavenumbers" in ds.provenance[-1]["note"]
    r = ds.positions.reshape(-1, 3, 3)
    assert np.linalg.norm(r[:, 1] - r[:, 0], axis=-1).std() < 0.05  # small displacements at 300 K


def test_random_displacements_have_the_requested_spread():
    base = molecule("CH4")
    ds = random_displacements(base, 400, sigma=0.02, seed=0)
    d = ds.positions.reshape(400, 5, 3) - base.positions
    assert d.std() == pytest.approx(0.02, rel=0.05)


def test_farthest_point_picks_one_per_cluster_and_keeps_prefixes():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    x = np.concatenate([c + rng.normal(scale=0.1, size=(20, 2)) for c in centres])
    picks = farthest_point(x, 3, start=0)
    assert sorted(picks // 20) == [0, 1, 2]
    long = farthest_point(x, 10, start=0)
    np.testing.assert_array_equal(long[:3], picks)
    assert len(set(long)) == 10


def test_choose_fps_and_random_on_a_dataset():
    ds = random_displacements(molecule("H2O"), 50, sigma=0.05, seed=1)
    a = choose(ds, 10, method="fps", seed=0)
    assert len(set(a)) == 10 and a.max() < 50
    np.testing.assert_array_equal(a, choose(ds, 10, method="fps", seed=0))
    b = choose(ds, 10, method="random", seed=0)
    assert len(set(b)) == 10
    among = choose(ds, 5, among=range(20, 40))
    assert all(20 <= i < 40 for i in among)
    with pytest.raises(ValueError, match="cannot choose 60"):
        choose(ds, 60)
    with pytest.raises(ValueError, match="unknown method"):
        choose(ds, 3, method="kmeans")


def test_coulomb_eigenvalues_ignore_atom_order_and_handle_mixed_molecules():
    w, m = molecule("H2O"), molecule("CH4")
    perm = w[[1, 0, 2]]
    ds = Dataset.from_configurations([{"numbers": a.numbers, "positions": a.positions} for a in (w, perm, m)])
    x = descriptors(ds)  # auto: mixed atoms -> Coulomb eigenvalues
    assert x.shape == (3, 5)
    np.testing.assert_allclose(x[0], x[1], atol=1e-10)
    assert x[0, 0] == pytest.approx(0.5 * 8**2.4, rel=0.1)  # the O self-term dominates
    with pytest.raises(ValueError, match="same atoms in the same order"):
        descriptors(ds, "inverse_distances")
    s = descriptors(ds, "sorted_inverse_distances")
    np.testing.assert_allclose(s[0], s[1], atol=1e-12)


def test_any_level_drives_ase_md_as_a_calculator():
    from ase import Atoms

    from workbench.qm import QMCalculator, compute_label

    h2 = Atoms("H2", positions=[(0, 0, 0), (0, 0, 0.74)])
    ds = langevin_md(
        h2,
        2,
        temperature_K=300,
        calculator=QMCalculator("hf/sto-3g"),
        interval=2,
        equilibration_steps=0,
        seed=0,
        label_as="hf/sto-3g",
    )
    e = ds.energy("hf/sto-3g")[0]
    ref = compute_label(ds.numbers[:2], ds.positions[:2], "hf/sto-3g", ("energy",))["energy"]
    assert e[0] == pytest.approx(ref, abs=1e-8)
    assert e[0] != e[1]
