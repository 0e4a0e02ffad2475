"""Labeling jobs: background state, progress, cancel, merging into a Dataset, Dask workers."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from ase.build import molecule

from workbench.data import Dataset
from workbench.qm import JobCancelled, Level, compute_label, label
from workbench.qm.labeling_job import default_chunk_size
from workbench.qm.store import LabelStore, configuration_keys

pytestmark = pytest.mark.qm


def waters(n: int, seed: int = 0) -> Dataset:
    base = molecule("H2O")
    rng = np.random.default_rng(seed)
    records = [
        {"numbers": base.numbers, "positions": base.positions + rng.normal(scale=0.05, size=(3, 3))} for _ in range(n)
    ]
    return Dataset.from_configurations(records)


def reference(ds: Dataset, level, properties=("energy", "forces")):
    recs = [
        compute_label(ds.numbers[a:b], ds.positions[a:b], level, properties)
        for a, b in zip(ds.ptr[:-1], ds.ptr[1:], strict=True)
    ]
    return np.array([r["energy"] for r in recs]), recs


def test_background_job_reports_progress_and_returns_dataset_with_new_fidelity(tmp_path):
    ds = waters(4)
    ds = label(ds, "gfn2-xtb", store=tmp_path, background=False, progress=False).result()
    seen = []
    record = lambda r: seen.append((r["done"], r["total"]))  # noqa: E731
    job = label(ds, "hf/sto-3g", store=tmp_path, indices=[1, 3], callbacks=record)
    assert job.state in ("queued", "running", "done")
    out = job.result(timeout=120)
    assert job.state == "done" and job.n_done == 2 and job.n_total == 2
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    assert out.fidelity_names == ["gfn2-xtb", "hf/sto-3g"]
    energy, mask = out.energy("hf/sto-3g")
    assert mask.tolist() == [False, True, False, True]
    ref, _ = reference(ds.select([1, 3]), "hf/sto-3g")
    np.testing.assert_allclose(energy[[1, 3]], ref, atol=1e-8)
    assert out.fidelity("hf/sto-3g").program == "pyscf"
    note = out.provenance[-1]
    assert note["fidelity"] == "hf/sto-3g" and note["version"] and note["settings"]["max_cycle"] == 100
    # the input is untouched; the xTB labels are carried over
    assert "hf/sto-3g" not in ds.labels
    np.testing.assert_array_equal(out.energy("gfn2-xtb")[0], ds.energy("gfn2-xtb")[0])


def test_new_labels_merge_with_existing_ones_of_the_same_fidelity(tmp_path):
    ds = waters(3)
    first = label(ds, "gfn2-xtb", store=tmp_path, indices=[0], background=False, progress=False).result()
    both = label(first, "gfn2-xtb", store=tmp_path, indices=[2], background=False, progress=False).result()
    assert both.energy("gfn2-xtb")[1].tolist() == [True, False, True]
    assert both.forces("gfn2-xtb")[1].tolist() == [True, False, True]


def test_identical_geometries_are_computed_once(tmp_path):
    ds = waters(2).select([0, 1, 0, 0])
    job = label(ds, "gfn2-xtb", store=tmp_path, background=False, progress=False)
    out = job.result()
    assert job.n_computed == 2 and job.n_done == 4
    e = out.energy("gfn2-xtb")[0]
    assert e[0] == e[2] == e[3] != e[1]


def test_labels_from_the_store_and_from_this_run_land_on_their_own_configurations(tmp_path):
    """Molecules of three sizes, in two runs, with a repeat and a failure: each configuration gets
    the energy and forces that the store holds for it."""
    rng = np.random.default_rng(3)
    mols = [molecule(name) for name in ("H2O", "CH4", "H2", "NH3", "H2O", "CH4")]
    records = [
        {"numbers": m.numbers, "positions": m.positions + rng.normal(scale=0.03, size=m.positions.shape)} for m in mols
    ]
    ds = Dataset.from_configurations(records).select([0, 1, 2, 3, 4, 5, 1, 2])
    ds.info["multiplicity"] = [1, 1, 1, 2, 1, 1, 1, 1]  # a doublet of 10 electrons: configuration 3 fails
    label(ds, "gfn2-xtb", store=tmp_path, indices=[4, 1, 3], background=False, progress=False).result()
    job = label(ds, "gfn2-xtb", store=tmp_path, indices=[5, 0, 1, 2, 3, 4, 6], background=False, progress=False)
    out = job.result()
    assert job.n_computed == 3  # 5, 0, 2: the rest were in the store, 6 repeats 1
    assert list(job.failures["index"]) == [3] and "impossible" in job.failures["error"].iloc[0]
    energy, has_energy = out.energy("gfn2-xtb")
    forces, has_forces = out.forces("gfn2-xtb")
    assert has_energy.tolist() == has_forces.tolist() == [True, True, True, False, True, True, True, False]
    keys = configuration_keys(
        ds.numbers, ds.positions, ds.ptr[:-1], ds.ptr[1:], [0] * 8, ds.info["multiplicity"].tolist()
    )
    with LabelStore(tmp_path) as store:
        held = store.fetch(Level("gfn2-xtb"), keys)
    for i in [0, 1, 2, 4, 5, 6]:
        assert energy[i] == held[keys[i]]["energy"]
        np.testing.assert_array_equal(forces[ds.ptr[i] : ds.ptr[i + 1]], held[keys[i]]["forces"])
    assert energy[0] != energy[4] and energy[1] == energy[6]
    assert np.isnan(forces[ds.ptr[7] : ds.ptr[8]]).all()  # not asked for, and no earlier labels


@pytest.mark.parametrize("workers", [None, pytest.param(1, marks=pytest.mark.slow, id="dask")])
def test_cancel_stops_the_job_and_keeps_what_it_finished(tmp_path, workers):
    ds = waters(30, seed=5)
    holder: dict = {}
    ready = threading.Event()

    def progress(record):
        ready.wait(10)
        if record["done"] >= 2:
            holder["job"].cancel()

    job = label(ds, "hf/6-31g", store=tmp_path, callbacks=progress, workers=workers)
    holder["job"] = job
    ready.set()
    assert job.wait(120)
    assert job.state == "cancelled"
    assert 2 <= job.n_computed < 30
    # what it finished is the job's partial result: those labels, and no fake ones for the rest
    labels = job.partial.labels["hf/6-31g"]
    assert labels.energy_mask.sum() == job.n_computed and np.isnan(labels.energy[~labels.energy_mask]).all()
    with pytest.raises(JobCancelled):
        job.result()
    resumed = label(ds, "hf/6-31g", store=tmp_path, indices=range(5), background=False, progress=False)
    resumed.result()
    assert resumed.n_computed == max(0, 5 - job.n_computed)


def test_job_that_errors_is_failed_and_reraises(tmp_path):
    (tmp_path / "file").write_text("x")
    job = label(waters(1), "gfn2-xtb", store=tmp_path / "file" / "sub", progress=False)
    job.wait(60)
    assert job.state == "failed"
    with pytest.raises(OSError):
        job.result()


def test_bad_requests_fail_before_starting():
    with pytest.raises(ValueError, match="unknown properties"):
        label(waters(1), "gfn2-xtb", properties=("energy", "dipole"))
    with pytest.raises(ValueError, match="workers must be at least 1"):
        label(waters(1), "gfn2-xtb", workers=0)
    with pytest.raises(IndexError):
        label(waters(2), "gfn2-xtb", indices=[5])
    with pytest.raises(TypeError, match="list of ase.Atoms"):
        label(["not atoms"], "gfn2-xtb")


@pytest.mark.slow
def test_dask_local_cluster_with_two_workers_gives_the_serial_numbers(tmp_path):
    ds = waters(6, seed=3)
    job = label(ds, "hf/sto-3g", store=tmp_path / "dask", workers=2, progress=False)
    out = job.result(timeout=300)
    assert job.n_computed == 6
    ref, recs = reference(ds, "hf/sto-3g")
    np.testing.assert_allclose(out.energy("hf/sto-3g")[0], ref, atol=1e-8)
    np.testing.assert_allclose(out.forces("hf/sto-3g")[0], np.concatenate([r["forces"] for r in recs]), atol=1e-7)


@pytest.mark.slow
def test_dask_with_a_user_client_and_chunks(tmp_path):
    from distributed import Client, LocalCluster

    ds = waters(5, seed=4)
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        seen = []
        job = label(
            ds,
            Level("gfn2-xtb"),
            store=tmp_path,
            client=client,
            chunk_size=2,
            callbacks=lambda r: seen.append(r["done"]),
        )
        out = job.result(timeout=300)
        assert client.status == "running"  # a user's client is left open
        # by default the xTB tasks on 1 worker are half of what remains (at least 128), so the last ones are
        # small; a remainder under 128 joins the task before it
        steps = []
        label(waters(600, seed=5), "gfn2-xtb", client=client, callbacks=lambda r: steps.append(r["done"])).result(300)
        assert sorted(np.diff(steps).tolist()) == [150, 150, 300]
    # the provenance of labels made on Dask reaches the store whole
    with LabelStore(tmp_path) as store:
        metas = store.table(Level("gfn2-xtb"), meta=True)["meta"].tolist()
    assert len(metas) == 5 and all(m["program"] == "tblite" and m["wall_time_s"] > 0 for m in metas)
    assert seen[0] == 0 and seen[-1] == 5 and len(seen) == 4  # start + three chunks of 2, 2, 1
    ref, _ = reference(ds, "gfn2-xtb")
    np.testing.assert_allclose(out.energy("gfn2-xtb")[0], ref, atol=1e-8)


@pytest.mark.slow
def test_a_dask_job_needs_only_its_own_clients_event_loop(tmp_path):
    """Answers are fetched on the job's client, not on the client made last (Dask's default for
    as_completed): with that other client's event loop blocked, the job still finishes."""
    from distributed import Client, LocalCluster

    ds = waters(4, seed=8)
    unblock = threading.Event()
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as first_cluster,
        Client(first_cluster) as first,
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as second_cluster,
        Client(second_cluster) as second,
    ):
        second.loop.add_callback(unblock.wait, 120)  # the other client's loop thread waits here
        try:
            job = label(ds, "gfn2-xtb", store=tmp_path, client=first, chunk_size=1, progress=False)
            out = job.result(timeout=60)
        finally:
            unblock.set()
    ref, _ = reference(ds, "gfn2-xtb")
    np.testing.assert_allclose(out.energy("gfn2-xtb")[0], ref, atol=1e-8)


