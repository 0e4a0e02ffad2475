"""What the Compare, PES and Vibrations panels and the labeling controls do on a click, without a browser.

Models are real, tiny and trained once per module (3 epochs on the sample data); reference QM is real (tblite).
"""

import re

import numpy as np
import pytest
from plotly.callbacks import Points

import workbench as wb
from workbench.ui import ComparePanel, DatasetPanel, PESPanel, TrainingPanel, VibrationsPanel, WorkbenchState
from workbench.ui.pes_panel import bonded_paths, grid


def train_runs(state: WorkbenchState, plans: list[tuple[str, str, tuple[str, ...] | None]]) -> WorkbenchState:
    """Train one run per (name, strategy, levels) from the Training panel, 3 epochs of a tiny model."""
    panel = TrainingPanel(state)
    panel.epochs.value, panel.width.value = 3, 8
    panel.finetune.value = False  # the joint fit alone keeps a head per level, which these panels show
    for name, strategy, levels in plans:
        if levels is not None:
            for level, row in panel.rows.items():
                row.use.value = level in levels
        panel.strategy.value = strategy
        panel.run_name.value = name
        run = panel.start()
        assert run.wait(120) and run.state == "done", run.log
    return state


@pytest.fixture(scope="module")
def ani_state():
    state = WorkbenchState(wb.datasets.builtin("ani1x-sample"), "builtin:ani1x-sample")
    levels = ("wb97x/6-31g*", "ccsd(t)/cbs")
    return train_runs(state, [("multi", "multifidelity", levels), ("single", "single", levels)])


@pytest.fixture(scope="module")
def md17_state():
    state = WorkbenchState(wb.datasets.builtin("md17-ethanol-sample"), "builtin:md17-ethanol-sample")
    return train_runs(state, [("pbe-model", "single", None)])


@pytest.fixture(scope="module")
def ethanol_state():
    state = WorkbenchState(wb.datasets.builtin("ethanol"), "builtin:ethanol")
    return train_runs(state, [("multi", "multifidelity", None)])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def click(figure, trace_index: int, point: int) -> None:
    """What plotly's frontend does when a point is clicked: the trace's click callbacks get that point."""
    trace = figure.data[trace_index]
    trace._dispatch_on_click(Points([point], [trace.x[point]], [trace.y[point]], trace.name, trace_index), None)


# --------------------------------------------------------------------------------------------- Compare
def test_compare_tabulates_and_plots_the_chosen_runs(ani_state):
    panel = ComparePanel(ani_state)
    assert set(panel.runs.options) == {"multi", "single"} and set(panel.runs.value) == {"multi", "single"}
    panel.part_choice.value = "all"
    panel.compare(wait=True)
    assert panel.error.value == ""
    metrics = wb.analysis.metrics([ani_state.runs["multi"].model], ani_state.dataset, ["ccsd(t)/cbs"])
    assert f"{metrics['energy_mae'].iloc[0]:.4f}" in panel.metrics.value
    assert "multi" in panel.metrics.value and "single" in panel.metrics.value
    # One parity panel per level with labels, WebGL, one trace per model head compared with it.
    models = {t.name for t in panel.parity.data if t.type == "scattergl" and t.mode == "markers"}
    assert models == {"multi · wb97x/6-31g*", "multi · ccsd(t)/cbs", "single"}
    ccsd = [t for t in panel.parity.data if t.name == "single"][0]
    assert len(ccsd.x) == int(ani_state.dataset.labels["ccsd(t)/cbs"].energy_mask.sum())
    panel.units.value = "kcal/mol"
    assert "kcal/mol" in panel.parity.layout.xaxis.title.text
    panel.quantity.value = "forces"
    forces = [t for t in panel.parity.data if t.mode == "markers"]
    assert [t.name for t in forces] == ["multi · wb97x/6-31g*"]
    assert len(forces[0].x) == 3 * int(
        ani_state.dataset.n_atoms[ani_state.dataset.labels["wb97x/6-31g*"].forces_mask].sum()
    )
    assert len(panel.worst.options) > 0
    assert "Train with the <i>learning curve</i>" in panel.learning_note.value
    assert any(t.name and "val" in t.name or "train" in (t.name or "") for t in panel.curves.data)


