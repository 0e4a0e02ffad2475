"""The unit of labeling work: a chunk of configurations computed back to back into one
:class:`~workbench.qm.store.LabelBatch`, and how many configurations make a chunk.

Both ways of running a labeling job use it: in the job's own process
(:class:`~workbench.qm.labeling_job.LabelJob`) and on Dask workers (:mod:`workbench.qm.dask_backend`).
"""

from __future__ import annotations

import numpy as np

from .label_batch import LabelBatch
from .level_of_theory import Level
from .levels import compute_labels


def default_chunk_size(level: Level, n_items: int = 0, workers: int = 1) -> int:
    """Labels per task (and per store transaction): one for PySCF levels, so each is on disk the
    moment it is done. For xTB, whose labels take milliseconds: 64 serially (``n_items=0``), so that
    a commit per label does not cost more than the work; on Dask, a ``workers + 1``-th of the
    ``n_items`` still to submit, 128 to 2048, so that a worker that finishes first still finds work,
    and the last tasks are small, while each task stays long against its cost in Dask (~4 ms of
    CPU in the job's process, whose messages pass between the job, the scheduler and the worker:
    a tenth of a second of xTB at least)."""
    if level.program != "tblite":
        return 1
    if n_items <= 0:
        return 64
    return int(np.clip(n_items // (max(workers, 1) + 1), 128, 2048))


def compute_chunk(items, level: Level, properties) -> LabelBatch:
    """``items`` of ``(key, numbers, positions, charge, multiplicity)`` computed at ``level``, as one
    batch (run in the job's process or on a worker)."""
    records = compute_labels([(z, r, c, m) for _, z, r, c, m in items], level, properties)
    return LabelBatch.from_records(items, records)
