"""Reference frequencies from real quantum chemistry: PySCF's analytic Hessians agree with central differences of
the QM engine's own gradients, the stretch regions are named, and a reference is computed once and then read
from the cache."""

import time

import numpy as np
import pytest
from ase.build import molecule

from workbench import analysis, qm

pytestmark = pytest.mark.qm


def test_dft_water_analytic_hessian_agrees_with_the_engines_gradients(tmp_path):
    water = molecule("H2O")
    analytic = analysis.reference_vibrations(water, "b3lyp/6-31g", method="analytic", cache=tmp_path)
    assert analytic.max_force < 1e-3 and len(analytic.frequencies) == 3
    # the QM engine's own DFT: central differences of its gradients, at the same geometry
    engine = analysis.vibrations("b3lyp/6-31g", analytic.atoms, relax=False)
    np.testing.assert_allclose(engine.frequencies, analytic.frequencies, atol=1.0)
    table = analysis.frequency_table({"engine": engine}, analytic)
    assert table["character"].tolist() == ["", "O-H stretch", "O-H stretch"]
    assert np.abs(table["engine error"]).max() < 1.0
    # B3LYP/6-31G water: a bend near 1600 and two O-H stretches above 3500 cm^-1
    assert 1550 < analytic.frequencies[0] < 1700 and 3500 < analytic.frequencies[1] < analytic.frequencies[2] < 3900
    files = list((tmp_path / "hessians").glob("*.npz"))
    assert len(files) == 1
    start = time.perf_counter()
    cached = analysis.reference_vibrations(water, "b3lyp/6-31g", method="analytic", cache=tmp_path)
    assert time.perf_counter() - start < 0.5  # read back, not recomputed (a DFT Hessian takes seconds)
    np.testing.assert_array_equal(cached.frequencies, analytic.frequencies)
    np.testing.assert_array_equal(cached.atoms.positions, analytic.atoms.positions)
    # another level is another cache entry
    hf = analysis.reference_vibrations(water, "hf/sto-3g", cache=tmp_path)
    assert len(list((tmp_path / "hessians").glob("*.npz"))) == 2
    assert abs(hf.frequencies[2] - analytic.frequencies[2]) > 50
    with pytest.raises(ValueError, match="HF and DFT only"):
        qm.hessian(water, "mp2/sto-3g", method="analytic")


@pytest.mark.slow
def test_ethanol_hf_frequencies_from_analytic_and_finite_difference_hessians(tmp_path):
    ethanol = molecule("CH3CH2OH")
    analytic = analysis.reference_vibrations(ethanol, "hf/sto-3g", method="analytic", fmax=0.01, cache=tmp_path)
    numeric = analysis.reference_vibrations(
        analytic.atoms, "hf/sto-3g", method="finite-difference", relax=False, cache=False
    )
    assert len(analytic.frequencies) == 21
    np.testing.assert_allclose(numeric.frequencies, analytic.frequencies, atol=1.0)
    table = analysis.frequency_table({"finite differences": numeric}, analytic)
    characters = table["character"].tolist()
    assert characters.count("C-H stretch") == 5 and characters.count("O-H stretch") == 1
    oh = table.loc[table["character"] == "O-H stretch", "reference"].iloc[0]
    ch = table.loc[table["character"] == "C-H stretch", "reference"]
    assert oh > ch.max()  # at HF/STO-3G the O-H stretch lies above every C-H stretch
    assert np.abs(table["finite differences error"]).max() < 1.0


def test_frequency_errors_of_real_water_equal_a_direct_numpy_computation():
    water = molecule("H2O")
    reference = analysis.reference_vibrations(water, "gfn2-xtb", cache=False)
    assert reference.characters == ["", "O-H stretch", "O-H stretch"]
    # the same Hessian 3% stiffer: every wavenumber grows by exactly sqrt(1.03)
    stiffer = analysis.harmonic_analysis(reference.atoms, 1.03 * reference.hessian, "stiffer")
    errors = analysis.frequency_errors(stiffer, reference)
    expected = (np.sqrt(1.03) - 1) * reference.frequencies
    np.testing.assert_allclose(errors["table"]["error"], expected, rtol=1e-9)
    assert errors["mae"] == pytest.approx(np.mean(expected)) and errors["max_abs"] == pytest.approx(expected[-1])
    assert errors["worst_mode"] == 2
    # another real level, GFN1-xTB, on a turned copy: its modes are paired by shape after turning it back
    turned = molecule("H2O")
    turned.rotate(70, "x")
    turned.rotate(25, "z")
    other = analysis.vibrations("gfn1-xtb", turned)
    errors = analysis.frequency_errors(other, reference)
    # water's three modes keep their order (bend < symmetric < antisymmetric stretch) at both levels
    difference = np.sort(other.frequencies) - np.sort(reference.frequencies)
    np.testing.assert_allclose(errors["table"]["error"], difference, atol=1e-9)
    assert errors["mae"] == pytest.approx(np.mean(np.abs(difference)), abs=1e-9)
    assert errors["max_abs"] == pytest.approx(np.max(np.abs(difference)), abs=1e-9)
    assert errors["mae"] > 1  # two levels, not one
    print(f"\nGFN1-xTB vs GFN2-xTB water: {np.round(difference, 1)} cm^-1")
