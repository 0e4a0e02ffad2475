"""Real tblite and PySCF single points on H2 and H2O, checked against independent values."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import CalculationFailed
from ase.units import Bohr, Hartree

from workbench.qm import Level, QMCalculator, compute_label, label

pytestmark = pytest.mark.qm


def water_szabo_ostlund() -> Atoms:
    """H2O at R(OH) = 1.809 bohr, angle 104.52 degrees (Szabo & Ostlund, Modern Quantum Chemistry, Table 3.13)."""
    r, th = 1.809 * Bohr, np.deg2rad(104.52)
    return Atoms("OH2", positions=[(0, 0, 0), (r, 0, 0), (r * np.cos(th), r * np.sin(th), 0)])


def distorted_water(seed=0, scale=0.04) -> Atoms:
    a = molecule("H2O")
    a.positions += np.random.default_rng(seed).normal(scale=scale, size=a.positions.shape)
    return a


def finite_difference_forces(atoms: Atoms, level: Level, coords, h=1e-3) -> np.ndarray:
    """-dE/dx by central differences (eV/Å) for the listed (atom, axis) coordinates."""
    out = []
    for i, k in coords:
        energies = []
        for sign in (1, -1):
            x = atoms.positions.copy()
            x[i, k] += sign * h
            rec = compute_label(atoms.numbers, x, level, ("energy",))
            assert rec["status"] == "done", rec["error"]
            energies.append(rec["energy"])
        out.append(-(energies[0] - energies[1]) / (2 * h))
    return np.array(out)


# ----------------------------------------------------------------------------- literature values
def test_hf_sto3g_h2_matches_szabo_ostlund():
    h2 = Atoms("H2", positions=[(0, 0, 0), (0, 0, 1.4 * Bohr)])
    rec = compute_label(h2.numbers, h2.positions, "hf/sto-3g", ("energy",))
    assert rec["status"] == "done"
    assert rec["energy"] / Hartree == pytest.approx(-1.1167, abs=2e-4)  # eq. 3.239: E0 = -1.1167 Eh at R = 1.4 bohr


def test_hf_sto3g_water_matches_szabo_ostlund():
    w = water_szabo_ostlund()
    rec = compute_label(w.numbers, w.positions, "hf/sto-3g", ("energy",))
    assert rec["energy"] / Hartree == pytest.approx(-74.963, abs=1e-3)
    meta = rec["meta"]
    assert meta["program"] == "pyscf" and meta["method"] == "hf" and meta["basis"] == "sto-3g"
    assert meta["convergence"]["scf_converged"] and meta["wall_time_s"] > 0
    assert meta["settings"]["conv_tol"] == 1e-9


def test_ccsd_t_of_two_electrons_equals_full_ci():
    """For two electrons CCSD is exact and (T) vanishes: CCSD(T) must equal PySCF's FCI solver."""
    from pyscf import fci, gto, scf

    h2 = Atoms("H2", positions=[(0, 0, 0), (0, 0, 0.74)])
    rec = compute_label(h2.numbers, h2.positions, "ccsd(t)/cc-pvdz", ("energy",))
    mol = gto.M(atom="H 0 0 0; H 0 0 0.74", basis="cc-pvdz", verbose=0)
    e_fci = fci.FCI(scf.RHF(mol).run()).kernel()[0]
    assert rec["energy"] / Hartree == pytest.approx(e_fci, abs=1e-6)
    assert abs(rec["meta"]["convergence"]["energy_t_eV"]) < 1e-6


def test_mp2_conventional_and_density_fitted_agree():
    w = distorted_water(1)
    conv = compute_label(w.numbers, w.positions, "mp2/cc-pvdz", ("energy",))
    df = compute_label(w.numbers, w.positions, Level("mp2/cc-pvdz", density_fit=True), ("energy",))
    assert conv["meta"]["convergence"]["frozen_core_orbitals"] == 1
    # two integral routes; the RI error of cc-pvdz-ri is below 1e-3 Eh for water
    assert conv["energy"] == pytest.approx(df["energy"], abs=1e-3 * Hartree)
    assert conv["energy"] != df["energy"]
    assert conv["energy"] < conv["meta"]["convergence"]["energy_scf_eV"]