def test_a_dask_task_answer_keeps_every_record_and_forces_of_mixed_sizes_and_failures():
    """The packing of a chunk and its answer (run here without Dask): molecules of different sizes, one failed
    calculation without forces, every record as compute_label gives it; an answer for other keys, or one whose
    columns do not fit together, is refused."""
    from workbench.qm.dask_backend import _compute_wire, _from_wire, _to_wire

    h2, water = molecule("H2"), molecule("H2O")
    chunk = [
        ("a", water.numbers, water.positions, 0, None),
        ("b", h2.numbers, h2.positions, 0, 2),  # a doublet of 2 electrons: fails, between two that succeed
        ("c", h2.numbers, h2.positions, 0, None),
        ("d", water.numbers, water.positions + 0.01, 0, None),
    ]
    level = Level("gfn2-xtb")

    def answer_of(chunk, level):
        wire = _to_wire(chunk)
        batch = _from_wire(_compute_wire(wire, level, ("energy", "forces")), chunk, wire)
        return batch, batch.records([(key, j) for j, key in enumerate(batch.keys)], described=None)

    batch, out = answer_of(chunk, level)
    assert batch.keys == ["a", "b", "c", "d"] and batch.multiplicities == [None, 2, None, None]
    np.testing.assert_array_equal(batch.positions[3:5], h2.positions)  # the geometries, as they were sent
    assert out["b"]["status"] == "failed" and out["b"]["forces"] is None and "multiplicity" in out["b"]["error"]
    for j, (key, z, r, c, m) in enumerate(chunk):
        if key == "b":
            continue
        ref = compute_label(z, r, level, ("energy", "forces"), c, m)
        assert out[key]["status"] == "done" and out[key]["energy"] == ref["energy"]
        np.testing.assert_array_equal(out[key]["forces"], ref["forces"])
        meta = json.loads(batch.meta[j])  # the label's own provenance, as the store keeps it
        assert meta["version"] == level.version and meta["convergence"] == ref["meta"]["convergence"]
        assert "program" not in meta and "settings" not in meta  # the level's row holds those once
    _, out = answer_of(chunk, Level("gfn2-xtb", max_iterations=2))
    assert all(rec["status"] == "failed" and rec["forces"] is None and rec["error"] for rec in out.values())
    answer = _compute_wire(_to_wire(chunk[:2]), level, ("energy", "forces"))
    with pytest.raises(RuntimeError, match="other configurations"):
        _from_wire(answer, chunk, _to_wire(chunk))
    text, energy, forces, meta = _compute_wire(_to_wire(chunk), level, ("energy", "forces"))
    with pytest.raises(RuntimeError, match="forces for 7 atoms where its labels with forces have 8"):
        _from_wire((text, energy, forces[: 7 * 24], meta), chunk, _to_wire(chunk))


