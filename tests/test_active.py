"""The improve loop (wb.improve) with real GFN2-xTB labels: labels land in the store and the data, the model
gets better where it was taught, a killed loop goes on without computing a label twice; and the selection."""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import workbench as wb
from workbench.active import Pool, ScanGeometries
from workbench.active.loop import _keys
from workbench.active.selection import disagreement, diverse_batch, select
from workbench.qm import LabelStore, Level

XTB = "gfn2-xtb"
TINY = dict(n_features=16, n_interactions=1, n_atom_layers=1, n_sensitivities=8, cutoff=4.0)


def _xtb_only(ds):
    for name in [f for f in ds.labels if f != XTB]:
        ds = ds.drop_fidelity(name)
    return ds


@pytest.fixture(scope="module")
def parts():
    """Ethanol at GFN2-xTB: 15 to train on, a pool of 40 unlabelled geometries, 30 to test on."""
    ds = _xtb_only(wb.datasets.builtin("ethanol"))
    order = np.random.default_rng(0).permutation(len(ds))
    train, pool, test = ds.select(order[:15]), ds.select(order[15:55]), ds.select(order[55:85])
    return train, pool.drop_fidelity(XTB), test


@pytest.fixture(scope="module")
def model(parts):
    train, _, _ = parts
    return wb.train(train, recipe="single", model=TINY, max_epochs=30, background=False, progress=False).result()


def test_a_round_labels_the_chosen_configurations_and_the_model_learns_them(parts, model, tmp_path):
    train, pool, test = parts
    job = wb.improve(
        model, train, Pool(pool), level=XTB, n_per_round=5, rounds=2, store=tmp_path / "labels", test=test,
        max_epochs=25, background=False,
    )  # fmt: skip
    assert job.state == "done", job.error
    out = job.result()
    rounds = out.rounds
    assert list(rounds["round"]) == [0, 1, 2] and list(rounds["labels_total"]) == [0, 5, 10]
    assert (rounds["computed"].iloc[1:] == 5).all() and (rounds["qm_s"].iloc[1:] > 0).all()
    assert np.isfinite(rounds["forces_mae"]).all()
    # the data grew by exactly the chosen configurations, with exactly the labels computed
    assert len(out.dataset) == len(train) + 10 and out.dataset.fidelity_names == [XTB]
    new = out.dataset.select(np.arange(len(train), len(out.dataset)))
    assert new.labels[XTB].energy_mask.all() and new.labels[XTB].forces_mask.all()
    assert set(_keys(new)) <= set(_keys(pool)) and len(set(_keys(new))) == 10
    # the labels are in the store, the same numbers as in the data
    with LabelStore(tmp_path / "labels") as store:
        held = store.fetch(Level(XTB), _keys(new))
    assert len(held) == 10
    assert np.allclose([held[k]["energy"] for k in _keys(new)], new.labels[XTB].energy)
    # where it was taught, the model is now better than before
    chosen = out.chosen[0]
    before = model.evaluate(chosen, reference=XTB)["forces_mae"]
    after = out.model.evaluate(chosen, reference=XTB)["forces_mae"]
    assert after < before
    assert out.model.settings["continued"][-1]["stage"] == "improve round 2"