@pytest.mark.parametrize("method", ["gfn2-xtb", "gfn1-xtb"])
def test_xtb_matches_tblite_ase_calculator(method):
    from tblite.ase import TBLite

    w = distorted_water(2)
    rec = compute_label(w.numbers, w.positions, method, ("energy", "forces"))
    ref = w.copy()
    ref.calc = TBLite(method=method.upper().replace("XTB", "xTB"), verbosity=0)
    assert rec["energy"] == pytest.approx(ref.get_potential_energy(), abs=1e-7)
    np.testing.assert_allclose(rec["forces"], ref.get_forces(), atol=1e-6)
    assert rec["meta"]["program"] == "tblite" and rec["meta"]["basis"] is None


def test_xtb_labels_in_a_row_equal_fresh_calculators_across_compositions_and_failures():
    """The engine reuses one tblite calculator while the atoms stay the same; every label must still
    be the number a new calculator gives, also after a change of molecule or a failed SCC."""
    from tblite.interface import Calculator

    level = Level("gfn2-xtb")
    h2 = Atoms("H2", positions=[(0, 0, 0), (0.74, 0, 0)])
    sequence = [distorted_water(5), distorted_water(6), h2, distorted_water(7), "fail", distorted_water(8)]
    for atoms in sequence:
        if atoms == "fail":  # the same atoms with a 2-iteration limit: a different key, and a failure
            w = distorted_water(9)
            assert compute_label(w.numbers, w.positions, Level("gfn2-xtb", max_iterations=2))["status"] == "failed"
            continue
        rec = compute_label(atoms.numbers, atoms.positions, level)
        fresh = Calculator("GFN2-xTB", atoms.numbers, atoms.positions / Bohr)
        fresh.set("verbosity", 0)
        res = fresh.singlepoint()
        assert rec["energy"] == pytest.approx(res["energy"] * Hartree, abs=1e-9)
        np.testing.assert_allclose(rec["forces"], -res["gradient"] * Hartree / Bohr, atol=1e-9)


def test_the_calculator_a_finished_thread_kept_is_released():
    import threading

    from workbench.qm import xtb_backend

    w = distorted_water(10)
    worker = threading.Thread(target=lambda: compute_label(w.numbers, w.positions, "gfn2-xtb"))
    worker.start()
    worker.join()
    assert worker.ident in xtb_backend._cache
    h2 = Atoms("H2", positions=[(0, 0, 0), (0.74, 0, 0)])
    for atoms in (w, h2):  # at least one of the two needs a new calculator here, which prunes
        assert compute_label(atoms.numbers, atoms.positions, "gfn2-xtb")["status"] == "done"
    assert worker.ident not in xtb_backend._cache and threading.get_ident() in xtb_backend._cache


def test_gfn2_water_value_from_tblite_documentation():
    w = molecule("H2O")
    rec = compute_label(w.numbers, w.positions, "xtb", ("energy",))
    assert rec["energy"] == pytest.approx(-137.96777594361677, abs=1e-5)


# ----------------------------------------------------------------------------- forces = -gradient
@pytest.mark.parametrize(
    "level, tol",
    [
        (Level("hf/sto-3g"), 2e-4),
        (Level("mp2/cc-pvdz"), 2e-4),  # conventional MP2 gradient with a frozen core
        (Level("b3lyp/sto-3g", density_fit=True, grid_level=2), 3e-3),  # DFT grids without grid response
        (Level("gfn2-xtb"), 2e-4),
    ],
    ids=lambda v: getattr(v, "name", ""),
)
def test_forces_are_minus_the_energy_gradient(level, tol):
    w = distorted_water(3, scale=0.06)
    rec = compute_label(w.numbers, w.positions, level, ("energy", "forces"))
    assert rec["status"] == "done" and rec["forces"].shape == (3, 3)
    coords = [(0, 0), (1, 1), (2, 2)]
    fd = finite_difference_forces(w, level, coords)
    analytic = np.array([rec["forces"][i, k] for i, k in coords])
    np.testing.assert_allclose(analytic, fd, atol=tol)
    assert np.abs(rec["forces"].sum(axis=0)).max() < max(tol, 1e-3)  # no net force on an isolated molecule


