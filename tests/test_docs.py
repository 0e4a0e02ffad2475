"""The documentation builds with Sphinx, warnings as errors, and its API reference documents the public names.

The same build by hand: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Names each API page must document (the anchors autodoc writes), per page of docs/api/.
DOCUMENTED = {
    "workbench": [
        "workbench.load",
        "workbench.Dataset",
        "workbench.Fidelity",
        "workbench.DatasetError",
        "workbench.data.builtin.builtin",  # wb.datasets
        "workbench.data.builtin.vibrational_reference",
    ],
    "data": ["workbench.data.Labels", "workbench.data.concatenate"],
    "qm": ["workbench.qm.label", "workbench.qm.Level", "workbench.qm.LabelJob"],
    "models": ["workbench.models.build_model", "workbench.models.HIPNN", "workbench.models.families"],
    "training": ["workbench.training.train", "workbench.training.TrainedModel", "workbench.training.TrainingJob"],
    "analysis": ["workbench.analysis.metrics", "workbench.analysis.scan", "workbench.analysis.vibrations"],
    "viz": ["workbench.viz.parity_figure", "workbench.viz.scan_figure"],
    "ui": ["workbench.ui.Workbench", "workbench.ui.TrainingPanel"],
}


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return out


def test_docs_build_without_warnings(html):
    for page in ["index", "usage", "workbench", "data", "science", "architecture", "multifidelity-defaults"]:
        assert (html / f"{page}.html").is_file(), page
    assert len(list((html / "benchmarks").glob("*.html"))) >= 5


@pytest.mark.parametrize("page", sorted(DOCUMENTED))
def test_api_page_documents_public_names(html, page):
    text = (html / "api" / f"{page}.html").read_text(encoding="utf-8")
    for name in DOCUMENTED[page]:
        assert f'id="{name}"' in text, f"{name} is not documented on api/{page}.html"


def test_api_pages_show_docstrings(html):
    training = (html / "api" / "training.html").read_text(encoding="utf-8")
    assert "Train a model of" in training  # train's own docstring, with its numpy-style parameter list
    assert "Parameters" in training
    analysis = (html / "api" / "analysis.html").read_text(encoding="utf-8")
    assert "metrics" in analysis and "Dataset" in (html / "api" / "workbench.html").read_text(encoding="utf-8")


def test_readme_tour_uses_public_names():
    """Every ``wb.<name>...`` in the README's API tour exists (the docs include that tour too)."""
    import workbench as wb

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme.split("<!-- api-tour:start -->")[1].split("<!-- api-tour:end -->")[0]
    names = sorted(set(re.findall(r"\bwb((?:\.[A-Za-z_]\w*)+)", tour)))
    assert "train" in {n.split(".")[1] for n in names}
    for dotted in names:
        obj = wb
        for part in dotted.strip(".").split("."):
            assert hasattr(obj, part), f"wb{dotted} does not exist"
            obj = getattr(obj, part)
