"""Stores written in the earlier layout, one row per label in tables ``labels`` and ``configurations``,
become the batch layout of :mod:`workbench.qm.store` when opened, in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import numpy as np

from .label_batch import LabelBatch


def has_old_layout(conn: sqlite3.Connection) -> bool:
    """Whether the store still has the earlier layout's ``labels`` table."""
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'labels'"
    return conn.execute(sql).fetchone() is not None


def convert_old_layout(conn: sqlite3.Connection, insert: Callable[[str, float, LabelBatch], None]) -> None:
    """The earlier layout's labels (one row each, geometries in ``configurations``) become one batch
    per level, handed to ``insert(level_key, finished, batch)``, in one transaction that also drops the
    old tables: a store is never half converted. Nothing happens to a store in the current layout."""
    if not has_old_layout(conn):
        return
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        if not has_old_layout(conn):  # converted by another process meanwhile
            return
        rows = conn.execute(
            "SELECT b.level_key, b.config_key, c.numbers, c.positions, c.charge, c.multiplicity, b.status, "
            "b.has_forces, b.energy, b.forces, b.error, b.meta, b.finished "
            "FROM labels b JOIN configurations c ON c.key = b.config_key ORDER BY b.finished"
        ).fetchall()
        by_level: dict[str, list] = {}
        for row in rows:
            by_level.setdefault(row[0], []).append(row[1:])
        for level_key, group in by_level.items():
            items = [(k, np.frombuffer(z, "<i8"), np.frombuffer(r, "<f8"), c, m) for k, z, r, c, m, *_ in group]
            records = [
                {
                    "status": status,
                    "energy": energy,
                    "forces": np.frombuffer(forces, "<f8") if has_forces and forces is not None else None,
                    "error": error,
                    "meta_json": meta or "{}",
                }
                for *_, status, has_forces, energy, forces, error, meta, _ in group
            ]
            finished = max(row[-1] or 0.0 for row in group)
            insert(level_key, finished, LabelBatch.from_records(items, records))
        conn.execute("DROP TABLE labels")
        conn.execute("DROP TABLE configurations")
