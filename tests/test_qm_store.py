"""The resumable label store: a real labeling run killed mid-way resumes with only the missing labels."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from ase.build import molecule

from workbench.data import Dataset
from workbench.qm import LabelStore, Level, compute_label, configuration_key, label
from workbench.qm.store import configuration_keys

pytestmark = pytest.mark.qm


def waters(n: int, seed: int = 0, scale: float = 0.05) -> Dataset:
    base = molecule("H2O")
    rng = np.random.default_rng(seed)
    records = [
        {"numbers": base.numbers, "positions": base.positions + rng.normal(scale=scale, size=(3, 3))} for _ in range(n)
    ]
    return Dataset.from_configurations(records)


def count_labels(store_file) -> int:
    if not os.path.exists(store_file):
        return 0
    conn = sqlite3.connect(f"file:{store_file}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT COALESCE(SUM(size), 0) FROM batches").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from workbench.data import Dataset
    from workbench.qm import label

    positions = np.load(sys.argv[2], allow_pickle=False)
    records = [{"numbers": [8, 1, 1], "positions": p} for p in positions]
    label(Dataset.from_configurations(records), "hf/6-31g", store=sys.argv[1],
          properties=("energy", "forces"), background=False, progress=False)
    """
)


@pytest.mark.slow
def test_labeling_killed_midway_resumes_with_only_the_missing_labels(tmp_path):
    n = 24
    ds = waters(n, seed=7)
    np.save(tmp_path / "positions.npy", ds.positions.reshape(n, 3, 3))
    (tmp_path / "child.py").write_text(CHILD)
    store_dir = tmp_path / "store"
    store_file = store_dir / "labels.sqlite"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py"), str(store_dir), str(tmp_path / "positions.npy")],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while count_labels(store_file) < 3:
        assert child.poll() is None, f"labeling process ended early: {child.stderr.read().decode()[-2000:]}"
        assert time.time() < deadline, "labeling process made no progress"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    done_before = count_labels(store_file)
    assert 3 <= done_before < n, "the kill must land mid-way"

    conn = sqlite3.connect(store_file)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    progress = []
    record = lambda r: progress.append((r["done"], r["total"]))  # noqa: E731
    job = label(ds, "hf/6-31g", store=store_dir, background=False, callbacks=record)
    out = job.result()
    assert job.state == "done"
    assert job.n_computed == n - done_before
    assert progress[0] == (done_before, n) and progress[-1] == (n, n)
    energy, emask = out.energy("hf/6-31g")
    forces, fmask = out.forces("hf/6-31g")
    assert emask.all() and fmask.all()
    # a label written by the killed process and one written after resuming, against fresh computations
    for i in (0, n - 1):
        ref = compute_label(ds.numbers[3 * i : 3 * i + 3], ds.positions[3 * i : 3 * i + 3], "hf/6-31g")
        assert energy[i] == pytest.approx(ref["energy"], abs=1e-7)
        np.testing.assert_allclose(forces[3 * i : 3 * i + 3], ref["forces"], atol=1e-5)

    again = label(ds, "hf/6-31g", store=store_dir, background=False, progress=False)
    assert again.result() is not None and again.n_computed == 0


def test_store_round_trip_keeps_values_and_metadata(tmp_path):
    ds = waters(2)
    level = Level("gfn2-xtb")
    z, r = ds.numbers[:3], ds.positions[:3]
    rec = compute_label(z, r, level)
    key = configuration_key(z, r)
    with LabelStore(tmp_path / "s") as store:
        store.put(level, key, z, r, 0, None, rec)
        back = store.fetch(level, [key])[key]
        assert back["status"] == "done"
        assert back["energy"] == rec["energy"]
        np.testing.assert_array_equal(back["forces"], rec["forces"])
        assert back["meta"] == rec["meta"]  # the label's provenance joined with its level's, whole again
        assert back["meta"]["program"] == "tblite" and back["meta"]["wall_time_s"] > 0
        assert store.status(level, [key, "missing"]) == {key: ("done", True)}
        assert store.fetch(Level("gfn1-xtb"), [key]) == {}
        summary = store.summary()
        assert summary.loc[0, "fidelity"] == "gfn2-xtb" and summary.loc[0, "done"] == 1
        rebuilt = store.to_dataset()
    np.testing.assert_array_equal(rebuilt.positions, r)
    assert rebuilt.energy("gfn2-xtb")[0][0] == rec["energy"]


