"""The app notebook runs top to bottom in a kernel, in fast mode, and shows the workbench."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "workbench.ipynb"


@pytest.mark.slow
def test_workbench_notebook_runs_in_fast_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert os.environ["WORKBENCH_FAST"] == "1"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [c.source for c in code] == ["import workbench as wb", "wb.Workbench()"]
    outputs = [o for cell in code for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    (result,) = [o for o in outputs if o.output_type == "execute_result"]
    app = state[result.data["application/vnd.jupyter.widget-view+json"]["model_id"]]["state"]
    assert "wb-app" in app["_dom_classes"]
    # The widget state saved with the notebook holds the panel's summary of the data it opened on.
    summaries = [m["state"]["value"] for m in state.values() if "wb-summary" in str(m["state"].get("value", ""))]
    assert summaries and "configurations" in summaries[0]
