"""Figures of scans and MD runs: the curves, the disagreement band, the reference points and the contour panels."""

import numpy as np
import plotly.graph_objects as go
import pytest
from test_analysis_pes import MorseChain, carbon_chain, morse

from workbench import analysis
from workbench.viz import pes


def test_scan_figure_draws_heads_reference_points_and_the_band_between_heads():
    values = np.linspace(1.2, 2.6, 29)
    models = {"smooth": MorseChain(), "wiggly": MorseChain(wiggle=0.02, period=0.3)}
    res = analysis.scan(models, carbon_chain(), bond=(0, 1), values=values, reference=MorseChain(), reference_every=4)
    fig = pes.scan_figure(res, align="minimum")
    assert [t.name for t in fig.data] == ["spread", "spread", "smooth", "wiggly", "reference: MorseChain"]
    low, high, smooth, wiggly, ref = fig.data
    np.testing.assert_allclose(smooth.y, morse(values) - morse(values).min(), atol=1e-12)
    np.testing.assert_allclose(low.y, np.minimum(smooth.y, wiggly.y))
    np.testing.assert_allclose(high.y, np.maximum(smooth.y, wiggly.y))
    assert high.fill == "tonexty" and low.line.width == 0
    np.testing.assert_allclose(high.customdata[:, 0], np.abs(np.asarray(smooth.y) - np.asarray(wiggly.y)))
    np.testing.assert_allclose(ref.x, values[::4])
    np.testing.assert_allclose(ref.y, morse(values[::4]) - morse(values[::4]).min(), atol=1e-12)
    assert ref.mode == "markers" and fig.layout.xaxis.title.text == "bond 0-1 (Å)"
    in_kcal = pes.scan_figure(res, units="kcal/mol", align="minimum")
    np.testing.assert_allclose(np.asarray(in_kcal.data[2].y), np.asarray(smooth.y) * 23.0605, rtol=1e-4)
    # aligned to the reference, a perfect head lies on the reference points
    aligned = pes.scan_figure(res, align="reference")
    np.testing.assert_allclose(np.asarray(aligned.data[2].y)[::4], aligned.data[4].y, atol=1e-12)
    single = pes.scan_figure(analysis.scan(MorseChain(), carbon_chain(), bond=(0, 1), values=values))
    assert [t.name for t in single.data] == ["morsechain"]  # one head: no band, no reference


def test_contour_figure_has_a_panel_per_head_and_one_for_the_reference():
    x1, x2 = np.linspace(1.3, 1.9, 7), np.linspace(1.2, 1.8, 5)
    res = analysis.scan(
        {"a": MorseChain(), "b": MorseChain(wiggle=0.05)},
        carbon_chain(3),
        bond=(0, 1),
        values=x1,
        second=dict(bond=(1, 2), values=x2),
        reference=MorseChain(),
        reference_every=2,
    )
    fig = pes.scan_contour_figure(res, align="minimum")
    assert [t.name for t in fig.data] == ["a", "b", "reference: MorseChain"]
    assert all(isinstance(t, go.Contour) for t in fig.data)
    a, _, ref = fig.data
    grid = morse(x1)[:, None] + morse(x2)[None, :]
    np.testing.assert_allclose(a.z, grid - grid.min(), atol=1e-12)
    assert np.asarray(ref.z).shape == (4, 3)
    np.testing.assert_allclose(ref.x, x2[::2]) and np.testing.assert_allclose(ref.y, x1[::2])
    assert len({(t.zmin, t.zmax) for t in fig.data}) == 1  # one colour scale
    assert [t.showscale for t in fig.data] == [False, False, True]
    with pytest.raises(ValueError, match="2D"):
        pes.scan_contour_figure(analysis.scan(MorseChain(), carbon_chain(), bond=(0, 1), values=x1))


def test_md_energy_figure_shows_the_energies_and_the_drift():
    run = analysis.md_stability(MorseChain(swirl=0.05), carbon_chain(), n_steps=200, timestep_fs=0.5)
    fig = pes.md_energy_figure(run)
    assert [t.name for t in fig.data] == ["total", "potential", "kinetic", "drift"]
    total, potential, kinetic, drift = fig.data
    assert total.y[0] == 0.0
    # every curve is relative to the first total energy
    np.testing.assert_allclose(total.y, run.total - run.total[0])
    np.testing.assert_allclose(np.asarray(potential.y) + np.asarray(kinetic.y) + run.total[0], total.y, atol=1e-12)
    slope = np.polyfit(drift.x, drift.y, 1)[0]
    assert slope == pytest.approx(run.drift_per_ps)
    assert f"drift {run.drift_per_ps:.3g} eV/ps" in fig.layout.title.text
