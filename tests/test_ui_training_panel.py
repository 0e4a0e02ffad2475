"""What the Training panel's buttons change, without a browser: real (tiny) training runs on the sample data."""

import time

import numpy as np
import pytest

import workbench as wb
from workbench.training import TrainedModel
from workbench.ui import TrainingPanel, Workbench, WorkbenchState
from workbench.ui.training_choices import devices, width_setting


@pytest.fixture
def md17_state():
    return WorkbenchState(wb.datasets.builtin("md17-ethanol-sample"), "builtin:md17-ethanol-sample")


@pytest.fixture
def ani_state():
    return WorkbenchState(wb.datasets.builtin("ani1x-sample"), "builtin:ani1x-sample")


def tiny(panel: TrainingPanel, epochs: int = 3, strategy: str = "single") -> TrainingPanel:
    panel.strategy.value = strategy
    panel.epochs.value = epochs
    panel.width.value = 8
    return panel


def wait_for(condition, timeout=60.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def test_panel_offers_the_registry_families_and_the_dataset_levels(ani_state):
    panel = TrainingPanel(ani_state)
    families = wb.models.families()
    assert list(panel.family.options) == list(families.index)
    assert families.loc["hipnn", "description"][:20] in panel.family_info.value
    ds = ani_state.dataset
    assert list(panel.rows) == ds.fidelity_names
    # Levels without force labels cannot train on forces: the box is off and disabled.
    cbs = panel.rows["ccsd(t)/cbs"]
    assert cbs.forces.disabled and not cbs.forces.value and cbs.energy.value
    assert panel.rows["wb97x/6-31g*"].forces.value
    # The target is the highest-ranked level chosen; unticking it moves the target down.
    ranked = sorted(ds.fidelity_names, key=lambda n: ds.fidelity(n).rank)
    assert panel.target.value == ranked[-1]
    panel.rows[ranked[-1]].use.value = False
    assert panel.target.value == ranked[-2] and ranked[-1] not in panel.target.options
    panel.family.value = "linear"
    assert panel.width.disabled and "closed form" in panel.family_info.value
    assert devices()[0] == ("CPU", "cpu") and [d for _, d in panel.device.options] == [d for _, d in devices()]


def test_choices_become_the_arguments_of_train(ani_state):
    panel = TrainingPanel(ani_state)
    for name, row in panel.rows.items():
        row.use.value = name in ("wb97x/6-31g*", "ccsd(t)/cbs")
    panel.rows["wb97x/6-31g*"].force_weight.value = 10.0
    panel.width.value = 24
    panel.lr.value = 3e-3
    options = panel.train_options()
    assert options["recipe"] == "multifidelity" and options["target"] == "ccsd(t)/cbs"
    assert options["fidelities"] == {"wb97x/6-31g*": ("energy", "forces"), "ccsd(t)/cbs": ("energy",)}
    assert options["weights"]["wb97x/6-31g*"] == {"energy": 1.0, "forces": 10.0}
    assert options["model"] == {"n_features": 24, "fidelity_mode": "residual"} and options["lr"] == 3e-3
    # by default each level is the one below plus a correction, and a fine-tuning stage on the target ends
    # the run (docs/multifidelity-defaults.md)
    assert panel.finetune in panel.recipe_options.children and options["finetune_lr_factor"] == 0.1
    panel.finetune.value = False
    assert panel.train_options()["finetune_lr_factor"] is None
    # the heads can be tied to the lowest level's
    assert panel.tie_heads in panel.recipe_options.children and "tie_heads" not in options
    panel.tie_heads.value = True
    assert panel.train_options()["tie_heads"] == 0.1
    # or be a free readout per level
    panel.fidelity_mode.value = "heads"
    assert panel.finetune in panel.recipe_options.children and panel.tie_heads in panel.recipe_options.children
    assert panel.train_options()["model"] == {"n_features": 24, "fidelity_mode": "heads"}
    # or it can take the level as an input of its trunk instead (then there is no head to fine-tune)
    assert panel.fidelity_mode in panel.recipe_options.children
    panel.finetune.value = True
    panel.fidelity_mode.value = "embedding"
    assert panel.finetune not in panel.recipe_options.children and panel.tie_heads not in panel.recipe_options.children
    assert panel.train_options()["model"] == {"n_features": 24, "fidelity_mode": "embedding"}
    assert panel.train_options()["finetune_lr_factor"] is None and "tie_heads" not in panel.train_options()
    panel.family.value = "linear"
    assert panel.fidelity_mode not in panel.recipe_options.children
    assert "fidelity_mode" not in panel.train_options()["model"]
    panel.family.value = "hipnn"
    # Training sees the train and validation parts of the shared split, never the test part.
    split = ani_state.split()
    assert len(options["train"]) == len(split["train"]) and len(options["validation"]) == len(split["validation"])
    panel.strategy.value = "single"
    assert panel.train_options()["fidelities"] == {"ccsd(t)/cbs": ("energy",)}
    panel.strategy.value = "delta"
    assert panel.delta_base in panel.recipe_options.children
    panel.delta_base.value = "model"
    assert panel.train_options()["base"] == "model"
    panel.strategy.value = "learning_curve"
    panel.budgets.value = "2, 4"
    options = panel.train_options()
    assert options["budgets"] == [2, 4] and options["inner"] == "multifidelity"
    panel.budgets.value = "two"
    with pytest.raises(ValueError, match="whole numbers"):
        panel.train_options()
    assert width_setting("gmnn", 12, wb.models.families().loc["gmnn", "defaults"]) == {"hidden": [12, 12]}


def test_start_trains_in_the_background_and_the_run_appears_in_the_state(md17_state):
    panel = tiny(TrainingPanel(md17_state))
    run = panel.start()
    assert run is not None and panel.error.value == ""
    assert md17_state.runs[run.name] is run and panel.shown.value == run.name
    assert run.state in ("queued", "running", "done")  # start() returned without waiting for the training
    assert run.wait(120)
    assert run.state == "done" and isinstance(run.model, TrainedModel)
    assert md17_state.finished_runs() == {run.name: run.model}
    assert len(run.model.history) == 3
    assert run.model.provenance["n_train"] == len(md17_state.split()["train"])
    wait_for(lambda: panel.progress.value == 1.0 and "done" in panel.progress_text.value)
    # The figure holds every epoch of the loss and of the force error of the level.
    wait_for(lambda: any(t.name == "pbe+vdw-ts forces (val)" and len(t.x) == 3 for t in panel.figure.data))
    loss = next(t for t in panel.figure.data if t.name == "loss (train)")
    assert np.allclose(loss.y, run.model.history["train_loss"])
    assert run.name in panel.runs_table.value and "done" in panel.runs_table.value
    assert "stage train" in panel.log_view.value and "done: 3 epochs" in panel.log_view.value
    # The next run gets a fresh name.
    assert panel.run_name.placeholder != run.name


def test_a_multifidelity_run_with_tied_heads_trains_with_the_penalty(ani_state):
    panel = tiny(TrainingPanel(ani_state), epochs=2, strategy="multifidelity")
    for name, row in panel.rows.items():
        row.use.value = name in ("wb97x/6-31g*", "ccsd(t)/cbs")
    panel.tie_heads.value = True
    run = panel.start()
    assert run is not None and run.wait(120) and run.state == "done", panel.error.value
    assert run.model.settings["recipe_options"]["tie_heads"] == 0.1
    joint = run.model.history[run.model.history["stage"] == "train"]
    assert len(joint) and (joint["head_tie_penalty"] > 0).all()


def test_a_failing_run_shows_its_error_and_nothing_else_stops(md17_state):
    panel = tiny(TrainingPanel(md17_state), strategy="delta")  # needs two levels; this dataset has one
    run = panel.start()
    assert run.wait(60) and run.state == "failed"
    wait_for(lambda: "Could not train" in panel.error.value)
    assert "exactly one low fidelity" in panel.error.value
    assert "failed" in panel.log_view.value and run.name in md17_state.runs
    panel.strategy.value = "single"
    ok = panel.start()
    assert ok.wait(120) and ok.state == "done"


def test_taken_names_and_empty_choices_are_refused(md17_state):
    panel = tiny(TrainingPanel(md17_state))
    panel.run_name.value = "mine"
    first = panel.start()
    panel.run_name.value = "mine"
    assert panel.start() is None and "exists already" in panel.error.value
    first.wait(120)
    panel.rows["pbe+vdw-ts"].use.value = False
    assert panel.start() is None and "at least one level" in panel.error.value
    assert list(md17_state.runs) == ["mine"]


def test_stop_cancels_the_run_and_keeps_its_best_weights(md17_state):
    panel = tiny(TrainingPanel(md17_state), epochs=5000)
    run = panel.start()
    wait_for(lambda: run.epochs >= 2)
    panel.stop_button.click()
    assert run.wait(60) and run.state == "cancelled"
    assert isinstance(run.model, TrainedModel) and run.model.status == "cancelled"
    assert run.epochs < 5000 and run.name in md17_state.finished_runs()
    wait_for(lambda: "cancelled" in panel.progress_text.value)


def test_queued_runs_start_one_after_another(md17_state):
    panel = tiny(TrainingPanel(md17_state), epochs=40)
    panel.queue.value = True
    first = panel.start()
    panel.epochs.value = 2
    second = panel.start()
    assert second.state == "waiting" and second.epochs == 0
    assert "waiting" in panel.runs_table.value and "waiting for the jobs before it" in second.log[0]
    first_state_when_second_began = []
    second.subscribe(lambda run, event: first_state_when_second_began.append(first.state) if event == "stage" else 0)
    assert first.wait(180) and second.wait(180)
    assert first.state == second.state == "done"
    assert first_state_when_second_began[0] == "done"


def test_runs_survive_a_new_panel_and_a_new_workbench(md17_state, monkeypatch):
    panel = tiny(TrainingPanel(md17_state))
    run = panel.start()
    again = TrainingPanel(md17_state)  # the cell drawn again while the run trains
    assert run.wait(120)
    wait_for(lambda: "done" in again.runs_table.value)
    assert list(again.shown.options) == [run.name] and again.shown.value == run.name
    wait_for(lambda: any(len(t.x) == 3 for t in again.figure.data))
    # Workbench() without a state uses the session's, so running its cell again keeps the runs.
    monkeypatch.setattr(WorkbenchState, "_session", md17_state)
    app = Workbench()
    assert app.state is md17_state and app.panels["Training"].shown.value == run.name
    assert run.name in app.panels["Compare"].runs.options
