"""``workbench``: the command line.

workbench lab                 open the workbench notebook in JupyterLab
workbench info FILE [FILE..]  load files (any supported format) and print their summary and coverage
workbench convert FILE.. -o OUT.h5   load (and merge) files and save one workbench HDF5 file
workbench label ...           QM labeling (see `workbench label --help`)
workbench train CONFIG.yaml   train a model with any recipe (see `workbench train --help`)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def _lab(args) -> int:
    notebook = Path(args.notebook)
    cmd = [sys.executable, "-m", "jupyterlab", str(notebook)] + args.jupyter_args
    return subprocess.call(cmd)


def _reader_options(args) -> dict:
    options = {}
    for key in ("fidelity", "energy_unit", "force_unit"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    return options


def _info(args) -> int:
    import pandas as pd

    from .data.io import load

    ds = load(args.files if len(args.files) > 1 else args.files[0], **_reader_options(args))
    print(ds.summary())
    with pd.option_context("display.width", 200, "display.max_columns", 12):
        print(ds.coverage()[["rank", "energy", "forces", "energy+forces"]])
    return 0


def _convert(args) -> int:
    from .data.io import load

    ds = load(args.files if len(args.files) > 1 else args.files[0], **_reader_options(args))
    ds.save(args.output)
    print(f"wrote {args.output}: {len(ds)} configurations, fidelities {ds.fidelity_names}")
    return 0


def _add_reader_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fidelity", help="level of theory of unlabeled 'energy'/'forces' (e.g. pbe+vdw-ts)")
    p.add_argument("--energy-unit", dest="energy_unit", help="energy unit in the file when it does not say")
    p.add_argument("--force-unit", dest="force_unit", help="force unit in the file when it does not say")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Multi-fidelity MLIP workbench")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("lab", help="open the workbench notebook in JupyterLab")
    p.add_argument("--notebook", default="notebooks/workbench.ipynb")
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="passed on to jupyter lab")
    p.set_defaults(func=_lab)

    p = sub.add_parser("info", help="summary and label coverage of dataset files")
    p.add_argument("files", nargs="+")
    _add_reader_options(p)
    p.set_defaults(func=_info)

    p = sub.add_parser("convert", help="load (and merge) files into one workbench HDF5 file")
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", required=True)
    _add_reader_options(p)
    p.set_defaults(func=_convert)

    try:
        from .qm import label_command as qm_cli
    except ImportError:  # the QM programs are an optional extra
        qm_cli = None
    if qm_cli is not None and hasattr(qm_cli, "add_parser"):
        qm_cli.add_parser(sub)
    from .training import train_command as train_cli

    train_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .data.errors import DatasetError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
