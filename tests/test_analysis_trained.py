"""The analyses take models from the training driver as they come: a TrainedModel, a learning curve, a history;
a Δ-learning model is judged with its base level added."""

import functools

import numpy as np
import pytest
from test_analysis_metrics import FID, HIPNN, md17

import workbench as wb
from workbench import analysis
from workbench.viz import compare

SETTINGS = dict(max_epochs=60, batch_size=15, lr=1e-2, patience=1000, lr_patience=1000, seed=0)


@functools.cache
def splits():
    return md17().split([0.75, 0.25], seed=0)


@functools.cache
def curve():
    """The training driver's learning curve: single-fidelity HIP-NNs on 5 and on 15 configurations."""
    train, test = splits()
    job = wb.train(
        train,
        family="hipnn",
        recipe="learning_curve",
        validation=test,
        budgets=[5, 15],
        inner="single",
        model=HIPNN,
        background=False,
        progress=False,
        **SETTINGS,
    )
    return job.result()


def test_a_trained_model_is_judged_like_its_module():
    _, test = splits()
    model = curve().models[15]
    from_trained = analysis.metrics(model, test)
    from_module = analysis.metrics((model.module, FID), test)
    assert from_trained.loc[0, "n_parameters"] == model.n_parameters
    cols = ["energy_mae", "energy_rmse", "force_mae", "force_rmse", "force_max"]
    np.testing.assert_allclose(from_trained[cols].to_numpy(float), from_module[cols].to_numpy(float), rtol=1e-12)
    # the trainer's own evaluation says the same
    own = model.evaluate(test)
    assert from_trained.loc[0, "force_rmse"] == pytest.approx(own["forces_rmse"], rel=1e-6)
    assert from_trained.loc[0, "energy_mae"] == pytest.approx(own["energy_mae"], rel=1e-6)
    vib = analysis.vibrations(model, test.to_atoms(0), steps=300)
    assert len(vib.frequencies) == 21 and vib.name == "hipnn"
    scan = analysis.scan(model, test.to_atoms(0), bond=(2, 8), values=[0.9, 1.0, 1.1])
    assert scan.members == ["hipnn"] and np.isfinite(scan.energies.to_numpy()).all()


def test_learning_curve_from_the_training_driver():
    _, test = splits()
    lc = curve()
    table = analysis.learning_curve({"single": lc}, test)
    assert table["n_high"].tolist() == [5, 15] and set(table["strategy"]) == {"single"}
    # the driver's validation set is this test set: its own numbers and ours agree
    np.testing.assert_allclose(table["force_rmse"], lc.table["forces_rmse"], rtol=1e-6)
    np.testing.assert_allclose(table["energy_mae"], lc.table["energy_mae"], rtol=1e-6)
    two_seeds = analysis.learning_curve({("single", 0): lc, ("single", 1): lc.models}, test)
    summary = analysis.summarise_learning_curve(two_seeds, "force_rmse")
    assert summary["n_seeds"].tolist() == [2, 2] and summary["std"].tolist() == [0.0, 0.0]
    fig = compare.learning_curve_figure(table, "force_rmse")
    np.testing.assert_allclose(fig.data[0].y, table["force_rmse"])
    from_driver = compare.learning_curve_figure(lc.table, "force_rmse")
    np.testing.assert_allclose(from_driver.data[0].y, lc.table["forces_rmse"])


def test_training_history_becomes_curves_per_head():
    model = curve().models[15]
    long = analysis.training_curves(model.history)
    val = long[(long["split"] == "val") & (long["quantity"] == "forces") & (long["statistic"] == "rmse")]
    np.testing.assert_allclose(val["value"], model.history[f"val_forces_rmse[{FID}]"])
    fig = compare.training_curves_figure(model.history)
    assert sorted(t.name for t in fig.data) == sorted([f"{FID} (train)", f"{FID} (val)"] * 2)
    assert len(fig.data[0].x) == len(model.history)


@pytest.mark.qm
def test_a_delta_model_is_judged_with_its_base_level_added():
    _, test = splits()
    base = curve().models[15]
    delta = wb.TrainedModel(base.module, "delta", [FID], base={"fidelity": "gfn2-xtb", "kind": "qm"})
    xtb = wb.label(test, "gfn2-xtb", properties=("energy", "forces"), background=False, progress=False).result()
    (evaluation,) = analysis.evaluate(delta, test)
    (correction,) = analysis.evaluate(base, test)
    np.testing.assert_allclose(evaluation.energy, correction.energy + xtb.labels["gfn2-xtb"].energy, atol=1e-6)
    np.testing.assert_allclose(evaluation.forces, correction.forces + xtb.labels["gfn2-xtb"].forces, atol=1e-6)
    head = analysis.predictors(delta)[0]
    atoms = test.to_atoms(1)
    atoms.calc = head.calculator()
    assert atoms.get_potential_energy() == pytest.approx(evaluation.energy[1], abs=1e-6)
