"""Dask distributed execution of a labeling job.

By default a ``LocalCluster`` of one-thread worker processes (two one-thread workers label ~1.9x
faster than one two-thread process on this kind of work); a user-passed ``Client`` runs the same
tasks on a real cluster. Results come back to the job's process, which alone writes the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import numpy as np

from .label_batch import LabelBatch
from .label_chunks import compute_chunk, default_chunk_size

#: Dask's housekeeping timers (20 ms event-loop ticks, 10 ms stack profiling, 100 ms memory checks)
#: cost ~8% of a core on an idle one-worker cluster; the labeling tasks take seconds, so slower
#: timers lose nothing and bring that below 1%. Applied to the clusters the job starts itself.
#: Also slowed or off: the event-loop tick, which only times how long the loop was blocked (kept
#: under distributed's 3 s warning limit, read at import); the system monitor, the dashboard's CPU
#: and network figures; the active memory manager, for replicas, which labeling never makes. They
#: took the job's process on an idle 2-worker cluster from 10.4 to 8.9 ms/s. The memory monitors,
#: which pause or restart a worker about to run out of memory, keep 1 s.
QUIET_DASK = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "10s",
    "distributed.scheduler.active-memory-manager.start": False,
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing-interval": "1s",
    # Dask asks glibc to hand freed memory back to the system at 64 KiB; QM programs allocate and free
    # large arrays in every calculation, so each one faults its pages in again: +5% CPU (system time) on
    # HF/STO-3G, measured. The workers keep glibc's own adaptive threshold.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}


def _to_wire(chunk: list) -> tuple[str, bytes, bytes]:
    """A chunk as JSON (keys, charges, multiplicities, atom counts) plus all atomic numbers and all
    positions as one bytes object each; :func:`_compute_wire` answers likewise. Dask walks every
    element of a task's arguments looking for futures, ships every NumPy array as a frame of its
    own, and pickles every element of a list result separately; with hundreds of configurations a
    task, that cost more than the xTB calculations themselves. JSON and raw float64, not pickle:
    the results may come from the workers of a cluster the job does not own."""
    head = json.dumps([(key, c, m, len(z)) for key, z, _, c, m in chunk])
    # the job's items are slices of the dataset's arrays: joined as they are, converted once
    numbers = np.concatenate([z for _, z, _, _, _ in chunk]).astype("<i8", copy=False).tobytes()
    positions = np.concatenate([r for _, _, r, _, _ in chunk]).astype("<f8", copy=False).tobytes()
    return head, numbers, positions


def _compute_wire(wire: tuple[str, bytes, bytes], level, properties) -> tuple[str, bytes, bytes, str]:
    """Run on a worker: :func:`~workbench.qm.label_chunks.compute_chunk` on a :func:`_to_wire` chunk. Answers with the
    labels column by column, as the store keeps them (:class:`~workbench.qm.store.LabelBatch`),
    less the geometries, which the job has: JSON of the keys, status, errors and whether forces
    came; all energies and all forces as one float64 bytes object each; each label's provenance
    as the JSON text the store keeps, one per line, decoded by nobody on the way and kept out of
    the first JSON, where every quote in it would be escaped and parsed again."""
    head, numbers, positions = wire
    numbers = np.frombuffer(numbers, "<i8")
    positions = np.frombuffer(positions, "<f8").reshape(-1, 3)
    items, start = [], 0
    for key, c, m, n in json.loads(head):
        items.append((key, numbers[start : start + n], positions[start : start + n], c, m))
        start += n
    batch = compute_chunk(items, level, properties)
    columns = {
        "key": batch.keys,
        "status": batch.status,
        "error": batch.errors,
        "has_forces": batch.has_forces.tolist(),
    }
    return json.dumps(columns), batch.energy.tobytes(), batch.forces.tobytes(), "\n".join(batch.meta)


def _from_wire(payload: tuple[str, bytes, bytes, str], chunk: list, wire: tuple[str, bytes, bytes]) -> LabelBatch:
    """The :class:`~workbench.qm.store.LabelBatch` of :func:`_compute_wire`'s answer to ``chunk``
    (sent as ``wire``); checked against the chunk, since the answer comes from another process."""
    text, energy, forces, provenance = payload
    columns = json.loads(text)
    if columns["key"] != [key for key, _, _, _, _ in chunk]:
        raise RuntimeError("a Dask worker answered for other configurations than it was given")
    head = {
        **columns,
        "n_atoms": [len(z) for _, z, _, _, _ in chunk],
        "charge": [c for _, _, _, c, _ in chunk],
        "multiplicity": [m for _, _, _, _, m in chunk],
    }
    meta = provenance.split("\n") if chunk else []
    try:
        return LabelBatch.from_bytes(columns["key"], head, energy, wire[1], wire[2], forces, meta)
    except (ValueError, KeyError) as err:  # a column missing, or columns that do not fit together
        raise RuntimeError(f"a Dask worker's answer does not fit its task: {err}") from None


#: Answers of finished tasks are released on the workers in batches of at least this many labels
#: (~600 bytes each): a release costs ~2 ms of Dask's time in the job's process and in the worker
#: when sent one task at a time, and little more for many at once.
RELEASE_AFTER_LABELS = 8192


def task_sizes(level, n_items: int, workers: int, chunk_size: int | None = None) -> list[int]:
    """Labels per Dask task for ``n_items``: ``chunk_size`` each if given, else
    :func:`default_chunk_size` of what remains, with a remainder smaller than the smallest task
    joined to the task before it (one task less: ~4 ms of Dask's time in the job's process)."""
    sizes, left = [], n_items
    while left > 0:
        size = min(chunk_size or default_chunk_size(level, left, workers), left)
        if chunk_size is None and 0 < left - size < default_chunk_size(level, left - size, workers):
            size = left
        sizes.append(size)
        left -= size
    return sizes


def local_client(workers: int):
    """A ``Client`` of a new ``LocalCluster`` of ``workers`` one-thread worker processes, as a
    labeling job starts one: :data:`QUIET_DASK`, no dashboard, and the cluster's description
    written to the scheduler every 30 s instead of every second (a round trip in the job's
    process; only dashboards read it). Close the client, then ``client.cluster``."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(QUIET_DASK):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            scheduler_sync_interval=30,
        )
        # answers straight from the worker that holds them, not relayed through the scheduler (a
        # user's cluster may reach its workers only via the scheduler: its client decides)
        return Client(cluster, direct_to_workers=True)


