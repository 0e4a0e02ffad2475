"""A level's own labels as a yardstick row beside the models, on the built-in ethanol data (GFN2-xTB E+F on all
2000 configurations, MP2 E+F on 300, CCSD(T) E on 200).

Known answers: the rows equal a numpy computation of the low level's labels against the target's, the energies
offset by a least-squares fit of their difference on composition; levels that share too few configurations give
no numbers and say so; the best mark counts a yardstick only where it was judged on the models' configurations.
"""

import functools

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench import analysis
from workbench.analysis.yardsticks import MIN_SHARED, yardstick_name
from workbench.data.dataset import Labels, concatenate, split_indices
from workbench.viz.compare import metrics_table

XTB, MP2, CCSD = "gfn2-xtb", "mp2/cc-pvdz", "ccsd(t)/cc-pvdz"
TINY = dict(n_features=8, n_interactions=1, n_atom_layers=1, n_sensitivities=6, cutoff=4.0)


@functools.cache
def ethanol():
    """The built-in ethanol data split 80/10/10 as the workbench splits it: (train, validation, test)."""
    ds = wb.datasets.builtin("ethanol")
    return tuple(ds.select(np.sort(part)) for part in split_indices(len(ds), [0.8, 0.1, 0.1], 0))


@functools.cache
def tiny_model():
    """A multi-fidelity HIP-NN (heads for all three levels) trained for 3 epochs on 400 training configurations."""
    train, validation, _ = ethanol()
    job = wb.train(
        train.select(range(400)), recipe="multifidelity", validation=validation, model=TINY, max_epochs=3,
        batch_size=32, lr=5e-3, progress=False, finetune_lr_factor=None,  # the joint fit keeps every head
    )  # fmt: skip
    return job.result(timeout=600)


def composition(ds) -> np.ndarray:
    """Counts of H, C, O per configuration, counted atom by atom."""
    out = np.zeros((len(ds), 3))
    for i in range(len(ds)):
        for z in ds.numbers[ds.ptr[i] : ds.ptr[i + 1]]:
            out[i, [1, 6, 8].index(int(z))] += 1
    return out


def expected_errors(ds, low: str, high: str) -> dict:
    """Energy errors of ``low`` against ``high`` after a least-squares per-element offset fitted where both have
    energies, and force errors where both have forces, computed here with numpy alone."""
    lo, hi = ds.labels[low], ds.labels[high]
    both = lo.energy_mask & hi.energy_mask
    diff = hi.energy[both] - lo.energy[both]
    comp = composition(ds)[both]
    coef, *_ = np.linalg.lstsq(comp, diff, rcond=None)
    e = lo.energy[both] + comp @ coef - hi.energy[both]
    out = {"n_energy": int(both.sum()), "energy_mae": np.mean(np.abs(e)), "energy_rmse": np.sqrt(np.mean(e**2))}
    out["energy_mae_per_atom"] = np.mean(np.abs(e) / ds.n_atoms[both])
    forces = lo.forces_mask & hi.forces_mask
    out["n_forces"] = int(forces.sum())
    if forces.any():
        atoms = np.repeat(forces, ds.n_atoms)
        f = lo.forces[atoms] - hi.forces[atoms]
        out.update(force_mae=np.mean(np.abs(f)), force_rmse=np.sqrt(np.mean(f**2)))
        out["force_max"] = np.linalg.norm(f, axis=1).max()
    return out


def row(table, model: str, fidelity: str):
    match = table[(table["model"] == model) & (table["fidelity"] == fidelity)]
    assert len(match) == 1, f"{len(match)} rows of {model} vs {fidelity}"
    return match.iloc[0]