def test_xtb_tasks_grow_with_the_work_per_dask_worker_and_pyscf_labels_go_one_by_one():
    xtb, hf = Level("gfn2-xtb"), Level("hf/sto-3g")
    assert default_chunk_size(xtb) == 64  # serial: one store transaction per 64 labels
    assert default_chunk_size(xtb, 1024, 1) == 512 and default_chunk_size(xtb, 1024, 2) == 341
    assert default_chunk_size(xtb, 100, 2) == 128 and default_chunk_size(xtb, 10**6, 2) == 2048
    assert default_chunk_size(hf, 1024, 2) == 1


def test_dask_tasks_shrink_toward_the_end_and_a_small_remainder_joins_the_task_before_it():
    from workbench.qm.dask_backend import task_sizes

    xtb, hf = Level("gfn2-xtb"), Level("hf/sto-3g")
    sizes = task_sizes(xtb, 2048, 2)
    # a third of what remains each, 128 at least; the last 143 are one task, not 128 and 15
    assert sizes == [682, 455, 303, 202, 135, 128, 143]
    assert task_sizes(xtb, 130, 2) == [130] and task_sizes(xtb, 256, 2) == [128, 128]
    assert task_sizes(xtb, 5, 2, chunk_size=2) == [2, 2, 1]  # a size asked for is kept
    assert task_sizes(hf, 3, 2) == [1, 1, 1]
    assert task_sizes(xtb, 0, 2) == []