def run_on_dask(
    items: list,
    level,
    properties,
    record: Callable[[LabelBatch], None],
    cancelled: Callable[[], bool],
    client=None,
    workers: int | None = None,
    chunk_size: int | None = None,
    on_cancel: Callable[[Callable[[], None] | None], None] = lambda stop: None,
) -> None:
    """Compute ``items`` (``(key, numbers, positions, charge, multiplicity)``) at ``level`` on Dask, handing each
    finished task's :class:`LabelBatch` to ``record`` as it arrives, until ``cancelled()``. ``client`` is a
    user's ``distributed.Client``; without one a local cluster of ``workers`` is started and closed.
    ``on_cancel(stop)`` receives a function that cancels the tasks in flight while they run (None after), so
    that a cancel from another thread takes effect at once."""
    from distributed import as_completed

    cluster = None
    if client is None:
        client = local_client(workers)
        cluster = client.cluster
    futures = []
    try:
        workers = len(client.scheduler_info().get("workers", {})) or 1
        # sized on what remains, so the tasks shrink toward the end: the workers finish together,
        # and the last answer, written while they wait, is small
        chunks, start = [], 0
        for size in task_sizes(level, len(items), workers, chunk_size):
            chunks.append(items[start : start + size])
            start += size
        # one graph for all the tasks: Dask's cost in this process is ~4 ms a task, a little less this way
        wires = [_to_wire(c) for c in chunks]
        futures = client.map(_compute_wire, wires, level=level, properties=properties, pure=False)
        chunk_of = {fut.key: task for fut, task in zip(futures, zip(chunks, wires, strict=True), strict=True)}
        # a cancel from another thread cancels the tasks, which ends the loop below at once
        on_cancel(lambda: client.cancel(futures))
        if cancelled():
            return
        held, held_labels = [], 0
        # as_completed fetches each answer on Dask's event loop the moment its task ends (no thread
        # hand-over per task) and raises the error of a task that failed. On this client's loop: by
        # default it takes the loop of the client made last, which may be another's
        for fut, payload in as_completed(futures, loop=client.loop, with_results=True):
            if cancelled():
                return
            if fut.status != "finished":
                raise RuntimeError(f"Dask task {fut.key} ended as {fut.status!r} ({payload!r})")
            chunk, wire = chunk_of.pop(fut.key)
            record(_from_wire(payload, chunk, wire))
            held.append(fut)
            held_labels += len(chunk)
            if held_labels >= RELEASE_AFTER_LABELS:  # the workers may drop these answers now
                for done in held:
                    done.release()
                held, held_labels = [], 0
    finally:
        on_cancel(None)
        if cancelled() and futures:
            client.cancel(futures)
        futures = None
        if cluster is not None:
            client.close()
            cluster.close()
