"""Force errors drawn on the structure: atoms coloured by the length of their force error, with arrows for the
predicted and reference forces, plus the colour bar that reads the colours (from
:func:`workbench.analysis.force_errors`).

The colour of each atom travels in the PDB B-factor column (as a percentage of the colour bar's top) and NGL's
``bfactor`` colour scheme maps it through the same colour list the bar is drawn with, so view and bar agree.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as widgets
import nglview
import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from .structure import VIEW_HEIGHT, VIEW_WIDTH, pdb_string
from .style import base_layout

if TYPE_CHECKING:  # the analysis package pulls in torch; figures need only its results
    from ..analysis.force_errors import ForceErrors

#: Colour scale of force errors (low: pale, high: dark red), sampled into this many stops for NGL.
COLORSCALE = "YlOrRd"
N_STOPS = 9
PREDICTED_COLOR = [0.12, 0.47, 0.71]  # blue
REFERENCE_COLOR = [0.17, 0.63, 0.17]  # green


def error_colors(n_stops: int = N_STOPS, colorscale: str = COLORSCALE) -> list[str]:
    """``n_stops`` hex colours from low to high error."""
    rgb = sample_colorscale(colorscale, [k / (n_stops - 1) for k in range(n_stops)], colortype="tuple")
    return ["#{:02x}{:02x}{:02x}".format(*(int(round(255 * c)) for c in color)) for color in rgb]


def pdb_with_errors(errors: ForceErrors, vmax: float) -> str:
    """PDB text (centred, as :func:`workbench.viz.structure.pdb_string`) whose B-factor column holds each atom's
    error length as a percentage of ``vmax`` (clipped to 0-100)."""
    values = np.clip(100.0 * errors.norm / vmax, 0.0, 100.0)
    lines, k = [], 0
    for line in pdb_string(errors.atoms).splitlines():
        if line.startswith(("ATOM", "HETATM")):
            line = f"{line[:60]:<60s}{values[k]:6.2f}{line[66:]}"
            k += 1
        lines.append(line)
    if k != len(errors.atoms):
        raise RuntimeError(f"PDB text holds {k} atoms, the configuration {len(errors.atoms)}")
    return "\n".join(lines) + "\n"


def force_error_view(
    errors: ForceErrors,
    vmax: float | None = None,
    arrow_scale: float = 0.5,
    arrows: tuple[str, ...] = ("predicted", "reference"),
    width: str = VIEW_WIDTH,
    height: str = VIEW_HEIGHT,
) -> nglview.NGLWidget:
    """An nglview view of one configuration, atoms coloured by force-error length (0 to ``vmax`` eV/Å; default the
    largest error) and arrows for the ``predicted`` (blue) and ``reference`` (green) forces, ``arrow_scale`` Å per
    eV/Å. Show the colour bar beside it with :func:`force_error_colorbar` (or use :func:`force_error_widget`)."""
    vmax = float(vmax if vmax is not None else max(errors.norm.max(), 1e-12))
    view = nglview.NGLWidget(width=width, height=height)
    view.add_structure(nglview.TextStructure(pdb_with_errors(errors, vmax), ext="pdb"), default_representation=False)
    view.add_ball_and_stick(
        aspectRatio=2.2, radiusScale=1.0, colorScheme="bfactor", colorScale=error_colors(), colorDomain=[0, 100]
    )
    view.background = "white"
    view.stage.set_parameters(clip_dist=2)
    positions = errors.atoms.positions - errors.atoms.positions.mean(axis=0)  # as in the PDB text
    for kind, forces, color in (
        ("predicted", errors.predicted, PREDICTED_COLOR),
        ("reference", errors.reference, REFERENCE_COLOR),
    ):
        if kind not in arrows:
            continue
        shapes = [
            ("arrow", p.tolist(), (p + arrow_scale * f).tolist(), color, 0.06)
            for p, f in zip(positions, forces, strict=True)
            if np.linalg.norm(f) * arrow_scale > 1e-3
        ]
        if shapes:
            view._add_shape(shapes, name=f"{kind} forces")
    view.center()
    return view


def force_error_colorbar(vmax: float, units: str = "eV/Å", n_ticks: int = 5, width_px: int = 260) -> str:
    """HTML of a horizontal colour bar from 0 to ``vmax`` (``units``) in the colours of :func:`force_error_view`."""
    stops = ", ".join(error_colors())
    ticks = "".join(
        f'<span style="position:absolute;left:{100 * k / (n_ticks - 1):.1f}%;transform:translateX(-50%)">'
        f"{vmax * k / (n_ticks - 1):.3g}</span>"
        for k in range(n_ticks)
    )
    return (
        f'<div class="wb-force-colorbar" style="width:{width_px}px;font-size:11px;color:#1f2933">'
        f"<div>|F<sub>pred</sub> − F<sub>ref</sub>| ({html.escape(units)})</div>"
        f'<div style="height:12px;border-radius:2px;background:linear-gradient(to right, {stops})"></div>'
        f'<div style="position:relative;height:14px;margin:0 4px">{ticks}</div></div>'
    )


def force_error_widget(errors: ForceErrors, vmax: float | None = None, **kwargs) -> widgets.VBox:
    """:func:`force_error_view` with its colour bar and a legend of the arrows underneath."""
    vmax = float(vmax if vmax is not None else max(errors.norm.max(), 1e-12))
    legend = (
        '<div style="font-size:11px;color:#1f2933">arrows: <span style="color:#1f77b4">■ predicted</span> '
        '<span style="color:#2ca02c">■ reference</span></div>'
    )
    return widgets.VBox([force_error_view(errors, vmax, **kwargs), widgets.HTML(force_error_colorbar(vmax) + legend)])


def force_error_bar_figure(errors: ForceErrors, vmax: float | None = None) -> go.Figure:
    """Bar per atom of the force-error length (eV/Å), coloured on the same scale as :func:`force_error_view`;
    ``customdata`` is ``[atom, element]`` so a click can highlight the atom."""
    vmax = float(vmax if vmax is not None else max(errors.norm.max(), 1e-12))
    table = errors.table()
    labels = [f"{e}{i}" for i, e in zip(table["atom"], table["element"], strict=True)]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=table["error_norm"].to_numpy(),
            customdata=table[["atom", "element"]].to_numpy(dtype=object),
            marker={
                "color": table["error_norm"].to_numpy(),
                "cmin": 0.0,
                "cmax": vmax,
                "colorscale": [[k / (N_STOPS - 1), c] for k, c in enumerate(error_colors())],
                "colorbar": {"title": {"text": "eV/Å"}, "thickness": 12},
            },
            hovertemplate="atom %{customdata[0]} (%{customdata[1]})<br>|ΔF| %{y:.4g} eV/Å<extra></extra>",
            name="force error",
        )
    )
    title = f"Force errors of {errors.model}" + (f" vs {errors.fidelity}" if errors.fidelity else "")
    fig.update_layout(**base_layout(title, 320))
    fig.update_xaxes(title={"text": "atom"})
    fig.update_yaxes(title={"text": "|F_pred − F_ref| (eV/Å)"})
    return fig