def test_clicking_a_parity_point_shows_that_configuration_in_3d(ani_state):
    panel = ComparePanel(ani_state)
    panel.part_choice.value = "all"
    panel.quantity.value = "forces"
    panel.compare(wait=True)
    k = next(i for i, t in enumerate(panel.parity.data) if t.name == "multi · wb97x/6-31g*")
    trace = panel.parity.data[k]
    point = 3 * int(ani_state.dataset.n_atoms[:5].sum())  # a force component of configuration 5
    configuration = int(np.asarray(trace.customdata)[point][0])
    assert configuration == 5
    ani_state.configuration = 0
    click(panel.parity, k, point)
    assert panel.shown == {"configuration": 5, "model": "multi · wb97x/6-31g*", "fidelity": "wb97x/6-31g*"}
    assert ani_state.configuration == 5  # the Dataset panel's browser follows
    view = panel.view_box.children[0]
    shapes = [m for m in view._ngl_msg_archive if m.get("methodName") == "addShape"]
    assert {s["args"][0] for s in shapes} == {"predicted forces", "reference forces"}
    head = (ani_state.runs["multi"].model, "wb97x/6-31g*")
    errors = wb.analysis.force_errors(head, ani_state.dataset, 5, "wb97x/6-31g*")
    assert f"{errors.norm.max():.3g} eV/Å" in panel.view_info.value
    # A second click replaces the view and closes the old one (one WebGL context each).
    click(panel.parity, k, 0)
    assert panel.shown["configuration"] == 0 and view.comm is None and panel.view_box.children[0] is not view


def test_worst_configurations_open_in_the_view(ani_state):
    panel = ComparePanel(ani_state)
    panel.part_choice.value = "all"
    panel.compare(wait=True)
    errors = wb.analysis.configuration_errors(panel.evaluations, panel.dataset)
    worst = wb.analysis.worst_configurations(errors, n=10)
    assert [v[0] for _, v in panel.worst.options] == worst["configuration"].tolist()
    panel.worst.value = panel.worst.options[0][1]
    assert panel.shown["configuration"] == worst["configuration"].iloc[0]


def test_compare_on_the_test_split_maps_back_to_the_dataset(md17_state):
    panel = ComparePanel(md17_state)
    assert panel.part_choice.value == "test"
    panel.compare(wait=True)
    test = md17_state.split()["test"]
    assert len(panel.dataset) == len(test)
    k = next(i for i, t in enumerate(panel.parity.data) if t.name == "pbe-model")
    click(panel.parity, k, len(test) - 1)
    assert md17_state.configuration == test[-1]
    assert f"Configuration {test[-1]}" in panel.view_info.value


def test_compare_shows_the_lower_levels_own_labels_as_no_ml_rows(ethanol_state):
    xtb, mp2, ccsd = "gfn2-xtb", "mp2/cc-pvdz", "ccsd(t)/cc-pvdz"
    panel = ComparePanel(ethanol_state)
    assert panel.yardsticks.value and panel.part_choice.value == "test"  # on by default, on the test split
    panel.compare(wait=True)
    assert panel.error.value == "" and not panel.yardsticks.disabled
    table = panel.table
    yard = table[table["labels_of"].notna()]
    assert list(zip(yard["labels_of"], yard["fidelity"], strict=True)) == [(xtb, mp2), (xtb, ccsd), (mp2, ccsd)]
    # the rows are the public function's, judged on the test split's labels
    test = ethanol_state.subset("test")
    direct = wb.analysis.label_residuals(test, xtb, mp2)
    shown = yard.iloc[0]
    assert shown["energy_mae"] == pytest.approx(np.mean(np.abs(direct.energy_error)), rel=1e-12)
    assert shown["force_rmse"] == pytest.approx(np.sqrt(np.mean(direct.force_error**2)), rel=1e-12)
    html = panel.metrics.value
    assert html.count("labels (no ML)") == 3
    for _, r in yard.iterrows():
        assert f"{r['energy_mae']:.4f}" in html
    # each no-ML row is styled apart (grey italics) in the HTML the panel shows
    rows = [int(k) for k in yard.index]
    for k in rows:
        rule = re.search(rf"#T_\w+_row{k}_col0[^{{]*\{{([^}}]*)\}}", html)
        assert rule and "font-style: italic" in rule.group(1), k
    assert "offset by per-element reference energies" in panel.metrics_note.value
    # off: the models alone; on again, in kcal/mol
    panel.yardsticks.value = False
    assert "no ML" not in panel.metrics.value and panel.metrics_note.value == ""
    assert panel.table["model"].tolist() == ["multi"] * 3
    panel.units.value = "kcal/mol"
    panel.yardsticks.value = True
    kcal = panel.table[panel.table["labels_of"].notna()].iloc[0]
    assert kcal["energy_mae"] == pytest.approx(shown["energy_mae"] / 0.0433641, rel=1e-5)
    assert "energy_mae (kcal/mol)" in panel.metrics.value


