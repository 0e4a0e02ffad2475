"""Harmonic frequencies of trained models against the frequencies shipped with the built-in ethanol.

For each model saved by ``benchmarks/multifidelity.py --save-dir`` (or ``benchmarks/multifidelity_defaults.sh``,
whose ``models.tgz`` can be given as it is), the head of the level the model learnt (MP2 from its energies alone,
for the runs with target ``reference``) relaxes from that level's own minimum and is diagonalised (autograd Hessian);
its frequencies are compared mode by mode with the shipped MP2/cc-pVDZ ones (``wb.datasets.vibrational_reference``):
the mean absolute error and the largest error in cm^-1, mean ± standard deviation over seeds. Models that kept a
GFN2-xTB head are judged on it against GFN2-xTB's own frequencies too. The yardstick row is GFN2-xTB's own
frequencies against MP2's: a head learnt from MP2 energies should be closer to MP2 than that.

    python benchmarks/vibrations.py benchmarks/results/defaults/models.tgz [--target reference]
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
from pathlib import Path

import pandas as pd


def model_files(path: Path, tmp: Path) -> list[Path]:
    """The ``.wb`` models in a folder or a ``.tgz`` of one (unpacked into ``tmp``; no member outside it)."""
    if path.is_dir():
        return sorted(path.rglob("*.wb"))
    with tarfile.open(path) as tar:
        tar.extractall(tmp, filter="data")  # the data filter refuses links and paths outside tmp
    return sorted(tmp.rglob("*.wb"))


def describe(path: Path) -> dict:
    """``{target, family, strategy, seed}`` from a saved model's file name."""
    target, family, *strategy, seed = path.stem.split("-")
    return {"target": target, "family": family, "strategy": "-".join(strategy).replace("_", " "), "seed": int(seed)}


def judge(path: Path, references: dict) -> list[dict]:
    """Frequency errors (cm^-1) of every head of one saved model whose level has a shipped reference."""
    import workbench as wb
    from workbench.analysis.vibrations import frequency_errors, vibrations

    model = wb.TrainedModel.load(path)
    rows = []
    for head in model.fidelities:
        if head not in references:
            continue
        reference = references[head]
        result = vibrations(model, reference.atoms, fidelity=head)
        errors = frequency_errors(result, reference)
        rows.append(
            {
                **describe(path),
                "head": head,
                "frequency MAE (cm-1)": errors["mae"],
                "largest error (cm-1)": errors["max_abs"],
                "worst mode": f"{reference.frequencies[errors['worst_mode']]:.0f}",
                "residual force (eV/Å)": result.max_force,
            }
        )
    return rows


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+", help="folders or .tgz files of saved models")
    parser.add_argument("--target", default="reference", help="which runs: reference (MP2 from energies) or top")
    parser.add_argument("--out", type=Path, help="write the per-model rows to this CSV file")
    args = parser.parse_args(argv)
    from multifidelity import markdown

    import workbench as wb
    from workbench.analysis.vibrations import frequency_errors

    references = {level: wb.datasets.vibrational_reference("ethanol", level) for level in ("gfn2-xtb", "mp2/cc-pvdz")}
    rows = []
    for source in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            for path in model_files(source, Path(tmp)):
                if describe(path)["target"] == args.target:
                    rows += judge(path, references)
                    print(rows[-1] if rows else path, flush=True)
    runs = pd.DataFrame(rows)
    if args.out:
        runs.to_csv(args.out, index=False)
    raw = frequency_errors(references["gfn2-xtb"], references["mp2/cc-pvdz"])

    def pm(values: pd.Series) -> str:
        return f"{values.mean():.0f} ± {values.std(ddof=0):.0f}" if len(values) > 1 else f"{values.mean():.0f}"

    groups = runs.groupby(["strategy", "head"], sort=False)
    table = pd.DataFrame(
        {
            "frequency MAE (cm-1)": groups["frequency MAE (cm-1)"].apply(pm),
            "largest error (cm-1)": groups["largest error (cm-1)"].apply(pm),
            "seeds": groups["seed"].count(),
        }
    )
    table.loc[("gfn2-xtb as is (no ML)", "mp2/cc-pvdz"), :] = [f"{raw['mae']:.0f}", f"{raw['max_abs']:.0f}", 0]
    print(f"\nHarmonic frequencies of ethanol against the shipped ones of each head's level ({args.target} runs)")
    print(markdown(table))
    return table


if __name__ == "__main__":
    main()
