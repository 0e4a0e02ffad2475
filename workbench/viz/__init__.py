"""Figure builders: plotly figures, tables and nglview views made from data, with no widget state.

Everything a panel of the workbench shows comes from a function here, so the same figure can be
made in a script or a paper's notebook.
"""

from .compare import (
    error_histogram_figure,
    learning_curve_figure,
    metrics_table,
    model_colors,
    parity_figure,
    training_curves_figure,
)
from .dataset import (
    RESIDUAL_AXIS,
    coverage_figure,
    energy_distribution_figure,
    highlight_points,
    labels_table,
    per_atom_residuals,
)
from .force_errors import force_error_bar_figure, force_error_colorbar, force_error_view, force_error_widget
from .pes import md_energy_figure, scan_contour_figure, scan_figure
from .structure import pdb_string, replace_structure, structure_view
from .style import fidelity_colors
from .vibrations import frequency_figure, mode_view

__all__ = [
    "RESIDUAL_AXIS",
    "coverage_figure",
    "energy_distribution_figure",
    "error_histogram_figure",
    "fidelity_colors",
    "force_error_bar_figure",
    "force_error_colorbar",
    "force_error_view",
    "force_error_widget",
    "frequency_figure",
    "highlight_points",
    "labels_table",
    "learning_curve_figure",
    "md_energy_figure",
    "metrics_table",
    "mode_view",
    "model_colors",
    "parity_figure",
    "pdb_string",
    "per_atom_residuals",
    "replace_structure",
    "scan_contour_figure",
    "scan_figure",
    "structure_view",
    "training_curves_figure",
]
