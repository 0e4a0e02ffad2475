"""Metrics, per-configuration errors, disagreement and worst configurations, on cases with known answers.

Known answers: a calculator that returns the reference labels has zero error everywhere; one that adds a known
constant to them has exactly that error; rotating every configuration (and its force labels) leaves a real model's
metrics unchanged; masks decide which configurations count.
"""

import functools

import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from scipy.spatial.transform import Rotation

import workbench as wb
from workbench import analysis
from workbench.data.dataset import Dataset, Labels
from workbench.models import Batch, build_model, predict

FID = "pbe+vdw-ts"
HIPNN = dict(n_features=16, n_interactions=1, n_atom_layers=1, n_sensitivities=10, cutoff=4.0)


@functools.cache
def md17():
    return wb.datasets.builtin("md17-ethanol-sample")


@functools.cache
def trained_hipnn(steps: int = 150, seed: int = 0):
    """A HIP-NN trained briefly (Adam on energies and forces) on 15 of the 20 MD17 ethanol frames, float64."""
    torch.manual_seed(seed)
    train = md17().select(range(15))
    model = build_model("hipnn", [1, 6, 8], fidelities=[FID], **HIPNN).double()
    model.initialise(train)
    batch = Batch.from_dataset(train, dtype=torch.float64)
    e_var, f_var = batch.energy[FID].var(), batch.forces[FID].pow(2).mean()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        out = predict(model, batch, [FID], create_graph=True)[FID]
        loss = (out["energy"] - batch.energy[FID]).pow(2).mean() / e_var
        loss = loss + (out["forces"] - batch.forces[FID]).pow(2).mean() / f_var
        loss.backward()
        opt.step()
    return model.eval()


