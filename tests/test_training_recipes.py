"""Every recipe learns on small real data (CPU, seconds each).

Data: the 20 MD17 ethanol frames (PBE+vdW-TS energies and forces) plus 13 random displacements of
each of the 14 training frames, all labelled here with GFN2-xTB energies and forces (tblite,
milliseconds each). The high level (PBE) keeps energies only, on 14 frames; 6 frames with PBE
energies and forces are held out.
A recipe learns when its held-out PBE errors fall well below trivial baselines: the mean training
energy, and zero forces. The PBE forces are never trained on, so beating the zero-force baseline
shows what the low level's forces taught the shared trunk.
"""

import copy

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.data import concatenate
from workbench.models import Batch, build_model, energy_and_forces
from workbench.qm import label
from workbench.qm.sampling import random_displacements
from workbench.training import LearningCurve, TrainedModel, train
from workbench.training.settings import TrainSettings
from workbench.training.stages import transplant

LOW, HIGH = "gfn2-xtb", "pbe+vdw-ts"
SMALL = dict(n_features=16, n_interactions=1, n_atom_layers=1, n_sensitivities=10, cutoff=4.0)
# 40 epochs on 14 high-level energies: a force weight of 10 (not the default 100, chosen on hundreds of
# configurations) leaves the energy terms enough say in so short a run.
FAST = dict(batch_size=16, lr=5e-3, max_epochs=40, patience=40, lr_patience=8, force_weight=10.0)
FAST.update(background=False, progress=False)
BOTH = {LOW: ("energy", "forces"), HIGH: ("energy",)}


@pytest.fixture(scope="module")
def levels():
    md17 = wb.datasets.builtin("md17-ethanol-sample")
    test_frames = np.arange(6)  # held out, and no displaced copies of them in training
    extra = [random_displacements(md17.to_atoms(i), 13, sigma=0.03, seed=i) for i in range(6, len(md17))]
    ds = concatenate([md17, *extra])
    ds = label(ds, LOW, background=False, progress=False).result()
    train_set = ds.select(np.arange(6, len(ds)))
    train_set = train_set.keep_labels(HIGH, properties=("energy",))
    return train_set, ds.select(test_frames)


def baselines(train_set, test):
    e_mean = np.nanmean(train_set.labels[HIGH].energy)
    lab = test.labels[HIGH]
    return float(np.abs(lab.energy - e_mean).mean()), float(np.abs(lab.forces).mean())


def assert_learns(model: TrainedModel, train_set, test, energy_factor=0.5, force_factor=0.75):
    e_base, f_base = baselines(train_set, test)
    err = model.evaluate(test, HIGH)
    ratios = err["energy_mae"] / e_base, err["forces_mae"] / f_base
    print(f"{model.recipe}: energy, forces {ratios[0]:.2f}, {ratios[1]:.2f} x baseline")
    assert err["energy_mae"] < energy_factor * e_base, (err, e_base)
    assert err["forces_mae"] < force_factor * f_base, (err, f_base)
    hist = model.history
    last = hist[hist["stage"] == hist["stage"].iloc[-1]]
    if len(last) > 5:
        assert last["train_loss"].iloc[-5:].min() < 0.5 * last["train_loss"].iloc[0]
    return err


def test_multifidelity_by_default_fits_residual_heads_then_fine_tunes_the_target(levels):
    train_set, test = levels
    model = train(train_set, family="hipnn", recipe="multifidelity", fidelities=BOTH, model=SMALL, **FAST).result()
    assert model.fidelities == [HIGH] and model.recipe == "multifidelity"
    options = model.settings["recipe_options"]
    assert options["fidelity_mode"] == "residual" and options["finetune_lr_factor"] == 0.1
    assert list(model.history.groupby("stage", sort=False).size().index) == ["train", "finetune"]
    assert_learns(model, train_set, test)


