"""Total energies precise enough for finite differences, in every family at the default float32.

Totals of ethanol at MP2 are about -4200 eV; float32 resolves them only to 0.5 meV, which a central
difference at 1e-4 Å turns into force errors of ~2.4 eV/Å (or a force of exactly 0). Every family must
give energies whose central differences at 1e-3 and 1e-4 Å match its autograd forces, directly and
through the ASE calculator.
"""

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.models import Batch, build_model, energy_and_forces
from workbench.models.ase_calculator import WorkbenchCalculator

LEVEL = "mp2/cc-pvdz"
# Small widths keep each model cheap; default cutoffs, so every pair of ethanol interacts.
SETTINGS = {
    "hipnn": dict(n_features=16, n_interactions=2, n_atom_layers=1, n_sensitivities=8),
    "hipnn_tensor": dict(n_features=8, n_interactions=2, n_atom_layers=1, n_sensitivities=6, max_order=2),
    "gmnn": dict(n_radial=3, n_basis=5, hidden=[16, 16]),
    "linear": dict(n_radial=6, max_order=2),
}
STEPS = (1e-3, 1e-4)  # Å
N_COORDINATES = 4  # the Cartesian coordinates with the largest forces are differentiated
# Float32 networks carry ~1e-7 eV of rounding per energy (~1e-3 eV/Å at 1e-4 Å); a total resolved to
# 0.5 meV errs by up to 2.4 eV/Å there.
ATOL, RTOL = 5e-3, 1e-2  # eV/Å, relative
MIN_FORCE = 0.05  # eV/Å: smaller forces would let a difference of exactly 0 pass


@pytest.fixture(scope="module")
def mp2():
    """Built-in ethanol configurations with MP2 energies and forces (about -4205 eV each)."""
    ds = wb.datasets.builtin("ethanol")
    lab = ds.labels[LEVEL]
    return ds.select(np.flatnonzero(lab.energy_mask & lab.forces_mask)[:40])


def make_model(family, data):
    """A float32 model whose reference energies are fitted to MP2 (the linear family: its whole
    closed-form fit), with atomic energies of ~1 eV so that the forces are not negligible."""
    torch.manual_seed(0)
    model = build_model(family, [1, 6, 8], fidelities=[LEVEL], **SETTINGS[family])
    if family == "linear":
        model.fit(data)
    else:
        model.initialise(data)
        model.heads.set_references(model.heads.references.detach().numpy(), np.array([1.0]))
    return model


def central_differences(energy, positions, step, coordinates):
    """``{(atom, component): -dE/dx}`` (eV/Å) by central differences of ``energy(positions)`` (eV)."""
    out = {}
    for atom, comp in coordinates:
        plus, minus = positions.copy(), positions.copy()
        plus[atom, comp] += step
        minus[atom, comp] -= step
        # The step actually taken: float32 positions round x ± step.
        taken = float(plus[atom, comp]) - float(minus[atom, comp])
        out[atom, comp] = -(energy(plus) - energy(minus)) / taken
    return out


def check(forces, energy, positions):
    """Central differences of ``energy`` at ``positions`` (Å) match ``forces`` (eV/Å) at every step."""
    largest = np.argsort(-np.abs(forces).ravel())[:N_COORDINATES]
    coordinates = [divmod(int(i), 3) for i in largest]
    assert min(abs(forces[a, c]) for a, c in coordinates) > MIN_FORCE, forces
    for step in STEPS:
        fd = central_differences(energy, positions, step, coordinates)
        for (atom, comp), value in fd.items():
            want = forces[atom, comp]
            assert abs(value - want) <= ATOL + RTOL * abs(want), (step, atom, comp, value, want)


@pytest.mark.parametrize("family", list(SETTINGS))
def test_central_differences_of_float32_totals_match_the_forces(family, mp2):
    model = make_model(family, mp2)
    batch = Batch.from_dataset(mp2, [0], fidelities=[])
    assert batch.dtype == torch.float32
    energy, forces = energy_and_forces(model, batch, LEVEL)
    assert energy.dtype == torch.float64 and float(energy.detach()[0]) < -4000.0

    def total(positions):
        probe = Batch.from_arrays(mp2.numbers[: len(positions)], positions, [0, len(positions)])
        with torch.no_grad():
            return float(model(probe, [LEVEL])[LEVEL][0])

    check(forces.detach().double().numpy(), total, batch.positions.detach().numpy())


def calculator_energy(atoms):
    """The energy (eV) of ``atoms``' calculator at other positions (Å), as a function of them."""

    def total(positions):
        probe = atoms.copy()
        probe.positions = positions
        probe.calc = atoms.calc
        return probe.get_potential_energy()

    return total


@pytest.mark.parametrize("family", list(SETTINGS))
def test_ase_calculator_energies_resolve_finite_differences(family, mp2):
    model = make_model(family, mp2)
    atoms = mp2.to_atoms(0)
    atoms.calc = WorkbenchCalculator(model)
    forces = atoms.get_forces()
    assert isinstance(atoms.get_potential_energy(), float) and atoms.get_potential_energy() < -4000.0

    check(forces, calculator_energy(atoms), atoms.positions.copy())


def test_trained_linear_model_calculator_and_predict_resolve_finite_differences(mp2):
    trained = wb.train(
        mp2, family="linear", recipe="single", fidelities={LEVEL: ("energy", "forces")}, model=SETTINGS["linear"]
    )
    trained = trained.result()
    atoms = mp2.to_atoms(0)
    atoms.calc = trained.calculator()
    forces = atoms.get_forces()
    predicted = trained.predict(mp2.select([0]))
    assert atoms.get_potential_energy() == pytest.approx(predicted["energy"][0], abs=1e-9)

    check(forces, calculator_energy(atoms), atoms.positions.copy())
