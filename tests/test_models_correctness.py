"""Every model family, in float64: symmetry, conservative forces, smooth cutoff, safe bit-exact save/load."""

import pickle

import numpy as np
import pytest
import torch
from ase.build import molecule
from scipy.spatial.transform import Rotation

from workbench.models import Batch, ModelFileError, build_model, energy_and_forces, load_model, save_model

CUTOFF = 3.0
# Small widths keep each test well under a second; the cutoff is shorter than ethanol, so some pairs are outside.
SETTINGS = {
    "hipnn": dict(n_features=8, n_interactions=2, n_atom_layers=1, n_sensitivities=6, cutoff=CUTOFF),
    "hipnn_tensor": dict(
        n_features=6,
        n_interactions=2,
        n_atom_layers=1,
        n_sensitivities=5,
        cutoff=CUTOFF,
        max_order=3,
        invariants="complete",
    ),
    "gmnn": dict(n_radial=3, n_basis=5, hidden=[16, 16], cutoff=CUTOFF),
    "linear": dict(n_radial=5, max_order=2, cutoff=CUTOFF),
}
CASES = [
    (family, mode)
    for family in SETTINGS
    for mode in ("heads", "embedding", "residual")
    if family != "linear" or mode == "heads"
]
FIDELITIES = ["gfn2-xtb", "ccsd(t)/cc-pvdz"]


def make_model(family, mode="heads", seed=0):
    torch.manual_seed(seed)
    model = build_model(family, [1, 6, 8], fidelities=FIDELITIES, fidelity_mode=mode, **SETTINGS[family]).double()
    # Non-zero references and scales so that every part of the heads is exercised.
    model.heads.set_references(np.array([[-13.6, -1030.0, -2040.0], [-13.5, -1029.0, -2041.0]]), np.array([0.3, 0.2]))
    if mode == "residual":  # a correction that does not vanish, as after training
        with torch.no_grad():
            torch.nn.init.normal_(model.heads.readouts[1][-1].weight, std=0.5)
    return model


def energies(model, atoms_list):
    batch = Batch.from_atoms(atoms_list, dtype=torch.float64)
    return {k: v.detach().numpy() for k, v in model(batch).items()}


def ethanol(seed=1):
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=seed)
    return atoms


@pytest.mark.parametrize("family,mode", CASES)
def test_energy_invariant_under_rotation_translation_and_permutation(family, mode):
    model = make_model(family, mode)
    ref = ethanol()
    rotated = ref.copy()
    rot = Rotation.random(random_state=3).as_matrix()
    rotated.positions = ref.positions @ rot.T + np.array([1.7, -2.3, 0.4])
    permuted = ref.copy()
    order = np.arange(len(ref))
    hydrogens = np.flatnonzero(ref.numbers == 1)
    order[hydrogens] = hydrogens[::-1]  # reverse the hydrogens among themselves
    permuted = permuted[order]
    e = energies(model, [ref, rotated, permuted])
    for name, values in e.items():
        assert np.ptp(values) < 1e-10 * abs(values[0]), (name, values)
    # The heads differ, so the test would see a model that ignored the fidelity.
    assert abs(e[FIDELITIES[0]][0] - e[FIDELITIES[1]][0]) > 0.1
    # Forces rotate with the molecule.
    batch = Batch.from_atoms([ref, rotated], dtype=torch.float64)
    _, forces = energy_and_forces(model, batch, FIDELITIES[1])
    f = forces.detach().numpy()
    np.testing.assert_allclose(f[: len(ref)] @ rot.T, f[len(ref) :], atol=1e-10)


