"""The resumable on-disk label store: one SQLite file (WAL mode), one row per finished label.

Every label is committed in its own transaction the moment it is finished, so a job killed at any
point loses at most the calculations that were running; running it again computes only what is
missing. Nothing is pickled: geometries and forces are little-endian float64 blobs, metadata is
JSON.

A label is keyed by its configuration (atomic numbers, positions rounded to 1e-8 Å, charge,
multiplicity) and its level (:attr:`workbench.qm.levels.Level.key`: the name plus every setting
that changes the numbers). Failed labels are stored too, with their reason. The level's row holds
its description (program, method, basis, settings); each label's row holds the rest of its
provenance (program version, charge, multiplicity, convergence, wall time, warnings), and
:meth:`LabelStore.fetch` joins the two.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .levels import RUN_ONLY, Level

STORE_FILE = "labels.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS configurations (
    key TEXT PRIMARY KEY, numbers BLOB NOT NULL, positions BLOB NOT NULL, charge INTEGER, multiplicity INTEGER);
CREATE TABLE IF NOT EXISTS levels (
    level_key TEXT PRIMARY KEY, fidelity TEXT NOT NULL, program TEXT, description TEXT);
CREATE TABLE IF NOT EXISTS labels (
    config_key TEXT NOT NULL, level_key TEXT NOT NULL, status TEXT NOT NULL, has_forces INTEGER NOT NULL,
    energy REAL, forces BLOB, error TEXT, meta TEXT, finished REAL,
    PRIMARY KEY (config_key, level_key));
"""


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


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


#: Provenance entries that a label's level key fixes; the level's row keeps them once.
_FIXED_BY_LEVEL = ("fidelity", "program", "method", "basis")


def label_provenance(meta: dict) -> str:
    """The JSON a label's row keeps of its provenance (``compute_label``'s ``meta``): all but what
    its level key fixes, which the level's row holds. Settings that do not change the numbers
    (``RUN_ONLY``, e.g. PySCF's memory limit) may differ between runs of one level, so they stay.
    About 150 bytes for an xTB label instead of 390: the store and the Dask answers carry it for
    every label of millisecond calculations."""
    own = {k: v for k, v in meta.items() if k not in _FIXED_BY_LEVEL and k != "settings"}
    run_only = {k: v for k, v in meta.get("settings", {}).items() if k in RUN_ONLY}
    if run_only:
        own["run_settings"] = run_only
    return json.dumps(own, default=_json_default)


