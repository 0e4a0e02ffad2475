"""Harmonic vibrational analysis on cases with known answers.

A harmonic or Morse bond gives the textbook frequency; a real model's autograd Hessian agrees with central
differences of its forces; rotating the molecule changes nothing; the energy along a normal mode rises as
½ q² dᵀHd; mode trajectories move the atoms as asked.
"""

import dataclasses

import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from scipy.spatial.transform import Rotation
from test_analysis_metrics import FID, HIPNN, md17, trained_hipnn

from workbench import analysis
from workbench.models import build_model
from workbench.models.ase_calculator import WorkbenchCalculator


class HarmonicBond(Calculator):
    """E = k (r - r0)^2 / 2 between atoms 0 and 1 (eV/Å^2, Å)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, k=30.0, r0=1.1):
        super().__init__()
        self.k, self.r0 = k, r0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions[1] - self.atoms.positions[0]
        r = np.linalg.norm(d)
        forces = np.zeros((len(self.atoms), 3))
        forces[0] = self.k * (r - self.r0) * d / r
        forces[1] = -forces[0]
        self.results = {"energy": 0.5 * self.k * (r - self.r0) ** 2, "forces": forces}


def wavenumber(k, atoms):
    """Harmonic wavenumber (cm^-1) of a diatomic with force constant k (eV/Å^2)."""
    m = atoms.get_masses()
    mu = m[0] * m[1] / (m[0] + m[1])
    omega = np.sqrt(k / mu * units._e / units._amu) * 1e10  # rad/s
    return omega / (2 * np.pi * units._c * 100)


def test_harmonic_and_morse_bonds_give_the_textbook_frequency():
    co = Atoms("CO", positions=[[0.0, 0.0, 0.0], [0.3, 0.9, 0.7]])
    result = analysis.vibrations(HarmonicBond(k=30.0, r0=1.13), co)
    assert result.frequencies.shape == (1,) and result.modes.shape == (1, 2, 3)  # linear: 3n - 5 modes
    # central differences of forces that are not linear in Cartesian coordinates: error ~ (delta / r)^2
    assert result.frequencies[0] == pytest.approx(wavenumber(30.0, co), rel=5e-5)
    assert result.atoms.get_distance(0, 1) == pytest.approx(1.13, abs=1e-5) and result.max_force < 1e-3
    assert result.characters == ["O-C stretch"]
    # the mode is a stretch along the bond, each atom moving against the other, the light one more
    d = result.modes[0]
    axis = (result.atoms.positions[1] - result.atoms.positions[0]) / 1.13
    assert abs(d[0] @ axis) > 0.99 * np.linalg.norm(d[0]) and np.sign(d[0] @ axis) != np.sign(d[1] @ axis)
    masses = co.get_masses()
    assert np.linalg.norm(d[0]) / np.linalg.norm(d[1]) == pytest.approx(masses[1] / masses[0], rel=1e-6)
    # Morse with the same curvature at its minimum: k = 2 D a^2
    from test_analysis_pes import MorseChain

    morse = analysis.vibrations(MorseChain(), Atoms("CC", positions=[[0, 0, 0], [1.6, 0, 0]]))
    assert morse.frequencies[0] == pytest.approx(wavenumber(2 * 4.0 * 2.0**2, morse.atoms), abs=0.5)


def test_autograd_hessian_of_a_real_model_matches_finite_differences():
    model = trained_hipnn()
    result = analysis.vibrations(model, md17().to_atoms(0))
    assert result.max_force < 1e-3 and len(result.frequencies) == 21
    numeric = analysis.finite_difference_hessian(result.atoms, WorkbenchCalculator(model, FID), delta=1e-3)
    np.testing.assert_allclose(result.hessian, numeric, atol=2e-3 * np.abs(numeric).max())
    by_differences = analysis.harmonic_analysis(result.atoms, numeric)
    np.testing.assert_allclose(by_differences.frequencies, result.frequencies, atol=1.0)
    # near zero force the harmonic frequencies of a minimum are real: none is imaginary beyond noise
    assert result.frequencies.min() > -20


def test_rotating_the_molecule_leaves_frequencies_unchanged():
    model = trained_hipnn()
    minimum = analysis.vibrations(model, md17().to_atoms(0))
    turned = minimum.atoms.copy()
    turned.positions = turned.positions @ Rotation.from_euler("zxz", [15, 80, -40], degrees=True).as_matrix().T
    again = analysis.vibrations(model, turned, relax=False)
    np.testing.assert_allclose(again.frequencies, minimum.frequencies, atol=1e-4)
    table = analysis.frequency_table({"turned": again}, minimum)
    assert np.abs(table["turned error"]).max() < 1e-4 and list(table["mode"]) == list(range(21))
    np.testing.assert_array_equal(analysis.match_modes(again, minimum), np.arange(21))
    # a model whose highest mode looks like the reference's lowest (as after relaxing to another conformer):
    # shape alone would pair a stretch with a torsion; the frequency term keeps each mode with its own
    swapped = minimum.mass_weighted.copy()
    swapped[:, [0, 20]] = swapped[:, [20, 0]]
    other = dataclasses.replace(minimum, mass_weighted=swapped)
    np.testing.assert_array_equal(analysis.match_modes(other, minimum), np.arange(21))


def test_energy_along_a_normal_mode_rises_with_its_curvature():
    model = trained_hipnn()
    result = analysis.vibrations(model, md17().to_atoms(0))
    k = 17
    q = np.linspace(-0.005, 0.005, 9)
    res = analysis.scan(model, result.atoms, mode=(result, k), values=q)
    energy = res.energies.iloc[:, 0].to_numpy()
    curvature = np.polyfit(q, energy - energy.min(), 2)[0] * 2
    d = result.modes[k].ravel()
    assert curvature == pytest.approx(d @ result.hessian @ d, rel=0.005)
    assert res.coordinates[0].name == "normal-mode displacement (Å)"


def test_mode_trajectory_moves_atoms_by_the_amplitude():
    result = analysis.vibrations(trained_hipnn(), md17().to_atoms(0))
    frames = analysis.mode_trajectory(result, 20, amplitude=0.3, n_frames=12)
    assert len(frames) == 12
    np.testing.assert_allclose(frames[0].positions, result.atoms.positions, atol=1e-12)
    quarter = np.linalg.norm(frames[3].positions - result.atoms.positions, axis=1)  # sin(π/2) = 1
    assert quarter.max() == pytest.approx(0.3)
    np.testing.assert_allclose(
        frames[9].positions - result.atoms.positions, -(frames[3].positions - result.atoms.positions)
    )
    assert np.linalg.norm(frames[5].arrays["mode"], axis=1).max() == pytest.approx(0.3)
    assert frames[0].info["frequency_cm-1"] == result.frequencies[20]


def test_a_model_with_two_heads_gives_one_result_per_head():
    two = build_model("hipnn", [1, 6, 8], fidelities=["gfn2-xtb", FID], **HIPNN).double().initialise(md17())
    results = analysis.vibrations(two, md17().to_atoms(0), relax=False)
    assert [r.name for r in results] == ["hipnn · gfn2-xtb", f"hipnn · {FID}"]
    one = analysis.vibrations(two, md17().to_atoms(0), fidelity=FID, relax=False)
    np.testing.assert_allclose(one.frequencies, results[1].frequencies)
