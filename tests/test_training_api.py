"""The public training API: background jobs, cancel, early stopping on a chosen criterion, EMA,
TrainedModel save/load/calculator/predict, and clear errors for bad requests."""

import time

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.training import TrainedModel, TrainingCancelled, TrainSettings, train
from workbench.training.train_command import read_config

FID = "pbe+vdw-ts"
TINY = dict(n_features=8, n_interactions=1, n_atom_layers=1, n_sensitivities=6, cutoff=4.0)


@pytest.fixture(scope="module")
def md17():
    return wb.datasets.builtin("md17-ethanol-sample")


@pytest.fixture(scope="module")
def trained(md17):
    train_set, val = md17.split([0.75, 0.25], seed=0)
    job = train(
        train_set,
        recipe="single",
        validation=val,
        model=TINY,
        max_epochs=12,
        batch_size=5,
        lr=5e-3,
        dtype="float64",
        progress=False,
    )
    return job.result(timeout=300), val


def test_background_job_reports_state_history_and_result(trained):
    model, _ = trained
    assert isinstance(model, TrainedModel)
    assert model.recipe == "single" and model.fidelities == [FID] and model.family == "hipnn"
    assert len(model.history) == 12 and model.history["train_loss"].iloc[-1] < model.history["train_loss"].iloc[0]
    prov = model.provenance
    assert prov["seed"] == 0 and len(prov["train_data_hash"]) == 16 and prov["versions"]["torch"] == torch.__version__
    assert model.settings["training"]["dtype"] == "float64" and model.settings["model"]["n_features"] == 8
    assert next(model.module.parameters()).dtype == torch.float64
    assert model.provenance["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_job_runs_in_the_background_and_can_be_cancelled(md17):
    job = train(md17, recipe="single", model=TINY, max_epochs=100000, batch_size=5, progress=False)
    assert job.state in ("queued", "running")
    deadline = time.time() + 120
    while len(job.history) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert job.state == "running" and len(job.history) >= 2  # the caller was free meanwhile
    job.cancel()
    assert job.wait(60)
    assert job.state == "cancelled"
    with pytest.raises(TrainingCancelled):
        job.result()
    partial = job.partial  # the best weights reached, kept by the job
    assert partial is not None and partial.status == "cancelled" and job.model is partial
    assert np.isfinite(partial.predict(md17.select([0]))["energy"]).all()


def test_save_and_load_round_trip_as_zip_and_folder(trained, tmp_path):
    model, val = trained
    before = model.predict(val)
    for path in (tmp_path / "run.wb", f"{tmp_path}/run-folder/"):
        model.save(path)
        back = TrainedModel.load(path)
        after = back.predict(val)
        np.testing.assert_array_equal(before["energy"], after["energy"])
        np.testing.assert_array_equal(before["forces"], after["forces"])
        assert back.settings == model.settings and back.provenance == model.provenance
        assert back.history[["epoch", "train_loss"]].equals(model.history[["epoch", "train_loss"]])
    assert (tmp_path / "run-folder" / "model.safetensors").is_file()
    # Saving again over an existing model replaces it whole.
    model.save(tmp_path / "run.wb")
    assert TrainedModel.load(tmp_path / "run.wb").fidelities == [FID]


def test_calculator_and_predict_agree_in_ev_and_ev_per_angstrom(trained):
    model, val = trained
    pred = model.predict(val)
    atoms = val.to_atoms(2)
    atoms.calc = model.calculator(fidelity=FID)
    lo, hi = val.ptr[2], val.ptr[3]
    assert atoms.get_potential_energy() == pytest.approx(pred["energy"][2], abs=1e-8)
    np.testing.assert_allclose(atoms.get_forces(), pred["forces"][lo:hi], atol=1e-8)
    err = model.evaluate(val)
    assert err["n_energies"] == len(val) and err["energy_mae"] > 0 and err["forces_mae"] > 0


def test_early_stopping_on_a_chosen_criterion_keeps_the_best_epoch(md17):
    train_set, val = md17.split([0.75, 0.25], seed=1)
    monitor = {f"val_forces_mae[{FID}]": 1.0, f"val_energy_mae[{FID}]": 0.5}
    model = train(
        train_set,
        recipe="single",
        validation=val,
        model=TINY,
        max_epochs=60,
        patience=3,
        lr=0.05,
        batch_size=5,
        dtype="float64",
        monitor=monitor,
        progress=False,
        background=False,
    ).result()
    hist = model.history
    score = hist[f"val_forces_mae[{FID}]"] + 0.5 * hist[f"val_energy_mae[{FID}]"]
    best = int(score.idxmin())
    assert len(hist) == best + 4 < 60  # stopped 3 epochs after the best
    err = model.evaluate(val)  # the model holds the best epoch's weights
    assert err["forces_mae"] == pytest.approx(hist[f"val_forces_mae[{FID}]"].iloc[best], rel=1e-9)


def test_ema_weights_are_what_validation_sees(md17):
    train_set, val = md17.split([0.75, 0.25], seed=0)
    common = dict(
        recipe="single",
        validation=val,
        model=TINY,
        max_epochs=4,
        batch_size=5,
        dtype="float64",
        progress=False,
        background=False,
    )
    plain = train(train_set, ema_decay=None, **common).result()
    ema = train(train_set, ema_decay=0.8, **common).result()
    assert not np.allclose(plain.history["val_loss"], ema.history["val_loss"])
    best = int(ema.history["val_loss"].idxmin())
    assert ema.evaluate(val)["energy_mae"] == pytest.approx(ema.history[f"val_energy_mae[{FID}]"].iloc[best], rel=1e-9)


def test_bad_requests_raise_clear_errors(md17, tmp_path):
    with pytest.raises(ValueError, match="unknown recipe 'fancy'"):
        train(md17, recipe="fancy")
    with pytest.raises(KeyError, match="no fidelity 'mp2/cc-pvdz'"):
        train(md17, fidelities={"mp2/cc-pvdz": ("energy",)})
    with pytest.raises(TypeError, match="unknown training settings"):
        train(md17, settings={"learning_rate": 1.0})
    with pytest.raises(ValueError, match="properties of 'pbe\\+vdw-ts' must be chosen from"):
        train(md17, fidelities={FID: ("dipole",)})
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainSettings(optimizer="sgd")
    job = train(md17, recipe="delta", fidelities=[FID], progress=False)
    with pytest.raises(ValueError, match="exactly one low fidelity"):
        job.result(timeout=60)
    assert job.state == "failed"
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: x.h5\nepochs: 3\n")
    with pytest.raises(ValueError, match="unknown keys \\['epochs'\\]"):
        read_config(bad)


def test_a_seed_fixes_split_initialisation_and_batch_order(md17):
    def run(seed):
        return train(
            md17,
            recipe="single",
            model=TINY,
            max_epochs=2,
            batch_size=4,
            seed=seed,
            dtype="float64",
            progress=False,
            background=False,
        ).result()

    a, b, c = run(5), run(5), run(6)
    assert a.provenance["validation_data_hash"] == b.provenance["validation_data_hash"]
    assert a.provenance["validation_data_hash"] != c.provenance["validation_data_hash"]
    for key, value in a.module.state_dict().items():
        assert torch.equal(value, b.module.state_dict()[key]), key
    assert not all(torch.equal(v, c.module.state_dict()[k]) for k, v in a.module.state_dict().items())
