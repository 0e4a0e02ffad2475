"""Running a level of theory: single points through the program that the level names.

:func:`compute_label` runs one single point and returns a plain dict (picklable, JSON-friendly
apart from the force array): ``status`` (``"done"`` or ``"failed"``), ``energy`` (eV), ``forces``
(eV/Å), ``error`` (the reason for a failure) and ``meta`` (program, version, method, basis,
settings, convergence, wall time). A calculation that does not converge is a failure with its
reason, never a number.

The level itself (:class:`Level`, its settings and checks) is :mod:`workbench.qm.level_of_theory`;
its names are importable from here as well.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from .level_of_theory import (
    CC_GRADIENT_WARNING,
    RUN_ONLY,
    WAVEFUNCTION_METHODS,
    XTB_METHODS,
    Level,
    NotConverged,
    program_version,
    spin_of,
)
from .pyscf_backend import run_pyscf
from .xtb_backend import run_xtb

__all__ = [
    "CC_GRADIENT_WARNING",
    "RUN_ONLY",
    "WAVEFUNCTION_METHODS",
    "XTB_METHODS",
    "Level",
    "NotConverged",
    "compute_label",
    "compute_labels",
    "program_version",
    "spin_of",
]


def compute_label(
    numbers,
    positions,
    level: Level | str,
    properties=("energy", "forces"),
    charge: int | None = None,
    multiplicity: int | None = None,
) -> dict:
    """One single point: energy (eV) and, if asked for, forces (eV/Å) at ``level``.

    ``positions`` in Å. ``charge``/``multiplicity`` override the level's settings for this
    configuration. Never raises for a calculation that fails: the result has ``status="failed"``
    and the reason in ``error``.
    """
    level = level if isinstance(level, Level) else Level(level)
    return compute_labels([(numbers, positions, charge, multiplicity)], level, properties)[0]


def compute_labels(items, level: Level, properties=("energy", "forces")) -> list[dict]:
    """:func:`compute_label` for ``items`` of ``(numbers, positions, charge, multiplicity)``
    (charge and multiplicity may be None: the level's). The single points run back to back and
    the records are built afterwards: Python between two calls of a QM program costs about three
    times what it costs in a row, since each call evicts it from the caches (measured with xTB)."""
    want_forces = "forces" in properties
    runs = []
    # one capture for all: each single point takes the warnings it added
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for numbers, positions, charge, multiplicity in items:
            charge = level.settings["charge"] if charge is None else int(charge)
            multiplicity = level.settings["multiplicity"] if multiplicity is None else int(multiplicity)
            start = len(caught)
            run = _single_point(numbers, positions, level, want_forces, charge, multiplicity)
            runs.append((charge, multiplicity, (*run, caught[start:])))
    described = level.describe()
    asked = ["energy", "forces"] if want_forces else ["energy"]
    return [_as_record(described, asked, charge, mult, *run) for charge, mult, run in runs]


def _single_point(numbers, positions, level: Level, want_forces: bool, charge: int, multiplicity):
    """The program call with its failure guard: (energy, forces, convergence, error, wall time (s))."""
    numbers = np.asarray(numbers, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.float64)
    start = time.perf_counter()
    try:
        spin = spin_of(numbers, charge, multiplicity)
        if level.program == "tblite":
            energy, forces, convergence = run_xtb(numbers, positions, level, want_forces, charge, spin)
        else:
            energy, forces, convergence = run_pyscf(numbers, positions, level, want_forces, charge, spin)
        error = None
    except NotConverged as err:
        energy, forces, convergence, error = None, None, err.convergence, str(err)
    except Exception as err:  # any program error becomes a recorded failure with its reason
        energy, forces, convergence, error = None, None, {}, f"{type(err).__name__}: {err}"
    return energy, forces, convergence, error, time.perf_counter() - start


def _as_record(described: dict, asked: list, charge, multiplicity, energy, forces, convergence, error, wall, caught):
    """A :func:`compute_label` result from a :func:`_single_point` and the warnings it raised
    (``described``: the level's :meth:`Level.describe`, copied)."""
    meta = {**described, "settings": dict(described["settings"]), "properties": list(asked)}
    meta["charge"], meta["multiplicity"] = charge, multiplicity
    meta["convergence"] = convergence
    meta["wall_time_s"] = round(wall, 6)
    meta["warnings"] = sorted({str(w.message)[:300] for w in caught})
    if error is None and not math.isfinite(energy):
        error = f"the program returned a non-finite energy ({energy})"
    if error is None and forces is not None and not np.isfinite(forces).all():
        error = "the program returned non-finite forces"
    if error is not None:
        return {"status": "failed", "energy": None, "forces": None, "error": error, "meta": meta}
    return {"status": "done", "energy": float(energy), "forces": forces, "error": None, "meta": meta}
