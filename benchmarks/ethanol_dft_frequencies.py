"""Ethanol's harmonic frequencies at B3LYP/6-31G*: PySCF's analytic Hessian vs central differences of
the QM engine's own gradients, at the same relaxed geometry (built-in ethanol, configuration 0).

    OMP_NUM_THREADS=1 python benchmarks/ethanol_dft_frequencies.py      # ~15 min on one core

Prints both sets of wavenumbers (cm^-1), their largest and mean difference, and the time each took.
"""

import time

import numpy as np

import workbench as wb
from workbench.analysis import harmonic_analysis, reference_vibrations
from workbench.harmonic import finite_difference_hessian
from workbench.qm import Level, QMCalculator

LEVEL = "b3lyp/6-31g*"

if __name__ == "__main__":
    atoms = wb.datasets.builtin("ethanol").to_atoms(0)
    t0 = time.perf_counter()
    analytic = reference_vibrations(atoms, LEVEL, method="analytic", cache=False)
    t_analytic = time.perf_counter() - t0
    t0 = time.perf_counter()
    hessian = finite_difference_hessian(analytic.atoms, QMCalculator(Level(LEVEL)), delta=0.005)
    t_fd = time.perf_counter() - t0
    fd = harmonic_analysis(analytic.atoms, hessian, name="finite differences")
    a, f = np.asarray(analytic.frequencies), np.asarray(fd.frequencies)
    print(f"ethanol {LEVEL}: PySCF analytic Hessian vs finite differences of the engine's gradients")
    diff = np.abs(a - f)
    print(f"{len(a)} modes; max |difference| {diff.max():.2f} cm^-1, mean {diff.mean():.2f} cm^-1")
    print("analytic:", " ".join(f"{v:.1f}" for v in a))
    print("finite differences:", " ".join(f"{v:.1f}" for v in f))
    print(f"time: relax + analytic Hessian {t_analytic:.0f} s, finite differences (6n gradients) {t_fd:.0f} s")
