"""Frequency figure and normal-mode animation: the wavenumbers, errors, stretch regions and arrows they carry."""

import nglview
import numpy as np
from test_analysis_metrics import md17, trained_hipnn

from workbench import analysis
from workbench.viz import vibrations as viz


def results():
    model = trained_hipnn()
    minimum = analysis.vibrations(model, md17().to_atoms(0))
    # a second "model": the same network at a geometry relaxed less tightly gives slightly different numbers
    loose = analysis.vibrations(model, md17().to_atoms(0), fmax=0.05)
    return minimum, loose


def test_frequency_figure_rows_errors_and_stretch_regions():
    reference, loose = results()
    table = analysis.frequency_table({"loose": loose}, reference)
    fig = viz.frequency_figure(table)
    assert [t.name for t in fig.data] == ["reference", "loose", "loose error"]
    ref_ticks, model_ticks, errors = fig.data
    np.testing.assert_allclose(ref_ticks.x, reference.frequencies)
    np.testing.assert_allclose(model_ticks.x, table["loose"])
    assert set(model_ticks.y) == {"loose"} and set(ref_ticks.y) == {"reference"}
    np.testing.assert_allclose(errors.x, reference.frequencies)
    np.testing.assert_allclose(errors.y, table["loose error"])
    # a model's ticks and its error points share one colour, distinct from the reference's
    assert model_ticks.marker.color == errors.marker.color != ref_ticks.marker.color
    assert list(ref_ticks.customdata[:, 0]) == list(range(21))
    assert list(ref_ticks.customdata[:, 1]) == reference.characters
    regions = [s for s in fig.layout.shapes if s.type == "rect"]
    assert sorted({(s.x0, s.x1) for s in regions}) == [(2800.0, 3150.0), (3200.0, 3800.0)]
    assert len(regions) == 4  # each region shaded in both panels
    assert {a.text for a in fig.layout.annotations} >= {"C-H stretch", "O-H stretch"}
    alone = viz.frequency_figure(analysis.frequency_table([loose]))
    assert [t.name for t in alone.data] == [loose.name]  # without a reference: ticks only, one panel


def test_mode_view_animates_the_mode_with_arrows_on_the_moving_atoms():
    reference, _ = results()
    mode = 20
    view = viz.mode_view(reference, mode, amplitude=0.3, n_frames=10, arrow_scale=2.0)
    assert isinstance(view, nglview.NGLWidget) and view.max_frame == 9
    trajectory = view._trajlist[0]
    centre = reference.atoms.positions.mean(axis=0)
    np.testing.assert_allclose(trajectory.get_coordinates(0), reference.atoms.positions - centre, atol=1e-9)
    d = reference.modes[mode] / np.linalg.norm(reference.modes[mode], axis=1).max()
    quarter = trajectory.get_coordinates(2) - trajectory.get_coordinates(0)  # 2 of 10 frames: sin(72°)
    np.testing.assert_allclose(quarter, 0.3 * np.sin(2 * np.pi * 2 / 10) * d, atol=1e-9)
    shapes = [m for m in view._ngl_msg_archive if m["methodName"] == "addShape"]
    assert len(shapes) == 1 and shapes[0]["args"][0] == f"mode {mode}"
    moving = np.flatnonzero(np.linalg.norm(d, axis=1) >= 0.05)
    arrows = shapes[0]["args"][1]
    assert len(arrows) == len(moving) and 0 < len(moving) <= 9
    for (kind, start, end, _, _), atom in zip(arrows, moving, strict=True):
        assert kind == "arrow"
        np.testing.assert_allclose(start, reference.atoms.positions[atom] - centre, atol=1e-9)
        np.testing.assert_allclose(np.subtract(end, start), 2.0 * 0.3 * d[atom], atol=1e-9)


def test_frequency_figure_with_a_reference_per_model():
    import workbench as wb

    xtb = wb.datasets.vibrational_reference("ethanol", "gfn2-xtb")
    mp2 = wb.datasets.vibrational_reference("ethanol", "mp2/cc-pvdz")
    # two "models": each level's Hessian made a little softer or stiffer, each against its own level
    soft = analysis.harmonic_analysis(mp2.atoms, 0.98 * mp2.hessian, "soft")
    stiff = analysis.harmonic_analysis(xtb.atoms, 1.02 * xtb.hessian, "stiff")
    table = analysis.frequency_table({"soft": soft, "stiff": stiff}, {"soft": mp2, "stiff": xtb})
    fig = viz.frequency_figure(table)
    names = [t.name for t in fig.data]
    assert names == ["reference: mp2/cc-pvdz", "reference: gfn2-xtb", "soft", "stiff", "soft error", "stiff error"]
    traces = dict(zip(names, fig.data, strict=True))
    # each model's errors sit at its own reference's wavenumbers
    np.testing.assert_allclose(traces["stiff error"].x, table["reference: gfn2-xtb"])
    np.testing.assert_allclose(traces["stiff error"].y, (np.sqrt(1.02) - 1) * table["reference: gfn2-xtb"])
    np.testing.assert_allclose(traces["soft error"].x, mp2.frequencies)
    assert traces["reference: mp2/cc-pvdz"].marker.color != traces["reference: gfn2-xtb"].marker.color
