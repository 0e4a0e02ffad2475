"""Regenerate the built-in malonaldehyde dataset (``malonaldehyde.h5`` and ``PROVENANCE-malonaldehyde.md``) and its
vibrational reference (``malonaldehyde-vibrations.json``; only that with ``--frequencies-only``).

    OMP_NUM_THREADS=1 python -m workbench.data.builtin.make_malonaldehyde [--work DIR]

Malonaldehyde's intramolecular proton transfer makes a double-well potential. GFN2-xTB Langevin MD
at 500 K (1000 configurations, GFN2-xTB energies + forces), MP2/cc-pVDZ energies + forces on 150
farthest-point configurations, CCSD(T)/cc-pVDZ energies (frozen core) on the first 50 of those.
Takes about two hours on one core; resumable like ``make_ethanol``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ase import Atoms  # noqa: E402

from workbench.qm.recipe import BuiltinRecipe, command_line  # noqa: E402

RECIPE = BuiltinRecipe(name="malonaldehyde", n_md=1000, n_mid=150, n_top=50, temperature_K=500.0, seed=0)

#: Planar enol form (O=C-C=C-O-H...O), relaxed with GFN2-xTB; Å.
START = Atoms(
    "OCCCOHHHH",
    positions=[
        (-1.2990, -0.9414, 0.0),
        (-1.2223, 0.2817, 0.0),
        (0.0119, 1.0131, 0.0),
        (1.1917, 0.3424, 0.0),
        (1.2997, -0.9639, 0.0),
        (0.3736, -1.3396, 0.0),
        (-0.0099, 2.0878, 0.0),
        (-2.1413, 0.8897, 0.0),
        (2.1455, 0.8602, 0.0),
    ],
)

if __name__ == "__main__":
    command_line(RECIPE, START)