@pytest.mark.slow
def test_multifidelity_without_fine_tuning_learns_high_level_energies_and_forces_it_never_saw(levels):
    train_set, test = levels
    model = train(
        train_set,
        family="hipnn",
        recipe="multifidelity",
        fidelities=BOTH,
        model={**SMALL, "fidelity_mode": "heads"},
        finetune_lr_factor=None,
        **FAST,
    ).result()
    assert model.fidelities == [LOW, HIGH] and model.recipe == "multifidelity"
    assert_learns(model, train_set, test)
    low = model.evaluate(test, LOW)
    assert low["forces_mae"] < 0.5 * float(np.abs(test.labels[LOW].forces).mean())
    hist = model.history
    assert {f"val_energy_mae[{HIGH}]", f"val_forces_mae[{LOW}]", f"train_energy_rmse[{LOW}]"} <= set(hist.columns)


def test_multifidelity_with_a_residual_head_learns_and_its_forces_are_the_low_heads_plus_the_correction(levels):
    train_set, test = levels
    model = train(
        train_set,
        family="hipnn",
        recipe="multifidelity",
        fidelities=BOTH,
        model={**SMALL, "fidelity_mode": "residual"},
        finetune_lr_factor=None,
        **FAST,
    ).result()
    assert_learns(model, train_set, test)
    module = model.module
    assert module.fidelities == [LOW, HIGH] and module.heads.residual
    # the same trunk with the lowest head's readout switched off: its high head is the correction alone
    correction_only = copy.deepcopy(module)
    with torch.no_grad():
        for p in correction_only.heads.readouts[0].parameters():
            p.zero_()
    batch = Batch.from_dataset(test, dtype=torch.float32)
    _, f_low = energy_and_forces(module, batch, LOW)
    _, f_high = energy_and_forces(module, batch, HIGH)
    _, f_corr = energy_and_forces(correction_only, batch, HIGH)
    assert float(f_corr.abs().mean()) > 1e-3  # the correction learnt something
    np.testing.assert_allclose(f_high.detach().numpy(), (f_low + f_corr).detach().numpy(), atol=1e-5)
    # before training the high head is the low head (a constant apart: the reference energies)
    fresh = build_model("hipnn", module.elements, fidelities=[LOW, HIGH], fidelity_mode="residual", **SMALL)
    fresh.initialise(train_set)
    _, f0_low = energy_and_forces(fresh, batch, LOW)
    _, f0_high = energy_and_forces(fresh, batch, HIGH)
    assert torch.equal(f0_low, f0_high)


def test_a_residual_model_becomes_plain_heads_that_predict_the_same(levels):
    train_set, test = levels
    torch.manual_seed(0)
    levels3 = [LOW, "mp2/cc-pvdz", HIGH]  # each head is the one below plus a correction
    model = build_model("gmnn", [1, 6, 8], fidelities=levels3, fidelity_mode="residual", hidden=[16, 16])
    model.initialise(train_set)
    with torch.no_grad():
        model.heads.energy_scale.copy_(torch.tensor([0.3, 0.2, 0.05], dtype=torch.float64))
        for k in (1, 2):
            torch.nn.init.normal_(model.heads.readouts[k][-1].weight, std=0.3)
    batch = Batch.from_dataset(test, dtype=torch.float32)
    before = model(batch)
    plain = transplant(model, {HIGH: HIGH, LOW: LOW, "mp2/cc-pvdz": "mp2/cc-pvdz"}, TrainSettings(device="cpu"))
    after = plain(batch)
    assert plain.fidelity_mode == "heads" and plain.fidelities == [HIGH, LOW, "mp2/cc-pvdz"]
    for name in levels3:
        np.testing.assert_allclose(after[name].detach().numpy(), before[name].detach().numpy(), rtol=0, atol=1e-4)
    nonlinear = build_model("gmnn", [1, 6, 8], fidelities=[LOW, HIGH], fidelity_mode="residual", readout_hidden=[4])
    with pytest.raises(ValueError, match="readouts are linear"):
        transplant(nonlinear, {HIGH: HIGH}, TrainSettings(device="cpu"))
    # the recipe says so before the joint fit, not after it
    with pytest.raises(ValueError, match="linear readouts"):
        train(
            train_set,
            family="hipnn",
            recipe="multifidelity",
            fidelities=BOTH,
            model={**SMALL, "fidelity_mode": "residual", "readout_hidden": [4]},
            **FAST,
        ).result()


