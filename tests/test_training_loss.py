"""The masked multi-fidelity loss: each configuration contributes exactly the labels it has."""

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.data import Dataset
from workbench.models import build_model
from workbench.training.data import TensorData, select_labels
from workbench.training.loss import MaskedLoss, label_spreads
from workbench.training.settings import TrainSettings
from workbench.training.stages import make_loss

LOW, HIGH = "pbe+vdw-ts", "pbe0/def2-tzvp"


@pytest.fixture(scope="module")
def two_levels():
    """The 20 MD17 ethanol frames; a second level made from the first (scaled and shifted, so the
    two differ in the way levels of theory do), with energies on 8 and forces on 5 configurations."""
    ds = wb.datasets.builtin("md17-ethanol-sample")
    lab = ds.labels[LOW]
    records = []
    for i in range(len(ds)):
        lo, hi = ds.ptr[i], ds.ptr[i + 1]
        rec = {
            "numbers": ds.numbers[lo:hi],
            "positions": ds.positions[lo:hi],
            "energy": {LOW: lab.energy[i]},
            "forces": {LOW: lab.forces[lo:hi]},
        }
        if i % 20 < 8:
            rec["energy"][HIGH] = 1.1 * lab.energy[i] - 3.0
        if i in (0, 3, 5, 9, 12):
            rec["forces"][HIGH] = 1.1 * lab.forces[lo:hi]
        records.append(rec)
    return Dataset.from_configurations(records)


def model_for(ds, seed=0):
    torch.manual_seed(seed)
    model = build_model(
        "hipnn",
        [1, 6, 8],
        fidelities=[LOW, HIGH],
        n_features=8,
        n_interactions=1,
        n_atom_layers=1,
        n_sensitivities=6,
        cutoff=4.0,
    ).double()
    return model.initialise(ds)


def loss_of(model, ds, loss, index=None):
    data = TensorData(ds, [LOW, HIGH], torch.device("cpu"), torch.float64)
    batch = data.batch(np.arange(len(ds)) if index is None else index)
    value, stats = loss(model, batch, data.n_energies, data.n_force_atoms, training=True)
    return value, stats, data


def test_loss_equals_the_formula_over_present_labels_only(two_levels):
    ds = two_levels
    model = model_for(ds)
    settings = TrainSettings(energy_weight=2.0, force_weight=3.0)
    loss = make_loss(ds, {LOW: LOW, HIGH: HIGH}, settings)
    value, stats, data = loss_of(model, ds, loss)
    # The same sum, written out configuration by configuration with numpy.
    expected = 0.0
    for name in (LOW, HIGH):
        s_e, s_f = label_spreads(ds, name)
        lab = ds.labels[name]
        for i in range(len(ds)):
            lo, hi = ds.ptr[i], ds.ptr[i + 1]
            atoms = ds.to_atoms(i)
            atoms.calc = wb.training.TrainedModel(model, "multifidelity").calculator(name)
            if lab.energy_mask[i]:
                e = atoms.get_potential_energy()
                expected += 2.0 / lab.energy_mask.sum() * ((e - lab.energy[i]) / (hi - lo) / s_e) ** 2
            if lab.forces_mask[i]:
                f = atoms.get_forces()
                n_force_atoms = ds.n_atoms[lab.forces_mask].sum()
                expected += 3.0 / (3 * n_force_atoms) * (((f - lab.forces[lo:hi]) / s_f) ** 2).sum()
    assert float(value.detach()) == pytest.approx(expected, rel=1e-9)
    # Statistics count what is present: 20 + 8 energies, 20 * 9 * 3 + 5 * 9 * 3 force components.
    assert stats[:, 2].tolist() == [20, 8]
    assert stats[:, 5].tolist() == [540, 135]