def test_ccsd_t_forces_warn_and_match_finite_differences():
    h2 = Atoms("H2", positions=[(0, 0, 0), (0, 0, 0.8)])
    level = Level("ccsd(t)/6-31g")
    with pytest.warns(UserWarning, match="CCSD\\(T\\) gradients cost"):
        job = label([h2], level, properties=("energy", "forces"), background=False, progress=False)
    ds = job.result()
    forces, mask = ds.forces("ccsd(t)/6-31g")
    assert mask.all()
    fd = finite_difference_forces(h2, level, [(1, 2)])
    assert forces[1, 2] == pytest.approx(fd[0], abs=2e-4)


# ----------------------------------------------------------------------------- failures are recorded
def test_scf_that_does_not_converge_is_a_failure_with_its_reason():
    w = water_szabo_ostlund()
    rec = compute_label(w.numbers, w.positions, Level("hf/sto-3g", max_cycle=1), ("energy", "forces"))
    assert rec["status"] == "failed"
    assert rec["energy"] is None and rec["forces"] is None
    assert "SCF did not converge in 1 cycles" in rec["error"]
    assert rec["meta"]["convergence"]["scf_converged"] is False


def test_cc_and_xtb_that_do_not_converge_are_failures():
    w = distorted_water(4)
    cc = compute_label(w.numbers, w.positions, Level("ccsd/sto-3g", cc_max_cycle=1), ("energy",))
    assert cc["status"] == "failed" and "CCSD amplitudes did not converge" in cc["error"]
    xtb = compute_label(w.numbers, w.positions, Level("gfn2-xtb", max_iterations=2), ("energy",))
    assert xtb["status"] == "failed" and "did not converge" in xtb["error"]


def test_calculator_gives_ase_results_and_raises_on_failure():
    w = water_szabo_ostlund()
    w.calc = QMCalculator("hf/sto-3g")
    assert w.get_potential_energy() / Hartree == pytest.approx(-74.963, abs=1e-3)
    assert w.get_forces().shape == (3, 3)
    assert w.calc.last_label["meta"]["properties"] == ["energy", "forces"]
    w.calc = QMCalculator("hf/sto-3g", max_cycle=1)
    with pytest.raises(CalculationFailed, match="SCF did not converge"):
        w.get_potential_energy()


def test_open_shell_uses_unrestricted_reference():
    h = Atoms("H", positions=[(0, 0, 0)])
    rec = compute_label(h.numbers, h.positions, "hf/sto-3g", ("energy",))
    # UHF of one electron = the basis's 1s energy, -0.4666 Eh for STO-3G hydrogen
    assert rec["energy"] / Hartree == pytest.approx(-0.46658, abs=1e-4)


# ----------------------------------------------------------------------------- bad levels
@pytest.mark.parametrize(
    "spec, settings, message",
    [
        ("nonsense-functional/cc-pvdz", {}, "neither HF, MP2, CCSD, CCSD\\(T\\) nor a density functional"),
        ("mp2", {}, "need a basis set"),
        ("gfn2-xtb/cc-pvdz", {}, "take no basis"),
        ("hf/sto-3g", {"frozen_core": True}, "unknown settings \\['frozen_core'\\]"),
        ("gfn0-xtb", {}, "tblite provides"),
    ],
)
def test_bad_levels_are_rejected_with_a_reason(spec, settings, message):
    with pytest.raises(ValueError, match=message):
        Level(spec, **settings)