def _joined_provenance(level_description: dict, own: dict) -> dict:
    """A label's whole provenance from its level's description and its own row (which, in stores
    written before the split, holds the whole record and so wins)."""
    out = {**level_description, **own}
    settings = {**level_description.get("settings", {}), **own.get("settings", {})}
    out["settings"] = {**settings, **out.pop("run_settings", {})}
    return out


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
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed label survives the process being killed; only a power
            # cut can lose the last few, and it can never corrupt the file.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
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
        self._registered.add(level.key)
        self.conn.execute(
            "INSERT OR IGNORE INTO levels VALUES (?, ?, ?, ?)",
            (level.key, level.name, level.program, json.dumps(level.describe(), default=_json_default)),
        )

    def put(self, level: Level, key: str, numbers, positions, charge: int, multiplicity, record: dict) -> None:
        """Write one finished label (a :func:`~workbench.qm.levels.compute_label` result) in one transaction."""
        self.put_many(level, [(key, numbers, positions, charge, multiplicity, record)])

    def put_many(self, level: Level, items) -> None:
        """Write several labels in one transaction: ``items`` of ``(key, numbers, positions, charge,
        multiplicity, record)``; a record's provenance is its ``meta`` dict, or ``meta_json``, the
        :func:`label_provenance` of that dict (as it comes back from a Dask worker)."""
        now = time.time()
        level_key = level.key  # computed from the settings on each access
        conf_rows, label_rows = [], []
        for key, numbers, positions, charge, multiplicity, rec in items:
            conf_rows.append(
                (
                    key,
                    np.ascontiguousarray(numbers, dtype="<i8").tobytes(),
                    np.ascontiguousarray(positions, dtype="<f8").tobytes(),
                    int(charge),
                    multiplicity,
                )
            )
            forces = rec.get("forces")
            label_rows.append(
                (
                    key,
                    level_key,
                    rec["status"],
                    int(forces is not None),
                    rec.get("energy"),
                    None if forces is None else np.ascontiguousarray(forces, dtype="<f8").tobytes(),
                    rec.get("error"),
                    rec["meta_json"] if "meta_json" in rec else label_provenance(rec.get("meta", {})),
                    now,
                )
            )
        with self.conn:  # BEGIN ... COMMIT
            self.conn.execute("BEGIN IMMEDIATE")
            self.register_level(level)
            self.conn.executemany("INSERT OR IGNORE INTO configurations VALUES (?, ?, ?, ?, ?)", conf_rows)
            self.conn.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", label_rows)

    # ----------------------------------------------------------------------------- reading
    def _label_rows(self, columns: str, level: Level, keys):
        """Rows of ``labels`` at ``level`` for these configuration keys (in chunks: SQLite limits parameters)."""
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT config_key, {columns} FROM labels WHERE level_key = ? AND config_key IN ({marks})"
            yield from self.conn.execute(sql, [level.key, *chunk])

    def status(self, level: Level, keys) -> dict[str, tuple[str, bool]]:
        """``{config_key: (status, has_forces)}`` for the keys that have a row at ``level``."""
        return {k: (s, bool(f)) for k, s, f in self._label_rows("status, has_forces", level, keys)}

    def fetch(self, level: Level, keys, meta: bool = True) -> dict[str, dict]:
        """``{config_key: {"status", "energy" (eV), "forces" ((n, 3) eV/Å or None), "error", "meta"}}``
        (``meta``: the label's provenance as ``compute_label`` gave it; an empty dict when not asked for)."""
        out = {}
        columns = "status, energy, forces, error, " + ("meta" if meta else "NULL")
        described = None
        if meta:
            row = self.conn.execute("SELECT description FROM levels WHERE level_key = ?", (level.key,)).fetchone()
            described = json.loads(row[0]) if row and row[0] else {}
        for key, status, energy, forces, error, meta_json in self._label_rows(columns, level, keys):
            out[key] = {
                "status": status,
                "energy": energy,
                "forces": None if forces is None else np.frombuffer(forces, dtype="<f8").reshape(-1, 3).copy(),
                "error": error,
                "meta": _joined_provenance(described, json.loads(meta_json)) if meta else {},
            }
        return out

    def summary(self) -> pd.DataFrame:
        """One row per level: fidelity, level key, labels done (with forces) and failed."""
        rows = self.conn.execute(
            "SELECT l.fidelity, l.level_key, "
            "SUM(b.status = 'done'), SUM(b.status = 'done' AND b.has_forces), SUM(b.status = 'failed') "
            "FROM levels l LEFT JOIN labels b ON b.level_key = l.level_key GROUP BY l.level_key ORDER BY l.fidelity"
        ).fetchall()
        cols = ["fidelity", "level_key", "done", "with_forces", "failed"]
        return pd.DataFrame([[a, b, int(c or 0), int(d or 0), int(e or 0)] for a, b, c, d, e in rows], columns=cols)

    def failures(self, level: Level | None = None) -> pd.DataFrame:
        """Failed labels: configuration key, fidelity and reason."""
        sql = (
            "SELECT b.config_key, l.fidelity, b.error FROM labels b JOIN levels l ON l.level_key = b.level_key "
            "WHERE b.status = 'failed'"
        )
        args: list = []
        if level is not None:
            sql += " AND b.level_key = ?"
            args.append(level.key)
        return pd.DataFrame(self.conn.execute(sql, args).fetchall(), columns=["config_key", "fidelity", "error"])

    def to_dataset(self):
        """Every configuration in the store with every finished label, as a Dataset (eV, Å, eV/Å).

        When one fidelity was computed with several settings, the most recently finished label wins.
        """
        from ..data.dataset import Dataset

        confs = self.conn.execute("SELECT key, numbers, positions, charge, multiplicity FROM configurations").fetchall()
        index = {row[0]: i for i, row in enumerate(confs)}
        records = [
            {
                "numbers": np.frombuffer(z, dtype="<i8"),
                "positions": np.frombuffer(r, dtype="<f8").reshape(-1, 3),
                "energy": {},
                "forces": {},
                "info": {"config_key": key, "charge": charge, "multiplicity": mult},
            }
            for key, z, r, charge, mult in confs
        ]
        rows = self.conn.execute(
            "SELECT b.config_key, l.fidelity, b.energy, b.forces FROM labels b "
            "JOIN levels l ON l.level_key = b.level_key WHERE b.status = 'done' ORDER BY b.finished"
        )
        for key, fidelity, energy, forces in rows:
            rec = records[index[key]]
            rec["energy"][fidelity] = energy
            if forces is not None:
                rec["forces"][fidelity] = np.frombuffer(forces, dtype="<f8").reshape(-1, 3)
        return Dataset.from_configurations(records)