class LabelCalculator(Calculator):
    """Returns a dataset's own labels at one fidelity for its geometries, plus optional constant shifts (eV, eV/Å)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, ds, fidelity, energy_shift=0.0, force_shift=(0.0, 0.0, 0.0)):
        super().__init__()
        lab = ds.labels[fidelity]
        self.table = {}
        for i in range(len(ds)):
            lo, hi = ds.ptr[i], ds.ptr[i + 1]
            key = np.round(np.asarray(ds.positions[lo:hi], dtype=float), 6).tobytes()
            self.table[key] = (lab.energy[i] + energy_shift, lab.forces[lo:hi] + np.asarray(force_shift))

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy, forces = self.table[np.round(self.atoms.positions, 6).tobytes()]
        self.results = {"energy": float(energy), "forces": np.array(forces, dtype=float)}


def rotated(ds: Dataset, rotation: np.ndarray) -> Dataset:
    """The same configurations and labels turned by one rotation matrix."""
    labels = {
        name: Labels(
            lab.energy, lab.energy_mask, None if lab.forces is None else lab.forces @ rotation.T, lab.forces_mask
        )
        for name, lab in ds.labels.items()
    }
    return Dataset(ds.numbers, ds.positions @ rotation.T, ds.ptr, labels, dict(ds.fidelity_info), ds.info.copy())


ERRORS = [
    "energy_mae",
    "energy_rmse",
    "energy_mae_per_atom",
    "energy_rmse_per_atom",
    "energy_max",
    "force_mae",
    "force_rmse",
    "force_norm_mae",
    "force_norm_rmse",
    "force_max",
]


def test_perfect_model_has_zero_error_everywhere():
    ds = md17()
    table = analysis.metrics({"perfect": LabelCalculator(ds, FID)}, ds)
    assert len(table) == 1 and table.loc[0, "model"] == "perfect" and table.loc[0, "fidelity"] == FID
    row = table.iloc[0]
    for col in ERRORS + ["force_mae_H", "force_rmse_C", "force_rmse_O"]:
        assert row[col] == pytest.approx(0.0, abs=1e-12), col
    assert row["n_energy"] == 20 and row["n_forces"] == 20 and row["eval_time_s"] > 0
    assert pd_na(row["n_parameters"])


def pd_na(value) -> bool:
    import pandas as pd

    return value is None or pd.isna(value)


def test_constant_shift_gives_exactly_that_error_in_ev_and_kcal():
    ds = md17()
    calc = LabelCalculator(ds, FID, energy_shift=0.01, force_shift=(0.03, -0.04, 0.0))
    row = analysis.metrics([calc], ds).iloc[0]
    assert row["energy_mae"] == pytest.approx(0.01) and row["energy_rmse"] == pytest.approx(0.01)
    assert row["energy_mae_per_atom"] == pytest.approx(0.01 / 9)
    assert row["force_mae"] == pytest.approx(0.07 / 3)
    assert row["force_rmse"] == pytest.approx(np.sqrt(0.0025 / 3))
    assert row["force_norm_mae"] == pytest.approx(0.05) and row["force_max"] == pytest.approx(0.05)
    for element in "HCO":
        assert row[f"force_mae_{element}"] == pytest.approx(0.07 / 3)
    kcal = analysis.metrics([calc], ds, units="kcal/mol")
    per_kcal = units.kcal / units.mol
    assert kcal.loc[0, "energy_mae"] == pytest.approx(0.01 / per_kcal)
    assert kcal.loc[0, "force_norm_mae"] == pytest.approx(0.05 / per_kcal)
    assert kcal.attrs["units"]["forces"] == "kcal/mol/Å"
    # Removing the mean signed energy error removes a constant offset entirely.
    shifted = analysis.metrics([calc], ds, energy_shift="mean").iloc[0]
    assert shifted["energy_mae"] == pytest.approx(0.0, abs=1e-9)


def test_only_labelled_configurations_count():
    ds = md17()
    calc = LabelCalculator(ds, FID, energy_shift=0.02)
    budget = ds.keep_labels(FID, indices=range(5), properties=("energy",))
    row = analysis.metrics([calc], budget).iloc[0]
    assert row["n_energy"] == 5 and row["n_forces"] == 0
    with pytest.raises(ValueError, match="nothing to compare"):
        analysis.metrics([calc], ds.drop_fidelity(FID))
    assert row["energy_mae"] == pytest.approx(0.02) and np.isnan(row["force_rmse"])
    errors = analysis.configuration_errors([calc], budget)
    assert sorted(errors["configuration"]) == [0, 1, 2, 3, 4]
    assert errors["force_rmse"].isna().all()


def test_rotating_every_configuration_leaves_the_metrics_unchanged():
    ds = md17()
    model = trained_hipnn()
    turn = Rotation.from_euler("zyx", [40, -25, 110], degrees=True).as_matrix()
    before = analysis.metrics([model], ds)
    after = analysis.metrics([model], rotated(ds, turn))
    # every error except the component MAE (|F_x| depends on where x points) is invariant
    invariant = [c for c in ERRORS if c != "force_mae"] + ["force_rmse_H", "force_rmse_O"]
    for col in invariant:
        assert after.loc[0, col] == pytest.approx(before.loc[0, col], rel=1e-6, abs=1e-9), col
    # a real model, briefly trained: clearly better than predicting zero forces, clearly not perfect
    zero_force_rmse = float(np.sqrt(np.mean(ds.labels[FID].forces ** 2)))
    assert 0.05 < before.loc[0, "force_rmse"] < 0.8 * zero_force_rmse


def test_ranking_and_best_per_column_pick_the_better_model():
    ds = md17()
    untrained = build_model("hipnn", [1, 6, 8], fidelities=[FID], **HIPNN).double().initialise(ds)
    table = analysis.metrics({"trained": trained_hipnn(), "untrained": untrained}, ds)
    ranked = analysis.rank(table, by="force_rmse")
    assert list(ranked["model"]) == ["trained", "untrained"] and list(ranked["rank"]) == [1, 2]
    best = analysis.best_per_column(table, ["force_rmse", "force_mae", "force_norm_rmse"])
    assert best.loc[FID].tolist() == ["trained"] * 3
    assert table["n_parameters"].tolist() == [sum(p.numel() for p in untrained.parameters())] * 2
    with pytest.raises(KeyError, match="no column"):
        analysis.rank(table, by="nonsense")


def test_configuration_errors_add_up_to_the_metrics():
    ds = md17()
    model = trained_hipnn()
    table = analysis.metrics([model], ds).iloc[0]
    per_conf = analysis.configuration_errors([model], ds)
    assert len(per_conf) == 20 and (per_conf["n_atoms"] == 9).all()
    # every configuration has 9 atoms, so the mean of squared per-configuration RMSEs is the overall one
    assert np.sqrt(np.mean(per_conf["force_rmse"] ** 2)) == pytest.approx(table["force_rmse"], rel=1e-9)
    assert np.abs(per_conf["energy_error"]).mean() == pytest.approx(table["energy_mae"], rel=1e-9)
    np.testing.assert_allclose(per_conf["energy_predicted"] - per_conf["energy_reference"], per_conf["energy_error"])
    worst = analysis.worst_configurations(per_conf, n=3)
    assert worst["configuration"].tolist() == per_conf.nlargest(3, "force_rmse")["configuration"].tolist()
    again = analysis.worst_configurations([model], ds, n=3)
    assert again["configuration"].tolist() == worst["configuration"].tolist()


def test_disagreement_between_two_models_is_half_their_difference():
    ds = md17()
    model = trained_hipnn()
    perfect = LabelCalculator(ds, FID)
    spread = analysis.disagreement({"model": model, "labels": perfect}, ds)
    assert spread.attrs["members"] == ["model", "labels"]
    evaluation = analysis.evaluate([model], ds)[0]
    # with two members the standard deviation is half the difference; energies are aligned by a constant first
    diff = evaluation.energy - ds.labels[FID].energy
    np.testing.assert_allclose(spread["energy_std"], np.abs(diff - diff.mean()) / 2, atol=1e-9)
    df = (evaluation.forces - ds.labels[FID].forces).reshape(20, 9, 3)
    expected = np.sqrt(np.mean(np.sum((df / 2) ** 2, axis=2), axis=1))
    np.testing.assert_allclose(spread["force_std"], expected, rtol=1e-9)
    same = analysis.disagreement({"a": perfect, "b": LabelCalculator(ds, FID, energy_shift=3.0)}, ds)
    assert same["energy_std"].max() == pytest.approx(0.0, abs=1e-9) and same["force_std"].max() == 0.0
    top = analysis.worst_configurations([model, perfect], ds, n=2, by="disagreement")
    assert top["configuration"].tolist() == spread.nlargest(2, "force_std")["configuration"].tolist()
    with pytest.raises(ValueError, match="at least two"):
        analysis.disagreement([perfect], ds)


def test_parity_data_carries_configuration_and_atom_indices():
    ds = md17()
    calc = LabelCalculator(ds, FID, force_shift=(0.1, 0.0, 0.0))
    forces = analysis.parity_data([calc], ds, "forces")
    assert len(forces) == 20 * 9 * 3 and forces.attrs["units"] == "eV/Å"
    row = forces[(forces["configuration"] == 7) & (forces["atom"] == 4) & (forces["component"] == "x")].iloc[0]
    assert row["reference"] == pytest.approx(ds.labels[FID].forces[7 * 9 + 4, 0])
    assert row["predicted"] == pytest.approx(row["reference"] + 0.1)
    energy = analysis.parity_data([calc], ds, "energy", per_atom=True, units="kcal/mol")
    assert energy.attrs["units"] == "kcal/mol/atom"
    per_kcal = units.kcal / units.mol
    np.testing.assert_allclose(energy["reference"], ds.labels[FID].energy / 9 / per_kcal)


def dft_vs_xtb_rmse(ds) -> float:
    return float(np.sqrt(np.mean((ds.labels["gfn2-xtb"].forces - ds.labels[FID].forces) ** 2)))


@pytest.mark.qm
def test_heads_meet_their_own_level_and_a_calculator_meets_every_level():
    ds = md17()
    xtb = wb.label(ds, "gfn2-xtb", background=False, progress=False).result()
    assert set(xtb.fidelity_names) == {"gfn2-xtb", FID}
    two_heads = build_model("hipnn", [1, 6, 8], fidelities=["gfn2-xtb", FID], **HIPNN).double().initialise(xtb)
    perfect = LabelCalculator(xtb, FID)
    table = analysis.metrics({"mf": two_heads, "xtb": "gfn2-xtb", "dft": perfect}, xtb, energy_shift="mean")
    pairs = set(zip(table["model"], table["head"].fillna("-"), table["fidelity"], strict=True))
    assert pairs == {
        ("mf", "gfn2-xtb", "gfn2-xtb"),
        ("mf", FID, FID),
        ("xtb", "gfn2-xtb", "gfn2-xtb"),
        ("dft", "-", "gfn2-xtb"),
        ("dft", "-", FID),
    }
    own = table[(table["model"] == "xtb") & (table["fidelity"] == "gfn2-xtb")].iloc[0]
    assert own["energy_mae"] < 1e-6 and own["force_max"] < 1e-6  # the same program recomputes its own labels
    dft = table[(table["model"] == "dft") & (table["fidelity"] == FID)].iloc[0]
    assert dft["force_max"] == 0.0
    # "the low level as is": xTB judged against the DFT labels
    low = analysis.metrics({"xtb": "gfn2-xtb"}, xtb, fidelities=[FID], energy_shift="mean")
    assert low["fidelity"].tolist() == [FID]
    assert low.loc[0, "force_rmse"] == pytest.approx(dft_vs_xtb_rmse(xtb), rel=1e-6)
    assert 0.01 < low.loc[0, "force_rmse"] < 1.0  # close to, not equal to, the DFT forces
    heads = analysis.disagreement([two_heads], xtb)
    assert heads.attrs["members"] == ["hipnn · gfn2-xtb", f"hipnn · {FID}"]
    assert (heads["force_std"] > 0).all()