def test_unknown_basis_and_unavailable_gradients_are_rejected_before_any_work():
    with pytest.raises(ValueError, match="no basis 'no-such-basis' for element Z=1"):
        Level("hf/no-such-basis").check_elements([1, 8])
    with pytest.raises(ValueError, match="no density-fitted MP2 gradient"):
        Level("mp2/cc-pvdz", density_fit=True).check_properties(("energy", "forces"))


def test_level_key_changes_with_settings_that_change_numbers_only():
    assert Level("MP2/cc-pVDZ").name == "mp2/cc-pvdz"
    assert Level("mp2/cc-pvdz").key == Level("mp2/cc-pvdz", max_memory_mb=100).key
    assert Level("mp2/cc-pvdz").key != Level("mp2/cc-pvdz", frozen_core=False).key
    assert Level("xtb").name == "gfn2-xtb" and Level("xtb").program == "tblite"
    assert Level("b3lyp/6-31g*").kind == "dft"


def test_hessian_analytic_matches_finite_differences_of_the_engines_forces():
    """PySCF's analytic HF Hessian and central differences of the QM engine's HF forces are the same
    matrix; a level without an analytic Hessian (xTB) goes to finite differences under "auto"."""
    from ase.build import molecule

    from workbench.qm import hessian

    water = molecule("H2O")
    analytic = hessian(water, "hf/sto-3g", method="analytic")
    numeric = hessian(water, "hf/sto-3g", method="finite-difference", delta=0.003)
    assert analytic.shape == (9, 9)
    np.testing.assert_allclose(analytic, analytic.T, atol=1e-6)
    np.testing.assert_allclose(numeric, analytic, atol=0.02 * np.abs(analytic).max())
    xtb = hessian(water, "gfn2-xtb")
    assert xtb.shape == (9, 9) and np.abs(xtb - xtb.T).max() < 1e-3 * np.abs(xtb).max()
    # stretching one O-H bond (the H moving along it) is stiff at both levels: k = u·H·u in eV/Å²
    u = np.zeros(9)
    u[3:6] = (water.positions[1] - water.positions[0]) / np.linalg.norm(water.positions[1] - water.positions[0])
    assert u @ analytic @ u > 20 and u @ xtb @ u > 20
    with pytest.raises(ValueError, match="HF and DFT only"):
        hessian(water, "gfn2-xtb", method="analytic")
    with pytest.raises(ValueError, match="method must be one of"):
        hessian(water, "hf/sto-3g", method="numerical")


def test_compute_labels_gives_each_configuration_what_compute_label_gives_it():
    """The batch path (single points back to back, records afterwards) against one call per configuration:
    the same numbers, the same provenance but for the wall time, each with its own charge and spin; a
    configuration whose calculation fails is recorded as failed between two that succeed."""
    from workbench.qm import compute_labels

    h2, water = molecule("H2"), molecule("H2O")
    items = [
        (water.numbers, water.positions, None, None),
        (h2.numbers, h2.positions, 0, 2),  # a doublet of 2 electrons: impossible, so failed
        (h2.numbers, h2.positions + 0.02, 1, 2),  # H2+ doublet
    ]
    level = Level("gfn2-xtb")
    batch = compute_labels(items, level)
    assert [r["status"] for r in batch] == ["done", "failed", "done"] and "multiplicity" in batch[1]["error"]
    for (z, r, c, m), got in zip(items, batch, strict=True):
        one = compute_label(z, r, level, ("energy", "forces"), c, m)
        assert got["status"] == one["status"] and got["energy"] == one["energy"]
        if one["forces"] is not None:
            np.testing.assert_array_equal(got["forces"], one["forces"])
        strip = lambda meta: {k: v for k, v in meta.items() if k != "wall_time_s"}  # noqa: E731
        assert strip(got["meta"]) == strip(one["meta"])
    assert batch[2]["meta"]["charge"] == 1 and batch[2]["meta"]["multiplicity"] == 2
