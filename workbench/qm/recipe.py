"""The recipe behind the built-in fidelity-mixed datasets: MD with a cheap level, farthest-point
subsets for the expensive ones, everything through the resumable label store.

Three fidelities in the pattern of real multi-fidelity data: all configurations with the low
level's energies and forces, a subset with a mid level's energies and forces, and a subset of that
with the top level's energies only. Re-running with the same work directory resumes: the MD
configurations are read back from ``md.h5`` and finished labels from the store.

Beside each dataset the recipe ships a vibrational reference (:func:`make_vibrational_reference`):
harmonic frequencies of the starting molecule at each level with gradients, each at that level's
own minimum, read back by :func:`wb.datasets.vibrational_reference`.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import __version__
from ..data.builtin import VIBRATIONS_FORMAT
from ..data.dataset import Dataset
from .labeling_job import label
from .levels import Level
from .sampling import langevin_md
from .select import choose
from .vibrations import reference_vibrations


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
            callbacks=_progress(level),
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
    """``python -m workbench.data.builtin.make_<name> [--work DIR] [--output FILE] [--workers N]
    [--frequencies-only]``: the dataset, then its vibrational reference (or only the latter)."""
    import argparse

    here = Path(__file__).resolve().parents[1] / "data" / "builtin"
    parser = argparse.ArgumentParser(description=f"regenerate the built-in {recipe.name} dataset (resumable)")
    parser.add_argument("--work", type=Path, default=Path(f"build/builtin-{recipe.name}"), help="work directory")
    parser.add_argument("--output", type=Path, default=here / f"{recipe.name}.h5")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: serial, one process)")
    parser.add_argument(
        "--frequencies-only",
        action="store_true",
        help=f"only the vibrational reference ({vibrations_file(recipe.name)}), not the dataset",
    )
    args = parser.parse_args(argv)
    provenance = args.output.parent / f"PROVENANCE-{recipe.name}.md"
    if not args.frequencies_only:
        make_builtin(recipe, atoms, args.work, args.output, provenance, workers=args.workers)
    make_vibrational_reference(recipe, atoms, args.output.parent / vibrations_file(recipe.name), provenance)


# --------------------------------------------------------------------------------------------- vibrations
def vibrations_file(name: str) -> str:
    """File name of a built-in molecule's vibrational reference, beside its dataset."""
    return f"{name}-vibrations.json"


