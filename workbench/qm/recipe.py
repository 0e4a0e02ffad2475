"""The recipe behind the built-in fidelity-mixed datasets: MD with a cheap level, farthest-point
subsets for the expensive ones, everything through the resumable label store.

Three fidelities in the pattern of real multi-fidelity data: all configurations with the low
level's energies and forces, a subset with a mid level's energies and forces, and a subset of that
with the top level's energies only. Re-running with the same work directory resumes: the MD
configurations are read back from ``md.h5`` and finished labels from the store.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from ..data.dataset import Dataset
from .job import label
from .levels import Level
from .sampling import langevin_md
from .select import choose


@dataclass
class BuiltinRecipe:
    """Settings of one built-in dataset (temperatures in K, times in fs)."""

    name: str
    n_md: int = 2000
    n_mid: int = 300
    n_top: int = 200
    low: str = "gfn2-xtb"
    mid: str = "mp2/cc-pvdz"
    top: str = "ccsd(t)/cc-pvdz"
    temperature_K: float = 500.0
    timestep_fs: float = 0.5
    interval: int = 20
    equilibration_steps: int = 2000
    friction_per_fs: float = 0.01
    seed: int = 0


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _wall_time_by_level(store_file: Path) -> dict[str, tuple[int, float]]:
    conn = sqlite3.connect(store_file)
    try:
        rows = conn.execute("SELECT l.fidelity, b.meta FROM labels b JOIN levels l ON l.level_key = b.level_key")
        out: dict[str, list] = {}
        for fid, meta in rows:
            n, t = out.get(fid, (0, 0.0))
            out[fid] = (n + 1, t + json.loads(meta).get("wall_time_s", 0.0))
        return out
    finally:
        conn.close()


def make_builtin(
    recipe: BuiltinRecipe,
    atoms: Atoms,
    work: Path,
    output: Path,
    provenance: Path | None = None,
    workers: int | None = None,
) -> Dataset:
    """Run (or resume) the recipe and write ``output`` (workbench HDF5) and ``provenance`` (Markdown)."""
    work.mkdir(parents=True, exist_ok=True)
    store = work / "labels"
    md_file = work / "md.h5"
    if md_file.exists():
        md = Dataset.load(md_file)
        _log(f"read {len(md)} MD configurations from {md_file}")
    else:
        _log(f"Langevin MD of {recipe.name} with {recipe.low} at {recipe.temperature_K} K: {recipe.n_md} samples")
        t0 = time.time()
        md = langevin_md(
            atoms,
            recipe.n_md,
            temperature_K=recipe.temperature_K,
            timestep_fs=recipe.timestep_fs,
            interval=recipe.interval,
            equilibration_steps=recipe.equilibration_steps,
            friction_per_fs=recipe.friction_per_fs,
            seed=recipe.seed,
        )
        md.info["md_wall_time_s"] = time.time() - t0
        md.save(md_file)
        _log(f"MD done in {time.time() - t0:.0f} s")
    md_wall = float(md.info["md_wall_time_s"].iloc[0])

    def run(ds, level, indices, properties):
        _log(f"{level}: {len(indices)} configurations, {'+'.join(properties)}")
        job = label(
            ds,
            level,
            store=store,
            indices=indices,
            properties=properties,
            workers=workers,
            background=False,
            progress=_progress(level),
        )
        out = job.result()
        _log(f"{level}: {job.n_computed} computed now, {job.n_failed} failed, {job.wall_time_s:.0f} s")
        return out

    ds = run(md, recipe.low, np.arange(len(md)), ("energy", "forces"))
    order = choose(ds, recipe.n_mid, method="fps", descriptor="inverse_distances", seed=recipe.seed)
    ds = run(ds, recipe.mid, order, ("energy", "forces"))
    ds = run(ds, recipe.top, order[: recipe.n_top], ("energy",))

    fps_rank = np.full(len(ds), -1)
    fps_rank[order] = np.arange(len(order))
    ds.info["fps_rank"] = fps_rank
    ds.info = ds.info.drop(columns=["md_wall_time_s"])
    for p in ds.provenance:
        p.pop("store", None)  # a local path means nothing to users of the shipped file
    ds.provenance.append({"note": f"built by workbench.qm.recipe: {json.dumps(asdict(recipe))}"})
    ds.save(output)
    _log(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB)")
    if provenance is not None:
        provenance.write_text(_provenance_text(recipe, ds, store / "labels.sqlite", md_wall))
        _log(f"wrote {provenance}")
    return ds


def command_line(recipe: BuiltinRecipe, atoms: Atoms, argv=None) -> None:
    """``python -m workbench.data.builtin.make_<name> [--work DIR] [--output FILE] [--workers N]``."""
    import argparse

    here = Path(__file__).resolve().parents[1] / "data" / "builtin"
    parser = argparse.ArgumentParser(description=f"regenerate the built-in {recipe.name} dataset (resumable)")
    parser.add_argument("--work", type=Path, default=Path(f"build/builtin-{recipe.name}"), help="work directory")
    parser.add_argument("--output", type=Path, default=here / f"{recipe.name}.h5")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: serial, one process)")
    args = parser.parse_args(argv)
    provenance = args.output.parent / f"PROVENANCE-{recipe.name}.md"
    make_builtin(recipe, atoms, args.work, args.output, provenance, workers=args.workers)


def _progress(level: str):
    state = {"last": 0.0}

    def report(done: int, total: int) -> None:
        now = time.time()
        if now - state["last"] > 60 or done == total:
            state["last"] = now
            _log(f"  {level}: {done}/{total}")

    return report


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _provenance_text(recipe: BuiltinRecipe, ds: Dataset, store_file: Path, md_wall: float) -> str:
    cov = ds.coverage()
    timing = _wall_time_by_level(store_file)
    lines = [
        f"# Built-in dataset `{recipe.name}`",
        "",
        f"Made by `workbench/data/builtin/make_{recipe.name}.py` with `workbench.qm` (recipe: "
        "`workbench.qm.recipe.make_builtin`).",
        "",
        "## How",
        "",
        f"1. Langevin MD with {recipe.low} (tblite) at {recipe.temperature_K:g} K, time step {recipe.timestep_fs} fs, "
        f"friction {recipe.friction_per_fs} fs^-1, {recipe.equilibration_steps} equilibration steps discarded, "
        f"then one configuration every {recipe.interval} steps: {recipe.n_md} configurations (seed {recipe.seed}; "
        f"MD took {md_wall:.0f} s). Each configuration is centred on its centre of mass.",
        f"2. {recipe.low} energies and forces for all of them.",
        f"3. {recipe.n_mid} configurations chosen by farthest-point sampling on inverse interatomic distances "
        f"(`workbench.qm.select.choose`, seed {recipe.seed}); {recipe.mid} energies and forces for them.",
        f"4. The first {recipe.n_top} of that farthest-point order (itself a farthest-point choice): {recipe.top} "
        "energies only. `info['fps_rank']` gives each configuration's place in the order (-1: not chosen).",
        "",
        "## Levels",
        "",
        "| fidelity | program | version | settings | energies | forces | labels computed | compute time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    total = md_wall
    for level_name in (recipe.low, recipe.mid, recipe.top):
        level = Level(level_name)
        row = cov.loc[level.name]
        n, t = timing.get(level.name, (0, 0.0))
        total += t
        settings = ", ".join(f"{k}={v}" for k, v in level.settings.items() if k != "max_memory_mb")
        lines.append(
            f"| {level.name} | {level.program} | {level.version} | {settings} | {row['energy']} | {row['forces']} | "
            f"{n} | {_duration(t)} |"
        )
    lines += [
        "",
        "Frozen core: PySCF's chemical core (1s on C, N, O). Units: eV, Å, eV/Å. A calculation that failed "
        "would be missing from the file (masked), never stored as a number; the counts above are what is present.",
        "",
        f"Compute time: the sum of each label's wall time plus the MD ({_duration(total)} in all), one thread "
        f"(OMP_NUM_THREADS=1) on a shared 2-core {platform.machine()} machine, Python {platform.python_version()}.",
        f"Configurations: {len(ds)}; atoms per configuration: {int(ds.n_atoms[0])}.",
        "",
    ]
    return "\n".join(lines)