def test_yardstick_rows_are_the_low_levels_labels_against_each_target_after_reference_offsets():
    _, _, test = ethanol()
    model = tiny_model()
    plain = analysis.metrics([model], test)
    table = analysis.metrics([model], test, yardsticks=XTB)
    yard = table[table["labels_of"].notna()]
    # one row per target the xTB labels rank below, none against xTB itself; models first within each fidelity
    assert list(zip(yard["model"], yard["fidelity"], strict=True)) == [(yardstick_name(XTB), MP2)] + [
        (yardstick_name(XTB), CCSD)
    ]
    assert yard["head"].isna().all() and yard["n_parameters"].isna().all() and yard["note"].isna().all()
    assert list(table["fidelity"]) == [XTB, MP2, MP2, CCSD, CCSD]
    for target in (MP2, CCSD):
        got, want = row(table, yardstick_name(XTB), target), expected_errors(test, XTB, target)
        for column, value in want.items():
            assert got[column] == pytest.approx(value, rel=1e-9, abs=1e-12), (target, column)
    # the test split: 24 MP2 configurations with E+F, 17 CCSD(T) with energies only
    assert row(table, yardstick_name(XTB), MP2)[["n_energy", "n_forces"]].tolist() == [24, 24]
    assert row(table, yardstick_name(XTB), CCSD)[["n_energy", "n_forces"]].tolist() == [17, 0]
    assert np.isnan(row(table, yardstick_name(XTB), CCSD)["force_rmse"])
    # the offset removes ~3900 eV between xTB and MP2 totals; what is left is tens of meV
    assert 0.01 < row(table, yardstick_name(XTB), MP2)["energy_mae"] < 0.2
    # the model rows are the same as without yardsticks
    models = table[table["labels_of"].isna()].drop(columns=["labels_of", "note"]).reset_index(drop=True)
    timing = ["eval_time_s", "time_per_configuration_ms"]
    pd.testing.assert_frame_equal(models.drop(columns=timing), plain.drop(columns=timing), check_dtype=False)
    # units follow the table
    kcal = analysis.metrics([model], test, yardsticks=XTB, units="kcal/mol")
    ratio = row(kcal, yardstick_name(XTB), MP2)["force_rmse"] / row(table, yardstick_name(XTB), MP2)["force_rmse"]
    assert ratio == pytest.approx(1 / 0.0433641, rel=1e-5)


def test_lower_takes_every_lower_level_with_labels():
    _, _, test = ethanol()
    table = analysis.metrics([tiny_model()], test, yardsticks="lower")
    pairs = list(zip(table["model"], table["fidelity"], strict=True))
    assert [p for p in pairs if "no ML" in p[0]] == [
        (yardstick_name(XTB), MP2),
        (yardstick_name(XTB), CCSD),
        (yardstick_name(MP2), CCSD),
    ]
    got, want = row(table, yardstick_name(MP2), CCSD), expected_errors(test, MP2, CCSD)
    assert got["energy_mae"] == pytest.approx(want["energy_mae"], rel=1e-9) and got["n_energy"] == 17


def test_per_element_offsets_on_two_molecules():
    """Ethanol and malonaldehyde together: two compositions, so the offset is a per-element fit, not a mean."""
    parts = [wb.datasets.builtin(name) for name in ("ethanol", "malonaldehyde")]
    ds = concatenate([part.select(part.labels[MP2].energy_mask) for part in parts])
    r = analysis.label_residuals(ds, XTB, MP2)
    assert r.n_shared_energy == len(ds) == 450 and r.note is None  # MP2 on 300 + 150
    comp = composition(ds)
    diff = ds.labels[MP2].energy - ds.labels[XTB].energy
    coef, *_ = np.linalg.lstsq(comp, diff, rcond=None)
    np.testing.assert_allclose(r.energy_error, ds.labels[XTB].energy + comp @ coef - ds.labels[MP2].energy, atol=1e-8)
    assert list(r.offsets.index) == ["H", "C", "O"]
    # the offsets reproduce each molecule's mean difference (H, C, O are not determined one by one)
    for formula in ("C2H6O", "C3H4O2"):
        one = (ds.info["formula"] == formula).to_numpy()
        assert comp[one][0] @ r.offsets.to_numpy() == pytest.approx(diff[one].mean(), abs=1e-8)
    # one mean shift for both molecules would leave eV-sized errors; the per-element fit leaves meV
    assert np.sqrt(np.mean(r.energy_error**2)) < 0.2 < np.std(diff)


