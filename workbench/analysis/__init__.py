"""Analyses of trained models: pure functions that return DataFrames or small result objects.

>>> import workbench as wb
>>> wb.analysis.metrics([model], test)                                    # errors per model, head, element
>>> wb.analysis.metrics([model], test, yardsticks="gfn2-xtb")             # ... beside GFN2-xTB's own labels
>>> wb.analysis.scan(model, atoms, dihedral=(0, 1, 2, 3), values=range(0, 360, 10), reference="gfn2-xtb")
>>> wb.analysis.vibrations(model, atoms, fidelity="ccsd(t)/cc-pvdz")     # harmonic frequencies, cm^-1
>>> wb.analysis.frequency_errors(result, wb.datasets.vibrational_reference("ethanol", "mp2/cc-pvdz"))

Every function takes models in any of these forms: a :class:`~workbench.training.TrainedModel`, a workbench
model (all heads, or ``(model, fidelity)`` for one), an ASE calculator, or a level-of-theory name; a
``{name: model}`` dict names them. Figures of these results are in :mod:`workbench.viz`. Units: eV, Å, eV/Å,
cm^-1, unless a ``units=`` argument asks for kcal/mol.
"""

from ..harmonic import finite_difference_hessian
from . import yardsticks
from ._models import Predictor, predictors
from .coordinates import Coordinate, atom_correspondence, bond_graph, bonds
from .curves import learning_curve, summarise_learning_curve, training_curves
from .evaluation import Evaluation, evaluate, parity_data
from .force_errors import ForceErrors, atom_force_errors, force_error_statistics, force_errors
from .md import MDStability, md_stability
from .metrics import (
    best_per_column,
    comparable,
    configuration_errors,
    disagreement,
    error_columns,
    metrics,
    rank,
    worst_configurations,
)
from .pes import ScanResult, default_cache, reference_energies, scan
from .smoothness import smoothness
from .vibrations import (
    STRETCH_REGIONS,
    VibrationsResult,
    frequency_errors,
    frequency_table,
    harmonic_analysis,
    match_modes,
    mode_trajectory,
    reference_vibrations,
    reorder_atoms,
    vibrations,
)
from .yardsticks import LabelResiduals, label_residuals

__all__ = [
    "STRETCH_REGIONS",
    "Coordinate",
    "Evaluation",
    "ForceErrors",
    "LabelResiduals",
    "MDStability",
    "Predictor",
    "ScanResult",
    "VibrationsResult",
    "atom_correspondence",
    "atom_force_errors",
    "best_per_column",
    "bond_graph",
    "bonds",
    "comparable",
    "configuration_errors",
    "default_cache",
    "disagreement",
    "error_columns",
    "evaluate",
    "finite_difference_hessian",
    "force_error_statistics",
    "force_errors",
    "frequency_errors",
    "frequency_table",
    "harmonic_analysis",
    "label_residuals",
    "learning_curve",
    "match_modes",
    "md_stability",
    "metrics",
    "mode_trajectory",
    "parity_data",
    "predictors",
    "rank",
    "reference_energies",
    "reference_vibrations",
    "reorder_atoms",
    "scan",
    "smoothness",
    "summarise_learning_curve",
    "training_curves",
    "vibrations",
    "worst_configurations",
    "yardsticks",
]
