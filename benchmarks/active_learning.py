"""Does choosing which configurations to label pay? Two cases of the improve loop (``wb.improve``), several seeds.

**pool**: the built-in ethanol's MP2/cc-pVDZ configurations (energies and forces, 300 chosen by farthest-point
sampling from GFN2-xTB MD) are split into a test set and a pool whose labels are revealed only when selected. A
HIP-NN starts from ``--start`` random pool labels; each round buys ``--per-round`` more by a criterion and trains
further from the current weights. Random selection is the baseline; for each criterion the table gives the errors
on the test set at every budget and how many labels it needs to reach random's final error (for the force MAE and
for the largest force error). With ``--criteria disagreement`` an ensemble of ``--committee`` seeds is trained and
every member continues each round (query by committee).

**heal**: an energy-only model of MP2 (``--heal-energies`` energies) whose C-C-O-H dihedral scan has spurious
extrema; rounds label scan geometries and MD driven by the model at MP2 (energies and forces, computed here with
PySCF into a store) until the scan has the reference's number of extrema. Printed per round: labels, extrema
(reference's), spurious extrema, scan RMSE.

    python benchmarks/active_learning.py pool [--seeds 0 1 2] [--criteria variance disagreement] [--max-labels 100]
    python benchmarks/active_learning.py heal [--seeds 0 1 2] [--rounds 5] [--per-round 4]
    python benchmarks/active_learning.py why [--seeds 0 1 2]     # how well the criteria rank the pool, its diversity

Units: meV/Å for forces, meV for energies. Results go to ``benchmarks/results/active-learning-*.csv``.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
MP2, XTB = "mp2/cc-pvdz", "gfn2-xtb"
MODEL = dict(n_features=32, n_interactions=2, n_atom_layers=2, n_sensitivities=16, cutoff=5.0)


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)


def _only(ds, level: str):
    for name in [f for f in ds.labels if f != level]:
        ds = ds.drop_fidelity(name)
    return ds


# ----------------------------------------------------------------------------- pool mode
def pool_parts(seed: int, n_test: int, level: str = MP2):
    """The configurations of the built-in ethanol with energies and forces at ``level``, its labels only: the pool
    and a test set (seeded). At MP2: 300 configurations chosen by farthest-point sampling from the MD (a diverse
    pool); at GFN2-xTB: all 2000 MD frames, one every 10 fs of one 500 K trajectory (a redundant one)."""
    import workbench as wb

    ds = wb.datasets.builtin("ethanol")
    lab = ds.labels[level]
    have = np.flatnonzero(lab.energy_mask & lab.forces_mask)
    only = _only(ds.select(have), level)
    order = np.random.default_rng(1000 + seed).permutation(len(only))
    return only.select(order[n_test:]), only.select(order[:n_test])


def pool_run(job: dict) -> pd.DataFrame:
    """One criterion, one seed: the record of every round."""
    _threads(job["threads"])
    import workbench as wb
    from workbench.active import Pool

    seed, criterion, level = job["seed"], job["criterion"], job["level"]
    pool, test = pool_parts(seed, job["n_test"], level)
    start = np.random.default_rng(seed).permutation(len(pool))[: job["start"]]
    train = pool.select(start)
    rest = pool.select(np.setdiff1d(np.arange(len(pool)), start))
    members = job["committee"] if criterion == "disagreement" else 1
    models = [
        wb.train(train, recipe="single", model=MODEL, max_epochs=job["epochs"], seed=seed * 100 + m, lr=5e-3,
                 background=False, progress=False).result()
        for m in range(members)
    ]  # fmt: skip
    rounds = (job["max_labels"] - job["start"]) // job["per_round"]
    t0 = time.perf_counter()
    loop = wb.improve(
        models if members > 1 else models[0], train, Pool(rest), level=level, criterion=criterion,
        n_per_round=job["per_round"], rounds=rounds, reveal=True, test=test, max_epochs=job["round_epochs"],
        seed=seed, background=False,
    )  # fmt: skip
    if loop.state != "done":
        raise RuntimeError(f"{criterion} seed {seed}: {loop.state}: {loop.error}")
    out = loop.rounds.assign(criterion=criterion, seed=seed, labels=lambda r: r["labels_total"] + job["start"])
    print(f"  {criterion:>12} seed {seed}: {rounds} rounds in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def labels_to_reach(curve: pd.DataFrame, column: str, goal: float) -> float:
    """The first budget at which the mean curve is at or below ``goal`` (linear between budgets), NaN if never."""
    x, y = curve.index.to_numpy(float), curve[column].to_numpy(float)
    for k in range(len(x)):
        if y[k] <= goal:
            if k == 0:
                return x[0]
            return x[k - 1] + (x[k] - x[k - 1]) * (y[k - 1] - goal) / (y[k - 1] - y[k])
    return np.nan


def pool_report(frame: pd.DataFrame) -> str:
    lines = []
    mean = frame.groupby(["criterion", "labels"])[["forces_mae", "forces_max", "energy_mae"]].agg(["mean", "std"])
    mean = mean * 1000
    table = pd.DataFrame(index=mean.index)
    for col in ("forces_mae", "forces_max", "energy_mae"):
        table[col] = [f"{m:.0f} ± {s:.0f}" for m, s in zip(mean[(col, "mean")], mean[(col, "std")], strict=True)]
    lines.append("Test errors (mean ± std over seeds): force MAE and largest force error in meV/Å, energy MAE in meV")
    lines.append(table.unstack("criterion").to_string())
    random = frame[frame.criterion == "random"].groupby("labels")[["forces_mae", "forces_max"]].mean()
    final = random.iloc[-1]
    rows = []
    for criterion, part in frame.groupby("criterion"):
        curve = part.groupby("labels")[["forces_mae", "forces_max"]].mean()
        row = {"criterion": criterion}
        for col in ("forces_mae", "forces_max"):
            need = labels_to_reach(curve, col, final[col])
            row[f"labels to random's final {col}"] = need
            row[f"share of random's ({col})"] = need / random.index[-1]
        rows.append(row)
    goal = f"force MAE {1000 * final['forces_mae']:.0f} meV/Å, largest {1000 * final['forces_max']:.0f} meV/Å"
    lines.append(f"\nLabels needed to reach random's final error ({random.index[-1]} labels: {goal}):")
    lines.append(pd.DataFrame(rows).set_index("criterion").round(2).to_string())
    return "\n".join(lines)


# ----------------------------------------------------------------------------- why
def diagnose_run(job: dict) -> dict:
    """How well each criterion's score ranks the pool by the model's true error, and how diverse the pool is."""
    _threads(job["threads"])
    from scipy.spatial import cKDTree
    from scipy.stats import spearmanr

    import workbench as wb
    from workbench.active.selection import disagreement, errors, variance
    from workbench.qm.select import descriptors

    seed = job["seed"]
    pool, _ = pool_parts(seed, job["n_test"])
    start = np.random.default_rng(seed).permutation(len(pool))[: job["start"]]
    train = pool.select(start)
    rest = pool.select(np.setdiff1d(np.arange(len(pool)), start))
    models = [
        wb.train(train, recipe="single", model=MODEL, max_epochs=job["epochs"], seed=seed * 100 + m, lr=5e-3,
                 background=False, progress=False).result()
        for m in range(job["committee"])
    ]  # fmt: skip
    truth = errors(models[0], rest, MP2)  # per configuration: force MAE (eV/Å) against the revealed labels
    out = {"seed": seed}
    n = job["per_round"]
    for name, score in (("variance", variance(models[0], rest, train)), ("disagreement", disagreement(models, rest))):
        out[f"spearman({name}, error)"] = spearmanr(score, truth).statistic
        out[f"error of top {n} by {name} (meV/Å)"] = 1000 * truth[np.argsort(-score)[:n]].mean()
    out[f"error of {n} random (meV/Å)"] = 1000 * truth.mean()
    # diversity: nearest-neighbour distances of the pool against as many configurations drawn from the MD at random
    ds = wb.datasets.builtin("ethanol")
    md = ds.select(np.random.default_rng(seed).choice(len(ds), len(pool), replace=False))
    for label, part in (("MP2 pool", pool), ("random MD sample", md)):
        x = descriptors(part, "inverse_distances")
        d, _ = cKDTree(x).query(x, k=2)
        out[f"median NN distance, {label} (1/Å)"] = float(np.median(d[:, 1]))
    return out


# ----------------------------------------------------------------------------- healing
def heal_run(job: dict) -> pd.DataFrame:
    _threads(job["threads"])
    import workbench as wb
    from workbench.active import ModelMD, ScanGeometries
    from workbench.ui.improve_panel import scan_dihedral

    seed = job["seed"]
    ds = wb.datasets.builtin("ethanol")
    lab = ds.labels[MP2]
    have = np.flatnonzero(lab.energy_mask)
    chosen = np.random.default_rng(seed).permutation(have)[: job["energies"]]
    train = _only(ds.select(chosen), MP2)
    train = train.keep_labels(MP2, indices=range(len(train)), properties=("energy",))  # energies only: rough
    model = wb.train(train, recipe="single", model=MODEL, max_epochs=job["epochs"], seed=seed, lr=5e-3,
                     background=False, progress=False).result()  # fmt: skip
    atoms = ds.to_atoms(int(have[0]))
    dihedral = scan_dihedral(atoms)
    values = np.arange(-180, 180, 15)
    scan = {"atoms": atoms, "dihedral": dihedral, "values": values, "reference": MP2}
    candidates = [
        ScanGeometries(atoms, "dihedral", dihedral, values),
        ModelMD(atoms, temperature_K=500.0, n_samples=40, interval=10, equilibration_steps=50, seed=seed),
    ]
    t0 = time.perf_counter()
    loop = wb.improve(
        model, train, candidates, level=MP2, criterion=job["criterion"], n_per_round=job["per_round"],
        rounds=job["rounds"], store=Path(job["store"]) / f"seed{seed}", scan=scan, max_epochs=job["round_epochs"],
        seed=seed, background=False,
    )  # fmt: skip
    if loop.state != "done":
        raise RuntimeError(f"heal seed {seed}: {loop.state}: {loop.error}")
    print(f"  heal seed {seed}: {job['rounds']} rounds in {time.perf_counter() - t0:.0f} s", flush=True)
    return loop.rounds.assign(seed=seed, criterion=job["criterion"])


def heal_report(frame: pd.DataFrame) -> str:
    cols = ["seed", "round", "labels_total", "n_extrema", "spurious_extrema", "scan_rmse", "qm_s_total", "chosen_from"]
    shown = frame[[c for c in cols if c in frame]].copy()
    shown["scan_rmse"] = (1000 * shown["scan_rmse"]).round(0)
    reference = frame["n_extrema"] - frame["spurious_extrema"]  # the reference's count where none is missing
    healed = []
    for seed, part in frame.groupby("seed"):
        none = part[part["spurious_extrema"] == 0]
        same = part[(part["spurious_extrema"] == 0) & (part["n_extrema"] == reference[part.index])]
        healed.append(
            {
                "seed": seed,
                "labels to no spurious extremum": none["labels_total"].iloc[0] if len(none) else np.nan,
                "labels to the reference's extrema": same["labels_total"].iloc[0] if len(same) else np.nan,
                "scan RMSE then (meV)": 1000 * same["scan_rmse"].iloc[0] if len(same) else np.nan,
                "scan RMSE at the start (meV)": 1000 * part["scan_rmse"].iloc[0],
            }
        )
    return (
        "Scan per round (scan RMSE in meV against MP2; extrema of the model's curve)\n"
        + shown.to_string(index=False)
        + "\n\nHigh-level labels until healed:\n"
        + pd.DataFrame(healed).round(0).to_string(index=False)
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=["pool", "heal", "why"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--criteria", nargs="+", default=["variance", "disagreement"])
    parser.add_argument("--start", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--max-labels", type=int, default=100)
    parser.add_argument("--n-test", type=int, default=80)
    parser.add_argument(
        "--pool-level",
        default=MP2,
        choices=[MP2, XTB],
        help="pool: the MP2 configurations (diverse) or every GFN2-xTB MD frame (redundant)",
    )
    parser.add_argument("--committee", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=300, help="epochs of the starting model")
    parser.add_argument("--round-epochs", type=int, default=150, help="epochs of each round's training")
    parser.add_argument("--rounds", type=int, default=5, help="heal: rounds")
    parser.add_argument("--heal-energies", type=int, default=40, help="heal: MP2 energies of the starting model")
    parser.add_argument("--heal-criterion", default="variance")
    parser.add_argument(
        "--store",
        default=str(RESULTS / "active-learning-labels"),
        help="heal: a folder of label stores, one per seed (so that each pays for its own labels)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="processes side by side, one thread each")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    common = {"threads": 1, "epochs": args.epochs, "round_epochs": args.round_epochs}
    if args.case == "pool":
        criteria = ["random", *[c for c in args.criteria if c != "random"]]
        jobs = [
            {**common, "seed": s, "criterion": c, "start": args.start, "per_round": args.per_round,
             "max_labels": args.max_labels, "n_test": args.n_test, "committee": args.committee,
             "level": args.pool_level}
            for s in args.seeds for c in criteria
        ]  # fmt: skip
        tag = "" if args.pool_level == MP2 else "-" + args.pool_level.replace("/", "-")
        run, report, name = pool_run, pool_report, f"active-learning-pool{tag}.csv"
    elif args.case == "why":
        jobs = [
            {**common, "seed": s, "start": args.start, "per_round": args.per_round, "n_test": args.n_test,
             "committee": args.committee}
            for s in args.seeds
        ]  # fmt: skip
        run, name = diagnose_run, "active-learning-why.csv"

        def report(frame):
            return frame.set_index("seed").T.round(3).to_string()
    else:
        jobs = [
            {**common, "seed": s, "criterion": args.heal_criterion, "energies": args.heal_energies,
             "per_round": args.per_round, "rounds": args.rounds, "store": args.store}
            for s in args.seeds
        ]  # fmt: skip
        run, report, name = heal_run, heal_report, "active-learning-heal.csv"
    print(f"{args.case}: {len(jobs)} runs, {args.jobs} at a time", flush=True)
    with ProcessPoolExecutor(args.jobs) as pool:
        frames = list(pool.map(run, jobs))
    frame = pd.concat([f if isinstance(f, pd.DataFrame) else pd.DataFrame([f]) for f in frames], ignore_index=True)
    frame.to_csv(RESULTS / name, index=False)
    print(report(frame))


if __name__ == "__main__":
    main()