def test_configuration_key_identifies_geometry_charge_and_spin():
    z, r = np.array([8, 1, 1]), molecule("H2O").positions
    assert configuration_key(z, r) == configuration_key(z, r.copy() + 1e-12)
    assert configuration_key(z, r) != configuration_key(z, r + 1e-4)
    assert configuration_key(z, r) != configuration_key(z, r, charge=1)
    assert configuration_key(z, r) != configuration_key(z, r, multiplicity=3)
    assert configuration_key(z, r) != configuration_key(np.array([8, 1, 9]), r)
    # the key is what finds the labels of earlier runs: it must not change between versions
    water = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
    assert configuration_key(z, water) == "cd28ca47ddb7b7badea21e8a2f497c9e"
    assert configuration_key(z, -water) == configuration_key(z, -water + 0.0) == "a56c0673b2acbc70a00e632e8f5c5c34"


def test_keys_of_many_configurations_at_once_are_their_single_keys():
    ds = waters(5, seed=3)
    charges, mults = [0, 1, 0, -1, 0], [None, 2, 3, 2, None]
    every = [
        configuration_key(ds.numbers[a:b], ds.positions[a:b], c, m)
        for a, b, c, m in zip(ds.ptr[:-1], ds.ptr[1:], charges, mults, strict=True)
    ]
    assert len(set(every)) == 5
    assert configuration_keys(ds.numbers, ds.positions, ds.ptr[:-1], ds.ptr[1:], charges, mults) == every
    pick = np.array([4, 1])
    picked = configuration_keys(ds.numbers, ds.positions, ds.ptr[pick], ds.ptr[pick + 1], [0, 1], [None, 2])
    assert picked == [every[4], every[1]]


def test_energy_labels_are_reused_and_upgraded_to_forces_only_when_asked(tmp_path):
    ds = waters(3, seed=1)
    job = label(ds, "hf/sto-3g", store=tmp_path, properties=("energy",), background=False, progress=False)
    out = job.result()
    assert job.n_computed == 3 and out.labels["hf/sto-3g"].forces is None
    job = label(ds, "hf/sto-3g", store=tmp_path, properties=("energy", "forces"), background=False, progress=False)
    out = job.result()
    assert job.n_computed == 3 and out.forces("hf/sto-3g")[1].all()
    job = label(ds, "hf/sto-3g", store=tmp_path, properties=("energy",), background=False, progress=False)
    assert job.result() is not None and job.n_computed == 0


def test_failed_labels_are_stored_with_reason_masked_and_not_retried_unless_asked(tmp_path):
    ds = waters(3, seed=2)
    ds.info["multiplicity"] = [1, 2, 1]  # a doublet of 10 electrons is impossible: configuration 1 fails
    job = label(ds, "gfn2-xtb", store=tmp_path, background=False, progress=False)
    out = job.result()
    assert job.n_failed == 1
    assert list(job.failures["index"]) == [1]
    assert "multiplicity 2 is impossible with 10 electrons" in job.failures["error"].iloc[0]
    energy, mask = out.energy("gfn2-xtb")
    assert mask.tolist() == [True, False, True] and np.isnan(energy[1])
    assert out.forces("gfn2-xtb")[1].tolist() == [True, False, True]
    with LabelStore(tmp_path) as store:
        fails = store.failures()
    assert len(fails) == 1 and fails["fidelity"].iloc[0] == "gfn2-xtb"

    rerun = label(ds, "gfn2-xtb", store=tmp_path, background=False, progress=False)
    rerun.result()
    assert rerun.n_computed == 0 and rerun.n_failed == 1
    retry = label(ds, "gfn2-xtb", store=tmp_path, background=False, progress=False, retry_failed=True)
    retry.result()
    assert retry.n_computed == 1 and retry.n_failed == 1


