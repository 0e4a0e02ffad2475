"""Labels per second of the labeling engine next to raw tblite and PySCF calls on the same geometries.

    OMP_NUM_THREADS=1 python benchmarks/label_throughput.py [--xtb 256] [--pyscf 8] [--dft 4] [--repeats 5]
        [--side-by-side 5]

Raw: a plain loop that builds the program's calculator for each geometry and asks for energy and
gradient (tblite's ``Calculator.singlepoint``; PySCF ``RHF`` + ``nuc_grad_method``); for xTB also
the loop an expert writes, one calculator whose positions are updated (what the engine does while
the atoms stay the same). Engine:
``workbench.qm.label`` into a fresh on-disk store (every label committed to SQLite as it
finishes, then assembled into a Dataset), serially and on Dask with 1 and 2 one-thread workers
(cluster start-up timed separately). Throughput from the best wall time of each path over
``--repeats`` interleaved rounds, with the CPU time (this process plus the Dask workers) over the
raw loop's in the same round.

The overhead (target: below 5%) is measured side by side: while the engine labels, one raw-loop
process per engine worker (one for the serial engine) runs the raw loop on the same geometries,
pinned to the same core as the worker (or serial job) it runs beside, so that the two take turns
on one core and see the same seconds of it; this machine's speed drifts by tens of percent from
one second to the next, and its two cores do not drift together. Overhead = the engine's CPU per
label over the raw loop's, minus 1; median and a 95% interval over ``--side-by-side`` runs. With 2
workers, the raw loop run as one Dask task per worker on the same cluster is measured in turn with
the engine, in the same way: what the cluster itself costs, and the engine over it, run by run.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
from ase.build import molecule  # noqa: E402

from workbench.qm import label  # noqa: E402
from workbench.qm.dask_backend import local_client  # noqa: E402
from workbench.qm.sampling import random_displacements  # noqa: E402
from workbench.qm.store import LabelStore  # noqa: E402


def _xtb_calculator(numbers, positions):
    """A GFN2-xTB calculator with the settings the engine passes (its defaults, which are tblite's)."""
    from ase.units import Bohr, Hartree, kB
    from tblite.interface import Calculator

    calc = Calculator("GFN2-xTB", numbers, positions / Bohr)
    calc.set("verbosity", 0)
    calc.set("accuracy", 1.0)
    calc.set("temperature", 300.0 * kB / Hartree)
    calc.set("max-iter", 250)
    return calc


def raw_tblite(ds) -> None:
    for a, b in zip(ds.ptr[:-1], ds.ptr[1:], strict=True):
        res = _xtb_calculator(ds.numbers[a:b], ds.positions[a:b]).singlepoint()
        res["energy"], res["gradient"]


def raw_tblite_reused(ds) -> None:
    """The raw loop as an expert writes it: one calculator, its positions updated for each geometry."""
    from ase.units import Bohr

    calc = None
    for a, b in zip(ds.ptr[:-1], ds.ptr[1:], strict=True):
        if calc is None:
            calc = _xtb_calculator(ds.numbers[a:b], ds.positions[a:b])
        else:
            calc.update(ds.positions[a:b] / Bohr)
        res = calc.singlepoint()
        res["energy"], res["gradient"]


def raw_pyscf(ds) -> None:
    from pyscf import gto, scf

    for a, b in zip(ds.ptr[:-1], ds.ptr[1:], strict=True):
        atom = [(int(z), tuple(r)) for z, r in zip(ds.numbers[a:b], ds.positions[a:b], strict=True)]
        mol = gto.M(atom=atom, basis="sto-3g", unit="Angstrom", verbose=0)
        mf = scf.RHF(mol)
        mf.conv_tol = 1e-9
        mf.max_cycle = 100
        mf.kernel()
        mf.nuc_grad_method().kernel()


def raw_pyscf_dft(ds) -> None:
    from pyscf import dft, gto

    for a, b in zip(ds.ptr[:-1], ds.ptr[1:], strict=True):
        atom = [(int(z), tuple(r)) for z, r in zip(ds.numbers[a:b], ds.positions[a:b], strict=True)]
        mol = gto.M(atom=atom, basis="6-31g*", unit="Angstrom", verbose=0, max_memory=4000)
        mf = dft.RKS(mol)
        mf.xc = "b3lyp"
        mf.grids.level = 3
        mf.conv_tol = 1e-9
        mf.max_cycle = 100
        mf.kernel()
        mf.nuc_grad_method().kernel()


def engine(ds, level, client=None) -> dict:
    """Label ``ds`` into a fresh store. Returns ``inside``: the seconds spent inside the QM program
    calls, summed over the labels (each label records the wall time of its own calculation), and on
    Dask ``tasks``: the seconds the workers spent running the job's tasks (Dask's task stream)."""
    import contextlib

    from distributed import get_task_stream

    stream = get_task_stream(client) if client is not None else contextlib.nullcontext()
    with tempfile.TemporaryDirectory() as store, stream as tasks:
        job = label(ds, level, store=store, client=client, background=False, progress=False)
        out = job.result()
        assert job.n_computed == len(ds) and out.energy(level)[1].all()
        with LabelStore(store) as saved:
            inside = sum(meta["wall_time_s"] for meta in saved.table(meta=True)["meta"])
    if client is None:
        return {"inside": inside}
    spans = [s for t in tasks.data for s in t["startstops"] if s["action"] == "compute"]
    return {"inside": inside, "tasks": sum(s["stop"] - s["start"] for s in spans)}


_pool_cpu: dict = {}


def _timed(raw, ds) -> float:
    start = time.process_time()
    raw(ds)
    return time.process_time() - start


def raw_parallel(pool, raw, ds) -> None:
    """The raw loop in two processes at once, half the geometries each: what two busy cores cost
    without any engine (they share caches and clocks); their CPU seconds go to ``_pool_cpu``."""
    half = len(ds) // 2
    parts = [ds.select(np.arange(half)), ds.select(np.arange(half, len(ds)))]
    _pool_cpu["last"] = sum(pool.map(_timed, [raw, raw], parts))


def idle_cpu(seconds: float = 3.0, client=None) -> float:
    """CPU seconds per second this process (plus the workers of ``client``) spends doing nothing:
    the Dask schedulers, clients and workers keep their event loops ticking (~1.4% of a core in this
    process with both clusters up)."""
    before = client.run(time.process_time) if client is not None else {}
    wall, cpu = time.perf_counter(), time.process_time()
    time.sleep(seconds)
    cpu = time.process_time() - cpu
    if client is not None:
        cpu += sum(t - before[w] for w, t in client.run(time.process_time).items())
    return cpu / (time.perf_counter() - wall)


def _raw_side(raw, blocks, flag, results) -> None:
    """A raw-loop process for :func:`side_by_side`: once ``flag`` is 1 it runs ``raw`` over
    ``blocks`` (small Datasets, in turn, round and round; one block at least) until the flag
    changes, then reports the labels it finished and their CPU seconds; -1 ends it."""
    raw(blocks[0])  # imports and caches, outside the windows
    results.put("ready")
    while True:
        while flag.value == 0:
            time.sleep(0.001)
        if flag.value < 0:
            return
        done, cpu, i = 0, time.process_time(), 0
        while i == 0 or flag.value == 1:
            block = blocks[i % len(blocks)]
            raw(block)
            done, i = done + len(block), i + 1
        results.put((done, time.process_time() - cpu))
        while flag.value == 2:
            time.sleep(0.001)


def pin(pid: int, cores: set[int]) -> None:
    """Keep every thread of process ``pid`` on ``cores`` (threads it starts later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:  # the thread ended meanwhile
            pass


class RawSide:
    """Processes that run the raw loop while the engine runs, for :func:`side_by_side`."""

    def __init__(self, ds, raw, processes: int = 2, block: int = 8):
        ctx = multiprocessing.get_context("spawn")  # this process runs Dask's threads: no fork
        blocks = [ds.select(np.arange(a, min(a + block, len(ds)))) for a in range(0, len(ds), block)]
        self.flags = [ctx.Value("i", 0, lock=False) for _ in range(processes)]
        self.results = ctx.Queue()
        self.procs = [
            ctx.Process(target=_raw_side, args=(raw, blocks, flag, self.results), daemon=True) for flag in self.flags
        ]
        for proc in self.procs:
            proc.start()
        for _ in self.procs:  # each has imported its program and run one block
            assert self.results.get(timeout=600) == "ready"

    def run_beside(self, work, processes: int) -> tuple[int, float]:
        """Run ``work()`` here while ``processes`` raw loops run; the labels they finished meanwhile
        and their CPU seconds."""
        for flag in self.flags[:processes]:
            flag.value = 1
        try:
            work()
        finally:
            for flag in self.flags[:processes]:
                flag.value = 2
        answers = [self.results.get(timeout=600) for _ in range(processes)]
        for flag in self.flags[:processes]:
            flag.value = 0
        return sum(n for n, _ in answers), sum(c for _, c in answers)

    def close(self) -> None:
        for flag in self.flags:
            flag.value = -1
        for proc in self.procs:
            proc.join(timeout=30)


def raw_as_dask_tasks(ds, raw, client) -> None:
    """The raw loop run as one Dask task per worker of ``client``, each on its share of ``ds``: what the
    cluster itself costs, without the engine (:func:`side_by_side` with ``work=``)."""
    workers = sorted(client.scheduler_info()["workers"])
    parts = np.array_split(np.arange(len(ds)), len(workers))
    tasks = [
        client.submit(raw, ds.select(part), workers=[w], pure=False) for part, w in zip(parts, workers, strict=True)
    ]
    client.gather(tasks)


def side_by_side(ds, level, raw_side: RawSide, client=None, work=None) -> tuple[float, float, float]:
    """The engine's CPU seconds per label, and the raw loop's, measured at the same time: while the
    engine labels ``ds`` (serially here, or on the Dask workers of ``client``), as many raw-loop
    processes as it has workers (one for the serial engine) run beside it, on the same geometries,
    until it finishes. Engine: this process (the job, the Dask scheduler and client; run it with no
    other cluster here) plus the workers. Raw: the loops' own CPU. :func:`side_by_side_rounds` pins
    each raw loop to the core of the engine's worker (or serial job) it runs beside. Also returns
    the engine's wall time (s). ``work(ds, client)``, if given, runs instead of the engine."""
    workers = len(client.scheduler_info()["workers"]) if client is not None else 1
    spent = {}

    def run() -> None:
        before = client.run(time.process_time) if client is not None else {}
        with tempfile.TemporaryDirectory() as store:
            cpu, wall = time.process_time(), time.perf_counter()
            if work is None:
                label(ds, level, store=store, client=client, background=False, progress=False).result()
            else:
                work(ds, client)
            cpu, spent["wall"] = time.process_time() - cpu, time.perf_counter() - wall
        if client is not None:
            cpu += sum(t - before[w] for w, t in client.run(time.process_time).items())
        spent["engine"] = cpu

    raw_done, raw_cpu = raw_side.run_beside(run, workers)
    return spent["engine"] / len(ds), raw_cpu / raw_done, spent["wall"]


def median_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median: the order statistics that bracket it with
    ``confidence`` (binomial ranks)."""
    from scipy.stats import binom

    v = np.sort(values)
    k = max(int(binom.ppf((1 - confidence) / 2, len(v), 0.5)), 1)
    return float(v[k - 1]), float(v[len(v) - k])


def side_by_side_rounds(cases, rounds: int) -> dict:
    """``rounds`` :func:`side_by_side` measurements of each engine path, each path with only its own
    Dask cluster up (its event loops are the engine's; another cluster's would not be). Returns
    ``{(level, path): [engine CPU per label / raw CPU per label - 1, ...]}`` and, for the Dask
    paths, ``{(level, path): [share, ...]}``: how much of that figure the cluster's idle event loops
    (measured with the cluster up and idle: heartbeats, timers) add by running twice as long as
    the engine would alone, since it shares its cores with the raw loops half and half. With 2
    workers each round also measures the raw loop run as Dask tasks on the same cluster
    (:func:`raw_as_dask_tasks`), path ``"raw loop as Dask tasks, 2 workers"``: the cluster's own cost."""
    out: dict = {}
    ticking: dict = {}
    sides = {level: RawSide(ds, raw) for level, ds, raw in cases}
    every_core = os.sched_getaffinity(0)
    try:
        for path, workers in (("engine, serial", 0), ("engine, Dask 1 worker", 1), ("engine, Dask 2 workers", 2)):
            client = local_client(workers) if workers else None
            if len(every_core) >= 2:
                # A machine's speed drifts by tens of percent from one second to the next, and its
                # cores do not drift together. So each raw loop shares one core, in turn, with the
                # engine's process that computes (the serial job, or a Dask worker), and both see the
                # same seconds of the same core. With 1 worker the job's process has the other core;
                # with 2 it competes for both, as it would without the raw loops.
                computing = [os.getpid()] if client is None else sorted(client.run(os.getpid).values())
                cores = sorted(every_core)[-len(computing) :]
                for side in sides.values():
                    for proc, core in zip(side.procs, cores, strict=False):  # the loops in use
                        pin(proc.pid, {core})
                for pid, core in zip(computing, cores, strict=True):
                    pin(pid, {core})
                if client is not None:
                    pin(os.getpid(), set(every_core) - set(cores) if workers == 1 else set(every_core))
            idle_rate = idle_cpu(client=client) if client is not None else 0.0
            for level, ds, raw in cases:
                runs = {path: None}
                if workers == 2:  # in alternation with the engine, so that both see the same spells
                    runs["raw loop as Dask tasks, 2 workers"] = lambda part, client, raw=raw: raw_as_dask_tasks(
                        part, raw, client
                    )
                for work in runs.values():  # warm this path
                    side_by_side(ds.select(np.arange(min(len(ds), 64))), level, sides[level], client, work)
                for _ in range(rounds):
                    for name, work in runs.items():
                        engine_cpu, raw_cpu, wall = side_by_side(ds, level, sides[level], client, work)
                        out.setdefault((level, name), []).append(engine_cpu / raw_cpu - 1)
                        if client is not None:
                            ticking.setdefault((level, name), []).append(idle_rate * wall / 2 / (raw_cpu * len(ds)))
            pin(os.getpid(), every_core)
            for side in sides.values():
                for proc in side.procs:
                    pin(proc.pid, every_core)
            if client is not None:
                cluster = client.cluster
                client.close()
                cluster.close()
    finally:
        pin(os.getpid(), every_core)
        for side in sides.values():
            side.close()
    return out, ticking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xtb", type=int, default=256, help="ethanol geometries for GFN2-xTB")
    parser.add_argument("--pyscf", type=int, default=8, help="ethanol geometries for HF/STO-3G")
    parser.add_argument("--dft", type=int, default=0, help="ethanol geometries for B3LYP/6-31G* (a real level)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--side-by-side", type=int, default=None, help="side-by-side runs per engine path (default: --repeats)"
    )
    args = parser.parse_args()

    base = molecule("CH3CH2OH")
    wanted = [
        ("gfn2-xtb", args.xtb, raw_tblite),
        ("hf/sto-3g", args.pyscf, raw_pyscf),
        ("b3lyp/6-31g*", args.dft, raw_pyscf_dft),
    ]
    cases = [
        (level, random_displacements(base, n, sigma=0.03, seed=seed), raw)
        for seed, (level, n, raw) in enumerate(wanted)
        if n > 0
    ]
    clients = {}
    for workers in (1, 2):
        start = time.perf_counter()
        clients[workers] = local_client(workers)  # as label() starts its own
        print(
            f"Dask LocalCluster with {workers} worker(s) started in {time.perf_counter() - start:.1f} s "
            "(not in the timings below)"
        )
    # spawned, not forked: this process already runs Dask's threads
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    paths = {
        "raw loop": lambda level, ds, raw: raw(ds),
        "raw, 2 processes": lambda level, ds, raw: raw_parallel(pool, raw, ds),
        "raw, one calculator": lambda level, ds, raw: raw_tblite_reused(ds) if level == "gfn2-xtb" else None,
        "engine, serial": lambda level, ds, raw: engine(ds, level),
    }
    for workers, client in clients.items():
        name = f"engine, Dask {workers} worker{'s' * (workers > 1)}"
        paths[name] = lambda level, ds, raw, client=client: engine(ds, level, client)
    print(f"this process, idle with both clusters up: {idle_cpu():.2%} of a core")
    # warm imports and caches (here and on the workers) outside the timings
    for level, ds, raw in cases:
        for run in paths.values():
            run(level, ds.select([0, 1]), raw)
    # Interleave the paths. Throughput from each path's best wall time; overhead from the CPU time of
    # each path over that of the raw loop in the same round, the median over rounds (a shared virtual
    # machine drifts by several percent from one second to the next; neighbours in time share the drift)
    best: dict = {}
    ratios: dict = {}
    outside: dict = {}
    two_cores: dict = {}
    in_tasks: dict = {}
    idle: dict = {}
    for _ in range(args.repeats):
        for level, ds, raw in cases:
            cpu_of = {}
            for path, run in paths.items():
                client = clients.get(int(path.split()[2])) if "Dask" in path else None
                workers_cpu = client.run(time.process_time) if client else {}
                wall, cpu = time.perf_counter(), time.process_time()
                timing = run(level, ds, raw)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if timing:  # engine paths: the share of the workers' time spent outside the QM calls
                    workers = len(client.scheduler_info()["workers"]) if client else 1
                    inside = timing["inside"]
                    outside.setdefault((level, path), []).append(wall * workers / inside - 1)
                    if "tasks" in timing:  # split into the tasks' own bookkeeping and the workers' idle time
                        in_tasks.setdefault((level, path), []).append(timing["tasks"] / inside - 1)
                        idle.setdefault((level, path), []).append((wall * workers - timing["tasks"]) / inside)
                if client:
                    cpu += sum(t - workers_cpu[w] for w, t in client.run(time.process_time).items())
                cpu += _pool_cpu.pop("last", 0.0)
                cpu_of[path] = cpu
                old = best.get((level, path), (np.inf, np.inf))
                best[level, path] = (min(wall, old[0]), min(cpu, old[1]))
            for path, cpu in cpu_of.items():
                ratios.setdefault((level, path), []).append(cpu / cpu_of["raw loop"] - 1)
            two_cores.setdefault(level, []).append(cpu_of["engine, Dask 2 workers"] / cpu_of["raw, 2 processes"] - 1)
    for client in clients.values():
        cluster = client.cluster
        client.close()
        cluster.close()
    pool.shutdown()
    beside, ticking = side_by_side_rounds(cases, args.side_by_side or args.repeats)

    print()
    print(
        f"{'level':<13} {'path':<22} {'labels':>6} {'wall s':>7} {'labels/s':>9} {'CPU s':>7} {'CPU vs raw':>11} "
        f"{'quartiles':>16} {'outside QM':>11}"
    )
    for level, ds, _ in cases:
        for path in paths:
            if path == "raw, one calculator" and level != "gfn2-xtb":
                continue
            wall, cpu = best[level, path]
            q1, median, q3 = np.percentile(ratios[level, path], [25, 50, 75])
            away = f"{np.median(outside[level, path]):.1%}" if (level, path) in outside else "-"
            print(
                f"{level:<13} {path:<22} {len(ds):>6} {wall:>7.2f} {len(ds) / wall:>9.1f} {cpu:>7.2f} "
                f"{median:>+11.1%} {f'{q1:+.1%} .. {q3:+.1%}':>16} {away:>11}"
            )
    print()
    for (level, path), values in beside.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        lo, hi = median_interval(values)
        loops = "2 raw loops" if "2 workers" in path else "a raw loop"
        shown = path.replace("raw loop as Dask tasks", "the raw loop as Dask tasks")
        print(
            f"{level}: {shown}, side by side with {loops}: CPU per label {median:+.1%} (95% interval of the median "
            f"{lo:+.1%} .. {hi:+.1%}; quartiles {q1:+.1%} .. {q3:+.1%}; {len(values)} runs)"
        )
        if (level, path) in ticking:
            alone = np.asarray(values) - np.asarray(ticking[level, path])
            lo, hi = median_interval(alone)
            print(
                f"    of which {np.median(ticking[level, path]):.1%} is the idle event loops' cost for the extra time "
                f"the engine takes beside the raw loops; without it: {np.median(alone):+.1%} ({lo:+.1%} .. {hi:+.1%})"
            )
    for level, _, _ in cases:
        floor = beside.get((level, "raw loop as Dask tasks, 2 workers"))
        if floor is not None:  # paired by round: the two ran one after the other
            own = np.asarray(beside[level, "engine, Dask 2 workers"]) - np.asarray(floor)
            lo, hi = median_interval(own)
            print(
                f"{level}: engine, Dask 2 workers, over the raw loop as Dask tasks on the same cluster (run by run): "
                f"{np.median(own):+.1%} ({lo:+.1%} .. {hi:+.1%}): the engine's own cost, without the cluster's"
            )
    for level in two_cores:
        q1, median, q3 = np.percentile(two_cores[level], [25, 50, 75])
        print(
            f"{level}: engine, Dask 2 workers against the raw loop in 2 processes: CPU {median:+.1%} "
            f"(quartiles {q1:+.1%} .. {q3:+.1%})"
        )
    for (level, path), values in in_tasks.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        print(
            f"{level}: {path}: outside QM within the workers' tasks {median:+.1%} (quartiles {q1:+.1%} .. {q3:+.1%}); "
            f"workers idle (start, hand-overs, last answer, the Dataset) {np.median(idle[level, path]):.1%}"
        )
    print()
    print("labels/s from the best wall time. 'CPU vs raw': CPU seconds (this process + Dask workers) over those of the")
    print("raw loop in the same round, median and quartiles over the rounds: the engine's overhead (target: below 5%).")
    print("'outside QM': wall time x workers over the QM calls' own wall time (each label records it), minus 1,")
    print("median over the rounds: the engine's overhead measured within one run, free of the drift between runs.")
    print("Side by side: while the engine labels, as many raw-loop processes as it has workers run beside it on the")
    print("same geometries, so that both see the same seconds of the machine; the engine's CPU per label (this")
    print("process, with only the path's own cluster up, plus the workers) over the raw loops' CPU per label, minus 1.")
    print(f"cpu cores: {os.cpu_count()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; {args.repeats} rounds")


if __name__ == "__main__":
    main()
