"""Short real training on the MD17 ethanol sample: every family learns (loss falls well below a baseline)."""

from pathlib import Path

import ase.db
import numpy as np
import pytest
import torch
from ase import units

from workbench.data import Dataset
from workbench.models import Batch, build_model, predict

FIDELITY = "pbe+vdw-ts"
KCAL = units.kcal / units.mol  # kcal/mol in eV

# family -> (settings, Adam steps, learning rate)
RECIPES = {
    "hipnn": (dict(n_features=16, n_interactions=1, n_atom_layers=1, n_sensitivities=10, cutoff=4.0), 200, 1e-2),
    "hipnn_tensor": (
        dict(n_features=16, n_interactions=1, n_atom_layers=1, n_sensitivities=10, cutoff=4.0, max_order=2),
        200,
        1e-2,
    ),
    "gmnn": (dict(n_radial=4, n_basis=6, hidden=[32, 32], cutoff=4.0), 200, 1e-2),
}


@pytest.fixture(scope="module")
def ethanol():
    """The 20 MD17 ethanol frames (energies in kcal/mol, forces in kcal/mol/Å in row.data) in eV, eV/Å."""
    records = []
    with ase.db.connect(Path(__file__).parent / "data" / "schnetpack_md17_ethanol" / "test_ethanol.db") as db:
        for row in db.select():
            records.append(
                {
                    "numbers": row.numbers,
                    "positions": row.positions,
                    "energy": {FIDELITY: float(np.ravel(row.data["energy"])[0]) * KCAL},
                    "forces": {FIDELITY: np.asarray(row.data["forces"]) * KCAL},
                }
            )
    return Dataset.from_configurations(records)


def errors(model, batch):
    out = predict(model, batch, [FIDELITY])[FIDELITY]
    de = (out["energy"] - batch.energy[FIDELITY]).detach()
    df = (out["forces"] - batch.forces[FIDELITY]).detach()
    return float((de - de.mean()).pow(2).mean().sqrt()), float(df.pow(2).mean().sqrt())


def train(model, batch, steps, lr):
    """Adam (cosine-annealed learning rate) on energies + forces, each term divided by its baseline variance."""
    e_var = batch.energy[FIDELITY].var()
    f_var = batch.forces[FIDELITY].pow(2).mean()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        out = predict(model, batch, [FIDELITY], create_graph=True)[FIDELITY]
        loss = (out["energy"] - batch.energy[FIDELITY]).pow(2).mean() / e_var
        loss = loss + (out["forces"] - batch.forces[FIDELITY]).pow(2).mean() / f_var
        loss.backward()
        opt.step()
        schedule.step()
    return model


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(RECIPES))
def test_family_learns_md17_ethanol_energies_and_forces(family, ethanol):
    torch.manual_seed(0)
    settings, steps, lr = RECIPES[family]
    train_set, test_set = ethanol.split([0.8, 0.2], seed=0)
    model = build_model(family, [1, 6, 8], fidelities=[FIDELITY], **settings).double()
    model.initialise(train_set)
    batch = Batch.from_dataset(train_set, dtype=torch.float64)
    held_out = Batch.from_dataset(test_set, dtype=torch.float64)
    # Baselines: the mean energy and zero forces.
    e_base = float(batch.energy[FIDELITY].std(unbiased=False))
    f_base = float(batch.forces[FIDELITY].pow(2).mean().sqrt())
    train(model, batch, steps, lr)
    e_rmse, f_rmse = errors(model, batch)
    assert e_rmse < 0.4 * e_base, (e_rmse, e_base)
    assert f_rmse < 0.65 * f_base, (f_rmse, f_base)
    _, f_test = errors(model, held_out)
    assert f_test < 0.75 * float(held_out.forces[FIDELITY].pow(2).mean().sqrt()), f_test


def test_linear_model_fits_md17_ethanol_in_closed_form(ethanol):
    train_set, test_set = ethanol.split([0.8, 0.2], seed=0)
    model = build_model("linear", [1, 6, 8], fidelities=[FIDELITY], n_radial=6, cutoff=4.0, ridge=1e-6).double()
    model.fit(train_set)
    batch = Batch.from_dataset(train_set, dtype=torch.float64)
    held_out = Batch.from_dataset(test_set, dtype=torch.float64)
    e_rmse, f_rmse = errors(model, batch)
    assert e_rmse < 0.4 * float(batch.energy[FIDELITY].std(unbiased=False))
    assert f_rmse < 0.65 * float(batch.forces[FIDELITY].pow(2).mean().sqrt())
    _, f_test = errors(model, held_out)
    assert f_test < 0.75 * float(held_out.forces[FIDELITY].pow(2).mean().sqrt())
    # A closed-form fit is a minimum: nudging any coefficient raises the weighted training loss.
    coef = model.coefficients(FIDELITY)
    assert coef.shape == (3, len(model.feature_names())) and list(coef.index) == ["H", "C", "O"]
    assert np.isfinite(coef.to_numpy()).all() and np.abs(coef.to_numpy()).max() > 0

    def loss():
        out = predict(model, batch, [FIDELITY])[FIDELITY]
        return float(
            (
                (out["energy"] - batch.energy[FIDELITY]).pow(2).sum()
                + (out["forces"] - batch.forces[FIDELITY]).pow(2).sum()
            ).detach()
        )

    best = loss()
    weight = model.heads.readouts[0][0].weight
    with torch.no_grad():
        weight[0, 5] += 1e-3 / float(model.heads.energy_scale[0])
    assert loss() > best
