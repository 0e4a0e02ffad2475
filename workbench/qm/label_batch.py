"""A batch of labels at one level, column by column, as one row of the label store keeps it and
a Dask worker answers with it (:class:`LabelBatch`), and the provenance each label keeps
(:func:`label_provenance`).

Keys and provenance are lines of text, status, errors, charges and atom counts JSON, energies,
atomic numbers, positions and forces little-endian blobs: nothing is pickled, since a batch may
come from the workers of a cluster the job does not own.
"""

from __future__ import annotations

import json

import numpy as np

from .level_of_theory import RUN_ONLY

#: A store row's columns for one batch, in the order of :meth:`LabelBatch.as_row`.
BATCH_COLUMNS = "keys, labels, energy, numbers, positions, forces, meta"


def jsonable(value):
    """``json.dumps``'s ``default=`` for NumPy scalars and arrays (anything else as its text)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


#: One encoder for every label (``json.dumps`` with ``default=`` builds a new one on each call).
_PROVENANCE_JSON = json.JSONEncoder(default=jsonable)

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
    return _PROVENANCE_JSON.encode(own)


def _joined_provenance(level_description: dict, own: dict) -> dict:
    """A label's whole provenance from its level's description and its own row (which, in stores
    written before the split, holds the whole record and so wins)."""
    out = {**level_description, **own}
    settings = {**level_description.get("settings", {}), **own.get("settings", {})}
    out["settings"] = {**settings, **out.pop("run_settings", {})}
    return out


class LabelBatch:
    """Labels at one level, column by column, as one row of the store holds them.

    Per label: ``keys``, ``charges``, ``multiplicities``, ``status`` (``"done"`` or ``"failed"``),
    ``errors`` (the reason, or None) and ``meta`` (each label's :func:`label_provenance` JSON text),
    lists; ``n_atoms``, ``energy`` (eV, NaN where failed) and ``has_forces``, arrays. Per atom:
    ``numbers`` and ``positions`` (Å) of every label, and ``forces`` (eV/Å) of the labels that have
    them. The columns are checked against each other, since a batch may come from another process.
    """

    def __init__(
        self,
        keys,
        n_atoms,
        numbers,
        positions,
        charges,
        multiplicities,
        status,
        errors,
        energy,
        has_forces,
        forces,
        meta,
    ):
        self.keys, self.charges, self.multiplicities = list(keys), list(charges), list(multiplicities)
        self.status, self.errors, self.meta = list(status), list(errors), list(meta)
        self.n_atoms = np.asarray(n_atoms, dtype=np.int64).reshape(-1)
        self.numbers = np.asarray(numbers, dtype="<i8").reshape(-1)
        self.positions = np.asarray(positions, dtype="<f8").reshape(-1, 3)
        self.energy = np.asarray(energy, dtype="<f8").reshape(-1)
        self.has_forces = np.asarray(has_forces, dtype=bool).reshape(-1)
        self.forces = np.asarray(forces, dtype="<f8").reshape(-1, 3)
        self._check()

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"<LabelBatch {len(self)} labels, {self.status.count('failed')} failed>"

    def _check(self) -> None:
        n = len(self.keys)
        per_label = {
            "atom counts": len(self.n_atoms),
            "charges": len(self.charges),
            "multiplicities": len(self.multiplicities),
            "statuses": len(self.status),
            "errors": len(self.errors),
            "energies": len(self.energy),
            "force flags": len(self.has_forces),
            "provenance records": len(self.meta),
        }
        wrong = [f"{m} {name}" for name, m in per_label.items() if m != n]
        if wrong:
            raise ValueError(f"a batch of {n} labels has {', '.join(wrong)}")
        atoms = int(self.n_atoms.sum())
        if len(self.numbers) != atoms or len(self.positions) != atoms:
            raise ValueError(
                f"a batch of {atoms} atoms has {len(self.numbers)} atomic numbers and {len(self.positions)} positions"
            )
        with_forces = int(self.n_atoms[self.has_forces].sum())
        if len(self.forces) != with_forces:
            raise ValueError(
                f"a batch has forces for {len(self.forces)} atoms where its labels with forces have {with_forces}"
            )
        odd = set(self.status) - {"done", "failed"}
        if odd:
            raise ValueError(f"a batch has labels of unknown status {sorted(odd)}")
        # keys and provenance are kept one per line
        if "\n".join(self.keys).count("\n") != max(n - 1, 0) or "\n".join(self.meta).count("\n") != max(n - 1, 0):
            raise ValueError("a batch has a configuration key or provenance record with a line break")

    @classmethod
    def from_records(cls, items, records) -> LabelBatch:
        """From ``items`` of ``(key, numbers, positions, charge, multiplicity)`` and their
        :func:`~workbench.qm.levels.compute_label` records (provenance as ``meta``, or as
        ``meta_json``, its :func:`label_provenance`)."""
        forces = [np.asarray(rec["forces"], "<f8").reshape(-1, 3) for rec in records if rec.get("forces") is not None]
        return cls(
            keys=[it[0] for it in items],
            n_atoms=[len(it[1]) for it in items],
            numbers=np.concatenate([np.asarray(it[1], "<i8").reshape(-1) for it in items]) if items else [],
            positions=np.concatenate([np.asarray(it[2], "<f8").reshape(-1, 3) for it in items]) if items else [],
            charges=[int(it[3]) for it in items],
            multiplicities=[None if it[4] is None else int(it[4]) for it in items],
            status=[rec["status"] for rec in records],
            errors=[rec.get("error") for rec in records],
            energy=[np.nan if rec.get("energy") is None else rec["energy"] for rec in records],
            has_forces=[rec.get("forces") is not None for rec in records],
            forces=np.concatenate(forces) if forces else [],
            meta=[rec["meta_json"] if "meta_json" in rec else label_provenance(rec.get("meta", {})) for rec in records],
        )

    def as_row(self) -> tuple:
        """This batch as the store's columns :data:`BATCH_COLUMNS`."""
        head = {
            "n_atoms": self.n_atoms.tolist(),
            "charge": self.charges,
            "multiplicity": self.multiplicities,
            "status": self.status,
            "error": self.errors,
            "has_forces": self.has_forces.astype(int).tolist(),
        }
        return (
            "\n".join(self.keys),
            json.dumps(head),
            self.energy.tobytes(),
            self.numbers.tobytes(),
            self.positions.tobytes(),
            self.forces.tobytes(),
            "\n".join(self.meta),
        )

    @classmethod
    def from_bytes(cls, keys: list, head: dict, energy, numbers, positions, forces, meta: list) -> LabelBatch:
        """From the per-label lists of ``head`` (``n_atoms``, ``charge``, ``multiplicity``, ``status``,
        ``error``, ``has_forces``) and the arrays' little-endian bytes, as a store row or a Dask answer has them."""
        return cls(
            keys=keys,
            n_atoms=head["n_atoms"],
            numbers=np.frombuffer(numbers, "<i8"),
            positions=np.frombuffer(positions, "<f8"),
            charges=head["charge"],
            multiplicities=head["multiplicity"],
            status=head["status"],
            errors=head["error"],
            energy=np.frombuffer(energy, "<f8"),
            has_forces=head["has_forces"],
            forces=np.frombuffer(forces, "<f8"),
            meta=meta,
        )

    @classmethod
    def from_row(cls, keys: str, labels: str, energy, numbers, positions, forces, meta: str) -> LabelBatch:
        """From a store row's :data:`BATCH_COLUMNS`."""
        keys = keys.split("\n") if keys else []
        meta = meta.split("\n") if keys else []
        return cls.from_bytes(keys, json.loads(labels), energy, numbers, positions, forces, meta)

    def atom_starts(self) -> list[int]:
        """Where each label's atoms start in ``numbers`` and ``positions`` (one more: the end)."""
        return [0, *np.cumsum(self.n_atoms).tolist()]

    def force_starts(self) -> list[int]:
        """Where each label's forces start in ``forces`` (one more: the end); empty for a label without."""
        return [0, *np.cumsum(self.n_atoms * self.has_forces).tolist()]

    def records(self, picks, described: dict | None) -> dict[str, dict]:
        """``{key: record}`` for ``picks`` of ``(key, position in the batch)``, as :meth:`LabelStore.fetch`
        gives them; the provenance joined with the level's ``described``, or ``{}`` when None."""
        starts, forces = self.force_starts(), self.forces.copy()  # one copy; each label's forces are a view
        energy = self.energy.tolist()
        out = {}
        for key, j in picks:
            done = self.status[j] == "done"
            out[key] = {
                "status": self.status[j],
                "energy": energy[j] if done else None,
                "forces": forces[starts[j] : starts[j + 1]] if self.has_forces[j] else None,
                "error": self.errors[j],
                "meta": {} if described is None else _joined_provenance(described, json.loads(self.meta[j])),
            }
        return out
