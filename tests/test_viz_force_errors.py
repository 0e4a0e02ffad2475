"""The force-error structure view: colours in the B-factor column, the colour scale, arrows, and the colour bar."""

import re

import ipywidgets
import numpy as np
from test_analysis_metrics import FID, LabelCalculator, md17, trained_hipnn

from workbench import analysis
from workbench.viz import force_errors as viz


def errors():
    return analysis.force_errors(trained_hipnn(), md17(), 5)


def test_b_factors_hold_the_error_as_a_percentage_of_the_colour_bar():
    result = errors()
    vmax = 2.0 * result.norm.max()
    text = viz.pdb_with_errors(result, vmax)
    atoms = [line for line in text.splitlines() if line.startswith(("ATOM", "HETATM"))]
    b = np.array([float(line[60:66]) for line in atoms])
    np.testing.assert_allclose(b, 100 * result.norm / vmax, atol=0.006)
    assert b.max() <= 50.01
    clipped = viz.pdb_with_errors(result, 0.5 * result.norm.max())
    assert max(float(line[60:66]) for line in clipped.splitlines() if line.startswith("ATOM")) == 100.0


def test_view_colours_by_error_and_draws_predicted_and_reference_arrows():
    result = errors()
    view = viz.force_error_view(result, arrow_scale=0.4)
    calls = {m["methodName"]: m for m in view._ngl_msg_archive}
    rep = calls["addRepresentation"]["kwargs"]
    assert rep["colorScheme"] == "bfactor" and rep["colorDomain"] == [0, 100]
    assert rep["colorScale"] == viz.error_colors() and len(rep["colorScale"]) == viz.N_STOPS
    shapes = {m["args"][0]: m["args"][1] for m in view._ngl_msg_archive if m["methodName"] == "addShape"}
    assert set(shapes) == {"predicted forces", "reference forces"}
    centred = result.atoms.positions - result.atoms.positions.mean(axis=0)
    for name, forces in (("predicted forces", result.predicted), ("reference forces", result.reference)):
        assert len(shapes[name]) == 9
        for (kind, start, end, _, _), p, f in zip(shapes[name], centred, forces, strict=True):
            assert kind == "arrow"
            np.testing.assert_allclose(start, p, atol=1e-9)
            np.testing.assert_allclose(end, p + 0.4 * f, atol=1e-9)
    only_reference = viz.force_error_view(result, arrows=("reference",))
    names = [m["args"][0] for m in only_reference._ngl_msg_archive if m["methodName"] == "addShape"]
    assert names == ["reference forces"]
    # a perfect model: no error, every atom at the bottom of the scale
    perfect = analysis.force_errors(LabelCalculator(md17(), FID), md17(), 5)
    assert set(re.findall(r" 1\.00  (\d+\.\d\d)", viz.pdb_with_errors(perfect, 1.0))) == {"0.00"}


def test_colour_bar_matches_the_view_and_the_bar_chart():
    result = errors()
    vmax = float(result.norm.max())
    html = viz.force_error_colorbar(vmax)
    assert "linear-gradient(to right, " + ", ".join(viz.error_colors()) + ")" in html
    assert f">{vmax:.3g}<" in html and ">0<" in html
    widget = viz.force_error_widget(result)
    assert isinstance(widget, ipywidgets.VBox) and len(widget.children) == 2
    assert "linear-gradient" in widget.children[1].value
    fig = viz.force_error_bar_figure(result)
    bar = fig.data[0]
    np.testing.assert_allclose(bar.y, result.norm)
    assert list(bar.x) == ["C0", "C1", "O2", "H3", "H4", "H5", "H6", "H7", "H8"]
    assert bar.marker.cmin == 0.0 and bar.marker.cmax == vmax
    assert [c for _, c in bar.marker.colorscale] == viz.error_colors()
