"""Dask distributed execution of a labeling job.

By default a ``LocalCluster`` of one-thread worker processes (two one-thread workers label ~1.9x
faster than one two-thread process on this kind of work); a user-passed ``Client`` runs the same
tasks on a real cluster. Results come back to the job's process, which alone writes the store.
"""

from __future__ import annotations

import logging
import pickle
import time

import numpy as np

from .job import _compute_chunk, default_chunk_size

#: Dask's housekeeping timers (20 ms event-loop ticks, 10 ms stack profiling, 100 ms memory checks)
#: cost ~8% of a core on an idle one-worker cluster; the labeling tasks take seconds, so slower
#: timers lose nothing and bring that below 1%. Applied to the clusters the job starts itself.
QUIET_DASK = {
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing-interval": "1s",
    # Dask asks glibc to hand freed memory back to the system at 64 KiB; QM programs allocate and free
    # large arrays in every calculation, so each one faults its pages in again: +5% CPU (system time) on
    # HF/STO-3G, measured. The workers keep glibc's own adaptive threshold.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}


def _to_wire(chunk: list) -> bytes:
    """A chunk as one bytes object, and :func:`_compute_wire`'s results likewise. Dask walks every
    element of a task's arguments looking for futures, ships every NumPy array as a frame of its
    own, and pickles every element of a list result separately (looking up each one's module);
    with hundreds of configurations a task, that cost more than the xTB calculations themselves.
    The bytes never leave this job: its own process packs them for its workers and back."""
    return pickle.dumps(
        [
            (key, np.ascontiguousarray(z, "<i8").tobytes(), np.ascontiguousarray(r, "<f8").tobytes(), c, m)
            for key, z, r, c, m in chunk
        ],
        protocol=pickle.HIGHEST_PROTOCOL,
    )


def _compute_wire(wire: bytes, level, properties) -> bytes:
    """Run on a worker: :func:`_compute_chunk` on a :func:`_to_wire` chunk; the results as bytes."""
    items = [
        (key, np.frombuffer(z, "<i8"), np.frombuffer(r, "<f8").reshape(-1, 3), c, m)
        for key, z, r, c, m in pickle.loads(wire)
    ]
    out = []
    for key, rec in _compute_chunk(items, level, properties):
        if rec["forces"] is not None:
            rec["forces"] = np.ascontiguousarray(rec["forces"], "<f8").tobytes()
        out.append((key, rec))
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


def _from_wire(payload: bytes) -> list:
    results = pickle.loads(payload)
    for _, rec in results:
        if rec["forces"] is not None:
            rec["forces"] = np.frombuffer(rec["forces"], "<f8").reshape(-1, 3)
    return results


def run_on_dask(job, store, items: list, weight) -> None:
    """Compute ``items`` on Dask, recording each finished task in ``store`` as it arrives."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    client = job.client
    if client is None:
        import dask

        with dask.config.set(QUIET_DASK):
            cluster = LocalCluster(
                n_workers=job.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
    futures = []
    try:
        workers = len(client.scheduler_info().get("workers", {})) or 1
        size = job.chunk_size or default_chunk_size(job.level, len(items), workers)
        chunks = {}
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            fut = client.submit(_compute_wire, _to_wire(chunk), job.level, job.properties, pure=False)
            chunks[fut.key] = chunk
            futures.append(fut)
        pending = as_completed(futures)
        while not pending.is_empty():
            if job.cancelled:
                client.cancel(futures)
                return
            batch = pending.next_batch(block=False)
            if not batch:
                time.sleep(0.05)
                continue
            for fut in batch:
                job._record(store, chunks.pop(fut.key), _from_wire(fut.result()), weight)
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
