"""Why learnt heads miss harmonic frequencies: how much of the miss is the training data's distance from the minimum.

A single-fidelity GFN2-xTB model (HIP-NN at ``wb.train``'s defaults) is trained on the same 800 molecular-dynamics
configurations (500 K) as ``benchmarks/multifidelity_defaults.sh``'s low level, then again with ``--extra``
configurations drawn by normal-mode sampling around GFN2-xTB's own minimum (``workbench.qm.sampling``, 300 K) and
labelled with GFN2-xTB. Each model's frequencies at its own minimum are compared with GFN2-xTB's shipped ones (the
same level, so the only error is the model's): MAE and largest error, cm^-1, per seed.

    python benchmarks/frequency_sampling.py [--seeds 0] [--extra 200]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--extra", type=int, default=200, help="normal-mode samples added")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from multifidelity import levels, split

    import workbench as wb
    from workbench.analysis.vibrations import frequency_errors, vibrations
    from workbench.data import concatenate
    from workbench.qm import label
    from workbench.qm.sampling import normal_mode_sample

    ds = wb.datasets.builtin("ethanol")
    low = levels(ds)[0]
    md, _ = split(ds, 100, 100, target="reference", n_low=800)
    for name in md.fidelity_names[1:]:
        md = md.drop_fidelity(name)
    reference = wb.datasets.vibrational_reference("ethanol", low)
    near = normal_mode_sample(reference.atoms, args.extra, temperature_K=300.0, seed=0)
    near = label(near, low, background=False, progress=False).result()
    sets = {"800 MD configurations (500 K)": md, f"+ {args.extra} normal-mode samples (300 K)": concatenate([md, near])}
    rows = []
    for name, data in sets.items():
        for seed in args.seeds:
            start = time.perf_counter()
            model = wb.train(data, recipe="single", seed=seed, device="cpu", background=False, progress=False).result()
            result = vibrations(model, reference.atoms)
            errors = frequency_errors(result, reference)
            rows.append(
                {
                    "training data": name,
                    "seed": seed,
                    "frequency MAE (cm-1)": errors["mae"],
                    "largest error (cm-1)": errors["max_abs"],
                    "epochs": len(model.history),
                    "time (s)": time.perf_counter() - start,
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(f"\nGFN2-xTB head against GFN2-xTB's own frequencies (HIP-NN, wb.train defaults, {args.threads} thread)")
    print(table.to_string(index=False, float_format="{:.1f}".format))
    return table


if __name__ == "__main__":
    main()
