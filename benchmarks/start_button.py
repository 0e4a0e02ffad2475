"""What a new user gets by pressing Start in the Training panel on the built-in ethanol, changing nothing.

The panel is built on the app's own state (the built-in ethanol and its seeded train/validation/test split), its
choices are turned into ``wb.train`` arguments by the panel itself (``TrainingPanel.train_options``), and the run is
timed with 2 threads. The model is judged on the test split: the target's (CCSD(T)) energies, and forces against
the highest level with forces (MP2) where the test configurations have them; beside it, the lower levels as they
are (no ML), as the Compare tab's "no ML" rows give them.

    python benchmarks/start_button.py [--seeds 0 1 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def yardsticks(test, target: str, force_level: str) -> list[dict]:
    """The lower levels' own labels on the test configurations (``wb.analysis.label_residuals``: energies offset by
    per-element reference energies fitted where both levels have them), as the Compare tab shows them."""
    import workbench as wb

    rows = []
    for name in test.fidelity_names:
        if test.fidelity(name).rank >= test.fidelity(target).rank:
            continue
        energy = wb.analysis.label_residuals(test, name, target)
        row = {"model": f"{name} as is (no ML)", "energy MAE (meV)": 1000 * np.abs(energy.energy_error).mean()}
        if name != force_level and test.labels[name].forces_mask.any():
            forces = wb.analysis.label_residuals(test, name, force_level)
            row["force MAE (meV/Å)"] = 1000 * np.abs(forces.force_error).mean()
        rows.append(row)
    return rows


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, help="set the panel's learning rate first (to compare with its default)")
    parser.add_argument("--epochs", type=int, help="set the panel's epochs first")
    parser.add_argument("--patience", type=int, help="set the panel's patience first")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import workbench as wb
    from workbench.ui.state import WorkbenchState
    from workbench.ui.training_panel import TrainingPanel

    state = WorkbenchState(wb.datasets.builtin("ethanol"), "ethanol")
    panel = TrainingPanel(state)
    for widget, value in ((panel.lr, args.lr), (panel.epochs, args.epochs), (panel.patience, args.patience)):
        if value is not None:
            widget.value = value
    test = state.subset("test")
    rows = []
    for seed in args.seeds:
        panel.seed.value = seed
        options = panel.train_options()
        options.update(background=False, progress=True)  # a bar on standard error: epochs and the loss
        target = options["target"]
        force_level = [n for n in test.fidelity_names if test.labels[n].forces_mask.any()][-1]
        start = time.perf_counter()
        model = wb.train(**options).result()
        wall = time.perf_counter() - start
        energy = model.evaluate(test, target)
        forces = model.evaluate(test, target, reference=force_level)
        rows.append(
            {
                "model": f"Start (seed {seed})",
                "energy MAE (meV)": 1000 * energy["energy_mae"],
                "force MAE (meV/Å)": 1000 * forces["forces_mae"],
                "wall time (s)": wall,
                "epochs": len(model.history),
            }
        )
        print(rows[-1], flush=True)
    rows += yardsticks(test, target, force_level)
    table = pd.DataFrame(rows).set_index("model")
    table["energy MAE (kcal/mol)"] = table["energy MAE (meV)"] / 43.364
    opts = {k: v for k, v in options.items() if k not in ("train", "validation", "weights")}
    print(f"\nbuilt-in ethanol, the panel's defaults {opts}, {args.threads} threads;")
    n_target = int(test.labels[target].energy_mask.sum())
    print(f"test split: {len(test)} configurations, {n_target} with {target} energies")
    print(table.to_string(float_format="{:.1f}".format))
    return table


if __name__ == "__main__":
    main()