@pytest.mark.slow
def test_multifidelity_then_fine_tuned_keeps_the_target_head_and_moves_the_trunk(levels):
    train_set, test = levels
    model = train(
        train_set,
        family="hipnn",
        recipe="multifidelity",
        fidelities=BOTH,
        model=SMALL,
        finetune_lr_factor=0.2,
        finetune_epochs=30,
        **FAST,
    ).result()
    assert model.recipe == "multifidelity" and model.fidelities == [HIGH] and model.module.fidelities == [HIGH]
    stages = model.history.groupby("stage", sort=False)["lr"].first()
    assert list(stages.index) == ["train", "finetune"]
    assert stages["finetune"] == pytest.approx(0.2 * stages["train"])
    # the fine-tuning stage fits the high-level energies at least as well as the joint fit left them
    hist = model.history
    joint, fine = hist[hist["stage"] == "train"], hist[hist["stage"] == "finetune"]
    key = f"val_energy_mae[{HIGH}]" if f"val_energy_mae[{HIGH}]" in hist else f"train_energy_mae[{HIGH}]"
    left = joint.loc[joint["val_loss"].idxmin(), key]  # the joint fit's weights kept: those of its best epoch
    assert fine[key].min() <= left * 1.05, (fine[key].min(), left)
    # On 14 energies, 30 epochs of energy-only fine-tuning trade some of the trunk's force quality for
    # energies (here about 0.8x the zero-force baseline, against 0.55x without it); the forces must
    # still carry what the low level taught.
    e_base, f_base = baselines(train_set, test)
    err = model.evaluate(test, HIGH)
    assert err["energy_mae"] < 0.25 * e_base and err["forces_mae"] < f_base, (err, e_base, f_base)
    assert model.settings["recipe_options"]["finetune_lr_factor"] == 0.2
    with pytest.raises(ValueError, match="needs a head per level"):
        embedded = {**SMALL, "fidelity_mode": "embedding"}
        train(
            train_set,
            family="hipnn",
            recipe="multifidelity",
            fidelities=BOTH,
            model=embedded,
            finetune_lr_factor=0.1,
            **FAST,
        ).result()
    with pytest.raises(ValueError, match="linear family has no trunk"):
        train(
            train_set, family="linear", recipe="multifidelity", fidelities=BOTH, finetune_lr_factor=0.1, **FAST
        ).result()


def test_multifidelity_with_tied_heads_learns_and_the_tie_holds_the_high_head_near_the_low_one(levels):
    train_set, test = levels

    def tied(strength):  # free heads tied to the lowest one, and no fine-tuning: the joint fit alone
        heads = {**SMALL, "fidelity_mode": "heads"}
        return train(
            train_set,
            family="hipnn",
            recipe="multifidelity",
            fidelities=BOTH,
            model=heads,
            tie_heads=strength,
            finetune_lr_factor=None,
            **FAST,
        ).result()

    loose, strong = tied(1e-3), tied(1e3)
    assert_learns(loose, train_set, test)
    assert loose.settings["recipe_options"]["tie_heads"] == 1e-3 and loose.fidelities == [LOW, HIGH]
    # squared distance between the heads' readouts at the end: the penalty over its strength
    apart = {m: m.history["head_tie_penalty"].iloc[-1] / s for m, s in ((loose, 1e-3), (strong, 1e3))}
    assert apart[strong] < 0.01 * apart[loose], apart
    # held so close, the high head's atomic energies are the low head's plus a constant
    e_low, e_high = (strong.predict(test, f)["energy"] for f in (LOW, HIGH))
    shift = e_high - e_low
    assert np.std(shift) < 0.05 * np.std(e_low), (np.std(shift), np.std(e_low))  # untied: 0.36x
    for family, model, message in (
        ("linear", None, "no heads to tie"),
        ("hipnn", {**SMALL, "fidelity_mode": "embedding"}, "needs a head per level"),
    ):
        with pytest.raises(ValueError, match=message):
            train(
                train_set, family=family, recipe="multifidelity", fidelities=BOTH, model=model, tie_heads=0.1, **FAST
            ).result()


