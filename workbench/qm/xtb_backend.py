"""GFN1-xTB and GFN2-xTB single points through tblite's Python API.

GFN2-xTB: C. Bannwarth, S. Ehlert, S. Grimme, J. Chem. Theory Comput. 15, 1652 (2019).
GFN1-xTB: S. Grimme, C. Bannwarth, P. Shushkov, J. Chem. Theory Comput. 13, 1989 (2017).
"""

from __future__ import annotations

import numpy as np
from ase.units import Bohr, Hartree, kB

from .levels import XTB_METHODS, Level, NotConverged


def run_xtb(numbers, positions, level: Level, want_forces: bool, charge: int, spin: int):
    """Energy (eV), forces (eV/Å or None) and a convergence record for one configuration (Å)."""
    from tblite.interface import Calculator

    s = level.settings
    calc = Calculator(XTB_METHODS[level.method], np.asarray(numbers), np.asarray(positions) / Bohr, charge, spin)
    calc.set("verbosity", 0)
    calc.set("accuracy", float(s["accuracy"]))
    calc.set("temperature", float(s["electronic_temperature"]) * kB / Hartree)
    calc.set("max-iter", int(s["max_iterations"]))
    try:
        res = calc.singlepoint()
    except RuntimeError as err:
        text = str(err)
        if "not converged" in text.lower():
            raise NotConverged(f"xTB SCC did not converge: {text}", {"scc_converged": False}) from None
        raise
    energy = float(res["energy"]) * Hartree
    forces = -np.asarray(res["gradient"]) * (Hartree / Bohr) if want_forces else None
    return energy, forces, {"scc_converged": True}
