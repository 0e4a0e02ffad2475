"""Regenerate the built-in ethanol dataset (``ethanol.h5`` and ``PROVENANCE-ethanol.md``).

    OMP_NUM_THREADS=1 python -m workbench.data.builtin.make_ethanol [--work DIR]

GFN2-xTB Langevin MD at 500 K (2000 configurations, GFN2-xTB energies + forces), MP2/cc-pVDZ
energies + forces on 300 farthest-point configurations, CCSD(T)/cc-pVDZ energies (frozen core) on
the first 200 of those. Takes about 1-2 hours on one core; every finished label is kept in the
work directory's store, so running the same command again resumes where it stopped.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from ase.build import molecule  # noqa: E402

from workbench.qm.recipe import BuiltinRecipe, make_builtin  # noqa: E402

HERE = Path(__file__).resolve().parent
RECIPE = BuiltinRecipe(name="ethanol", n_md=2000, n_mid=300, n_top=200, temperature_K=500.0, seed=0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("build/builtin-ethanol"), help="resumable work directory")
    parser.add_argument("--output", type=Path, default=HERE / "ethanol.h5")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: serial)")
    args = parser.parse_args(argv)
    make_builtin(
        RECIPE,
        molecule("CH3CH2OH"),
        args.work,
        args.output,
        args.output.parent / "PROVENANCE-ethanol.md",
        workers=args.workers,
    )


if __name__ == "__main__":
    main()