@pytest.mark.slow
def test_single_fidelity_energies_and_forces(levels):
    train_set, test = levels
    lows = train_set.drop_fidelity(HIGH)
    model = train(
        lows, family="hipnn", recipe="single", fidelities={LOW: ("energy", "forces")}, model=SMALL, **FAST
    ).result()
    err = model.evaluate(test, LOW)
    lab = test.labels[LOW]
    assert err["forces_mae"] < 0.5 * float(np.abs(lab.forces).mean())
    assert err["energy_mae"] < 0.5 * float(np.abs(lab.energy - np.mean(lows.labels[LOW].energy)).mean())


@pytest.mark.slow
def test_delta_learning_adds_a_correction_to_the_low_level(levels):
    train_set, test = levels
    model = train(train_set, family="hipnn", recipe="delta", fidelities=BOTH, model=SMALL, **FAST).result()
    assert model.base == {"kind": "qm", "fidelity": LOW}
    err = assert_learns(model, train_set, test, energy_factor=0.3, force_factor=0.5)
    # The low level comes from the dataset's labels when present, and from tblite when not.
    no_low = test.drop_fidelity(LOW)
    pred = model.predict(no_low.select([0]), HIGH)
    again = model.predict(test.select([0]), HIGH)
    np.testing.assert_allclose(pred["energy"], again["energy"], atol=1e-4)
    atoms = test.to_atoms(1)
    atoms.calc = model.calculator()
    assert abs(atoms.get_potential_energy() - model.predict(test.select([1]))["energy"][0]) < 1e-4
    assert err["energy_mae"] < 0.3 * baselines(train_set, test)[0]
    # a narrower Δ network, as its own setting, still learns; the setting is kept with the model
    narrow = train(
        train_set, family="hipnn", recipe="delta", fidelities=BOTH, model=SMALL, delta_model={"n_features": 4}, **FAST
    ).result()
    assert narrow.n_parameters < model.n_parameters
    assert narrow.settings["recipe_options"]["delta_model"] == {"n_features": 4}
    assert_learns(narrow, train_set, test, energy_factor=0.3, force_factor=0.5)


@pytest.mark.slow
def test_transfer_fine_tunes_at_a_lower_learning_rate(levels):
    train_set, test = levels
    model = train(
        train_set,
        family="hipnn",
        recipe="transfer",
        fidelities=BOTH,
        model=SMALL,
        finetune_lr_factor=0.2,
        layer_lr_decay=0.5,
        finetune_epochs=80,
        **FAST,
    ).result()
    assert model.fidelities == [HIGH] and model.module.fidelities == [HIGH]
    stages = model.history.groupby("stage", sort=False)["lr"].first()
    assert list(stages.index) == ["pretrain", "finetune"]
    assert stages["finetune"] == pytest.approx(0.2 * stages["pretrain"])
    assert_learns(model, train_set, test)


@pytest.mark.slow
def test_meta_learning_then_fine_tuning(levels):
    train_set, test = levels
    model = train(
        train_set,
        family="hipnn",
        recipe="meta",
        fidelities=BOTH,
        model=SMALL,
        meta_epochs=30,
        inner_steps=8,
        finetune_epochs=80,
        **FAST,
    ).result()
    assert list(model.history["stage"].unique()) == ["meta", "finetune"]
    assert f"train_loss[{LOW}]" in model.history.columns
    assert_learns(model, train_set, test)


@pytest.mark.slow
def test_learning_curve_trains_one_model_per_budget(levels):
    train_set, test = levels
    curve = train(
        train_set,
        family="linear",
        recipe="learning_curve",
        fidelities={HIGH: ("energy",)},
        validation=test,
        budgets=[4, 14],
        inner="single",
        model=dict(cutoff=4.0, n_radial=6),
        **FAST,
    ).result()
    assert isinstance(curve, LearningCurve) and list(curve.models) == [4, 14]
    assert curve.table.loc[14, "n_energies"] == len(test)
    assert curve.models[4].module.heads.references.abs().sum() > 0
    # With more labels the closed-form model's energies come closer.
    assert curve.table.loc[14, "energy_mae"] < curve.table.loc[4, "energy_mae"]
