"""Batch from a fidelity-mixed Dataset, neighbour pairs, and reference-energy initialisation."""

import numpy as np
import torch
from ase.build import molecule

from workbench.data import Dataset
from workbench.models import Batch, Neighbourhood, build_model, scatter_sum


def mixed_dataset():
    mols = [molecule("H2O"), molecule("CH3CH2OH"), molecule("CH4")]
    records = []
    for i, m in enumerate(mols):
        rec = {"numbers": m.numbers, "positions": m.positions, "energy": {"gfn2-xtb": -10.0 * len(m) - i}}
        rec["forces"] = {"gfn2-xtb": np.full((len(m), 3), 0.1 * (i + 1))}
        if i != 1:  # the high level labels only some configurations, and has no forces for the last one
            rec["energy"]["ccsd(t)/cc-pvdz"] = -11.0 * len(m)
            if i == 0:
                rec["forces"]["ccsd(t)/cc-pvdz"] = np.ones((len(m), 3))
        records.append(rec)
    return Dataset.from_configurations(records), mols


def test_batch_from_dataset_zeroes_missing_labels_and_keeps_masks():
    ds, mols = mixed_dataset()
    batch = Batch.from_dataset(ds, dtype=torch.float64)
    high = "ccsd(t)/cc-pvdz"
    assert batch.n_configurations == 3 and len(batch.numbers) == sum(len(m) for m in mols)
    assert batch.max_atoms == 9
    assert batch.energy_mask[high].tolist() == [True, False, True]
    assert batch.energy[high][1] == 0.0 and torch.isfinite(batch.energy[high]).all()
    assert batch.forces_mask[high].tolist() == [True, False, False]
    per_atom = batch.atom_forces_mask(high)
    assert per_atom.sum() == 3 and per_atom[:3].all()
    assert torch.isfinite(batch.forces[high]).all() and batch.forces[high][3:].abs().sum() == 0
    assert batch.energy["gfn2-xtb"].dtype == torch.float64
    np.testing.assert_array_equal(batch.configuration.numpy(), np.repeat([0, 1, 2], [3, 9, 5]))
    sub = Batch.from_dataset(ds, indices=[2, 0], fidelities=[high], dtype=torch.float32)
    assert sub.fidelities == [high] and sub.positions.dtype == torch.float32
    assert sub.energy_mask[high].tolist() == [True, True]
    assert sub.requires_grad().positions.requires_grad and not sub.positions.requires_grad


def test_neighbour_pairs_equal_brute_force_within_each_configuration():
    mols = [molecule("CH3CH2OH"), molecule("H2O"), molecule("C6H6")]
    batch = Batch.from_atoms(mols, dtype=torch.float64)
    cutoff = 2.2
    i, j, d = Neighbourhood.build(batch, cutoff).pairs()
    found = {(int(a), int(b)): float(x) for a, b, x in zip(i, j, d, strict=True)}
    expected = {}
    offset = 0
    for m in mols:
        dist = m.get_all_distances()
        for a in range(len(m)):
            for b in range(len(m)):
                if a != b and dist[a, b] < cutoff:
                    expected[(a + offset, b + offset)] = dist[a, b]
        offset += len(m)
    assert found.keys() == expected.keys()
    for key, value in expected.items():
        assert abs(found[key] - value) < 1e-12


def test_scatter_sum_adds_atoms_into_configurations():
    values = torch.arange(6.0)
    index = torch.tensor([0, 0, 2, 2, 2, 1])
    assert scatter_sum(values, index, 4).tolist() == [1.0, 5.0, 9.0, 0.0]


def test_initialised_references_reproduce_composition_energies():
    ds, _ = mixed_dataset()
    model = build_model("hipnn", [1, 6, 8], fidelities=["gfn2-xtb", "ccsd(t)/cc-pvdz", "mp2/cc-pvdz"])
    model.initialise_references(ds)
    refs = model.heads.references_frame(model.fidelities, model.elements)
    assert list(refs.index) == ["H", "C", "O"]
    comp = ds.composition_matrix([1, 6, 8])
    energy, mask = ds.energy("ccsd(t)/cc-pvdz")
    np.testing.assert_allclose(comp[mask] @ refs["ccsd(t)/cc-pvdz"].to_numpy(), energy[mask], atol=1e-4)
    assert (refs["mp2/cc-pvdz"] == 0).all()  # no data: left as it was


def test_a_copied_head_gives_the_same_atomic_energies_and_the_tie_penalty_measures_their_difference():
    low, high = "gfn2-xtb", "mp2/cc-pvdz"
    model = build_model("hipnn", [1, 6, 8], fidelities=[low, high], readout_hidden=[8]).double()
    heads = model.heads
    heads.set_references(np.zeros((2, 3)), scale=np.array([0.05, 0.2]))  # eV: the levels' scales differ
    features = torch.randn(7, heads.readouts[0][0].in_features, dtype=torch.float64)
    assert not torch.allclose(heads.atomic_energy(0, features), heads.atomic_energy(1, features))
    assert float(heads.tie_penalty(0).detach()) > 0
    heads.copy_readout(0, 1)
    torch.testing.assert_close(heads.atomic_energy(1, features), heads.atomic_energy(0, features))
    assert float(heads.tie_penalty(0).detach()) < 1e-20
    # shift the high head's atomic energies by 0.001 eV: the penalty sees it in units of the low head's
    # scale, (0.001 / 0.05)^2, whatever the high head's own scale
    with torch.no_grad():
        heads.readouts[1][-1].bias += 0.001 / 0.2
    np.testing.assert_allclose(float(heads.tie_penalty(0).detach()), (0.001 / 0.05) ** 2, rtol=1e-9)
    heads.tie_penalty(0).backward()
    bias_low, bias_high = heads.readouts[0][-1].bias.grad, heads.readouts[1][-1].bias.grad
    assert float(bias_high) > 0 and float(bias_low) < 0  # pulls the two heads toward each other
