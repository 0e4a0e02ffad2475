"""Per-atom force errors on one configuration and per-element statistics over a dataset."""

import numpy as np
import pytest
from test_analysis_metrics import FID, HIPNN, LabelCalculator, md17, trained_hipnn

from workbench import analysis
from workbench.models import build_model


def test_perfect_model_has_zero_error_vectors_and_a_shift_shows_exactly():
    ds = md17()
    perfect = analysis.force_errors(LabelCalculator(ds, FID), ds, 4)
    assert perfect.configuration == 4 and perfect.fidelity == FID and len(perfect.atoms) == 9
    np.testing.assert_array_equal(perfect.error, 0.0)
    np.testing.assert_allclose(perfect.reference, ds.labels[FID].forces[36:45])
    shifted = analysis.force_errors(LabelCalculator(ds, FID, force_shift=(0.0, 0.3, -0.4)), ds, 4)
    np.testing.assert_allclose(shifted.norm, 0.5)
    table = shifted.table()
    assert table["element"].tolist() == ["C", "C", "O", "H", "H", "H", "H", "H", "H"]
    np.testing.assert_allclose(table["error_y"], 0.3) and np.testing.assert_allclose(table["error_z"], -0.4)
    np.testing.assert_allclose(table["relative_error"], 0.5 / np.linalg.norm(shifted.reference, axis=1))


def test_reference_forces_from_atoms_match_those_from_the_dataset():
    ds = md17()
    model = trained_hipnn()
    from_dataset = analysis.force_errors(model, ds, 7)
    atoms = ds.to_atoms(7, fidelity=FID)  # a single-point calculator holding the labels
    from_atoms = analysis.force_errors(model, atoms, fidelity=FID)
    np.testing.assert_allclose(from_atoms.error, from_dataset.error, atol=1e-12)
    given = analysis.force_errors(model, ds.to_atoms(7), reference=ds.labels[FID].forces[63:72])
    np.testing.assert_allclose(given.norm, from_dataset.norm, atol=1e-12)
    assert from_dataset.norm.max() > 0.01  # a real model, briefly trained, is not perfect
    # One fidelity: to_atoms attaches its labels by default, as ase.io.read would.
    default = analysis.force_errors(model, ds.to_atoms(7))
    np.testing.assert_allclose(default.error, from_dataset.error, atol=1e-12)
    bare = ds.to_atoms(7)
    bare.calc = None
    with pytest.raises(ValueError, match="reference forces"):
        analysis.force_errors(model, bare)
    with pytest.raises(ValueError, match="no forces"):
        analysis.force_errors(model, ds.keep_labels(FID, indices=[0]), 7)


def test_per_element_statistics_agree_with_the_metrics_table():
    ds = md17()
    model = trained_hipnn()
    per_atom = analysis.atom_force_errors([model], ds)
    assert len(per_atom) == 180 and per_atom.attrs["units"] == "eV/Å"
    assert per_atom.groupby("element").size().to_dict() == {"C": 40, "H": 120, "O": 20}
    stats = analysis.force_error_statistics(per_atom).set_index("element")
    table = analysis.metrics([model], ds).iloc[0]
    for element in "HCO":
        assert stats.loc[element, "mae"] == pytest.approx(table[f"force_mae_{element}"], rel=1e-12)
        assert stats.loc[element, "rmse"] == pytest.approx(table[f"force_rmse_{element}"], rel=1e-12)
    assert stats["norm_max"].max() == pytest.approx(table["force_max"], rel=1e-12)
    assert (stats["norm_p95"] <= stats["norm_max"]).all() and (stats["norm_mean"] <= stats["norm_p95"]).all()
    in_kcal = analysis.force_error_statistics([model], ds, units="kcal/mol").set_index("element")
    assert in_kcal.loc["O", "rmse"] == pytest.approx(stats.loc["O", "rmse"] * 23.0605, rel=1e-4)


def test_a_model_with_several_heads_needs_one_chosen():
    two = build_model("hipnn", [1, 6, 8], fidelities=["gfn2-xtb", FID], **HIPNN).double().initialise(md17())
    errors = analysis.force_errors(two, md17(), 2)  # the dataset's fidelity picks the head
    assert errors.model == f"hipnn · {FID}"
    with pytest.raises(ValueError, match="choose one head"):
        analysis.force_errors(two, md17().to_atoms(2, fidelity=FID), fidelity="b3lyp/6-31g*")
