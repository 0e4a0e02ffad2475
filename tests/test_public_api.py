"""The entry points promised to users (ARCHITECTURE.md, "The public API") exist with their names."""

import inspect
import subprocess
import sys

import workbench as wb


def test_promised_entry_points_exist():
    assert callable(wb.load) and callable(wb.datasets.builtin)
    assert callable(wb.train) and callable(wb.label) and callable(wb.Workbench)
    assert hasattr(wb.TrainedModel, "load") and hasattr(wb.TrainedModel, "calculator")
    for name in ("metrics", "scan", "vibrations"):
        assert callable(getattr(wb.analysis, name))


def test_promised_signatures():
    params = inspect.signature(wb.train).parameters
    for name in ("family", "recipe", "fidelities", "validation", "background"):
        assert name in params
    assert {"level", "store"} <= set(inspect.signature(wb.label).parameters)
    assert "fidelity" in inspect.signature(wb.TrainedModel.calculator).parameters


def test_import_stays_light():
    code = "import sys, workbench; print(sorted(m for m in ('torch', 'pyscf', 'ipywidgets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
