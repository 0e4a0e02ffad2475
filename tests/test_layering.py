"""Imports run one way: between the rooms (data, qm and models, training, analysis, viz, ui, cli) and
between the modules inside each room. The contracts are [tool.importlinter] in pyproject.toml."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package and pyproject.toml under ``root`` (not whichever workbench the
    environment has installed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    run = subprocess.run(
        [sys.executable, "-c", code, "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Contracts:" in run.stdout, run.stdout + run.stderr  # the check ran, rather than failing to start
    return run


def test_import_contracts_hold():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_upward_import_breaks_the_contracts(tmp_path):
    """The contracts see the package's modules, imports inside functions included."""
    sources = shutil.ignore_patterns("__pycache__", "*.h5", "*.hdf5", "*.db", "*.json", "*.md")
    shutil.copytree(ROOT / "workbench", tmp_path / "workbench", ignore=sources)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "workbench" / "data" / "units.py", "a") as fh:
        fh.write("\n\ndef _upward():\n    from ..qm import store  # noqa: F401\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    assert "workbench.data is not allowed to import workbench.qm" in run.stdout, run.stdout
