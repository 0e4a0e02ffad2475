"""Figure builders: plotly figures, tables and nglview views made from data, with no widget state.

Everything a panel of the workbench shows comes from a function here, so the same figure can be
made in a script or a paper's notebook.
"""

from .dataset import (
    RESIDUAL_AXIS,
    coverage_figure,
    energy_distribution_figure,
    highlight_points,
    labels_table,
    per_atom_residuals,
)
from .structure import pdb_string, replace_structure, structure_view
from .style import fidelity_colors

__all__ = [
    "RESIDUAL_AXIS",
    "coverage_figure",
    "energy_distribution_figure",
    "fidelity_colors",
    "highlight_points",
    "labels_table",
    "pdb_string",
    "per_atom_residuals",
    "replace_structure",
    "structure_view",
]