def test_a_missing_label_contributes_nothing_whatever_value_sits_under_its_mask(two_levels):
    ds = two_levels
    model = model_for(ds)
    loss = make_loss(ds, {LOW: LOW, HIGH: HIGH}, TrainSettings())
    data = TensorData(ds, [LOW, HIGH], torch.device("cpu"), torch.float64)
    batch = data.batch(np.arange(len(ds)))

    def value_and_grad(b):
        model.zero_grad()
        value, _ = loss(model, b, data.n_energies, data.n_force_atoms, training=True)
        value.backward()
        return float(value.detach()), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    v0, g0 = value_and_grad(batch)
    # Garbage under every mask: energies and forces of configurations without those labels.
    poisoned = data.batch(np.arange(len(ds)))
    missing_e = ~poisoned.energy_mask[HIGH]
    poisoned.energy[HIGH] = torch.where(missing_e, torch.full_like(poisoned.energy[HIGH], 1e6), poisoned.energy[HIGH])
    atom_missing = ~poisoned.forces_mask[HIGH][poisoned.configuration]
    poisoned.forces[HIGH] = torch.where(
        atom_missing[:, None], torch.full_like(poisoned.forces[HIGH], -1e5), poisoned.forces[HIGH]
    )
    v1, g1 = value_and_grad(poisoned)
    assert v1 == v0
    assert torch.equal(g0, g1)


def test_configurations_lacking_the_high_label_still_train_the_low_head(two_levels):
    """Nothing is dropped for lacking a label: the 12 configurations without a high-level energy
    still carry their low-level energy and forces into the loss."""
    ds = two_levels
    model = model_for(ds)
    loss = make_loss(ds, {LOW: LOW, HIGH: HIGH}, TrainSettings())
    without_high = np.flatnonzero(~ds.labels[HIGH].energy_mask & ~ds.labels[HIGH].forces_mask)
    assert len(without_high) >= 10
    value, stats, _ = loss_of(model, ds, loss, without_high)
    assert float(value.detach()) > 0
    assert stats[0, 2] == len(without_high) and stats[1, 2] == 0 and stats[1, 5] == 0
    # The batch shares of a partition add up to the loss of the whole set.
    rest = np.setdiff1d(np.arange(len(ds)), without_high)
    other, _, _ = loss_of(model, ds, loss, rest)
    whole, _, _ = loss_of(model, ds, loss)
    assert float((value + other).detach()) == pytest.approx(float(whole.detach()), rel=1e-12)


def test_selecting_properties_masks_the_rest(two_levels):
    ds = select_labels(two_levels, {LOW: ("energy", "forces"), HIGH: ("energy",)})
    assert ds.labels[HIGH].forces_mask.sum() == 0 and ds.labels[HIGH].energy_mask.sum() == 8
    loss = MaskedLoss({LOW: (1.0, 1.0), HIGH: (1.0, 1.0)}, {LOW: (0.01, 1.0), HIGH: (0.01, 1.0)})
    _, stats, data = loss_of(model_for(ds), ds, loss)
    assert data.n_force_atoms[HIGH] == 0 and stats[1, 5] == 0


def test_ema_warms_up_then_averages_and_keeps_its_count():
    """The first update moves the average most of the way to the new weights (decay (1+1)/(10+1)); later ones
    use the full decay; the update count travels with the state, so a resumed run continues the same average."""
    from workbench.training.optim import EMA

    layer = torch.nn.Linear(3, 1, dtype=torch.float64)
    ema = EMA(layer, decay=0.99)
    start = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.add_(1.0)
    ema.update(layer)
    np.testing.assert_allclose(ema.shadow["weight"], start + 1.0 - 2 / 11, rtol=1e-12)
    for _ in range(2000):
        ema.update(layer)
    after = ema.shadow["weight"].clone()
    with torch.no_grad():
        layer.weight.add_(1.0)
    ema.update(layer)
    np.testing.assert_allclose(ema.shadow["weight"] - after, 0.01 * (layer.weight.detach() - after), rtol=1e-9)
    again = EMA(layer, decay=0.99)
    again.load_state_dict(ema.state_dict())
    assert again.steps == ema.steps == 2002
    np.testing.assert_array_equal(again.shadow["weight"], ema.shadow["weight"])
