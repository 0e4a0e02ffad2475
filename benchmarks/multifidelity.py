"""Multi-fidelity strategies on the built-in ethanol data, judged against the highest level with forces.

Data: ``wb.datasets.builtin("ethanol")`` (GFN2-xTB energies + forces on every configuration, MP2/cc-pVDZ
energies + forces on a subset, CCSD(T)/cc-pVDZ energies on a smaller one). A fixed split holds out
``--test`` configurations that have the reference level (MP2, the highest level with forces); of the
rest, ``--budget`` keep their reference labels for training. Every strategy learns the reference
level from those:

- single E: the budget's reference energies only;  single E+F: their energies and forces;
- multifidelity: low-level energies + forces on all training configurations, reference energies on the budget;
  "multifidelity (embedding)": the same, with the level as an input of the trunk instead of a head per level;
  "multifidelity (nonlinear heads)": the same, each head with a hidden layer of 32;
- delta: a model of (reference - low) energies on the budget, added to the low level's own labels;
- transfer: pre-train on low-level energies + forces, fine-tune on the budget's reference energies;
- meta: Reptile over both levels, then fine-tune on the budget's reference energies;

for each family and several seeds (the split stays fixed; the seed sets initialisation and batch
order). The table gives held-out energy MAE (meV per molecule, after the references each model fits)
and force MAE (meV/Å per component), mean ± standard deviation over seeds, how far each model's
forces are from the low level's own (a head that only copies the low level sits at 0; the reference
level sits as far as the low level's row), training time and the number of parameters, plus a row
for the low level as it is (energies shifted by the mean offset on
the training budget, forces untouched): a strategy whose forces are worse than that row adds nothing
for forces.

``--classroom`` measures what a laptop gets in 3 minutes on 2 cores: a model of the top level
(CCSD(T)) energies, trained with 2 threads under a 170 s budget, judged on held-out CCSD(T) energies.

    python benchmarks/multifidelity.py [--families hipnn gmnn] [--seeds 0 1 2] [--jobs 2] [--out runs.csv]
    python benchmarks/multifidelity.py --table runs.csv more-runs.csv   # the table of runs already made
    python benchmarks/multifidelity.py --classroom

``--tie`` sets the strength of the tied heads' penalty and ``--high-energy-weight`` the loss weight of the
reference level's energies in the multi-fidelity strategies; both become part of the row's name.

Every finished run is appended to ``--out`` at once, so a long benchmark can be split over several
invocations (e.g. one family each) and tabulated together with ``--table``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: Family settings used here (a size that trains in minutes on one CPU core).
FAMILIES = {
    "hipnn": dict(n_features=32, n_interactions=2, n_atom_layers=2),
    "hipnn_tensor": dict(n_features=32, n_interactions=2, n_atom_layers=2),
    "gmnn": dict(hidden=[64, 64]),
    "linear": dict(),
}
#: The Δ network, narrower than the base: it learns a smooth difference from ~100 energies, and its
#: gradient is added to the low level's forces (the full width gave force errors 1.5x the low level's).
DELTA_MODELS = {
    "hipnn": dict(n_features=8, n_interactions=1),
    "hipnn_tensor": dict(n_features=8, n_interactions=1),
    "gmnn": dict(hidden=[16, 16]),
}
STRATEGIES = (
    "single E",
    "single E+F",
    "multifidelity",
    "multifidelity (embedding)",
    "multifidelity (nonlinear heads)",
    "multifidelity, then fine-tuned",
    "multifidelity (tied heads)",
    "multifidelity (tied heads), then fine-tuned",
    "multifidelity (residual head)",
    "multifidelity (residual head), then fine-tuned",
    "delta",
    "transfer",
    "meta",
)
# The linear family has no trunk to pre-train or share: its multifidelity heads are separate fits (the
# high head is then the single E model), and transfer and meta do not apply.
MULTIFIDELITY = tuple(s for s in STRATEGIES if s.startswith("multifidelity"))
NOT_LINEAR = (*MULTIFIDELITY, "transfer", "meta")


def load(path: str | None):
    import workbench as wb

    return wb.Dataset.load(path) if path else wb.datasets.builtin("ethanol")


def levels(ds) -> tuple[str, str, str]:
    """(low, reference, top): the lowest level, the highest level with forces, the highest level."""
    names = ds.fidelity_names
    with_forces = [n for n in names if ds.labels[n].forces_mask.any()]
    return names[0], with_forces[-1], names[-1]


def target_level(ds, target: str) -> str:
    """The level a run models: ``"reference"`` (the highest level with forces, learnt from its energies
    alone so that its held-out forces can judge it) or ``"top"`` (the highest level)."""
    low, ref, top = levels(ds)
    return {"reference": ref, "top": top}[target]


def split(ds, n_test: int, budget: int, seed: int = 0, target: str = "reference", n_low: int | None = None):
    """``(train, test)``: ``n_test`` held-out configurations with the target's labels; in ``train`` only
    ``budget`` configurations keep the target's labels. With target ``"reference"`` the levels above the
    reference keep none beyond the budget; with ``"top"`` the levels between the lowest and the top keep
    all of theirs. ``n_low``: how many training configurations in all (each has the lowest level's labels);
    those with labels above the lowest level are kept first, the rest drawn at random."""
    low, ref, top = levels(ds)
    goal = target_level(ds, target)
    have = np.flatnonzero(ds.labels[goal].energy_mask)
    order = np.random.default_rng(seed).permutation(have)
    test_idx = np.sort(order[:n_test])
    budget_idx = np.sort(order[n_test : n_test + budget])
    rest = np.setdiff1d(np.arange(len(ds)), test_idx)
    if n_low is not None:
        middle = [n for n in ds.fidelity_names if n not in (low, goal) and target == "top"]
        keep = set(budget_idx.tolist())
        for name in middle:
            keep |= set(np.flatnonzero(ds.labels[name].energy_mask).tolist()) - set(test_idx.tolist())
        others = np.random.default_rng(seed + 1).permutation(np.setdiff1d(rest, sorted(keep)))
        rest = np.sort(np.concatenate([sorted(keep), others[: max(n_low - len(keep), 0)]])).astype(int)
    train = ds.select(rest)
    kept = np.searchsorted(rest, budget_idx)
    if target == "reference":
        for name in (ref, top) if top != ref else (ref,):
            train = train.keep_labels(
                name, indices=kept, properties=("energy", "forces") if name == ref else ("energy",)
            )
    else:
        train = train.keep_labels(top, indices=kept, properties=("energy",))
    return train, ds.select(test_idx)


def strategy_kwargs(
    strategy: str,
    ds_levels: tuple[str, str, str],
    target: str,
    epochs: int,
    finetune_epochs: int | None,
    family: str,
    tie: float = 0.01,
) -> dict | None:
    """``wb.train`` arguments of a strategy (None where it does not apply to the target)."""
    low, ref, top = ds_levels
    if target == "reference":
        goal, lows = ref, {low: ("energy", "forces")}
    else:
        goal, lows = top, {low: ("energy", "forces"), ref: ("energy", "forces")}
    every = {**lows, goal: ("energy",)}
    ft = {"finetune_epochs": finetune_epochs} if finetune_epochs else {}
    table = {
        "single E": dict(recipe="single", fidelities={goal: ("energy",)}),
        "single E+F": dict(recipe="single", fidelities={goal: ("energy", "forces")}) if goal == ref else None,
        "multifidelity": dict(recipe="multifidelity", fidelities=every),
        # the same labels, the fidelity handed to the trunk as an input instead of a readout per level
        "multifidelity (embedding)": dict(
            recipe="multifidelity", fidelities=every, model={"fidelity_mode": "embedding"}
        ),
        # heads, each with a hidden layer of its own
        "multifidelity (nonlinear heads)": dict(
            recipe="multifidelity", fidelities=every, model={"readout_hidden": [32]}
        ),
        # the joint fit, then the trunk and the high-level head alone on the high-level energies at 0.1x the
        # learning rate (as transfer's fine-tuning)
        "multifidelity, then fine-tuned": dict(recipe="multifidelity", fidelities=every, finetune_lr_factor=0.1, **ft),
        # the high-level head starts as a copy of the low-level one and is held near it by a penalty
        "multifidelity (tied heads)": dict(recipe="multifidelity", fidelities=every, tie_heads=tie),
        "multifidelity (tied heads), then fine-tuned": dict(
            recipe="multifidelity", fidelities=every, tie_heads=tie, finetune_lr_factor=0.1, **ft
        ),
        # the high-level head is the low-level head plus a correction that starts at zero
        "multifidelity (residual head)": dict(
            recipe="multifidelity", fidelities=every, model={"fidelity_mode": "residual"}
        ),
        "multifidelity (residual head), then fine-tuned": dict(
            recipe="multifidelity",
            fidelities=every,
            model={"fidelity_mode": "residual"},
            finetune_lr_factor=0.1,
            **ft,
        ),
        "delta": dict(
            recipe="delta",
            fidelities={low: ("energy", "forces"), goal: ("energy",)},
            delta_model=DELTA_MODELS.get(family),
        ),
        "transfer": dict(recipe="transfer", fidelities=every, **ft),
        "meta": dict(recipe="meta", fidelities=every, meta_epochs=epochs // 2, **ft),
    }
    return table[strategy]


def run_one(args: dict) -> dict:
    """Train one (family, strategy, seed) and evaluate it on the test set (runs in a worker)."""
    import torch

    torch.set_num_threads(args.get("threads", 1))
    from workbench.training import train

    ds = load(args["data"])
    low, ref, top = ds_levels = levels(ds)
    target = args.get("target", "reference")
    goal = target_level(ds, target)
    train_set, test = split(ds, args["n_test"], args["budget"], target=target, n_low=args.get("n_low"))
    kwargs = strategy_kwargs(
        args["strategy"], ds_levels, target, args["epochs"], args["finetune_epochs"], args["family"], args["tie"]
    )
    family_settings = {} if args.get("defaults") else FAMILIES[args["family"]]
    model_settings = {**family_settings, **kwargs.pop("model", {})}
    extra = dict(args.get("extra", {}))
    strategy = f"{args['strategy']} {args['tie']:g}" if "tie_heads" in kwargs else args["strategy"]
    weight = args.get("high_energy_weight")
    if weight is not None and kwargs["recipe"] == "multifidelity":
        extra["weights"] = {**extra.get("weights", {}), goal: {"energy": weight}}
        strategy += f", high energy weight {weight:g}"  # a run at another weight is another row
    # with --defaults, what wb.train does when a user changes nothing (but the seed and the device)
    settings = (
        ({"max_epochs": args["max_epochs"]} if args.get("max_epochs") else {})
        if args.get("defaults")
        else {
            "max_epochs": args["epochs"],
            "patience": args["patience"],
            "batch_size": args["batch_size"],
            "lr": args["lr"],
            "lr_patience": args["lr_patience"],
            "force_weight": args["force_weight"],
            "ema_decay": args["ema_decay"],
        }
    )
    if args.get("max_time"):
        settings["max_time"] = args["max_time"]
    start = time.perf_counter()
    model = train(
        train_set,
        family=args["family"],
        model=model_settings,
        seed=args["seed"],
        device=args.get("device", "cpu"),
        background=False,
        progress=False,
        **settings,
        **kwargs,
        **extra,
    ).result()
    seconds = time.perf_counter() - start
    if args.get("save_dir"):
        name = f"{target}-{args['family']}-{strategy}-{args['seed']}".replace(" ", "_").replace(",", "")
        model.save(Path(args["save_dir"]) / f"{name.replace('(', '').replace(')', '')}.wb")
    err = model.evaluate(test, goal, reference=goal)
    # forces judged against the highest level with forces (the target's own when it has them)
    forces = model.evaluate(test, goal, reference=ref)
    # how far the model's forces moved from the low level's own: a multi-fidelity head whose trunk is
    # held by the low-level forces stays close to them
    to_low = model.evaluate(test, goal, reference=low)
    # what a user without reference forces can choose settings on: the validation energy error of the
    # weights kept (the last stage's epoch of lowest validation loss)
    hist = model.history[model.history["stage"] == model.history["stage"].iloc[-1]]
    column = f"val_energy_mae[{goal}]"
    val_energy = (
        hist.loc[hist["val_loss"].idxmin(), column] if column in hist and hist["val_loss"].notna().any() else np.nan
    )
    return {
        "target": goal,
        "family": args["family"],
        # the tie's strength is part of the strategy: runs at different strengths are different rows
        "strategy": strategy,
        "seed": args["seed"],
        "energy MAE (meV)": 1000 * err["energy_mae"],
        "force MAE (meV/Å)": 1000 * forces["forces_mae"],
        "force MAE to low level (meV/Å)": 1000 * to_low["forces_mae"],
        "validation energy MAE (meV)": 1000 * val_energy,
        "time (s)": seconds,
        "parameters": model.n_parameters,
        "epochs": len(model.history),
        "device": args.get("device", "cpu"),
    }


def low_level_rows(ds, n_test: int, budget: int, target: str = "reference", n_low: int | None = None) -> list[dict]:
    """The lower levels as they are (no ML) on the test set: energies against the target's after the mean
    offset on the training configurations with both, forces against the highest level with forces."""
    low, ref, top = levels(ds)
    goal = target_level(ds, target)
    train_set, test = split(ds, n_test, budget, target=target, n_low=n_low)
    rows = []
    for name in ds.fidelity_names:
        lab = test.labels[name]
        if name == goal or ds.fidelity(name).rank >= ds.fidelity(goal).rank or not lab.energy_mask.all():
            continue
        both = train_set.labels[name].energy_mask & train_set.labels[goal].energy_mask
        offset = np.mean(train_set.labels[goal].energy[both] - train_set.labels[name].energy[both])
        de = lab.energy + offset - test.labels[goal].energy
        force_error = np.nan
        if name != ref and lab.forces_mask.all():
            force_error = 1000 * float(np.abs(lab.forces - test.labels[ref].forces).mean())
        rows.append(
            {
                "target": goal,
                "family": "-",
                "strategy": f"{name} as is",
                "seed": 0,
                "energy MAE (meV)": 1000 * float(np.abs(de).mean()),
                "force MAE (meV/Å)": force_error,
                "force MAE to low level (meV/Å)": 0.0 if name == low else np.nan,
                "time (s)": 0.0,
                "parameters": 0,
                "epochs": 0,
            }
        )
    return rows


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    def pm(values: pd.Series) -> str:
        values = values.dropna()  # runs recorded before a column existed
        if len(values) == 0:
            return "–"
        return f"{values.mean():.1f} ± {values.std(ddof=0):.1f}" if len(values) > 1 else f"{values.mean():.1f}"

    # families in the order they ran, strategies in the order of STRATEGIES, the lower levels last
    families = list(dict.fromkeys(runs["family"]))

    def rank(strategy: str) -> int:
        """A row whose name carries settings ("... 0.1, high energy weight 10") sorts with its strategy."""
        known = [s for s in STRATEGIES if strategy.startswith(s)]
        return STRATEGIES.index(max(known, key=len)) if known else len(STRATEGIES)

    runs = runs.assign(
        _f=runs["family"].map(lambda f: len(families) if f == "-" else families.index(f)),
        _s=runs["strategy"].map(rank),
    ).sort_values(["target", "_f", "_s"], kind="stable")
    groups = runs.groupby(["target", "family", "strategy"], sort=False)
    return pd.DataFrame(
        {
            "energy MAE (meV)": groups["energy MAE (meV)"].apply(pm),
            "force MAE (meV/Å)": groups["force MAE (meV/Å)"].apply(pm),
            **(
                {"force MAE to low level (meV/Å)": groups["force MAE to low level (meV/Å)"].apply(pm)}
                if "force MAE to low level (meV/Å)" in runs
                else {}
            ),
            "validation energy MAE (meV)": groups["validation energy MAE (meV)"].apply(pm),
            "time (s)": groups["time (s)"].mean().round(0),
            "parameters": groups["parameters"].first(),
            "seeds": groups["seed"].count(),
        }
    )


def verdict(runs: pd.DataFrame) -> list[str]:
    """The reproduction criteria per family and multi-fidelity variant: force error <= 0.5x single E,
    <= 1.5x single E+F."""
    lines = []
    mean = runs.groupby(["target", "family", "strategy"])["force MAE (meV/Å)"].mean()
    variants = [s for s in runs["strategy"].unique() if s.startswith("multifidelity")]
    for target, family in runs[["target", "family"]].drop_duplicates().itertuples(index=False):
        for variant in variants:
            try:
                mf, se, sef = (mean[(target, family, s)] for s in (variant, "single E", "single E+F"))
            except KeyError:
                continue
            lines.append(
                f"{target}, {family}, {variant}: / single E = {mf / se:.2f} "
                f"(target <= 0.5: {'yes' if mf <= 0.5 * se else 'no'}); "
                f"/ single E+F = {mf / sef:.2f} (target <= 1.5: {'yes' if mf <= 1.5 * sef else 'no'})"
            )
    return lines


def markdown(table: pd.DataFrame) -> str:
    table = table.reset_index()
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def classroom(data: str | None, seconds: float = 170.0) -> pd.DataFrame:
    """A model of the top level in under 3 minutes with 2 threads; CCSD(T) energy MAE in kcal/mol."""
    import torch
    from ase import units

    from workbench.training import train

    torch.set_num_threads(2)
    ds = load(data)
    low, ref, top = levels(ds)
    have = np.flatnonzero(ds.labels[top].energy_mask)
    order = np.random.default_rng(0).permutation(have)
    test_idx = np.sort(order[: len(order) // 4])
    train_set = ds.select(np.setdiff1d(np.arange(len(ds)), test_idx))
    test = ds.select(test_idx)
    kcal = units.kcal / units.mol
    rows = []
    runs = {
        "delta (CCSD(T) - xTB energies, on xTB)": dict(
            recipe="delta",
            fidelities={low: None, top: ("energy",)},
            delta_model=DELTA_MODELS["hipnn"],
            max_time=seconds,
        ),
        "multifidelity (xTB E+F, MP2 E+F, CCSD(T) E)": dict(recipe="multifidelity", max_time=seconds),
        "transfer (xTB E+F -> CCSD(T) E)": dict(
            recipe="transfer",
            fidelities={low: ("energy", "forces"), top: ("energy",)},
            max_time=seconds / 2,  # per stage: pre-training, then fine-tuning
        ),
    }
    for name, kwargs in runs.items():
        start = time.perf_counter()
        model = train(
            train_set,
            family="hipnn",
            model=FAMILIES["hipnn"],
            max_epochs=1000,
            patience=100,
            batch_size=64,
            lr=5e-3,
            lr_patience=25,
            ema_decay=None,
            background=False,
            progress=False,
            **kwargs,
        ).result()
        wall = time.perf_counter() - start
        err = model.evaluate(test, top)
        print(f"{name}: {err['energy_mae'] / kcal:.2f} kcal/mol, {wall:.0f} s", flush=True)
        rows.append(
            {
                "model": name,
                "CCSD(T) energy MAE (kcal/mol)": err["energy_mae"] / kcal,
                "wall time (s)": wall,
                "epochs": len(model.history),
                "test configurations": err["n_energies"],
            }
        )
    return pd.DataFrame(rows).set_index("model")


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a workbench HDF5 file instead of the built-in ethanol set")
    parser.add_argument("--families", nargs="+", default=["hipnn", "gmnn", "hipnn_tensor", "linear"])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--targets",
        nargs="+",
        default=["reference"],
        choices=["reference", "top"],
        help="reference: the highest level with forces, from its energies alone; top: the highest level",
    )
    parser.add_argument("--budget", type=int, default=100, help="target-level configurations for training")
    parser.add_argument("--test", type=int, default=100, help="held-out configurations with the target level")
    parser.add_argument("--n-low", type=int, help="training configurations in all (default: every one)")
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="wb.train's own settings and each family's default size, as a user who changes nothing gets",
    )
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument("--max-epochs", type=int, help="with --defaults: the one setting changed, max_epochs")
    parser.add_argument("--finetune-epochs", type=int, default=500)
    parser.add_argument("--patience", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--lr-patience", type=int, default=25)
    parser.add_argument("--force-weight", type=float, default=100.0)
    parser.add_argument("--tie", type=float, default=0.01, help="strength of the tied heads' penalty")
    parser.add_argument(
        "--high-energy-weight",
        type=float,
        help="loss weight of the target level's energies in the multi-fidelity strategies (default: 1)",
    )
    parser.add_argument("--ema", dest="ema_decay", type=float, default=None, help="EMA decay of the weights (off)")
    parser.add_argument("--max-time", type=float, help="wall-clock budget of each training stage (s)")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--gpu-jobs", type=int, default=0, help="how many of the --jobs workers train on CUDA")
    parser.add_argument("--save-dir", type=Path, help="save every trained model here (for benchmarks/vibrations.py)")
    parser.add_argument("--quick", action="store_true", help="hipnn only, 1 seed, 30 epochs")
    parser.add_argument("--classroom", action="store_true", help="only the 3-minute, 2-core measurement")
    parser.add_argument("--out", type=Path, help="append every finished run to this CSV file")
    parser.add_argument("--table", type=Path, nargs="+", help="only print the table of runs in these CSV files")
    args = parser.parse_args(argv)
    if args.table:
        runs = pd.concat([pd.read_csv(p) for p in args.table], ignore_index=True)
        runs = runs[~runs["strategy"].str.endswith(" as is")]
        return report(runs, args)
    if args.classroom:
        table = classroom(args.data)
        print(table.to_string(float_format="{:.2f}".format))
        return table
    if args.quick:
        args.families, args.seeds, args.epochs, args.finetune_epochs, args.patience = ["hipnn"], [0], 30, 30, 30
    ds = load(args.data)
    tasks = [
        {
            "data": args.data,
            "target": target,
            "family": family,
            "strategy": strategy,
            "seed": seed,
            "n_test": args.test,
            "budget": args.budget,
            "n_low": args.n_low,
            "defaults": args.defaults,
            "max_epochs": args.max_epochs,
            "epochs": args.epochs,
            "finetune_epochs": None if args.defaults else args.finetune_epochs,
            "patience": args.patience,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "lr_patience": args.lr_patience,
            "force_weight": args.force_weight,
            "ema_decay": args.ema_decay,
            "tie": args.tie,
            "high_energy_weight": args.high_energy_weight,
            "max_time": args.max_time,
            "save_dir": str(args.save_dir) if args.save_dir else None,
        }
        # seed outermost: a benchmark stopped early still has whole seeds
        for seed in args.seeds
        for target in args.targets
        for family in args.families
        if not (family == "linear" and seed != args.seeds[0])  # the linear fit has no seed
        for strategy in args.strategies
        if not (family == "linear" and strategy in NOT_LINEAR)
        and strategy_kwargs(strategy, levels(ds), target, args.epochs, None, family) is not None
    ]
    rows = []
    for task, row in run_all(tasks, args.jobs, args.gpu_jobs):
        if isinstance(row, Exception):  # one failed run (e.g. diverged) must not lose the others
            print(f"FAILED {task['target']} {task['family']} {task['strategy']} seed={task['seed']}: {row}", flush=True)
            continue
        print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        rows.append(row)
        if args.out:
            pd.DataFrame([row]).to_csv(args.out, mode="a", header=not args.out.exists(), index=False)
    if not rows:
        raise SystemExit("no run finished")
    return report(pd.DataFrame(rows), args)


def _expected_cost(task: dict) -> int:
    """Rough order of the runs' lengths, longest first: joint fits on every configuration, then fits on
    the budget alone."""
    strategy = task["strategy"]
    return 2 if strategy.startswith(("multifidelity", "transfer", "meta")) else 1


def _worker(device: str, queue, results, lock) -> None:
    """Take runs from the queue until it is empty: CUDA workers from the long end, CPU workers from the
    short end, so that the GPU gets the joint fits."""
    while True:
        with lock:
            if not queue:
                return
            task = queue.pop(0) if device != "cpu" else queue.pop()
        try:
            results.put((task, run_one({**task, "device": device})))
        except Exception as err:  # noqa: BLE001 - reported by the parent, the other runs go on
            results.put((task, RuntimeError(f"{type(err).__name__}: {err}")))


def run_all(tasks: list[dict], jobs: int, gpu_jobs: int = 0):
    """Yield ``(task, row or exception)`` as runs finish, on ``jobs`` worker processes of which
    ``gpu_jobs`` train on CUDA."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    queue = manager.list(sorted(tasks, key=_expected_cost, reverse=True))
    results, lock = manager.Queue(), manager.Lock()
    devices = ["cuda"] * min(gpu_jobs, jobs) + ["cpu"] * max(jobs - gpu_jobs, 0)
    workers = [ctx.Process(target=_worker, args=(d, queue, results, lock)) for d in devices]
    for w in workers:
        w.start()
    for _ in tasks:
        yield results.get()
    for w in workers:
        w.join()


def report(runs: pd.DataFrame, args) -> pd.DataFrame:
    """Print the table of ``runs`` with the lower levels as they are, and the reproduction verdict."""
    ds = load(args.data)
    low, ref, top = levels(ds)
    if "target" not in runs:
        runs = runs.assign(target=ref)  # runs recorded before the target was a choice
    runs["target"] = runs["target"].fillna(ref)
    targets = {"reference": ref, "top": top}
    chosen = [t for t, name in targets.items() if name in set(runs["target"])]
    n_low = getattr(args, "n_low", None)
    raw = [row for t in chosen for row in low_level_rows(ds, args.test, args.budget, t, n_low)]
    runs = pd.concat([runs, pd.DataFrame(raw)], ignore_index=True)
    table = summarise(runs)
    seeds = sorted(runs.loc[runs["family"] != "-", "seed"].unique().tolist())
    print(
        f"\n{args.data or 'built-in ethanol'}: {args.budget} training configurations with the target's labels, "
        f"{args.test} held out; {low} on all {n_low or 'other'} training configurations; energies against the "
        f"target, forces against {ref} on the held-out set; seeds {seeds}"
    )
    print(markdown(table))
    print("\n".join(verdict(runs)))
    return table


if __name__ == "__main__":
    main()
