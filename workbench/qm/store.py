"""The resumable on-disk label store: one SQLite file (WAL mode), one row per finished batch of labels.

A batch is what one task computed: one label for PySCF levels, whose labels take seconds; for xTB,
whose labels take milliseconds, 64 serially and a task's worth on Dask. Each batch is committed in
its own transaction the moment it is finished, so a job killed at any point loses at most the
calculations that were running; running it again computes only what is missing. A row holds its
labels column by column (:class:`~workbench.qm.label_batch.LabelBatch`): keys and provenance as lines
of text, status, errors, charges and atom counts as JSON, energies, atomic numbers, positions and
forces as little-endian blobs. Nothing is pickled. One insert a batch rather than two a label took the store's time for
2048 xTB labels from 17 to 4 ms, as much as 8% of the xTB calculations' own time before.

A label is keyed by its configuration (atomic numbers, positions rounded to 1e-8 Å, charge,
multiplicity) and its level (:attr:`workbench.qm.level_of_theory.Level.key`: the name plus every setting
that changes the numbers). Failed labels are stored too, with their reason. When a configuration is
labeled again at a level (a failed label retried, an energy upgraded to forces), the later batch's
label wins. The level's row holds its description (program, method, basis, settings); each label
keeps the rest of its provenance (program version, charge, multiplicity, convergence, wall time,
warnings), and :meth:`LabelStore.fetch` joins the two.

Stores written in the earlier layout, one row per label in tables ``labels`` and ``configurations``,
are converted when opened, in one transaction (:mod:`workbench.qm.store_migration`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from .label_batch import BATCH_COLUMNS, LabelBatch, jsonable, label_provenance
from .level_of_theory import Level
from .store_migration import convert_old_layout

__all__ = [
    "STORE_FILE",
    "LabelBatch",
    "LabelStore",
    "configuration_key",
    "configuration_keys",
    "default_cache",
    "label_provenance",
]

STORE_FILE = "labels.sqlite"

# the small columns first: reading the keys and the labels' status need not walk past the blobs
_SCHEMA = """
CREATE TABLE IF NOT EXISTS levels (
    level_key TEXT PRIMARY KEY, fidelity TEXT NOT NULL, program TEXT, description TEXT);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY, level_key TEXT NOT NULL, finished REAL NOT NULL, size INTEGER NOT NULL,
    keys TEXT NOT NULL, labels TEXT NOT NULL, energy BLOB NOT NULL, numbers BLOB NOT NULL,
    positions BLOB NOT NULL, forces BLOB NOT NULL, meta TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS batches_by_level ON batches (level_key, id);