def test_each_configuration_is_computed_with_its_own_charge_and_spin_when_a_subset_is_labeled(tmp_path):
    ds = waters(4, seed=6)
    ds.info["charge"] = [0, 1, 0, -1]
    ds.info["multiplicity"] = [1, 2, 1, 2]
    job = label(ds, "gfn2-xtb", store=tmp_path, indices=[3, 1], background=False, progress=False)
    out = job.result()
    energy, has = out.energy("gfn2-xtb")
    assert has.tolist() == [False, True, False, True]
    for i in (1, 3):
        a, b = ds.ptr[i], ds.ptr[i + 1]
        charged = compute_label(
            ds.numbers[a:b], ds.positions[a:b], "gfn2-xtb", charge=ds.info["charge"][i], multiplicity=2
        )
        neutral = compute_label(ds.numbers[a:b], ds.positions[a:b], "gfn2-xtb")
        assert energy[i] == pytest.approx(charged["energy"], abs=1e-8)
        assert abs(energy[i] - neutral["energy"]) > 1.0  # an ion, not the neutral molecule (eV)
    with LabelStore(tmp_path) as store:
        metas = store.table(meta=True)["meta"].tolist()
    assert sorted((m["charge"], m["multiplicity"]) for m in metas) == [(-1, 2), (1, 2)]