def test_not_a_store_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a workbench label store"):
        LabelStore(bad)


def test_a_labels_provenance_is_whole_when_the_level_is_shared(tmp_path):
    """Each label keeps what its level key does not fix (version, charge, convergence, wall time, the settings that
    do not change the numbers); the level's row keeps the rest once. A label written with another memory limit keeps
    its own."""
    from workbench.qm.store import label_provenance

    z, r = molecule("H2").numbers, molecule("H2").positions
    first, second = Level("hf/sto-3g"), Level("hf/sto-3g", max_memory_mb=1000)
    assert first.key == second.key
    rec1, rec2 = compute_label(z, r, first), compute_label(z, r + 0.01, second)
    own = json.loads(label_provenance(rec2["meta"]))
    assert own["run_settings"] == {"max_memory_mb": 1000} and "method" not in own and "settings" not in own
    keys = [configuration_key(z, r), configuration_key(z, r + 0.01)]
    with LabelStore(tmp_path / "s") as store:
        store.put(first, keys[0], z, r, 0, None, rec1)
        store.put(second, keys[1], z, r + 0.01, 0, None, rec2)
        back = store.fetch(first, keys)
    assert back[keys[0]]["meta"] == rec1["meta"]
    assert back[keys[1]]["meta"] == rec2["meta"] and back[keys[1]]["meta"]["settings"]["max_memory_mb"] == 1000


# the layout of stores written before labels were kept in batches: one row per label, geometries apart
OLD_LAYOUT = """
CREATE TABLE configurations (
    key TEXT PRIMARY KEY, numbers BLOB NOT NULL, positions BLOB NOT NULL, charge INTEGER, multiplicity INTEGER);
CREATE TABLE levels (level_key TEXT PRIMARY KEY, fidelity TEXT NOT NULL, program TEXT, description TEXT);
CREATE TABLE labels (
    config_key TEXT NOT NULL, level_key TEXT NOT NULL, status TEXT NOT NULL, has_forces INTEGER NOT NULL,
    energy REAL, forces BLOB, error TEXT, meta TEXT, finished REAL, PRIMARY KEY (config_key, level_key));
"""


