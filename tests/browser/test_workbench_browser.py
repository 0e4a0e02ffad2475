"""End to end: notebooks/workbench.ipynb in JupyterLab, in Debian's headless Chromium.

One JupyterLab and one browser serve every test of this module (starting them is most of the cost);
the tests then read what the page drew, in file order. Screenshots go to test-artifacts/browser/;
docs/img/workbench-dataset.png is workbench-configuration-3.png from a run of this module.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from labdriver import canvas_image, canvas_ink, chromium_page, jupyterlab, open_and_run, widget_errors

import workbench as wb
from workbench.ui.dataset_panel import default_builtin

# The time limit is a safety net so a hung browser cannot stall a CI run; the module takes ~30 s.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
PANEL = ".wb-dataset-panel"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The workbench notebook, run to the end, with the Dataset panel on screen."""
    work = tmp_path_factory.mktemp("lab")
    root = work / "root"
    root.mkdir()
    # A copy, so running it never writes outputs into the repository's notebook.
    shutil.copy(REPO / "notebooks" / "workbench.ipynb", root / "workbench.ipynb")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with jupyterlab(root, work, env={"WORKBENCH_FAST": "1"}) as server, chromium_page() as page:
        try:
            open_and_run(page, server, "workbench.ipynb")
            page.wait_for_selector(f"{PANEL} .wb-summary", timeout=60_000)
            yield page
        finally:
            (ARTIFACTS / "console.log").write_text("\n".join(page.console_lines))
            (ARTIFACTS / "jupyterlab.log").write_text(server.log())
            with contextlib.suppress(Exception):  # a crashed page must not hide the error that crashed it
                page.screenshot(path=str(ARTIFACTS / "workbench-page.png"))


def test_dataset_panel_renders_summary_and_tabs(page):
    # The notebook opens on the default built-in dataset; the page states its size.
    ds = wb.datasets.builtin(default_builtin())
    summary = page.locator(f"{PANEL} .wb-summary").inner_text()
    assert f"{len(ds):,} configurations" in summary and f"{len(ds.fidelity_names)} level" in summary
    assert page.locator(".wb-tabs .lm-TabBar-tab", has_text="Dataset").count() == 1
    assert page.locator(f"{PANEL} .wb-error-box").inner_text().strip() == ""


def test_plotly_figures_draw_their_traces(page):
    # The coverage heatmap draws an image per heatmap trace; the violins draw one path per level.
    page.wait_for_selector(".wb-coverage .js-plotly-plot .heatmaplayer image", state="attached")
    page.wait_for_selector(".wb-energies .js-plotly-plot .violinlayer .trace path.violin", state="attached")
    assert page.locator(".wb-energies .violinlayer .trace path.violin").count() >= 1
    axis = page.locator(".wb-energies .g-xtitle").text_content()
    assert "eV/atom" in axis and "atomic references" in axis
    cells = page.locator(".wb-coverage .heatmaplayer text").all_text_contents()
    assert any(text.replace(",", "").isdigit() and int(text.replace(",", "")) > 0 for text in cells)
    page.locator(".wb-app").screenshot(path=str(ARTIFACTS / "workbench-dataset.png"))


def test_structure_view_is_drawn(page):
    page.wait_for_selector(".wb-structure canvas")
    page.wait_for_function(
        """(sel) => { const c = document.querySelector(sel); if (!c || !c.width) return false;
                      const t = document.createElement('canvas'); t.width = c.width; t.height = c.height;
                      const x = t.getContext('2d'); x.drawImage(c, 0, 0);
                      const d = x.getImageData(0, 0, t.width, t.height).data;
                      let ink = 0; for (let i = 0; i < d.length; i += 16) if (d[i] + d[i+1] + d[i+2] < 600) ink++;
                      return ink > 200; }""",
        arg=".wb-structure canvas",
        timeout=60_000,
    )
    drawn = canvas_ink(page, ".wb-structure")
    # Balls and sticks of a small molecule cover a few per cent of the view; a blank canvas has none.
    assert drawn["ink"] > 0.01 * drawn["total"], drawn


def test_choosing_a_configuration_updates_labels_and_view(page):
    labels = page.locator(f"{PANEL} .wb-labels")
    before_labels = labels.inner_text()
    before_view = canvas_image(page, ".wb-structure")
    field = page.locator(f"{PANEL} .wb-configuration-text input")
    field.fill("3")
    field.press("Enter")
    page.locator(f"{PANEL} .wb-configuration-info", has_text="Configuration 3 of").wait_for(timeout=30_000)
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).innerText !== old", arg=[f"{PANEL} .wb-labels", before_labels]
    )
    assert labels.inner_text() != before_labels
    assert "eV" in labels.inner_text()
    # The 3D view shows the new geometry: its pixels change.
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).toDataURL() !== old",
        arg=[".wb-structure canvas", before_view],
        timeout=30_000,
    )
    assert canvas_ink(page, ".wb-structure")["ink"] > 0
    page.locator(".wb-app").screenshot(path=str(ARTIFACTS / "workbench-configuration-3.png"))


def test_choosing_another_dataset_redraws_the_figures(page):
    before_view = canvas_image(page, ".wb-structure")
    page.locator(f"{PANEL} .widget-dropdown select").select_option("md17-ethanol-sample")
    page.locator(f"{PANEL} .wb-summary", has_text="md17-ethanol-sample").wait_for(timeout=30_000)
    # One level of theory now: the heatmap has one row and the violins one trace.
    page.wait_for_function(
        "() => document.querySelectorAll('.wb-energies .violinlayer .trace').length === 1", timeout=30_000
    )
    rows = page.locator(".wb-coverage .yaxislayer-above .ytick").all_text_contents()
    assert rows == ["pbe+vdw-ts"]
    assert page.locator(f"{PANEL} .wb-configuration-info", has_text="C2H6O").count() == 1
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).toDataURL() !== old",
        arg=[".wb-structure canvas", before_view],
        timeout=30_000,
    )
    drawn = canvas_ink(page, ".wb-structure")
    assert drawn["ink"] > 0.01 * drawn["total"], drawn
    page.locator(".wb-app").screenshot(path=str(ARTIFACTS / "workbench-md17.png"))


def test_console_has_no_widget_errors(page):
    assert widget_errors(page) == []
