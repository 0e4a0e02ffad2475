"""``workbench label`` on the command line: reads a file, labels, resumes, writes HDF5."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from ase.build import molecule

from workbench.data import Dataset
from workbench.qm import label_command as cli

pytestmark = pytest.mark.qm


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="workbench")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_label_command_writes_labels_and_resumes(tmp_path, capsys):
    base = molecule("H2O")
    rng = np.random.default_rng(0)
    ds = Dataset.from_configurations(
        [{"numbers": base.numbers, "positions": base.positions + rng.normal(scale=0.03, size=(3, 3))} for _ in range(6)]
    )
    ds.save(tmp_path / "in.h5")
    argv = [
        "label",
        str(tmp_path / "in.h5"),
        "--level",
        "HF/STO-3G",
        "--store",
        str(tmp_path / "store"),
        "--indices",
        "0:4,5",
        "--properties",
        "energy",
        "--output",
        str(tmp_path / "out.h5"),
    ]
    assert run_cli(argv) == 0
    assert "5 labels (5 computed now, 0 failed)" in capsys.readouterr().out
    out = Dataset.load(tmp_path / "out.h5")
    assert out.energy("hf/sto-3g")[1].tolist() == [True, True, True, True, False, True]
    assert out.labels["hf/sto-3g"].forces is None
    assert run_cli(argv) == 0
    assert "(0 computed now" in capsys.readouterr().out


def test_label_command_reports_failures_with_exit_code_1(tmp_path, capsys):
    Dataset.from_configurations([{"numbers": [8, 1, 1], "positions": molecule("H2O").positions}]).save(
        tmp_path / "in.h5"
    )
    argv = [
        "label",
        str(tmp_path / "in.h5"),
        "--level",
        "hf/sto-3g",
        "--store",
        str(tmp_path / "s"),
        "--set",
        "max_cycle=1",
        "--output",
        str(tmp_path / "out.h5"),
    ]
    assert run_cli(argv) == 1
    assert "configuration 0: SCF did not converge in 1 cycles" in capsys.readouterr().err


def test_index_and_setting_syntax():
    assert cli.parse_indices("0:3,7,-1", 10).tolist() == [0, 1, 2, 7, 9]
    assert cli.parse_indices("::4", 10).tolist() == [0, 4, 8]
    with pytest.raises(ValueError, match="cannot read 'a'"):
        cli.parse_indices("a", 10)
    with pytest.raises(IndexError):
        cli.parse_indices("12", 10)
    assert cli.parse_setting("density_fit=true") == ("density_fit", True)
    assert cli.parse_setting("conv_tol=1e-10") == ("conv_tol", 1e-10)
    assert cli.parse_setting("auxbasis=def2-universal-jkfit") == ("auxbasis", "def2-universal-jkfit")
    with pytest.raises(ValueError, match="key=value"):
        cli.parse_setting("novalue")
