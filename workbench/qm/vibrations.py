"""Harmonic frequencies at a level of theory, relaxed at that level first, kept on disk.

The Hessian is PySCF's analytic one for HF and DFT or central differences of the level's gradients
(:func:`workbench.qm.hessian`); the relaxed geometry and the Hessian are saved as ``.npz`` (arrays only)
under the cache, keyed by the starting geometry, the level with all its settings, the method and the force
threshold, so asking again costs nothing. Units: eV/Å^2 for Hessians, cm^-1 for wavenumbers, Å.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from ase import Atoms

from ..harmonic import VibrationsResult, harmonic_analysis, minimize
from .hessian import hessian, resolve_method
from .level_of_theory import Level
from .qm_calculator import QMCalculator
from .store import configuration_key, default_cache


def _cache_file(cache: Path, atoms: Atoms, level: Level, method: str, relaxed: bool, fmax: float) -> Path:
    h = hashlib.sha256(f"{level.key}|{method}|{relaxed}|{fmax:g}".encode()).hexdigest()[:16]
    key = configuration_key(atoms.numbers, atoms.positions, level.settings["charge"], level.settings["multiplicity"])
    return cache / "hessians" / f"{key}-{h}.npz"


def reference_vibrations(
    atoms: Atoms,
    level,
    method: str = "auto",
    relax: bool = True,
    fmax: float = 1e-3,
    steps: int = 200,
    delta: float = 0.005,
    cache: str | Path | None | bool = None,
) -> VibrationsResult:
    """Harmonic frequencies at a level of theory, relaxed at that level first.

    ``method``: ``"analytic"`` (PySCF's HF/DFT Hessian), ``"finite-difference"`` (central differences of the QM
    engine's gradients, step ``delta`` Å: 6n gradients), or ``"auto"`` (analytic where PySCF has it). The relaxed
    geometry and the Hessian are saved as ``.npz`` (arrays only) under ``cache`` (a directory; None for
    :func:`~workbench.qm.store.default_cache`; False for no cache), keyed by the starting geometry, the level's
    settings, the method and ``fmax``, so asking again costs nothing.
    """
    level = level if isinstance(level, Level) else Level(level)
    method = resolve_method(level, method)  # resolved before the cache key is made
    path = None
    if cache is not False:
        root = Path(default_cache() if cache in (None, True) else cache)
        path = _cache_file(root, atoms, level, method, relax, fmax)
        if path.is_file():
            with np.load(path, allow_pickle=False) as saved:
                geometry = Atoms(numbers=saved["numbers"], positions=saved["positions"])
                return harmonic_analysis(geometry, saved["hessian"], level.name, float(saved["max_force"]))
    geometry, max_force = minimize(atoms, QMCalculator(level), fmax, steps if relax else 0)
    hess = hessian(geometry, level, method, delta)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, numbers=geometry.numbers, positions=geometry.positions, hessian=hess, max_force=max_force)
        tmp.replace(path)
    return harmonic_analysis(geometry, hess, level.name, max_force)