def test_compare_without_runs_explains(md17_state):
    panel = ComparePanel(WorkbenchState(md17_state.dataset, "md17"))
    assert "Train a model" in panel.status.value
    assert panel.compare() is None and "at least one finished run" in panel.error.value


# --------------------------------------------------------------------------------------------- PES
def test_pes_defaults_to_a_dihedral_about_heavy_atoms():
    atoms = wb.datasets.builtin("md17-ethanol-sample").to_atoms(0)
    first = bonded_paths(atoms, 4)[0]
    assert all(atoms.numbers[i] > 1 for i in first[1:3])
    values = grid("dihedral", -180, 180, 12)
    assert len(values) == 12 and values[-1] == 150.0  # the full turn closes without repeating the start
    assert np.allclose(grid("bond", 1.0, 2.0, 3), [1.0, 1.5, 2.0])


def test_pes_scans_the_chosen_dihedral_with_every_model(md17_state):
    panel = PESPanel(md17_state)
    assert panel.models.members.value == (("pbe-model", "pbe+vdw-ts"),)
    assert panel.first.kind.value == "dihedral" and panel.first.start.value == -180.0
    panel.first.points.value = 8
    panel.reference.value = False  # no QM here: the model alone
    panel.scan(wait=True)
    assert panel.error.value == ""
    result = panel.result
    assert result.coordinates[0].atoms == panel.first.indices and len(result.frames) == 8
    atoms = md17_state.dataset.to_atoms(md17_state.configuration)
    measured = [f.get_dihedral(*panel.first.indices) for f in result.frames]
    assert np.allclose(np.mod(measured, 360), np.mod(grid("dihedral", -180, 180, 8), 360), atol=1e-6)
    # The model's energies along the scan, as the analysis computes them.
    model = md17_state.runs["pbe-model"].model
    direct = wb.analysis.scan(model, atoms, result.coordinates[0].values, dihedral=panel.first.indices)
    assert np.allclose(result.energies.iloc[:, 0], direct.energies.iloc[:, 0], atol=1e-5)
    assert [t.name for t in panel.figure.data] == ["pbe-model"]
    assert list(panel.scores.index) == ["pbe-model"] and "Smoothness" in panel.scores_html.value
    assert "reference QM" in panel.scores_html.value


def test_picking_atoms_in_the_view_fills_the_coordinate(md17_state):
    panel = PESPanel(md17_state)
    panel.first.kind.value = "bond"
    panel._on_pick({"new": {"atom1": {"index": 0}}})
    panel._on_pick({"new": {"atom1": {"index": 3}}})
    assert panel.first.indices == (0, 3)
    d = md17_state.dataset.to_atoms(md17_state.configuration).get_distance(0, 3)
    assert panel.first.start.value == pytest.approx(0.8 * d, abs=1e-3)
    panel.first.atoms[1].value = 0
    assert panel.scan() is None and "must be different" in panel.error.value


@pytest.mark.qm
def test_pes_reference_is_computed_once_and_scored(md17_state, cache):
    panel = PESPanel(md17_state)
    panel.first.points.value = 12
    assert panel.reference.value and panel.reference_level.value == "gfn2-xtb"  # the default reference
    panel.scan(wait=True)
    assert panel.error.value == ""
    assert np.isfinite(panel.result.reference).all() and panel.result.reference_name == "gfn2-xtb"
    assert "12 from the cache" not in panel.status.value
    assert [t.name for t in panel.figure.data][-1] == "reference: gfn2-xtb"
    scores = wb.analysis.smoothness(panel.result)
    assert np.isfinite(panel.scores.loc["pbe-model", "rmse"])
    assert f"{scores.loc['pbe-model', 'rmse']:.3g}" in panel.scores_html.value
    panel.scan(wait=True)
    assert "12 from the cache" in panel.status.value


