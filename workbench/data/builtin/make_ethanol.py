"""Regenerate the built-in ethanol dataset (``ethanol.h5`` and ``PROVENANCE-ethanol.md``) and its
vibrational reference (``ethanol-vibrations.json``).

    OMP_NUM_THREADS=1 python -m workbench.data.builtin.make_ethanol [--work DIR]
    OMP_NUM_THREADS=2 python -m workbench.data.builtin.make_ethanol --frequencies-only

GFN2-xTB Langevin MD at 500 K (2000 configurations, GFN2-xTB energies + forces), MP2/cc-pVDZ
energies + forces on 300 farthest-point configurations, CCSD(T)/cc-pVDZ energies (frozen core) on
the first 200 of those. Takes about two hours on one core; every finished label is kept in the
work directory's store (default ``build/builtin-ethanol``), so running the same command again
resumes where it stopped. Then harmonic frequencies at GFN2-xTB and MP2/cc-pVDZ, each at its own
minimum (``workbench.qm.recipe.make_vibrational_reference``); ``--frequencies-only`` makes just
those, in about 11 minutes on a shared 2-core machine (MP2: 54 gradients plus the relaxation).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ase.build import molecule  # noqa: E402

from workbench.qm.recipe import BuiltinRecipe, command_line  # noqa: E402

RECIPE = BuiltinRecipe(name="ethanol", n_md=2000, n_mid=300, n_top=200, temperature_K=500.0, seed=0)

if __name__ == "__main__":
    command_line(RECIPE, molecule("CH3CH2OH"))
