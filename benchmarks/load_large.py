"""Open a 1,000,000-configuration ANI-layout HDF5 file: workbench.load vs raw h5py.

Makes the file once (synthetic numbers in the ANI-1x release layout: one group per formula,
float32 coordinates and forces, float64 energies in Hartree, a high level present on 10% of
configurations, NaN elsewhere), then, each in a fresh process, reads the same arrays

- raw:       h5py, one numpy array per group and dataset (the least any reader must do);
- workbench: ``workbench.load(path)`` (flat ragged arrays, masks, units converted, conflicts
             checked) followed by ``coverage()`` and ``summary()``;

and prints wall time and peak memory above the process's baseline, side by side.

    python benchmarks/load_large.py [--configurations 1000000] [--file /tmp/ani_1m.h5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

LEVELS_EF = ["wb97x_dz"]  # energy + forces
LEVELS_E = ["hf_dz", "ccsd(t)_cbs"]  # energies only
CORRECTIONS = ["mp2_dz"]  # correlation energy added to hf_dz


def make_file(path: str, n_configurations: int, per_group: int = 1000, seed: int = 0) -> None:
    import h5py

    rng = np.random.default_rng(seed)
    n_groups = n_configurations // per_group
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as fh:
        for g in range(n_groups):
            n_atoms = int(rng.integers(8, 24))
            z = rng.choice([1, 6, 7, 8], size=n_atoms, p=[0.5, 0.3, 0.1, 0.1]).astype(np.uint8)
            grp = fh.create_group(f"G{g:05d}_n{n_atoms}")
            grp["atomic_numbers"] = z
            base = rng.normal(scale=1.5, size=(1, n_atoms, 3))
            grp["coordinates"] = (base + rng.normal(scale=0.05, size=(per_group, n_atoms, 3))).astype(np.float32)
            e0 = -38.0 * (z == 6).sum() - 0.5 * (z == 1).sum() - 54.6 * (z == 7).sum() - 75.0 * (z == 8).sum()
            for level in LEVELS_EF + LEVELS_E:
                e = e0 + rng.normal(scale=0.01, size=per_group)
                if level == "ccsd(t)_cbs":
                    e[rng.random(per_group) > 0.1] = np.nan
                grp[f"{level}.energy"] = e
            for level in LEVELS_EF:
                grp[f"{level}.forces"] = rng.normal(scale=0.02, size=(per_group, n_atoms, 3)).astype(np.float32)
            for level in CORRECTIONS:
                grp[f"{level}.corr_energy"] = -0.3 * n_atoms + rng.normal(scale=0.01, size=per_group)
    os.replace(tmp, path)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux), so the peak counts only the read.
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def run_raw(path: str) -> dict:
    import h5py

    _reset_peak()
    base = _rss_mb()
    t0 = time.perf_counter()
    arrays = []
    with h5py.File(path, "r") as fh:
        for grp in fh.values():
            for key in grp:
                arrays.append(grp[key][()])
    elapsed = time.perf_counter() - t0
    nbytes = sum(a.nbytes for a in arrays)
    return {"seconds": elapsed, "peak_mb": _rss_mb() - base, "array_mb": nbytes / 2**20}


def run_workbench(path: str) -> dict:
    import workbench as wb

    _reset_peak()
    base = _rss_mb()
    t0 = time.perf_counter()
    ds = wb.load(path)
    t_load = time.perf_counter() - t0
    cov = ds.coverage()
    ds.summary()
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "load_seconds": t_load,
        "peak_mb": _rss_mb() - base,
        "configurations": len(ds),
        "atoms": int(len(ds.numbers)),
        "fidelities": len(ds.fidelity_names),
        "ccsd(t) energies": int(cov.loc["ccsd(t)/cbs", "energy"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configurations", type=int, default=1_000_000)
    parser.add_argument("--file", default="/tmp/workbench_ani_large.h5")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--_child", choices=["raw", "workbench"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        # Import both stacks in both children, so the baseline is the same.
        import h5py  # noqa: F401

        import workbench  # noqa: F401

        result = run_raw(args.file) if args._child == "raw" else run_workbench(args.file)
        print(json.dumps(result))
        return
    if not os.path.exists(args.file):
        t0 = time.perf_counter()
        make_file(args.file, args.configurations)
        print(f"made {args.file} ({os.path.getsize(args.file) / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
    results = {"raw": [], "workbench": []}
    for _ in range(args.repeat):
        for kind in ("raw", "workbench"):  # alternate, so page-cache warmth is shared fairly
            out = subprocess.run(
                [sys.executable, __file__, "--file", args.file, "--_child", kind],
                check=True,
                capture_output=True,
                text=True,
            )
            results[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    raw = min(results["raw"], key=lambda r: r["seconds"])
    ours = min(results["workbench"], key=lambda r: r["seconds"])
    print(
        f"file: {args.file}, {ours['configurations']:,} configurations, {ours['atoms']:,} atoms, "
        f"{ours['fidelities']} fidelities (ccsd(t)/cbs on {ours['ccsd(t) energies']:,})"
    )
    print(f"raw arrays: {raw['array_mb']:.0f} MiB; best of {args.repeat} runs each")
    print(f"{'':<28}{'raw h5py':>12}{'workbench':>12}{'ratio':>8}")
    for label, key, fmt in (("wall time (s)", "seconds", ".2f"), ("peak memory (MiB)", "peak_mb", ".0f")):
        print(f"{label:<28}{raw[key]:>12{fmt}}{ours[key]:>12{fmt}}{ours[key] / raw[key]:>8.2f}")
    rest = ours["seconds"] - ours["load_seconds"]
    print(f"(workbench: load {ours['load_seconds']:.2f} s, coverage + summary {rest:.2f} s)")


if __name__ == "__main__":
    main()