@pytest.mark.qm
def test_pes_map_of_two_coordinates_with_a_level_as_a_curve(md17_state):
    panel = PESPanel(md17_state)
    panel.reference.value = False
    panel.models.levels.value = "gfn2-xtb"
    panel.first.points.value, panel.second.points.value = 4, 3
    panel.two_d.value = True
    panel.scan(wait=True)
    assert panel.error.value == ""
    assert panel.result.shape == (4, 3) and set(panel.result.members) == {"pbe-model", "gfn2-xtb"}
    assert [t.type for t in panel.figure.data] == ["contour", "contour"]


# --------------------------------------------------------------------------------------------- Vibrations
def forbid_quantum_chemistry(monkeypatch) -> None:
    """Any single point of any level (the one way into PySCF and tblite) fails the test from here on."""

    def refuse(*args, **kwargs):
        raise AssertionError("the Vibrations panel ran a quantum-chemistry calculation")

    monkeypatch.setattr("workbench.qm.levels._single_point", refuse)


@pytest.mark.qm
def test_vibrations_table_and_mode_animation(md17_state, cache):
    panel = VibrationsPanel(md17_state)
    panel.reference.value = "level"  # computed here, at the level typed (gfn2-xtb)
    panel.compute(wait=True)
    assert panel.error.value == ""
    n_modes = 3 * 9 - 6
    assert len(panel.table) == n_modes and {"reference", "pbe-model", "pbe-model error"} <= set(panel.table.columns)
    assert list(panel.results) == ["reference: gfn2-xtb", "pbe-model"]
    # The reference frequencies are GFN2-xTB's own harmonic analysis; the O-H stretch is the highest.
    reference = panel.results["reference: gfn2-xtb"]
    assert 3000 < reference.frequencies[-1] < 4000 and reference.characters[-1] == "O-H stretch"
    assert f"{reference.frequencies[-1]:.1f}" in panel.table_html.value
    assert panel.mode.value == n_modes - 1
    view = panel.view
    player = view._iplayer.children[0]
    assert view.max_frame == 23 and player.repeat and not player.playing
    view.loaded = True  # what nglview's frontend reports once it has drawn the view
    assert player.playing
    arrows = [m for m in view._ngl_msg_archive if m.get("methodName") == "addShape"]
    assert arrows  # atoms that move carry arrows
    panel.amplitude.value = 0.5
    assert panel.view is not view and view.comm is None
    panel.animate("pbe-model", 0)
    assert panel.source.value == "pbe-model" and panel.mode.value == 0


def test_vibrations_default_to_the_shipped_frequencies_at_each_heads_level(ethanol_state, monkeypatch):
    panel = VibrationsPanel(ethanol_state)
    assert panel.reference.value == "shipped" and "built-in <b>ethanol</b>" in panel.reference_note.value
    xtb_head, top_head = "multi · gfn2-xtb", "multi · ccsd(t)/cc-pvdz"
    panel.models.members.value = (("multi", "gfn2-xtb"), ("multi", "ccsd(t)/cc-pvdz"))
    forbid_quantum_chemistry(monkeypatch)
    panel.compute(wait=True)
    assert panel.error.value == ""
    # a GFN2-xTB head against GFN2-xTB's frequencies; a CCSD(T) head against MP2's, the most accurate shipped
    assert {k: r.name for k, r in panel.references.items()} == {xtb_head: "gfn2-xtb", top_head: "mp2/cc-pvdz"}
    assert list(panel.results) == ["reference: gfn2-xtb", "reference: mp2/cc-pvdz", xtb_head, top_head]
    assert {"reference: gfn2-xtb", "reference: mp2/cc-pvdz", f"{xtb_head} error", f"{top_head} error"} <= set(
        panel.table.columns
    )
    for head, level in ((xtb_head, "gfn2-xtb"), (top_head, "mp2/cc-pvdz")):
        shipped = wb.datasets.vibrational_reference("ethanol", level)
        np.testing.assert_allclose(panel.references[head].frequencies, shipped.frequencies, atol=1e-6)
        expected = wb.analysis.frequency_errors(panel.results[head], shipped)
        assert panel.errors[head]["mae"] == pytest.approx(expected["mae"], abs=1e-6)
        assert panel.errors[head]["max_abs"] == pytest.approx(expected["max_abs"], abs=1e-6)
        assert f"{expected['mae']:.1f}" in panel.summary_html.value
        assert f"{expected['max_abs']:.1f}" in panel.summary_html.value
        # the per-mode table carries the same errors, in its rows' order
        errors = panel.table[f"{head} error"].to_numpy()
        assert np.nanmean(np.abs(errors)) == pytest.approx(expected["mae"], abs=1e-6)
    # the panel says which head is compared with another level than its own
    assert panel.summary_html.value.count("another level than the head") == 1
    assert "is compared with mp2/cc-pvdz" in panel.summary_html.value
    assert {"reference: gfn2-xtb", "reference: mp2/cc-pvdz"} <= {t.name for t in panel.figure.data}