def test_levels_that_share_too_few_configurations_say_so():
    _, _, test = ethanol()
    model = tiny_model()
    mp2 = np.flatnonzero(test.labels[MP2].energy_mask)
    elsewhere = test.keep_labels(XTB, indices=np.setdiff1d(np.arange(len(test)), mp2), properties=("energy", "forces"))
    table = analysis.metrics([model], elsewhere, yardsticks=XTB)
    apart = row(table, yardstick_name(XTB), MP2)
    assert apart["n_energy"] == 0 and apart["n_forces"] == 0
    assert np.isnan(apart["energy_mae"]) and np.isnan(apart["force_rmse"])
    assert apart["note"] == (
        f"{XTB} and {MP2} share no configuration with energies (at least {MIN_SHARED} needed): no energy errors; "
        f"{XTB} and {MP2} share no configuration with forces (at least {MIN_SHARED} needed): no force errors"
    )
    few = test.keep_labels(XTB, indices=mp2[:5], properties=("energy", "forces"))
    five = row(analysis.metrics([model], few, yardsticks=XTB), yardstick_name(XTB), MP2)
    assert five["n_energy"] == 5 and np.isnan(five["energy_mae"]) and "share only 5 configurations" in five["note"]
    # a pair with enough energies but no forces in common: energies judged, forces explained
    # enough energies in common but xTB forces on only 4 of the MP2 configurations: energies judged, forces explained
    forces = np.array(test.labels[XTB].forces, dtype=float)
    forces[~np.repeat(np.isin(np.arange(len(test)), mp2[:4]), test.n_atoms)] = np.nan
    four = test.select(slice(None))
    four.labels[XTB] = Labels.from_values(test.labels[XTB].energy, forces, test.ptr)
    mixed = row(analysis.metrics([model], four, yardsticks=XTB), yardstick_name(XTB), MP2)
    assert mixed["energy_mae"] == pytest.approx(expected_errors(test, XTB, MP2)["energy_mae"], rel=1e-9)
    assert mixed["n_forces"] == 4 and np.isnan(mixed["force_mae"])
    assert (
        mixed["note"]
        == f"{XTB} and {MP2} share only 4 configurations with forces (at least 10 needed): no force errors"
    )
    # a level without any forces: no force errors, and nothing to explain
    energies_only = test.keep_labels(XTB, properties=("energy",))
    plain = row(analysis.metrics([model], energies_only, yardsticks=XTB), yardstick_name(XTB), MP2)
    assert plain["n_forces"] == 0 and np.isnan(plain["force_mae"]) and plain["note"] is None
    # asking for a level that ranks below nothing the table judges, or one the dataset lacks
    with pytest.raises(ValueError, match=r"'ccsd\(t\)/cc-pvdz' \(rank 60.25\) can only be a yardstick"):
        analysis.metrics([model], test, yardsticks=CCSD)
    with pytest.raises(KeyError, match="no fidelity 'pbe0/def2-tzvp'"):
        analysis.metrics([model], test, yardsticks="pbe0/def2-tzvp")
    with pytest.raises(ValueError, match="cannot be a yardstick for themselves"):
        analysis.label_residuals(test, XTB, "GFN2-xTB")


def bold_cells(styler) -> set:
    return {cell for cell, props in styler._compute().ctx.items() if ("font-weight", "bold") in props}


def test_the_best_mark_counts_a_yardstick_only_on_the_models_configurations():
    _, _, test = ethanol()
    model = tiny_model()
    table = analysis.metrics([model], test, yardsticks=XTB)
    columns = ["model", "fidelity", "energy_mae", "force_rmse"]
    yard = row(table, yardstick_name(XTB), MP2)
    head = row(table, "hipnn", MP2)
    # a 3-epoch model is worse than the level it learned from: the raw level is the best, and is marked so
    assert yard["energy_mae"] < head["energy_mae"] and yard["force_rmse"] < head["force_rmse"]
    best = analysis.best_per_column(table, ["energy_mae", "force_rmse"])
    assert best.loc[MP2].tolist() == [yardstick_name(XTB)] * 2
    index = table.index[(table["model"] == yardstick_name(XTB)) & (table["fidelity"] == MP2)][0]
    assert {(index, 2), (index, 3)} <= bold_cells(metrics_table(table, columns))
    assert analysis.rank(table, "force_rmse").query("fidelity == @MP2")["model"].iloc[0] == yardstick_name(XTB)
    # xTB labels on only 12 of the 24 MP2 configurations: shown, but not comparable, so never the best
    mp2 = np.flatnonzero(test.labels[MP2].energy_mask)
    half = test.keep_labels(XTB, indices=mp2[::2], properties=("energy", "forces"))
    partial = analysis.metrics([model], half, yardsticks=XTB)
    yard = row(partial, yardstick_name(XTB), MP2)
    assert yard["n_energy"] == 12 and yard["force_rmse"] < row(partial, "hipnn", MP2)["force_rmse"]
    assert not analysis.comparable(partial, "force_rmse")[yard.name]
    assert (
        analysis.best_per_column(partial, ["energy_mae", "force_rmse"]).loc[MP2].tolist() == ["hipnn · mp2/cc-pvdz"] * 2
    )
    styled = metrics_table(partial, columns)
    assert not {(yard.name, 2), (yard.name, 3)} & bold_cells(styled)
    head_index = partial.index[(partial["model"] == "hipnn") & (partial["fidelity"] == MP2)][0]
    assert {(head_index, 2), (head_index, 3)} <= bold_cells(styled)
    assert analysis.rank(partial, "force_rmse").query("fidelity == @MP2")["model"].iloc[-1] == yardstick_name(XTB)
    # the yardstick rows are in grey italics
    italic = {c for c, props in styled._compute().ctx.items() if ("font-style", "italic") in props}
    assert {(yard.name, k) for k in range(4)} <= italic and not any(r == head_index for r, _ in italic)