@pytest.mark.parametrize("family,mode", CASES)
def test_forces_equal_finite_difference_gradients(family, mode):
    model = make_model(family, mode)
    atoms = ethanol()
    batch = Batch.from_atoms(atoms, dtype=torch.float64)
    _, forces = energy_and_forces(model, batch, FIDELITIES[0])
    forces = forces.detach().numpy()
    assert np.abs(forces).max() > 1e-3  # a model with no forces would pass trivially
    h = 1e-5
    for atom, axis in [(0, 0), (2, 1), (5, 2), (8, 0)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        e = energies(model, [plus, minus])[FIDELITIES[0]]
        fd = -(e[0] - e[1]) / (2 * h)
        assert abs(fd - forces[atom, axis]) < 1e-6 * max(1.0, abs(fd)), (atom, axis, fd, forces[atom, axis])


@pytest.mark.parametrize("family,mode", CASES)
def test_energy_and_forces_continuous_as_a_neighbour_crosses_the_cutoff(family, mode):
    model = make_model(family, mode)

    def pair(distance):
        # A water whose hydrogens point away from a carbon atom ``distance`` Å from its oxygen: only
        # the C-O pair crosses the cutoff at this distance (the C-H pairs are farther apart).
        from ase import Atoms

        return Atoms("OH2C", positions=[[0, 0, 0], [-0.6, 0.76, 0], [-0.6, -0.76, 0], [distance, 0, 0]])

    eps = 1e-7
    inside, outside = pair(CUTOFF - eps), pair(CUTOFF + eps)
    assert abs(inside.get_distance(0, 3) - (CUTOFF - eps)) < 1e-12
    assert min(inside.get_distance(1, 3), inside.get_distance(2, 3)) > CUTOFF + 0.05
    batch = Batch.from_atoms([inside, outside, pair(CUTOFF - 1.0)], dtype=torch.float64)
    for name in FIDELITIES:
        e, f = energy_and_forces(model, batch, name)
        e, f = e.detach().numpy(), f.detach().numpy().reshape(3, -1, 3)
        assert abs(e[0] - e[1]) < 1e-9, (name, e)
        assert np.abs(f[0] - f[1]).max() < 1e-6, name
        # Inside the cutoff the pair does interact: the model is not trivially flat.
        assert abs(e[2] - e[1]) > 1e-6, (name, e)


def _train_briefly(model, steps=5):
    batch = Batch.from_atoms([ethanol(s) for s in range(4)], dtype=torch.float64)
    targets = torch.linspace(-0.2, 0.2, 4, dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        e = model(batch)
        loss = sum(((v - v.mean() - targets) ** 2).mean() for v in e.values())
        loss.backward()
        opt.step()
    return model


@pytest.mark.parametrize("family,mode", CASES)
def test_untrained_and_trained_models_save_and_load_bit_exactly(family, mode, tmp_path):
    batch = Batch.from_atoms([ethanol(5), molecule("H2O")], dtype=torch.float64)
    for trained in (False, True):
        model = make_model(family, mode, seed=7)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        if trained:
            _train_briefly(model)
            assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
        path = tmp_path / f"{family}-{mode}-{trained}.safetensors"
        save_model(model, path)
        loaded = load_model(path)
        assert type(loaded) is type(model) and loaded.get_settings() == model.get_settings()
        for key, value in model.state_dict().items():
            assert loaded.state_dict()[key].dtype == value.dtype
            assert torch.equal(loaded.state_dict()[key], value), key
        out, out_loaded = model(batch), loaded(batch)
        for name in FIDELITIES:
            assert torch.equal(out[name], out_loaded[name])
        _, f = energy_and_forces(model, batch, FIDELITIES[1])
        _, f_loaded = energy_and_forces(loaded, batch, FIDELITIES[1])
        assert torch.equal(f, f_loaded)


class _Payload:
    """Unpickling this object would create a file: the marker of code run during loading."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_unpickles(tmp_path):
    marker = tmp_path / "code-was-run"
    crafted = tmp_path / "model.safetensors"
    crafted.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelFileError, match="not a workbench model file"):
        load_model(crafted)
    # A torch checkpoint (a zip of pickles) holding the same payload is refused too.
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"state": _Payload(marker)}, checkpoint)
    with pytest.raises(ModelFileError):
        load_model(checkpoint)
    assert not marker.exists()


def test_unknown_element_and_unknown_head_are_named():
    model = make_model("hipnn")
    with pytest.raises(ValueError, match=r"\[7\]"):
        model(Batch.from_atoms(molecule("NH3"), dtype=torch.float64))
    with pytest.raises(KeyError, match="wb97x"):
        energy_and_forces(model, Batch.from_atoms(molecule("H2O"), dtype=torch.float64), "wb97x/6-31g*")


def test_registry_lists_every_family_and_rebuilds_from_json_settings():
    import json

    from workbench.models import families, get_family

    table = families()
    assert set(table.index) == {"hipnn", "hipnn_tensor", "gmnn", "linear"}
    assert all(isinstance(d, str) and len(d) > 20 for d in table["description"])
    assert table.loc["hipnn", "defaults"]["n_features"] == 60
    for family, mode in CASES:
        model = make_model(family, mode)
        settings = json.loads(json.dumps(model.get_settings()))
        rebuilt = get_family(family)(**settings).double()
        rebuilt.load_state_dict(model.state_dict())
        batch = Batch.from_atoms(ethanol(), dtype=torch.float64)
        assert torch.equal(model(batch)[FIDELITIES[0]], rebuilt(batch)[FIDELITIES[0]])
    with pytest.raises(KeyError, match="known"):
        get_family("schnet")


def test_hipnn_tensor_takes_hipnn_settings_and_documents_its_own():
    import inspect

    from workbench.models import HIPNN, HIPNNTensor, default_settings

    hipnn = list(inspect.signature(HIPNN).parameters)
    params = inspect.signature(HIPNNTensor).parameters
    assert list(params) == [*hipnn, "max_order", "invariants"]
    assert params["max_order"].default == 2 and params["invariants"].default == "norms"
    assert default_settings("hipnn_tensor") == {**default_settings("hipnn"), "max_order": 2, "invariants": "norms"}
    # every setting is stored, defaults included, in HIP-NN's order and then the tensor ones
    model = build_model("hipnn_tensor", [1, 8], n_features=4, max_order=3)
    settings = model.get_settings()
    assert list(settings) == [*hipnn, "max_order", "invariants"]
    assert settings["n_features"] == 4 and settings["n_sensitivities"] == 20 and settings["max_order"] == 3
    assert HIPNNTensor([1, 8], ["a", "b"]).fidelities == ["a", "b"]  # HIP-NN's positional order holds
    with pytest.raises(TypeError, match="n_feature"):
        HIPNNTensor([1, 8], n_feature=4)
