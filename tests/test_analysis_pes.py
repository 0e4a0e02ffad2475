"""PES scans, smoothness scores and the NVE stability check, on potentials with known answers.

Morse bonds give a known scan (the formula) and known roughness; a wiggle added to them must show up as spurious
extrema and roughness; a dihedral scan must turn the smaller fragment rigidly; rotating the molecule must leave
the energies and scores unchanged; reference points from a QM level are computed once and then read from disk.
"""

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from scipy.integrate import quad
from scipy.spatial.transform import Rotation
from test_analysis_metrics import md17, trained_hipnn

from workbench import analysis

D, A, R0 = 4.0, 2.0, 1.5  # eV, 1/Å, Å


def morse(r):
    return D * (1 - np.exp(-A * (r - R0))) ** 2


def morse_second_derivative(r):
    x = np.exp(-A * (r - R0))
    return 2 * D * A**2 * (2 * x**2 - x)


class MorseChain(Calculator):
    """Morse bonds between consecutive atoms (0-1, 1-2, ...), plus an optional wiggle ``w sin(2π r / period)``
    per bond and an optional non-conservative swirl force ``c ẑ × r`` on every atom."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, wiggle=0.0, period=0.2, swirl=0.0):
        super().__init__()
        self.wiggle, self.period, self.swirl = wiggle, period, swirl

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.positions
        energy, forces = 0.0, np.zeros_like(pos)
        for i in range(len(pos) - 1):
            d = pos[i + 1] - pos[i]
            r = np.linalg.norm(d)
            x = np.exp(-A * (r - R0))
            k = 2 * np.pi / self.period
            energy += D * (1 - x) ** 2 + self.wiggle * np.sin(k * r)
            dedr = 2 * D * A * x * (1 - x) + self.wiggle * k * np.cos(k * r)
            forces[i] += dedr * d / r
            forces[i + 1] -= dedr * d / r
        centred = pos - pos.mean(axis=0)
        forces += self.swirl * np.cross([0.0, 0.0, 1.0], centred)
        self.results = {"energy": energy, "forces": forces}


def carbon_chain(n=2):
    return Atoms("C" * n, positions=[[R0 * k, 0.0, 0.0] for k in range(n)])


def test_bond_scan_of_a_morse_bond_follows_the_formula():
    values = np.linspace(1.1, 3.0, 77)
    res = analysis.scan({"morse": MorseChain()}, carbon_chain(), bond=(0, 1), values=values, reference=MorseChain())
    np.testing.assert_allclose(res.measured[:, 0], values, atol=1e-12)
    np.testing.assert_allclose(res.energies["morse"], morse(values), atol=1e-12)
    np.testing.assert_allclose(res.reference, morse(values), atol=1e-12)
    assert res.reference_name == "MorseChain" and res.coordinates[0].name == "bond 0-1 (Å)"
    scores = analysis.smoothness(res).loc["morse"]
    assert scores["rmse"] == 0.0 and scores["max_deviation"] == 0.0
    assert scores["n_extrema"] == 1 == scores["n_extrema_reference"] and scores["spurious_extrema"] == 0
    assert scores["roughness_ratio"] == pytest.approx(1.0)
    exact, _ = quad(lambda r: morse_second_derivative(r) ** 2, values[1], values[-2])
    assert scores["roughness"] == pytest.approx(exact, rel=0.015)  # finite differences: error ~ h^2


def test_a_wiggle_shows_as_spurious_extrema_deviation_and_roughness():
    values = np.linspace(2.0, 4.0, 101)  # the Morse tail: gently curved, so a wiggle stands out
    models = {"smooth": MorseChain(), "wiggly": MorseChain(wiggle=0.02, period=0.2)}
    res = analysis.scan(models, carbon_chain(), bond=(0, 1), values=values, reference=MorseChain(), reference_every=3)
    assert np.isfinite(res.reference).sum() == 34
    scores = analysis.smoothness(res)
    assert scores.loc["smooth", "spurious_extrema"] == 0
    # the wiggle's slope (0.63 eV/Å) beats the Morse tail's beyond about 3.1 Å: two extrema per 0.2 Å there
    assert scores.loc["wiggly", "n_extrema_reference"] == 0 and scores.loc["wiggly", "spurious_extrema"] >= 6
    assert scores.loc["smooth", "roughness_ratio"] == pytest.approx(1.0, abs=0.02)  # spline between references
    # the wiggle adds about ∫ (w k² sin kr)² dr = w² k⁴ L / 2, seen through second differences of 10 points a period
    k, h = 2 * np.pi / 0.2, values[1] - values[0]
    seen = 4 * np.sin(k * h / 2) ** 2 / h**2
    added = 0.02**2 * seen**2 * (values[-2] - values[1]) / 2
    extra = scores.loc["wiggly", "roughness"] - scores.loc["smooth", "roughness"]
    assert extra == pytest.approx(added, rel=0.1)
    assert scores.loc["wiggly", "roughness_ratio"] > 10
    assert 0.01 < scores.loc["wiggly", "rmse"] < 0.02  # a sine of amplitude 0.02 eV: RMS about 0.014
    in_kcal = analysis.smoothness(res, units="kcal/mol")
    assert in_kcal.loc["wiggly", "rmse"] == pytest.approx(scores.loc["wiggly", "rmse"] * 23.0605, rel=1e-4)
    band = res.relative("reference")[0]
    assert np.ptp(band["smooth"] - band["wiggly"]) > 0.03


def test_two_dimensional_scan_of_two_independent_bonds():
    x1, x2 = np.linspace(1.2, 2.2, 21), np.linspace(1.1, 2.0, 19)
    res = analysis.scan(
        MorseChain(),
        carbon_chain(3),
        bond=(0, 1),
        values=x1,
        second=dict(bond=(1, 2), values=x2),
        reference=MorseChain(),
    )
    assert res.shape == (21, 19) and len(res.frames) == 399
    grid1, grid2 = np.meshgrid(x1, x2, indexing="ij")
    np.testing.assert_allclose(res.measured[:, 0], grid1.ravel(), atol=1e-12)
    np.testing.assert_allclose(res.measured[:, 1], grid2.ravel(), atol=1e-12)
    np.testing.assert_allclose(res.grid(res.energies.iloc[:, 0].to_numpy()), morse(grid1) + morse(grid2), atol=1e-12)
    scores = analysis.smoothness(res).iloc[0]
    assert scores["n_extrema"] == 1 == scores["n_extrema_reference"]  # the one minimum, at (R0, R0)
    assert scores["roughness_ratio"] == pytest.approx(1.0)
    f2, _ = quad(lambda r: morse_second_derivative(r) ** 2, x1[1], x1[-2])
    g2, _ = quad(lambda r: morse_second_derivative(r) ** 2, x2[1], x2[-2])
    exact = (x2[-2] - x2[1]) * f2 + (x1[-2] - x1[1]) * g2  # separable: no cross term
    assert scores["roughness"] == pytest.approx(exact, rel=0.04)
    long = res.to_frame()
    assert len(long) == 2 * 399 and set(long["member"]) == {"morsechain", "reference"}


def test_dihedral_scan_turns_the_smaller_fragment_rigidly():
    ethanol = md17().to_atoms(0)  # C C O H H H H H H; O-H is atoms 2-8, methyl C1 with H5-7
    values = np.arange(0, 360, 30)
    res = analysis.scan(MorseChain(), ethanol, dihedral=(2, 0, 1, 5), values=values)
    coord = res.coordinates[0]
    assert set(coord.moving) == {1, 5, 6, 7} and coord.periodic  # the methyl group, not the CH2OH side
    np.testing.assert_allclose((res.measured[:, 0] - values + 180) % 360 - 180, 0.0, atol=1e-6)
    ref = ethanol.get_all_distances()
    for frame in res.frames:
        np.testing.assert_allclose(frame.positions[[0, 2, 3, 4, 8]], ethanol.positions[[0, 2, 3, 4, 8]], atol=1e-12)
        dist = frame.get_all_distances()
        moving = [1, 5, 6, 7]
        np.testing.assert_allclose(dist[np.ix_(moving, moving)], ref[np.ix_(moving, moving)], atol=1e-9)
        assert dist[0, 1] == pytest.approx(ref[0, 1])  # the C-C bond is the axis
    hydroxyl = analysis.scan(MorseChain(), ethanol, dihedral=(1, 0, 2, 8), values=values).coordinates[0]
    assert set(hydroxyl.moving) == {2, 8}  # the O sits on the axis and stays put
    angle = analysis.scan(MorseChain(), ethanol, angle=(0, 2, 8), values=[100, 110, 120])
    np.testing.assert_allclose(angle.measured[:, 0], [100, 110, 120], atol=1e-6)
    with pytest.raises(ValueError, match="exactly one"):
        analysis.scan(MorseChain(), ethanol, bond=(0, 1), angle=(0, 1, 2), values=[1, 2])
    with pytest.raises(ValueError, match="defined by 4 atoms"):
        analysis.scan(MorseChain(), ethanol, dihedral=(0, 1, 2), values=[1, 2])


@pytest.mark.qm
def test_scores_do_not_change_when_the_molecule_is_rotated_and_references_are_cached(tmp_path):
    ethanol = md17().to_atoms(0)
    turned = ethanol.copy()
    turned.positions = ethanol.positions @ Rotation.from_euler("xyz", [30, 70, -20], degrees=True).as_matrix().T
    values = range(0, 360, 20)
    kwargs = dict(dihedral=(1, 0, 2, 8), values=values, reference="gfn2-xtb", reference_every=2, cache=tmp_path)
    first = analysis.scan(trained_hipnn(), ethanol, **kwargs)
    assert first.reference_computed == 9 and np.isfinite(first.reference).sum() == 9
    assert (tmp_path / "labels" / "labels.sqlite").is_file()
    again = analysis.scan(trained_hipnn(), ethanol, **kwargs)
    assert again.reference_computed == 0
    np.testing.assert_array_equal(again.reference, first.reference)
    rotated = analysis.scan(trained_hipnn(), turned, **kwargs)
    assert rotated.reference_computed == 9  # new geometries, new calculations
    np.testing.assert_allclose(rotated.energies.to_numpy(), first.energies.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(rotated.reference, first.reference, atol=1e-6)
    a, b = analysis.smoothness(first), analysis.smoothness(rotated)
    np.testing.assert_allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), rtol=1e-4, atol=1e-8)
    assert a.loc["hipnn", "n_extrema_reference"] >= 2  # the OH rotor has minima and maxima at xTB


def test_nve_run_conserves_energy_with_a_conservative_potential():
    molecule = carbon_chain(2)
    good = analysis.md_stability(MorseChain(), molecule, temperature_K=300, timestep_fs=0.5, n_steps=800)
    assert good.stable and not good.broken_bonds and good.max_stretch < 1.2
    assert abs(good.drift_per_ps) < 2e-3 and good.fluctuation < 2e-3
    assert len(good.time_ps) == 81 and good.time_ps[-1] == pytest.approx(0.4)
    # a swirl force does work every step: the energy climbs steadily
    bad = analysis.md_stability(MorseChain(swirl=0.05), molecule, temperature_K=300, timestep_fs=0.5, n_steps=800)
    assert bad.drift_per_ps > 50 * abs(good.drift_per_ps) and bad.drift_per_ps > 0.05
    assert set(good.summary()) >= {"drift_eV_per_ps", "bonds_broken", "stable"}


class FreeFlight(Calculator):
    """No interactions at all: nothing holds a molecule together."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


def test_bonds_break_without_a_potential():
    run = analysis.md_stability(FreeFlight(), md17().to_atoms(0), temperature_K=300, timestep_fs=1.0, n_steps=600)
    assert run.bonds_broken and not run.stable and run.first_break_ps is not None and run.first_break_ps < 0.6
    assert run.max_stretch > 1.5 and run.drift_per_ps == pytest.approx(0.0, abs=1e-12)