def test_a_killed_loop_goes_on_from_its_last_round_without_computing_a_label_twice(parts, model, tmp_path):
    train, pool, test = parts
    model.save(tmp_path / "start.wb")
    train.save(tmp_path / "train.h5")
    pool.save(tmp_path / "pool.h5")
    call = textwrap.dedent(
        f"""
        import workbench as wb
        from workbench.active import Pool
        model = wb.TrainedModel.load({str(tmp_path / "start.wb")!r})
        train = wb.Dataset.load({str(tmp_path / "train.h5")!r})
        pool = wb.Dataset.load({str(tmp_path / "pool.h5")!r})
        job = wb.improve(model, train, Pool(pool), level="{XTB}", n_per_round=4, rounds=4,
                         store={str(tmp_path / "labels")!r}, workdir={str(tmp_path / "work")!r}, max_epochs=15,
                         seed=3, background=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", call], env={**os.environ, "OMP_NUM_THREADS": "1"})
    record = tmp_path / "work" / "rounds.json"
    deadline = time.time() + 240
    while time.time() < deadline and not (record.is_file() and json.loads(record.read_text())["round"] >= 1):
        time.sleep(0.2)
    proc.kill()  # no chance to tidy up
    proc.wait()
    finished = json.loads(record.read_text())["round"]
    assert 1 <= finished < 4  # killed in the middle
    with LabelStore(tmp_path / "labels") as store:
        in_store = len(store.fetch(Level(XTB), _keys(pool)))
    assert in_store >= 4 * finished  # a round cut short may have left labels too
    exec(compile(call, "resume", "exec"), namespace := {})
    job = namespace["job"]
    assert job.state == "done", job.error
    rounds = job.rounds
    assert list(rounds["round"]) == [0, 1, 2, 3, 4] and rounds["labels_total"].iloc[-1] == 16
    assert any(f"going on from round {finished}" in line for line in job.log)
    with LabelStore(tmp_path / "labels") as store:
        assert len(store.fetch(Level(XTB), _keys(pool))) == 16
    # the resumed run computed only what the store lacked
    assert int(rounds["computed"].iloc[finished + 1 :].sum()) == 16 - in_store
    assert len(job.result().dataset) == len(train) + 16


def test_cancel_keeps_the_labels_and_the_last_model(parts, model, tmp_path):
    train, pool, _ = parts
    holder = {}
    job = wb.improve(
        model, train, Pool(pool), level=XTB, n_per_round=3, rounds=5, store=tmp_path / "labels", max_epochs=10,
        callbacks=lambda row: holder["job"].cancel() if row["round"] == 1 else None, background=True,
    )  # fmt: skip
    holder["job"] = job
    assert job.wait(240) and job.state == "cancelled"
    partial = job.partial
    assert list(partial.rounds["round"]) == [0, 1] and len(partial.dataset) == len(train) + 3
    assert partial.model.settings["continued"][-1]["stage"] == "improve round 1"


def test_scan_geometries_and_random_selection_are_candidates_like_any_other(model, parts, tmp_path):
    train, _, _ = parts
    atoms = train.to_atoms(0)
    source = ScanGeometries(atoms, "dihedral", (1, 0, 2, 8), np.arange(0, 360, 30))
    candidates = source(model, 1)
    assert len(candidates) == 12 and candidates.fidelity_names == []
    chosen, scores = select("random", [model], candidates, 4, seed=1)
    assert len(set(chosen.tolist())) == 4 and np.isnan(scores).all()


def test_batches_are_diverse_and_the_criteria_say_what_they_need(model, parts):
    train, pool, _ = parts
    # two copies of the best-scored configuration: a diverse batch takes one of them
    scores = np.array([1.0, 1.0, 0.5, 0.4])
    x = np.array([[0.0], [0.0], [1.0], [2.0]])
    batch = diverse_batch(scores, x, 2)
    assert batch[0] in (0, 1) and batch[1] in (2, 3)
    # the greedy variance batch never repeats a configuration, and repeats of one count once
    doubled = wb.data.concatenate([pool.select([0, 0, 1, 2, 3]), pool.select(range(4, 20))])
    chosen, _ = select("variance", [model], doubled, 6, train=train)
    assert len(set(chosen.tolist())) == 6 and not {0, 1} <= set(chosen.tolist())
    # scores that cannot be measured (no label) are never chosen, and nothing is chosen twice
    assert diverse_batch(np.array([1.0, np.nan, np.nan, np.nan]), np.eye(4), 3).tolist() == [0]
    # one head and no ensemble: disagreement cannot be measured, and the error says what to do instead
    with pytest.raises(ValueError, match="ensemble"):
        disagreement([model], pool)
    assert np.allclose(disagreement([model, model], pool.select(range(5))), 0.0)


def test_md_that_breaks_every_bond_says_so(model, parts):
    train, _, _ = parts
    atoms = train.to_atoms(0)
    hot = wb.active.ModelMD(atoms, temperature_K=20000.0, n_samples=5, interval=50, equilibration_steps=200)
    with pytest.raises(ValueError, match="broke the molecule"):
        hot(model, 1)


def test_sources_together_go_on_without_the_one_that_has_nothing(model, parts):
    train, _, _ = parts
    atoms = train.to_atoms(0)
    hot = wb.active.ModelMD(atoms, temperature_K=20000.0, n_samples=5, interval=50, equilibration_steps=200)
    scan = ScanGeometries(atoms, "dihedral", (0, 1, 2, 3), np.arange(0, 360, 60))
    together = wb.active.candidates.as_source([scan, hot])
    assert len(together(model, 1)) == 6  # the scan's geometries; the broken MD left out
    with pytest.raises(ValueError, match="broke the molecule"):
        wb.active.candidates.as_source([hot])(model, 1)


def test_training_further_never_leaves_a_model_worse_on_validation_than_it_started(model, parts):
    from workbench.training import continue_training

    train, _, test = parts
    # labels shifted by 2 eV a configuration: training on them pulls the energies away from the right ones
    wrong = train.select(slice(None))
    wrong.labels[XTB].energy = wrong.labels[XTB].energy + 2.0
    kept = continue_training(model, wrong, test, max_epochs=5, lr_factor=5.0)
    before, after = model.predict(test, forces=False), kept.predict(test, forces=False)
    np.testing.assert_allclose(after["energy"], before["energy"], rtol=0, atol=1e-9)
    assert kept.settings["continued"][-1]["epochs"] == 5  # it trained, and then kept where it started
    # on right labels it moves
    moved = continue_training(model, train, test, max_epochs=5, lr_factor=5.0)
    assert not np.allclose(moved.predict(test, forces=False)["energy"], before["energy"], atol=1e-6)
