"""The Improve panel without a browser: a real tiny model, real GFN2-xTB labels, the loop and its baseline."""

import numpy as np
import pytest

import workbench as wb
from workbench.qm import LabelStore, Level
from workbench.ui import ImprovePanel, TrainingPanel, WorkbenchState
from workbench.ui.improve_panel import scan_dihedral

XTB = "gfn2-xtb"


@pytest.fixture
def state(monkeypatch, tmp_path):
    """60 ethanol configurations, 20 of them with GFN2-xTB labels, and a single-fidelity run trained on those."""
    monkeypatch.setenv("WORKBENCH_FAST", "1")
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    ds = wb.datasets.builtin("ethanol").select(range(60))
    for name in [f for f in ds.labels if f != XTB]:
        ds = ds.drop_fidelity(name)
    ds = ds.keep_labels(XTB, indices=range(0, 60, 3))
    state = WorkbenchState(ds, "ethanol, a third labelled")
    panel = TrainingPanel(state)
    panel.strategy.value, panel.epochs.value, panel.width.value = "single", 20, 8
    run = panel.start()
    assert run.wait(120) and run.state == "done", run.log
    return state


def test_the_loop_buys_labels_trains_further_and_draws_its_curve_and_scan(state, tmp_path):
    panel = ImprovePanel(state)
    run = panel.run.value
    assert run in state.runs and panel.level.value == XTB
    panel.store.value = str(tmp_path / "labels")
    job = panel.start()
    assert job is not None, panel.error.value
    assert set(panel.jobs) == {"variance", "random"} and panel.jobs["random"].state in ("waiting", "running")
    assert panel.wait(300), panel.progress_text.value
    assert all(j.state == "done" for j in panel.jobs.values()), panel.error.value
    # both loops bought their labels (real xTB), into the store the panel names
    rounds = panel.jobs["variance"].rounds
    assert list(rounds["labels_total"]) == [0, 3, 6]
    with LabelStore(tmp_path / "labels") as store:
        chosen = panel.result.chosen
        keys = [k for c in chosen for k in wb.active.loop._keys(c)]
        assert len(store.fetch(Level(XTB), keys)) == 6
    # the improved models joined the runs, for every other tab
    improved = [name for name in state.runs if "improved" in name]
    assert len(improved) == 2 and all(state.runs[n].state == "done" for n in improved)
    # the curve has a line per loop in each of its two plots, the random one grey and dashed
    names = [t.name for t in panel.curve.data]
    assert names.count("variance") == 2 and names.count("random") == 2
    assert [t.line.dash for t in panel.curve.data if t.name == "random"] == ["dash", "dash"]
    # the scan before and after, against reference points at the level
    assert {"before", "after"} <= {t.name for t in panel.scan_figure.data}
    assert "extrema" in panel.scan_note.value
    # the chosen configurations in 3D, round by round
    assert panel.view is not None and panel.chosen_round.max == 2
    panel.chosen_round.value = 1
    assert "round 1" in panel.chosen_note.value


def test_bad_choices_are_refused_with_the_reason(state):
    panel = ImprovePanel(state)
    panel.level.value = "mp2/cc-pvdz"  # the run has no head for it
    assert panel.start() is None and "no head" in panel.error.value
    panel.level.value = XTB
    panel.source.value = "scan"
    atoms = state.dataset.to_atoms(0)
    assert scan_dihedral(atoms) is not None and len(set(scan_dihedral(atoms))) == 4
    assert atoms.numbers[scan_dihedral(atoms)[-1]] == 1  # the dihedral turns a hydrogen (the O-H)
    np.testing.assert_array_equal(atoms.numbers[list(scan_dihedral(atoms)[1:3])] > 1, [True, True])
