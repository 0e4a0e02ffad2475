"""GFN1-xTB and GFN2-xTB single points through tblite's Python API.

GFN2-xTB: C. Bannwarth, S. Ehlert, S. Grimme, J. Chem. Theory Comput. 15, 1652 (2019).
GFN1-xTB: S. Grimme, C. Bannwarth, P. Shushkov, J. Chem. Theory Comput. 13, 1989 (2017).
"""

from __future__ import annotations

import atexit
import threading

import numpy as np
from ase.units import Bohr, Hartree, kB

from .level_of_theory import XTB_METHODS, Level, NotConverged

# One tblite calculator per thread, reused while consecutive configurations have the same atoms,
# charge, spin and settings: setting up the parametrisation costs 4-9% of an ethanol single point.
# Each single point still starts from a fresh guess, so the numbers are those of a new calculator
# (energies bit for bit, gradients to 1e-16 Eh/bohr). Keyed by thread id in a module dict rather
# than a threading.local, so that all of them can be released at exit, before tblite's own module
# is torn down (its finalisers would fail then).
_cache: dict[int, tuple] = {}


@atexit.register
def _release_calculators() -> None:
    _cache.clear()


def _calculator(numbers, positions_bohr, level: Level, charge: int, spin: int):
    from tblite.interface import Calculator

    s = level.settings
    thread = threading.get_ident()
    # compared by value, not by Level.key, which hashes the settings on every access
    key = (level.method, np.asarray(numbers).tobytes(), int(charge), int(spin), dict(s))
    cached = _cache.get(thread)
    if cached is not None and cached[1] == key:
        cached[0].update(positions_bohr)
        return cached[0]
    # a failure below must not leave a calculator for other atoms behind; threads that have ended
    # leave theirs behind, so they are dropped here
    alive = {t.ident for t in threading.enumerate()}
    for ident in [i for i in _cache if i == thread or i not in alive]:
        _cache.pop(ident, None)
    calc = Calculator(XTB_METHODS[level.method], np.asarray(numbers), positions_bohr, charge, spin)
    calc.set("verbosity", 0)
    calc.set("accuracy", float(s["accuracy"]))
    calc.set("temperature", float(s["electronic_temperature"]) * kB / Hartree)
    calc.set("max-iter", int(s["max_iterations"]))
    _cache[thread] = (calc, key)
    return calc


def run_xtb(numbers, positions, level: Level, want_forces: bool, charge: int, spin: int):
    """Energy (eV), forces (eV/Å or None) and a convergence record for one configuration (Å)."""
    calc = _calculator(numbers, np.asarray(positions, dtype=np.float64) / Bohr, level, charge, spin)
    try:
        res = calc.singlepoint()
    except RuntimeError as err:
        _cache.pop(threading.get_ident(), None)  # start the next configuration from a clean calculator
        text = str(err)
        if "not converged" in text.lower():
            raise NotConverged(f"xTB SCC did not converge: {text}", {"scc_converged": False}) from None
        raise
    energy = float(res["energy"]) * Hartree
    forces = -np.asarray(res["gradient"]) * (Hartree / Bohr) if want_forces else None
    return energy, forces, {"scc_converged": True}