def test_a_store_of_the_older_layout_is_converted_whole_and_labeling_goes_on_from_it(tmp_path):
    """Labels in the older layout (one row each; a row holding the whole provenance, as the oldest stores have, or
    only the label's own part), a failed one among them, read back the same after the store is converted when opened;
    a labeling run then computes only what is missing."""
    from workbench.qm.store import label_provenance

    ds = waters(4, seed=11)
    ds.info["multiplicity"] = [1, 1, 2, 1]  # configuration 2 fails: a doublet of 10 electrons
    level = Level("gfn2-xtb")
    keys = configuration_keys(ds.numbers, ds.positions, ds.ptr[:-1], ds.ptr[1:], [0] * 4, [1, 1, 2, 1])
    records = [
        compute_label(ds.numbers[3 * i : 3 * i + 3], ds.positions[3 * i : 3 * i + 3], level, multiplicity=m)
        for i, m in zip(range(3), [1, 1, 2], strict=True)
    ]
    assert [rec["status"] for rec in records] == ["done", "done", "failed"]
    path = tmp_path / "old" / "labels.sqlite"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    conn.executescript(OLD_LAYOUT)
    conn.execute(
        "INSERT INTO levels VALUES (?, ?, ?, ?)", (level.key, level.name, level.program, json.dumps(level.describe()))
    )
    for i, rec in enumerate(records):
        z, r = ds.numbers[3 * i : 3 * i + 3], ds.positions[3 * i : 3 * i + 3]
        conn.execute(
            "INSERT INTO configurations VALUES (?, ?, ?, 0, ?)", (keys[i], z.tobytes(), r.tobytes(), [1, 1, 2][i])
        )
        forces = None if rec["forces"] is None else np.asarray(rec["forces"], "<f8").tobytes()
        meta = json.dumps(rec["meta"]) if i == 0 else label_provenance(rec["meta"])
        conn.execute(
            "INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (keys[i], level.key, rec["status"], int(forces is not None), rec["energy"], forces, rec["error"], meta, i),
        )
    conn.commit()
    conn.close()

    with LabelStore(path) as store:
        tables = {name for (name,) in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"levels", "batches"}
        back = store.fetch(level, keys)
        assert sorted(back) == sorted(keys[:3])
        for i, rec in enumerate(records):
            assert back[keys[i]]["status"] == rec["status"] and back[keys[i]]["energy"] == rec["energy"]
            assert back[keys[i]]["meta"] == rec["meta"]
        np.testing.assert_array_equal(back[keys[1]]["forces"], records[1]["forces"])
        assert back[keys[2]]["forces"] is None and "impossible" in back[keys[2]]["error"]
        assert store.summary()[["done", "with_forces", "failed"]].values.tolist() == [[2, 2, 1]]
        rebuilt = store.to_dataset()
    np.testing.assert_array_equal(rebuilt.positions, ds.positions[:9])
    assert rebuilt.energy("gfn2-xtb")[1].tolist() == [True, True, False]

    job = label(ds, level, store=path.parent, background=False, progress=False)
    out = job.result()
    assert job.n_computed == 1 and job.n_failed == 1
    assert out.energy("gfn2-xtb")[0][1] == records[1]["energy"] and out.energy("gfn2-xtb")[1].tolist() == [
        True,
        True,
        False,
        True,
    ]


def test_a_damaged_batch_is_a_clear_error_naming_what_does_not_fit(tmp_path):
    ds = waters(2, seed=4)
    level = Level("gfn2-xtb")
    job = label(ds, level, store=tmp_path, background=False, progress=False)
    job.result()
    with LabelStore(tmp_path) as store:
        store.conn.execute("UPDATE batches SET forces = substr(forces, 1, 48)")
        with pytest.raises(
            ValueError, match=r"labels.sqlite: batch 1 .* forces for 2 atoms where its labels with forces have 6"
        ):
            store.fetch(
                level, configuration_keys(ds.numbers, ds.positions, ds.ptr[:-1], ds.ptr[1:], [0, 0], [None] * 2)
            )
    with LabelStore(tmp_path) as store:
        store.conn.execute("""UPDATE batches SET labels = '{"status": ["done", "done"]}'""")
        with pytest.raises(ValueError, match=r"labels.sqlite: batch 1 of the label store is damaged: 'has_forces'"):
            store.summary()


def test_a_stored_label_whose_atoms_do_not_match_its_configuration_is_a_clear_error(tmp_path):
    """A label filed under the key of another configuration (a store written by hand, or damaged):
    the job that reads it back names the file and the configuration instead of placing wrong forces."""
    ds = waters(2, seed=5)
    level = Level("gfn2-xtb")
    keys = configuration_keys(ds.numbers, ds.positions, ds.ptr[:-1], ds.ptr[1:], [0, 0], [None] * 2)
    h2 = molecule("H2")
    with LabelStore(tmp_path) as store:
        record = compute_label(h2.numbers, h2.positions, level)
        store.put(level, keys[1], h2.numbers, h2.positions, 0, None, record)
    job = label(ds, level, store=tmp_path, background=False, progress=False)
    with pytest.raises(
        ValueError, match=r"labels.sqlite: the gfn2-xtb label of configuration 1 has 2 atoms, the configuration 3"
    ):
        job.result()
    assert job.n_computed == 1  # the other configuration's label is computed and kept
    with LabelStore(tmp_path) as store:
        assert store.status(level, keys)[keys[0]] == ("done", True)
