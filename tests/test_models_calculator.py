"""The ASE calculator drives MD, an optimizer and a vibrational analysis; autograd Hessians are exact."""

import numpy as np
import pytest
import torch
from ase import units
from ase.build import molecule
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS
from ase.vibrations import Vibrations, VibrationsData

from workbench.models import Batch, build_model, energy_and_forces
from workbench.models.ase_calculator import WorkbenchCalculator, hessian

FIDELITIES = ["gfn2-xtb", "ccsd(t)/cc-pvdz"]


def make_model(family="hipnn"):
    torch.manual_seed(0)
    model = build_model(
        family, [1, 6, 8], fidelities=FIDELITIES, n_features=8, n_interactions=2, n_atom_layers=1, n_sensitivities=6
    ).double()
    model.heads.set_references(np.array([[-13.6, -1030.0, -2040.0], [-13.5, -1029.0, -2041.0]]), np.array([0.5, 0.4]))
    return model


def test_calculator_matches_the_model_for_each_head():
    model = make_model()
    atoms = molecule("CH3CH2OH")
    for name in FIDELITIES:
        atoms.calc = WorkbenchCalculator(model, fidelity=name)
        e, f = energy_and_forces(model, Batch.from_atoms(atoms, dtype=torch.float64), name)
        assert atoms.get_potential_energy() == pytest.approx(float(e.detach()[0]), abs=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), f.detach().numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="several fidelities"):
        WorkbenchCalculator(model)


def test_calculator_drives_molecular_dynamics_conserving_energy():
    atoms = molecule("CH3CH2OH")
    atoms.calc = WorkbenchCalculator(make_model(), fidelity=FIDELITIES[1])
    thermalize_momenta(atoms, 300, rng=np.random.default_rng(0))
    start = atoms.get_total_energy()
    positions = atoms.positions.copy()
    dyn = VelocityVerlet(atoms, timestep=0.1 * units.fs)
    totals = []
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
    dyn.run(40)
    assert len(totals) == 41
    assert np.abs(atoms.positions - positions).max() > 1e-3  # the atoms moved
    assert np.ptp(totals) < 1e-3 and abs(totals[-1] - start) < 1e-3


def test_calculator_drives_an_optimizer():
    atoms = molecule("H2O")
    atoms.rattle(0.05, seed=2)
    atoms.calc = WorkbenchCalculator(make_model(), fidelity=FIDELITIES[0])
    e0 = atoms.get_potential_energy()
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=200)
    assert np.abs(atoms.get_forces()).max() < 0.01
    assert atoms.get_potential_energy() < e0


def test_autograd_hessian_matches_ase_vibrations(tmp_path):
    model = make_model()
    atoms = molecule("CH3OH")
    atoms.calc = WorkbenchCalculator(model, fidelity=FIDELITIES[1])
    vib = Vibrations(atoms, name=str(tmp_path / "vib"), delta=0.005)
    vib.run()
    fd = vib.get_vibrations()
    exact = hessian(model, atoms, FIDELITIES[1])
    assert exact.shape == (3 * len(atoms), 3 * len(atoms))
    np.testing.assert_allclose(exact, exact.T, atol=1e-12)
    scale = np.abs(exact).max()
    assert scale > 1e-2
    np.testing.assert_allclose(fd.get_hessian_2d(), exact, atol=2e-3 * scale)  # finite differences err by O(delta^2)
    ours = VibrationsData.from_2d(atoms, exact).get_frequencies()
    theirs = fd.get_frequencies()
    strong = np.abs(theirs) > 50  # cm^-1: leave out the near-zero translations and rotations
    assert strong.sum() >= 3 * len(atoms) - 6
    np.testing.assert_allclose(ours[strong], theirs[strong], rtol=1e-3)


def test_batched_hessians_equal_one_at_a_time():
    model = make_model()
    mols = [molecule("CH3OH"), molecule("H2O"), molecule("CH4")]
    batched = hessian(model, mols, FIDELITIES[0])
    for atoms, h in zip(mols, batched, strict=True):
        np.testing.assert_allclose(h, hessian(model, atoms, FIDELITIES[0]), atol=1e-12)
