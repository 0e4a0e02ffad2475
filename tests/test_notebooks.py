"""Every notebook runs top to bottom in a kernel, in fast mode (``WORKBENCH_FAST=1``), and shows what it promises.

``workbench.ipynb`` (the app) has its own, closer test in ``test_ui_notebook.py``.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
STUDIES = [
    "multifidelity_reproduction.ipynb",
    "transfer_and_meta.ipynb",
    "classroom_pes_smoothness.ipynb",
    "heal_the_pes.ipynb",
]


def run(name: str, tmp_path: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("WORKBENCH_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))  # reference QM of the scans stays here
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[0]
    return nb


def text(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook printed or showed as text."""
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            parts.append(o.get("text", ""))
            parts.append(o.get("data", {}).get("text/plain", ""))
            parts.append(o.get("data", {}).get("text/html", ""))
    return "\n".join(parts)


def test_every_notebook_is_tested():
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == {*STUDIES, "workbench.ipynb"}


@pytest.mark.slow
@pytest.mark.qm
def test_multifidelity_study_runs_and_ranks_every_strategy(tmp_path, monkeypatch):
    out = text(run("multifidelity_reproduction.ipynb", tmp_path, monkeypatch))
    assert "low level gfn2-xtb" in out
    ranking = out.split("best first:")[1]
    for model in ("single, high energies", "multi-fidelity", "Δ-learning", "transfer", "low level as is"):
        assert model in ranking
    assert "single, high energies + forces" in ranking
    assert "n_high" in out  # the learning-curve summary table


@pytest.mark.slow
@pytest.mark.qm
def test_transfer_and_meta_notebook_trains_both_and_sweeps_the_learning_rate(tmp_path, monkeypatch):
    out = text(run("transfer_and_meta.ipynb", tmp_path, monkeypatch))
    assert "'pretrain': 3, 'finetune': 3" in out and "'meta': 2, 'finetune': 3" in out
    assert "transfer ×1" in out and "transfer ×0.1" in out


@pytest.mark.slow
@pytest.mark.qm
def test_classroom_notebook_scans_both_potentials_and_shows_a_mode(tmp_path, monkeypatch):
    nb = run("classroom_pes_smoothness.ipynb", tmp_path, monkeypatch)
    out = text(nb)
    for name in ("bad", "good"):
        assert f"{name:5s}: " in out and "extrema (reference" in out
    assert "O-H stretch" in out  # the reference's highest mode, in the frequency table
    views = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert views  # the animated mode is a live widget


@pytest.mark.slow
@pytest.mark.qm
def test_heal_the_pes_lesson_runs_three_rounds_and_shows_the_scan_before_and_after(tmp_path, monkeypatch):
    nb = run("heal_the_pes.ipynb", tmp_path, monkeypatch)
    out = text(nb)
    assert "extrema before:" in out and "after:" in out and "with 9 labels" in out  # 3 rounds of 3 in fast mode
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 3  # the rough scan, before and after, the learning curve