"""


def default_cache() -> Path:
    """Where reference calculations are kept: ``$WORKBENCH_CACHE`` or ``~/.cache/workbench``."""
    return Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "workbench"))


def configuration_key(numbers, positions, charge: int = 0, multiplicity: int | None = None) -> str:
    """A stable identifier of one configuration (positions in Å, compared to 1e-8 Å)."""
    return configuration_keys(numbers, positions, [0], [len(numbers)], [charge], [multiplicity])[0]


def configuration_keys(numbers, positions, starts, stops, charges, multiplicities) -> list[str]:
    """:func:`configuration_key` of configurations in concatenated arrays: configuration ``i`` has
    atoms ``starts[i]:stops[i]`` of ``numbers`` and ``positions`` (Å). The arrays are rounded and
    converted once, not once per configuration (6 µs a label less; xTB labels take ~1 ms)."""
    numbers = memoryview(np.ascontiguousarray(numbers, dtype="<i8")).cast("B")
    # + 0.0 turns -0.0 into 0.0 so that both hash alike
    rounded = np.round(np.asarray(positions, dtype=np.float64), 8) + 0.0
    positions = memoryview(np.ascontiguousarray(rounded, dtype="<f8")).cast("B")
    keys = []
    for lo, hi, charge, multiplicity in zip(
        np.asarray(starts).tolist(), np.asarray(stops).tolist(), charges, multiplicities, strict=True
    ):
        h = hashlib.sha256(numbers[8 * lo : 8 * hi])
        h.update(positions[24 * lo : 24 * hi])
        h.update(f"|{int(charge)}|{multiplicity}".encode())
        keys.append(h.hexdigest()[:32])
    return keys


class LabelStore:
    """Labels on disk. ``path`` is a directory (the file ``labels.sqlite`` inside it is used) or a
    ``.sqlite``/``.db`` file; ``None`` keeps the store in memory (nothing survives the process)."""

    def __init__(self, path: str | Path | None):
        if path is None:
            self.path = None
            target = ":memory:"
        else:
            path = Path(path)
            if path.suffix in (".sqlite", ".db", ".sqlite3"):
                path.parent.mkdir(parents=True, exist_ok=True)
                self.path = path
            else:
                path.mkdir(parents=True, exist_ok=True)
                self.path = path / STORE_FILE
            target = str(self.path)
        self.conn = sqlite3.connect(target, timeout=120.0, isolation_level=None)
        self._registered: set[str] = set()
        # per level key: the last batch read and {config key: (batch id, position, status, has forces)};
        # read on from there, since other processes may write to the same store
        self._index: dict[str, tuple[int, dict]] = {}
        try:
            # for a new file (an existing one keeps its own): a batch of 2048 xTB labels is ~1.5 MB,
            # which takes a third less time to write and to check into the file in 16 KiB pages than in 4 KiB
            self.conn.execute("PRAGMA page_size=16384")
            self.conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed label survives the process being killed; only a power
            # cut can lose the last few, and it can never corrupt the file.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
            convert_old_layout(self.conn, self._insert)
        except (sqlite3.DatabaseError, ValueError, KeyError) as err:
            self.conn.close()
            raise ValueError(f"{target}: not a workbench label store ({err})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<LabelStore {self.path or ':memory:'}>"

    # ----------------------------------------------------------------------------- writing
    def register_level(self, level: Level) -> None:
        if level.key in self._registered:
            return
        self.conn.execute(
            "INSERT OR IGNORE INTO levels VALUES (?, ?, ?, ?)",
            (level.key, level.name, level.program, json.dumps(level.describe(), default=jsonable)),
        )

    def _insert(self, level_key: str, finished: float, batch: LabelBatch) -> None:
        self.conn.execute(
            f"INSERT INTO batches (level_key, finished, size, {BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (level_key, finished, len(batch), *batch.as_row()),
        )

    def put_batch(self, level: Level, batch: LabelBatch) -> None:
        """Write a batch of finished labels at ``level`` in one transaction."""
        if not len(batch):
            return
        level_key = level.key  # computed from the settings on each access
        with self.conn:  # BEGIN ... COMMIT
            self.conn.execute("BEGIN IMMEDIATE")
            self.register_level(level)
            self._insert(level_key, time.time(), batch)
        self._registered.add(level_key)

    def put(self, level: Level, key: str, numbers, positions, charge: int, multiplicity, record: dict) -> None:
        """Write one finished label (a :func:`~workbench.qm.levels.compute_label` result) in one transaction."""
        self.put_many(level, [(key, numbers, positions, charge, multiplicity, record)])

    def put_many(self, level: Level, items) -> None:
        """Write several labels in one transaction: ``items`` of ``(key, numbers, positions, charge,
        multiplicity, record)``, as for :meth:`LabelBatch.from_records`."""
        items = list(items)
        self.put_batch(level, LabelBatch.from_records([it[:5] for it in items], [it[5] for it in items]))

    # ----------------------------------------------------------------------------- reading
    def _level_index(self, level_key: str) -> dict:
        last, index = self._index.get(level_key, (0, {}))
        rows = self.conn.execute(
            "SELECT id, keys, labels FROM batches WHERE level_key = ? AND id > ? ORDER BY id", (level_key, last)
        )
        for batch_id, keys, labels in rows:
            try:
                head = json.loads(labels)
                labels = list(zip(keys.split("\n"), head["status"], head["has_forces"], strict=True))
            except (ValueError, KeyError, TypeError) as err:
                raise self._damaged(batch_id, err) from None
            for j, (key, status, has_forces) in enumerate(labels):
                index[key] = (batch_id, j, status, bool(has_forces))
            last = batch_id
        self._index[level_key] = (last, index)
        return index

    def _batches(self, batch_ids) -> dict[int, LabelBatch]:
        out, batch_ids = {}, sorted(set(batch_ids))
        for start in range(0, len(batch_ids), 500):  # SQLite limits the parameters of a statement
            chunk = batch_ids[start : start + 500]
            sql = f"SELECT id, {BATCH_COLUMNS} FROM batches WHERE id IN ({','.join('?' * len(chunk))})"
            out.update({row[0]: self._batch_of_row(row) for row in self.conn.execute(sql, chunk)})
        return out

    def _batch_of_row(self, row) -> LabelBatch:
        """The batch of a row ``(id, *BATCH_COLUMNS)``; a damaged one is an error naming the file and the batch."""
        try:
            return LabelBatch.from_row(*row[1:])
        except (ValueError, KeyError, TypeError) as err:
            raise self._damaged(row[0], err) from None

    def _damaged(self, batch_id: int, err: Exception) -> ValueError:
        return ValueError(f"{self.path or ':memory:'}: batch {batch_id} of the label store is damaged: {err}")

    def _described(self, level_key: str) -> dict:
        row = self.conn.execute("SELECT description FROM levels WHERE level_key = ?", (level_key,)).fetchone()
        return json.loads(row[0]) if row and row[0] else {}

    def status(self, level: Level, keys) -> dict[str, tuple[str, bool]]:
        """``{config_key: (status, has_forces)}`` for the keys that have a label at ``level``."""
        index = self._level_index(level.key)
        return {key: hit[2:] for key in dict.fromkeys(keys) if (hit := index.get(key)) is not None}

    def batches(self, level: Level | str, keys=None) -> list[tuple[LabelBatch, list[tuple[str, int]]]]:
        """The batches that hold the latest labels at ``level`` (a Level or its key) of ``keys`` (all
        when None), each with ``[(config key, position in the batch), ...]``; keys without a label
        are left out. For reading many labels at once, column by column."""
        index = self._level_index(level if isinstance(level, str) else level.key)
        picks: dict[int, list] = {}
        for key in index if keys is None else dict.fromkeys(keys):
            hit = index.get(key)
            if hit is not None:
                picks.setdefault(hit[0], []).append((key, hit[1]))
        return [(batch, picks[batch_id]) for batch_id, batch in self._batches(picks).items()]

    def fetch(self, level: Level, keys, meta: bool = True) -> dict[str, dict]:
        """``{config_key: {"status", "energy" (eV), "forces" ((n, 3) eV/Å or None), "error", "meta"}}``
        (``meta``: the label's provenance as ``compute_label`` gave it; an empty dict when not asked for)."""
        described = self._described(level.key) if meta else None
        out = {}
        for batch, picks in self.batches(level, keys):
            out.update(batch.records(picks, described))
        return out

    def table(self, level: Level | None = None, meta: bool = False) -> pd.DataFrame:
        """One row per label (the latest of each configuration at each level): ``config_key``,
        ``fidelity``, ``level_key``, ``status``, ``energy`` (eV), ``has_forces``, ``error`` and, when
        asked for, ``meta`` (the label's whole provenance)."""
        levels = self.conn.execute("SELECT level_key, fidelity FROM levels ORDER BY fidelity, level_key").fetchall()
        rows = []
        for level_key, fidelity in levels:
            if level is not None and level_key != level.key:
                continue
            described = self._described(level_key) if meta else None
            for batch, picks in self.batches(level_key):
                for key, rec in batch.records(picks, described).items():
                    row = [key, fidelity, level_key, rec["status"], rec["energy"], rec["forces"] is not None]
                    rows.append([*row, rec["error"], *([rec["meta"]] if meta else [])])
        columns = ["config_key", "fidelity", "level_key", "status", "energy", "has_forces", "error"]
        return pd.DataFrame(rows, columns=columns + (["meta"] if meta else []))

    def summary(self) -> pd.DataFrame:
        """One row per level: fidelity, level key, labels done (with forces) and failed."""
        rows = []
        for level_key, fidelity in self.conn.execute("SELECT level_key, fidelity FROM levels ORDER BY fidelity"):
            labels = self._level_index(level_key).values()
            done = [has_forces for _, _, status, has_forces in labels if status == "done"]
            failed = sum(status == "failed" for _, _, status, _ in labels)
            rows.append([fidelity, level_key, len(done), sum(done), failed])
        return pd.DataFrame(rows, columns=["fidelity", "level_key", "done", "with_forces", "failed"])

    def failures(self, level: Level | None = None) -> pd.DataFrame:
        """Failed labels: configuration key, fidelity and reason."""
        table = self.table(level)
        failed = table[table["status"] == "failed"]
        return failed[["config_key", "fidelity", "error"]].reset_index(drop=True)

    def to_dataset(self) -> Dataset:
        """Every configuration in the store with every finished label, as a Dataset (eV, Å, eV/Å).

        When one fidelity was computed with several settings, the most recently finished label wins.
        """
        fidelity_of = dict(self.conn.execute("SELECT level_key, fidelity FROM levels").fetchall())
        records: dict[str, dict] = {}
        latest: dict[tuple[str, str], tuple] = {}  # (level key, config key) -> its latest label
        for batch_id, level_key, *columns in self.conn.execute(
            f"SELECT id, level_key, {BATCH_COLUMNS} FROM batches ORDER BY id"
        ):
            batch = self._batch_of_row((batch_id, *columns))
            atoms, with_forces = batch.atom_starts(), batch.force_starts()
            for j, key in enumerate(batch.keys):
                if key not in records:
                    records[key] = {
                        "numbers": batch.numbers[atoms[j] : atoms[j + 1]],
                        "positions": batch.positions[atoms[j] : atoms[j + 1]],
                        "energy": {},
                        "forces": {},
                        "info": {
                            "config_key": key,
                            "charge": batch.charges[j],
                            "multiplicity": batch.multiplicities[j],
                        },
                    }
                forces = batch.forces[with_forces[j] : with_forces[j + 1]] if batch.has_forces[j] else None
                latest[(level_key, key)] = (batch_id, batch.status[j], float(batch.energy[j]), forces)
        # in the order they were finished, so that the latest of one fidelity's several levels wins
        for (level_key, key), (_, status, energy, forces) in sorted(latest.items(), key=lambda kv: kv[1][0]):
            if status != "done":
                continue
            rec, fidelity = records[key], fidelity_of[level_key]
            rec["energy"][fidelity] = energy
            if forces is not None:
                rec["forces"][fidelity] = forces
            else:
                rec["forces"].pop(fidelity, None)
        return Dataset.from_configurations(list(records.values()))
