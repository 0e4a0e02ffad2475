"""``workbench label``: QM labels for a dataset file, resumable and optionally parallel.

    workbench label INPUT --level mp2/cc-pvdz --store labels/ --output out.h5
        [--indices 0:100,150] [--properties energy,forces] [--workers N | --scheduler ADDRESS]
        [--set density_fit=true ...] [--retry-failed]

Run it again with the same store after an interruption: only the missing labels are computed.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def parse_indices(text: str, n: int) -> np.ndarray:
    """``"0:100,150,200:300:2"`` -> configuration indices (Python slice rules, negatives allowed)."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ":" in part:
                bounds = [int(b) if b.strip() else None for b in part.split(":")]
                if len(bounds) > 3:
                    raise ValueError
                out.extend(range(n)[slice(*bounds)])
            else:
                i = int(part)
                if not -n <= i < n:
                    raise IndexError(f"index {i} out of range for {n} configurations")
                out.append(i % n)
        except ValueError:
            raise ValueError(f"cannot read {part!r} in --indices; use e.g. 0:100,150,200:300:2") from None
    return np.asarray(out, dtype=np.int64)


def parse_setting(text: str) -> tuple[str, object]:
    """``"key=value"``; the value is read as JSON when it can be (numbers, true/false, null)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--set expects key=value, got {text!r}")
    lowered = {"true": True, "false": False, "none": None, "null": None}
    if value.lower() in lowered:
        return key, lowered[value.lower()]
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``label`` on the ``workbench`` command's subparsers."""
    p = subparsers.add_parser(
        "label",
        help="compute QM labels (tblite xTB, PySCF HF/DFT/MP2/CCSD(T)) into a resumable store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", nargs="+", help="dataset file(s) any workbench reader understands")
    p.add_argument("--level", required=True, help="level of theory, e.g. gfn2-xtb, b3lyp/6-31g*, mp2/cc-pvdz")
    p.add_argument("--store", required=True, help="directory of the resumable label store")
    p.add_argument("--output", "-o", required=True, help="workbench HDF5 file to write")
    p.add_argument("--indices", help="configurations to label, e.g. 0:100,150 (default: all)")
    p.add_argument("--properties", default="energy,forces", help="energy or energy,forces (default)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, help="Dask LocalCluster with N one-thread workers (default: serial)")
    group.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="program setting, repeatable (e.g. density_fit=true, conv_tol=1e-10)",
    )
    p.add_argument("--retry-failed", action="store_true", help="recompute labels that failed before")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run ``workbench label``; 0 when every label is present, 1 when some failed (listed on stderr)."""
    from ..data.io import load
    from .labeling_job import label

    ds = load(args.input if len(args.input) > 1 else args.input[0])
    indices = None if not args.indices else parse_indices(args.indices, len(ds))
    properties = tuple(p.strip() for p in args.properties.split(",") if p.strip())
    settings = dict(parse_setting(s) for s in args.settings)
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    try:
        job = label(
            ds,
            args.level,
            store=args.store,
            indices=indices,
            properties=properties,
            client=client,
            workers=args.workers,
            settings=settings,
            retry_failed=args.retry_failed,
            background=False,
            progress=True if sys.stderr.isatty() else None,
        )
        out = job.result()
    finally:
        if client is not None:
            client.close()
    out.save(args.output)
    print(
        f"wrote {args.output}: {len(out)} configurations; {job.level.name}: {job.n_total - job.n_failed} labels "
        f"({job.n_computed} computed now, {job.n_failed} failed) in {job.wall_time_s:.1f} s"
    )
    for row in job.failures.itertuples():
        print(f"  configuration {row.index}: {row.error}", file=sys.stderr)
    return 1 if job.n_failed else 0