def test_shipped_frequencies_are_renumbered_for_a_file_that_orders_the_atoms_otherwise(md17_state, monkeypatch):
    from workbench.analysis.coordinates import bond_graph

    panel = VibrationsPanel(md17_state)
    assert panel.reference.value == "shipped"  # MD17's ethanol is ethanol: the shipped frequencies fit
    forbid_quantum_chemistry(monkeypatch)
    panel.compute(wait=True)
    assert panel.error.value == ""
    reference = panel.references["pbe-model"]
    assert reference.name == "mp2/cc-pvdz"  # no PBE frequencies shipped: the most accurate level
    atoms = md17_state.dataset.to_atoms(0)
    np.testing.assert_array_equal(bond_graph(reference.atoms), bond_graph(atoms))
    assert "another level than the head" in panel.summary_html.value and "O-H stretch" in panel.table_html.value
    # a molecule without shipped frequencies falls back to a reference computed at a level
    other = VibrationsPanel(WorkbenchState(wb.datasets.builtin("ani1x-sample"), "ani1x"))
    assert other.reference.value == "level"
    other.reference.value = "shipped"
    assert "No shipped frequencies" in other.reference_note.value


# --------------------------------------------------------------------------------------------- labeling
@pytest.mark.qm
def test_labeling_a_farthest_point_subset_adds_a_level(tmp_path):
    panel = DatasetPanel(builtin="md17-ethanol-sample")
    controls = panel.labeling
    controls.store.value = str(tmp_path / "labels")
    controls.subset.value, controls.n.value = "fps", 5
    panel.state.configuration = 7
    job = controls.start()
    assert job is not None and controls.wait(120)
    ds = panel.state.dataset
    assert ds.fidelity_names == ["gfn2-xtb", "pbe+vdw-ts"]
    assert int(ds.labels["gfn2-xtb"].energy_mask.sum()) == 5 and int(ds.labels["gfn2-xtb"].forces_mask.sum()) == 5
    assert panel.state.configuration == 7 and "gfn2-xtb" in panel.summary.value
    assert "5 labels" in controls.progress_text.value and controls.progress.value == 5
    # Asking again finds every label in the store.
    controls.subset.value = "all"
    controls.start()
    assert controls.wait(120)
    assert int(panel.state.dataset.labels["gfn2-xtb"].energy_mask.sum()) == 20
    assert "15 computed" in controls.progress_text.value


@pytest.mark.qm
def test_labeling_can_be_cancelled_and_bad_levels_are_reported(tmp_path):
    panel = DatasetPanel(builtin="md17-ethanol-sample")
    controls = panel.labeling
    controls.store.value = str(tmp_path / "labels")
    before = panel.state.dataset
    controls.level.value = "hf/cc-pvdz"
    controls.start()
    controls.cancel()
    assert controls.wait(120)
    assert controls.job.state == "cancelled" and panel.state.dataset is before
    assert "cancelled" in controls.progress_text.value and not controls.start_button.disabled
    controls.level.value = "no-such-method/cc-pvdz"
    assert controls.start() is None and "no-such-method" in controls.error.value
