"""Training throughput: configurations per second of full training steps, our HIP-NN next to hippynn's.

One step = gather a batch, energies, forces by autograd with the graph kept, an energy + force loss,
backward, gradient clipping, Adam. Ours runs the training engine's own code path (TensorData batches,
the masked loss, the optimizer the trainer builds); hippynn's HIP-NN (same width, depth, sensitivities
and cutoff) runs as a GraphModule on padded arrays with a plain MSE loss. Both train on the same
configurations: the built-in ethanol set when installed (else the MD17 ethanol sample, rattled), and
aspirin configurations from standard bond lengths, rattled, with labels from GFN2-xTB when tblite is
installed. Prints one table and the ratio (above 1: ours is faster).

    python benchmarks/train_throughput.py [--device cpu|cuda] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import workbench as wb
from workbench.data import Dataset
from workbench.training.data import TensorData
from workbench.training.settings import TrainSettings
from workbench.training.stages import make_loss, new_model
from workbench.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from inference import (  # noqa: E402
    ATOM_LAYERS,
    CUTOFF,
    ELEMENTS,
    INTERACTIONS,
    SENSITIVITIES,
    SOFT_MAX,
    SOFT_MIN,
    WIDTH,
    aspirin,
    rattled,
)

FID = "gfn2-xtb"


def ethanol_data(n: int) -> Dataset:
    if "ethanol" in wb.datasets.names():
        ds = wb.datasets.builtin("ethanol")
        return ds.select(np.flatnonzero(ds.labels[FID].forces_mask)[:n])
    md17 = wb.datasets.builtin("md17-ethanol-sample")
    atoms = [a for i in range(len(md17)) for a in rattled(md17.to_atoms(i), n // len(md17) + 1, seed=i)][:n]
    return label(atoms)


def label(atoms_list) -> Dataset:
    """GFN2-xTB energies and forces (eV, eV/Å), or random numbers of the right shape without tblite
    (throughput does not depend on the values)."""
    try:
        from workbench.qm import label as qm_label

        records = [{"numbers": a.numbers, "positions": a.positions} for a in atoms_list]
        return qm_label(Dataset.from_configurations(records), FID, background=False, progress=False).result()
    except ImportError:
        rng = np.random.default_rng(0)
        records = [
            {
                "numbers": a.numbers,
                "positions": a.positions,
                "energy": {FID: rng.normal()},
                "forces": {FID: rng.normal(size=(len(a), 3))},
            }
            for a in atoms_list
        ]
        return Dataset.from_configurations(records)


def timed(step, n_steps: int, device: str) -> float:
    """Seconds per step (after five warm-up steps: hippynn compiles a kernel with torch.compile)."""
    for _ in range(5):
        step(0)
    if device != "cpu":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(n_steps):
        step(k + 1)
    if device != "cpu":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n_steps


def ours(ds: Dataset, batch_size: int, n_steps: int, device: str) -> float:
    settings = TrainSettings(device=device, batch_size=batch_size, lr=1e-4)
    model = new_model(
        "hipnn",
        ELEMENTS,
        [FID],
        dict(
            n_features=WIDTH,
            n_interactions=INTERACTIONS,
            n_atom_layers=ATOM_LAYERS,
            n_sensitivities=SENSITIVITIES,
            cutoff=CUTOFF,
            soft_min=SOFT_MIN,
            soft_max=SOFT_MAX,
        ),
        settings,
    )
    model.initialise(ds)
    loss = make_loss(ds, {FID: FID}, settings)
    data = TensorData(ds, [FID], settings.torch_device(), settings.torch_dtype)
    trainer = Trainer(model, settings, loss)
    order = np.random.default_rng(0).permutation(len(ds))

    def step(k):
        lo = (k * batch_size) % max(len(ds) - batch_size, 1)
        batch = data.batch(order[lo : lo + batch_size])
        share, _ = loss(model, batch, data.n_energies, data.n_force_atoms, training=True)
        trainer.optimizer.zero_grad(set_to_none=True)
        share.backward()
        torch.nn.utils.clip_grad_norm_(trainer.params, 10.0)
        trainer.optimizer.step()

    return batch_size / timed(step, n_steps, device)


def peer(ds: Dataset, batch_size: int, n_steps: int, device: str) -> float | None:
    try:
        from hippynn.graphs import GraphModule, inputs, networks, physics, targets
    except ImportError:
        return None
    torch.manual_seed(0)
    species = inputs.SpeciesNode(db_name="Z")
    positions = inputs.PositionsNode(db_name="R")
    params = {
        "possible_species": [0] + ELEMENTS,
        "n_features": WIDTH,
        "n_sensitivities": SENSITIVITIES,
        "dist_soft_min": SOFT_MIN,
        "dist_soft_max": SOFT_MAX,
        "dist_hard_max": CUTOFF,
        "n_interaction_layers": INTERACTIONS,
        "n_atom_layers": ATOM_LAYERS,
        "resnet": False,
    }
    network = networks.Hipnn("hipnn", (species, positions), module_kwargs=params)
    energy = targets.HEnergyNode("energy", network)
    forces = physics.GradientNode("forces", (energy.mol_energy, positions), sign=-1)
    module = GraphModule([species, positions], [energy.mol_energy, forces]).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    # hippynn takes padded (configurations, atoms) arrays; these molecules all have one size.
    n = int(ds.n_atoms.max())
    z = torch.as_tensor(ds.numbers.reshape(len(ds), n), device=device)
    r = torch.as_tensor(ds.positions.reshape(len(ds), n, 3), dtype=torch.float32, device=device)
    e_ref = torch.as_tensor(ds.labels[FID].energy - ds.labels[FID].energy.mean(), dtype=torch.float32, device=device)
    f_ref = torch.as_tensor(ds.labels[FID].forces.reshape(len(ds), n, 3), dtype=torch.float32, device=device)
    order = torch.as_tensor(np.random.default_rng(0).permutation(len(ds)), device=device)

    def step(k):
        lo = (k * batch_size) % max(len(ds) - batch_size, 1)
        idx = order[lo : lo + batch_size]
        pos = r[idx].clone().requires_grad_(True)
        e, f = module(z[idx], pos)
        loss = ((e.squeeze(-1) - e_ref[idx]) ** 2).mean() + 10 * ((f - f_ref[idx]) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 10.0)
        optimizer.step()

    return batch_size / timed(step, n_steps, device)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="fewer steps, batch 32 only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batch_sizes = (32,) if args.quick else ((32, 128) if args.device == "cpu" else (32, 128, 512))
    n_steps = 5 if args.quick else 20
    n = max(batch_sizes) * 4
    data = {"ethanol": ethanol_data(n), "aspirin": label(rattled(aspirin(), n))}
    rows = []
    for name, ds in data.items():
        for size in batch_sizes:
            rows.append(
                {
                    "molecule": name,
                    "batch": size,
                    "hippynn HIP-NN": peer(ds, size, n_steps, args.device),
                    "workbench HIP-NN": ours(ds, size, n_steps, args.device),
                }
            )
    table = pd.DataFrame(rows).set_index(["molecule", "batch"])
    table["ratio"] = table["workbench HIP-NN"] / table["hippynn HIP-NN"]
    print(
        f"\ntraining configurations per second (energy + force loss, backward, Adam); device {args.device}, "
        f"{args.threads} thread(s); width {WIDTH}, {INTERACTIONS} interactions x {ATOM_LAYERS} atom layers, "
        f"{SENSITIVITIES} sensitivities, cutoff {CUTOFF} Å, float32; ratio = ours / hippynn (above 1: ours is faster)"
    )
    with pd.option_context("display.float_format", "{:,.2f}".format, "display.width", 200):
        print(table)
    return table


if __name__ == "__main__":
    main()
