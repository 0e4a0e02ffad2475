"""Inference speed of every model family, side by side with hippynn's HIP-NN.

For ethanol (9 atoms) and aspirin (21 atoms): configurations per second for batched energy + force
evaluation (batch 1, 64, 1024) and ASE calculator steps per second (velocity Verlet), for each
family, and for hippynn's HIP-NN at the same width, depth, number of sensitivities and cutoff.
Prints one table; the ``vs hippynn`` column is our rate divided by hippynn's (above 1: faster).

    python benchmarks/inference.py [--device cpu|cuda] [--threads 1] [--quick]

hippynn is optional (``pip install --no-deps hippynn``); without it the peer rows are left out.
Weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from ase import Atoms, units
from ase.build import molecule
from ase.md.verlet import VelocityVerlet

from workbench.models import Batch, build_model, energy_and_forces
from workbench.models.ase_calculator import WorkbenchCalculator

WIDTH, INTERACTIONS, ATOM_LAYERS, SENSITIVITIES, CUTOFF, SOFT_MIN, SOFT_MAX = 60, 2, 3, 20, 5.0, 0.75, 4.0
ELEMENTS = [1, 6, 8]
FAMILIES = {
    "hipnn": dict(n_features=WIDTH, n_interactions=INTERACTIONS, n_atom_layers=ATOM_LAYERS, cutoff=CUTOFF),
    "hipnn_tensor": dict(n_features=WIDTH, n_interactions=INTERACTIONS, n_atom_layers=ATOM_LAYERS, cutoff=CUTOFF),
    "hipnn_tensor (l=3, 13 inv.)": dict(
        n_features=WIDTH,
        n_interactions=INTERACTIONS,
        n_atom_layers=ATOM_LAYERS,
        cutoff=CUTOFF,
        max_order=3,
        invariants="complete",
    ),
    "gmnn": dict(cutoff=CUTOFF),
    "linear": dict(cutoff=CUTOFF),
}


def aspirin() -> Atoms:
    """Aspirin (C9H8O4) from standard bond lengths: benzene ring, carboxylic acid, acetoxy group (Å)."""
    ring = [(1.39 * np.cos(a), 1.39 * np.sin(a), 0.0) for a in np.radians(np.arange(0, 360, 60))]
    pos = {f"C{i + 1}": np.array(p) for i, p in enumerate(ring)}
    unit = {k: v / np.linalg.norm(v) for k, v in pos.items()}
    for i in (3, 4, 5, 6):
        pos[f"H{i}"] = pos[f"C{i}"] + 1.08 * unit[f"C{i}"]
    # Carboxylic acid on C1, in the ring plane.
    c7 = pos["C1"] + 1.48 * unit["C1"]
    rot = lambda a: np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])  # noqa: E731
    o1 = c7 + 1.22 * rot(np.radians(-60)) @ unit["C1"]
    o2 = c7 + 1.34 * rot(np.radians(60)) @ unit["C1"]
    h_o2 = o2 + 0.97 * rot(np.radians(120)) @ unit["C1"]
    # Acetoxy on C2: ester oxygen in plane, then out of plane to keep clear of the acid group.
    o3 = pos["C2"] + 1.37 * unit["C2"]
    c8 = o3 + 1.36 * np.array([0.0, 0.55, 0.83])
    o4 = c8 + 1.20 * np.array([0.0, -0.6, 0.8]) / np.linalg.norm([0.0, -0.6, 0.8])
    c9 = c8 + 1.50 * np.array([0.0, 1.0, 0.2]) / np.linalg.norm([0.0, 1.0, 0.2])
    methyl = [c9 + 1.09 * np.array(d) / np.linalg.norm(d) for d in ([1, 0.4, -0.2], [-1, 0.4, -0.2], [0, 0.5, 1])]
    symbols = "C6H4" + "COOH" + "OCOC" + "H3"
    positions = [pos[f"C{i}"] for i in range(1, 7)] + [pos[f"H{i}"] for i in (3, 4, 5, 6)]
    positions += [c7, o1, o2, h_o2, o3, c8, o4, c9] + methyl
    atoms = Atoms(symbols, positions=positions)
    d = atoms.get_all_distances() + 10 * np.eye(len(atoms))
    assert d.min() > 0.9, f"aspirin geometry has atoms {d.min():.2f} Å apart"
    return atoms


def rate(fn, min_time: float, max_repeats: int = 200) -> float:
    """Calls per second of ``fn`` (one warm-up call, then repeats until ``min_time`` seconds)."""
    fn()
    count, start = 0, time.perf_counter()
    while count < max_repeats:
        fn()
        count += 1
        if time.perf_counter() - start > min_time:
            break
    return count / (time.perf_counter() - start)


def rattled(atoms: Atoms, n: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = atoms.copy()
        a.positions += rng.normal(scale=0.01, size=a.positions.shape)
        out.append(a)
    return out


def ours(family: str, mols: dict, batch_sizes, md_steps: int, device: str, min_time: float) -> list[dict]:
    torch.manual_seed(0)
    settings = FAMILIES[family]
    model = build_model(family.split(" ")[0], ELEMENTS, **settings).to(device).eval()
    rows = []
    for name, atoms in mols.items():
        for size in batch_sizes:
            batch = Batch.from_atoms(rattled(atoms, size), device=device)

            def step(batch=batch):
                energy, forces = energy_and_forces(model, batch)
                if device != "cpu":
                    torch.cuda.synchronize()
                return forces

            rows.append(
                {"molecule": name, "test": f"batch {size}", "model": family, "rate": size * rate(step, min_time)}
            )
        rows.append(
            {
                "molecule": name,
                "test": "ASE MD",
                "model": family,
                "rate": md_rate(atoms, WorkbenchCalculator(model, device=device), md_steps),
            }
        )
    return rows


def md_rate(atoms: Atoms, calc, steps: int) -> float:
    a = atoms.copy()
    a.calc = calc
    dyn = VelocityVerlet(a, timestep=0.1 * units.fs)
    dyn.run(2)  # warm-up
    start = time.perf_counter()
    dyn.run(steps)
    return steps / (time.perf_counter() - start)


def hippynn_rows(mols: dict, batch_sizes, md_steps: int, device: str, min_time: float) -> list[dict]:
    try:
        import hippynn  # noqa: F401
        from hippynn.graphs import Predictor, inputs, networks, physics, targets
        from hippynn.interfaces.ase_interface import HippynnCalculator
    except ImportError:
        print("hippynn is not installed: peer rows left out (pip install --no-deps hippynn)")
        return []
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
        "resnet": False,  # plain layers, as in ours: same width and depth
    }
    network = networks.Hipnn("hipnn", (species, positions), module_kwargs=params)
    energy = targets.HEnergyNode("energy", network)
    forces = physics.GradientNode("forces", (energy.mol_energy, positions), sign=-1)
    predictor = Predictor([species, positions], [energy.mol_energy, forces], model_device=device, return_device=device)
    rows = []
    for name, atoms in mols.items():
        for size in batch_sizes:
            confs = rattled(atoms, size)
            z = torch.as_tensor(np.stack([a.numbers for a in confs]), device=device)
            r = torch.as_tensor(np.stack([a.positions for a in confs]), dtype=torch.float32, device=device)

            def step(z=z, r=r):
                out = predictor(Z=z, R=r)
                if device != "cpu":
                    torch.cuda.synchronize()
                return out

            rows.append(
                {
                    "molecule": name,
                    "test": f"batch {size}",
                    "model": "hippynn HIP-NN",
                    "rate": size * rate(step, min_time),
                }
            )
        calc = HippynnCalculator(energy, en_unit=units.eV)
        calc.to(torch.device(device))
        rows.append(
            {"molecule": name, "test": "ASE MD", "model": "hippynn HIP-NN", "rate": md_rate(atoms, calc, md_steps)}
        )
    return rows


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="batch 1 and 64 only, shorter timings")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batch_sizes = (1, 64) if args.quick else (1, 64, 1024)
    min_time = 0.5 if args.quick else 2.0
    md_steps = 20 if args.quick else 100
    mols = {"ethanol": molecule("CH3CH2OH"), "aspirin": aspirin()}
    rows = hippynn_rows(mols, batch_sizes, md_steps, args.device, min_time)
    for family in args.families:
        rows += ours(family, mols, batch_sizes, md_steps, args.device, min_time)
    table = pd.DataFrame(rows).pivot_table(index=["molecule", "test"], columns="model", values="rate", sort=False)
    order = [c for c in ["hippynn HIP-NN", *args.families] if c in table.columns]
    table = table[order]
    print(
        f"\nconfigurations (batches) or MD steps (ASE) per second; device {args.device}, {args.threads} thread(s); "
        f"width {WIDTH}, {INTERACTIONS} interactions x {ATOM_LAYERS} atom layers, {SENSITIVITIES} sensitivities, "
        f"cutoff {CUTOFF} Å, float32"
    )
    with pd.option_context("display.float_format", "{:,.1f}".format, "display.width", 250, "display.max_columns", None):
        print(table)
        if "hippynn HIP-NN" in table.columns and "hipnn" in table.columns:
            print("\nour HIP-NN / hippynn HIP-NN (above 1: ours is faster)")
            print(
                (table["hipnn"] / table["hippynn HIP-NN"])
                .rename("ratio")
                .to_frame()
                .to_string(float_format="{:.2f}".format)
            )
    return table


if __name__ == "__main__":
    main()