def make_vibrational_reference(
    recipe: BuiltinRecipe,
    atoms: Atoms,
    output: Path,
    provenance: Path | None = None,
    levels: tuple[str, ...] | None = None,
    fmax: float = 1e-3,
    steps: int = 500,
    delta: float = 0.005,
) -> dict:
    """Harmonic frequencies of ``atoms`` at each level of the recipe that has gradients (``low`` and ``mid``;
    the top level has energies only), each at that level's own minimum, written to ``output`` (JSON).

    Per level: BFGS on the level's calculator from ``atoms`` to ``fmax`` eV/Å (at most ``steps`` steps), then
    the Hessian by central differences of the level's analytic gradients, step ``delta`` Å (6n gradients), both
    by :func:`workbench.qm.vibrations.reference_vibrations`. A level that stops short of ``fmax`` or has an imaginary
    frequency at its minimum is an error, never a shipped number. Levels already in ``output`` with the same
    settings, start and procedure are kept, so an interrupted run resumes. ``provenance`` (the dataset's
    Markdown) gets a section that summarises the file.

    The file holds ``format``, ``molecule``, ``units``, ``start`` (numbers, positions in Å) and ``levels``:
    per level name its ``level`` (program, version, method, basis, every setting, key), ``geometry``
    (numbers, positions in Å), ``max_force`` (eV/Å), ``hessian`` (eV/Å^2, atom-major), ``frequencies``
    (cm^-1, ascending), ``characters``, ``procedure`` (optimizer, fmax, steps, Hessian method, delta,
    gradients), ``wall_time_s``, ``date`` (UTC), ``programs`` (versions) and ``machine``.
    """
    levels = tuple(levels) if levels is not None else (recipe.low, recipe.mid)
    start = {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist()}
    procedure = {
        "optimizer": "ase.optimize.BFGS",
        "fmax": fmax,
        "max_steps": steps,
        "hessian": "finite-difference",
        "delta": delta,
        "gradients": 6 * len(atoms),
    }
    data = {
        "format": VIBRATIONS_FORMAT,
        "molecule": recipe.name,
        "units": {
            "positions": "Å",
            "max_force": "eV/Å",
            "fmax": "eV/Å",
            "delta": "Å",
            "hessian": "eV/Å^2",
            "frequencies": "cm^-1",
            "wall_time_s": "s",
        },
        "made_by": f"workbench.qm.recipe.make_vibrational_reference "
        f"(python -m workbench.data.builtin.make_{recipe.name} --frequencies-only)",
        "start": start,
        "levels": {},
    }
    old = json.loads(output.read_text()) if output.is_file() else {}
    for name in levels:
        level = Level(name)
        kept = old.get("levels", {}).get(level.name) if old.get("start") == start else None
        if kept and kept["level"]["key"] == level.key and kept["procedure"] == procedure:
            _log(f"{level.name}: kept from {output}")
            data["levels"][level.name] = kept
            continue
        _log(f"{level.name}: relaxing {recipe.name} to {fmax:g} eV/Å, then {6 * len(atoms)} gradients")
        t0 = time.perf_counter()
        result = reference_vibrations(
            atoms, level, method="finite-difference", fmax=fmax, steps=steps, delta=delta, cache=False
        )
        wall = time.perf_counter() - t0
        if not result.max_force <= fmax:
            raise RuntimeError(
                f"{level.name}: BFGS left {result.max_force:.2g} eV/Å on an atom of {recipe.name} after {steps} "
                f"steps (expected at most {fmax:g} eV/Å); the frequencies would not be those of a minimum"
            )
        if np.any(result.frequencies < 0):
            raise RuntimeError(
                f"{level.name}: {int(np.sum(result.frequencies < 0))} imaginary frequencies at the relaxed "
                f"{recipe.name} ({result.frequencies[result.frequencies < 0].round(1).tolist()} cm^-1): not a minimum"
            )
        data["levels"][level.name] = {
            "level": {**level.describe(), "key": level.key},
            "geometry": {"numbers": result.atoms.numbers.tolist(), "positions": result.atoms.positions.tolist()},
            "max_force": result.max_force,
            "hessian": result.hessian.tolist(),
            "frequencies": result.frequencies.tolist(),
            "characters": result.characters,
            "procedure": procedure,
            "wall_time_s": round(wall, 1),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "programs": {
                "workbench": __version__,
                level.program: level.version,
                **{p: metadata.version(p) for p in ("ase", "numpy", "scipy")},
                "python": platform.python_version(),
            },
            "machine": {"arch": platform.machine(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")},
        }
        _log(f"{level.name}: {wall:.0f} s, largest force left {result.max_force:.1e} eV/Å")
        output.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    output.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    _log(f"wrote {output} ({output.stat().st_size / 1e3:.0f} kB)")
    if provenance is not None and provenance.is_file():
        text = provenance.read_text()
        text = text.split(_VIBRATIONS_HEADING)[0].rstrip("\n") + "\n\n" + _vibrations_section(data, output.name)
        provenance.write_text(text)
    return data


_VIBRATIONS_HEADING = "## Vibrational reference"


def _vibrations_section(data: dict, file_name: str) -> str:
    lines = [
        _VIBRATIONS_HEADING,
        "",
        f"`{file_name}` (read with `wb.datasets.vibrational_reference`): harmonic frequencies of the starting "
        "molecule at each level with gradients, each at that level's own minimum (ASE BFGS to the force below), "
        "the Hessian by central differences of the level's analytic gradients; made by "
        "`workbench.qm.recipe.make_vibrational_reference`.",
        "",
        "| level | program | version | largest force left | Hessian | wall time | date |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in data["levels"].items():
        p = entry["procedure"]
        lines.append(
            f"| {name} | {entry['level']['program']} | {entry['level']['version']} | {entry['max_force']:.1e} eV/Å "
            f"(fmax {p['fmax']:g}) | {p['gradients']} gradients, step {p['delta']:g} Å | "
            f"{_duration(entry['wall_time_s'])} | {entry['date'][:10]} |"
        )
    threads = {e["machine"]["OMP_NUM_THREADS"] for e in data["levels"].values()}
    lines += ["", f"Threads (OMP_NUM_THREADS): {', '.join(sorted(threads))}.", ""]
    return "\n".join(lines)


def _progress(level: str):
    state = {"last": 0.0}

    def report(record: dict) -> None:
        now = time.time()
        if now - state["last"] > 60 or record["done"] == record["total"]:
            state["last"] = now
            _log(f"  {level}: {record['done']}/{record['total']}")

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
