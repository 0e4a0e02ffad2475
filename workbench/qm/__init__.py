"""Quantum-chemistry labels for multi-fidelity datasets.

- :class:`Level`: a level of theory by its fidelity name (``"gfn2-xtb"``, ``"b3lyp/6-31g*"``,
  ``"mp2/cc-pvdz"``, ``"ccsd(t)/cc-pvdz"``) with explicit program settings; tblite for xTB, PySCF
  for HF, DFT, MP2, CCSD and CCSD(T).
- :class:`QMCalculator`: any level as an ASE calculator; :func:`hessian`: its second derivatives.
- :func:`label`: a resumable, optionally parallel (Dask) labeling job over a Dataset.
- :mod:`~workbench.qm.sampling`: configurations from Langevin MD, normal modes or random
  displacements; :func:`choose`: random or farthest-point subsets for the expensive levels.
"""

from .hessian import hessian
from .labeling_job import JobCancelled, LabelJob, label
from .level_of_theory import Level
from .levels import compute_label, compute_labels
from .qm_calculator import QMCalculator
from .store import LabelStore, configuration_key

__all__ = [
    "JobCancelled",
    "LabelJob",
    "LabelStore",
    "Level",
    "QMCalculator",
    "compute_label",
    "compute_labels",
    "configuration_key",
    "hessian",
    "label",
]
