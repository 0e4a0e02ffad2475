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
from labdriver import (
    CANVAS_INK,
    canvas_image,
    canvas_ink,
    chromium_page,
    jupyterlab,
    open_and_run,
    widget_errors,
)
from playwright.sync_api import expect

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
    env = {"WORKBENCH_FAST": "1", "WORKBENCH_CACHE": str(work / "cache")}  # QM labels stay in this test's folder
    with jupyterlab(root, work, env=env) as server, chromium_page() as page:
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
    page.locator(PANEL).get_by_label("Built-in").select_option("md17-ethanol-sample")
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


# --------------------------------------------------------------------------------------------- the other tabs
# From here on the workbench shows md17-ethanol-sample (chosen above); the tests build on each other in order:
# label it at GFN2-xTB, train on both levels, compare, scan, vibrate.
TABS = {
    "Dataset": ".wb-dataset-panel",
    "Training": ".wb-training-panel",
    "Compare": ".wb-compare-panel",
    "PES": ".wb-pes-panel",
    "Vibrations": ".wb-vibrations-panel",
    "Improve": ".wb-improve-panel",
}

# Page coordinates of the first point of the first trace named ``name`` of a plotly graph (its axes' offsets
# plus the data-to-pixel maps of plotly.js).
POINT_XY = """([sel, name, k]) => {
  const gd = document.querySelector(sel);
  const t = gd._fullData.find(d => d.name === name);
  const xa = gd._fullLayout[(t.xaxis || 'x').replace('x', 'xaxis')];
  const ya = gd._fullLayout[(t.yaxis || 'y').replace('y', 'yaxis')];
  const box = gd.getBoundingClientRect();
  return [box.left + xa._offset + xa.l2p(t.x[k]), box.top + ya._offset + ya.l2p(t.y[k])];
}"""


def show_tab(page, title: str):
    page.locator(".wb-tabs .lm-TabBar-tab", has_text=title).click()
    panel = page.locator(TABS[title])
    panel.wait_for(state="visible", timeout=30_000)
    return panel


def wait_for_ink(page, selector: str, share: float = 0.01, timeout: float = 60_000) -> dict:
    """Wait until the canvas under ``selector`` has drawn at least ``share`` of its pixels; its ink."""
    page.wait_for_selector(f"{selector} canvas", timeout=timeout)
    drawn = page.wait_for_function(
        """([sel, share]) => { const c = document.querySelector(sel + ' canvas');
                               if (!c || !c.width || !c.height) return false;
                               const ink = ("""
        + CANVAS_INK
        + """)(c);
                               return ink.ink > share * ink.total ? ink : false; }""",
        arg=[selector, share],
        timeout=timeout,
    )
    return drawn.json_value()


def wait_for_new_drawing(page, selector: str, before: str) -> None:
    """Wait until the canvas under ``selector`` shows something else than the data URL ``before``."""
    page.wait_for_function(
        "([sel, old]) => { const c = document.querySelector(sel); return c && c.toDataURL() !== old; }",
        arg=[f"{selector} canvas", before],
        timeout=30_000,
    )


def test_every_tab_renders(page):
    for title in TABS:
        panel = show_tab(page, title)
        assert panel.is_visible()
        assert all(not box.inner_text().strip() for box in panel.locator(".wb-error-box").all())
    assert page.locator(".wb-training-panel .wb-fidelities").inner_text().count("pbe+vdw-ts") == 1
    assert "Train a model" in page.locator(".wb-compare-panel").inner_text()
    show_tab(page, "Dataset")


def test_labeling_from_the_dataset_tab_adds_a_level(page):
    panel = show_tab(page, "Dataset")
    panel.locator(".wb-label-start").click()
    page.locator(f"{PANEL} .wb-summary", has_text="2 levels of theory").wait_for(timeout=120_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.wb-coverage .ytick')].map(t => t.textContent).includes('gfn2-xtb')",
        timeout=30_000,
    )
    panel.locator(".wb-labeling", has_text="20 labels at gfn2-xtb").wait_for(timeout=30_000)
    assert "2 levels of theory" in page.locator(f"{PANEL} .wb-summary").inner_text()  # the waits raise on timeout


def test_a_training_run_shows_its_curves(page):
    panel = show_tab(page, "Training")
    assert panel.locator(".wb-fidelities").inner_text().count("gfn2-xtb") == 1  # the new level is offered
    panel.locator(".wb-start").click()
    panel.locator(".wb-runs td", has_text="done").wait_for(timeout=180_000)
    # Loss and per-level error curves: one line per (quantity, level, split), each with every epoch drawn.
    page.wait_for_function(
        """() => { const gd = document.querySelector('.wb-training-curves .js-plotly-plot');
                   return gd && gd._fullData.length >= 6 && gd._fullData.every(t => t.x && t.x.length >= 2); }""",
        timeout=60_000,
    )
    names = page.evaluate(
        "() => document.querySelector('.wb-training-curves .js-plotly-plot')._fullData.map(t => t.name)"
    )
    assert "loss (val)" in names and "gfn2-xtb forces (val)" in names and "pbe+vdw-ts energy (val)" in names
    assert panel.locator(".wb-training-curves .scatterlayer .trace path.js-line").count() >= 6
    assert "done" in panel.locator(".wb-progress-text").inner_text()
    page.locator(".wb-app").screenshot(path=str(ARTIFACTS / "workbench-training.png"))


def test_clicking_a_parity_point_updates_the_3d_view(page):
    panel = show_tab(page, "Compare")
    panel.get_by_label("Evaluate on").select_option(label="all")
    panel.locator(".wb-compare").click()
    page.wait_for_function(
        "() => { const gd = document.querySelector('.wb-parity .js-plotly-plot');"
        "        return gd && gd._fullData.some(t => t.type === 'scattergl' && t.mode === 'markers'); }",
        timeout=60_000,
    )
    metrics = panel.locator(".wb-metrics").inner_text()
    assert "energy_mae" in metrics
    # GFN2-xTB's own labels (on all 20 configurations since the labeling test) as a yardstick for the PBE head
    assert panel.locator(".wb-yardsticks input").is_checked() and "gfn2-xtb labels (no ML)" in metrics
    trace = page.evaluate(
        "() => document.querySelector('.wb-parity .js-plotly-plot')._fullData"
        ".find(t => t.mode === 'markers' && t.name !== 'y = x').name"
    )
    parity = ".wb-parity .js-plotly-plot"
    panel.locator(parity).scroll_into_view_if_needed()
    x, y = page.evaluate(POINT_XY, [parity, trace, 0])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    panel.locator(".wb-force-info", has_text="Configuration").wait_for(timeout=30_000)
    wait_for_ink(page, ".wb-force-view")
    before = canvas_image(page, ".wb-force-view")
    info = panel.locator(".wb-force-info").inner_text()
    x, y = page.evaluate(POINT_XY, [parity, trace, 5])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).innerText !== old", arg=[".wb-force-info", info], timeout=30_000
    )
    wait_for_ink(page, ".wb-force-view")
    wait_for_new_drawing(page, ".wb-force-view", before)
    page.locator(".wb-app").screenshot(path=str(ARTIFACTS / "workbench-compare.png"))


def test_a_scan_draws_its_curve_and_scores(page):
    panel = show_tab(page, "PES")
    wait_for_ink(page, ".wb-pes-view")
    panel.locator(".wb-scan").click()
    panel.locator(".wb-smoothness", has_text="Smoothness").wait_for(timeout=120_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.wb-pes-figure .scatterlayer .trace path.js-line').length >= 1",
        timeout=30_000,
    )
    # The model's curve, the GFN2-xTB reference points, and the model's scores against them.
    names = page.evaluate("() => document.querySelector('.wb-pes-figure .js-plotly-plot')._fullData.map(t => t.name)")
    # the default multi-fidelity run ends fine-tuned on its target, so it has that head alone
    assert names == ["multifidelity-hipnn", "reference: gfn2-xtb"]
    scores = panel.locator(".wb-smoothness").inner_text()
    assert "multifidelity-hipnn" in scores and "roughness" in scores
    page.locator(".wb-app").screenshot(path=str(ARTIFACTS / "workbench-pes.png"))


def test_a_vibrational_mode_animates(page):
    panel = show_tab(page, "Vibrations")
    panel.locator(".wb-vibrate").click()
    panel.locator(".wb-frequencies td", has_text="O-H stretch").first.wait_for(timeout=180_000)
    wait_for_ink(page, ".wb-mode-view")
    # The animation plays: the drawing changes by itself.
    wait_for_new_drawing(page, ".wb-mode-view", canvas_image(page, ".wb-mode-view"))  # raises if it never changes
    assert panel.locator(".wb-frequencies td", has_text="O-H stretch").count() >= 1
    page.locator(".wb-app").screenshot(path=str(ARTIFACTS / "workbench-vibrations.png"))


def test_the_improve_loop_buys_labels_and_draws_its_progress(page):
    # a run whose target is the level the workbench can compute here (GFN2-xTB, labelled in the Dataset tab)
    training = show_tab(page, "Training")
    training.get_by_label("Target level").select_option("gfn2-xtb")
    training.locator(".wb-start").click()
    training.locator(".wb-runs tr", has_text="gfn2-xtb").locator("td", has_text="done").wait_for(timeout=180_000)
    panel = show_tab(page, "Improve")
    model = panel.get_by_label("Model")
    run = next(o for o in model.locator("option").all_inner_texts() if o.endswith("-2"))
    model.select_option(label=run)
    expect(panel.get_by_label("Labels at")).to_have_value("gfn2-xtb", timeout=30_000)  # the run's target
    # a tiny model trained for seconds tears the molecule apart in MD: the scan's geometries are the candidates
    panel.get_by_label("Candidates").select_option(label="a dihedral scan of the configuration on show")
    panel.locator(".wb-improve-start").click()
    # the loop and its random baseline, queued behind it, both end (and a failure shows at once, not a timeout)
    page.wait_for_function(
        """() => { const t = document.querySelector('.wb-improve-panel .wb-improve-progress');
                   return t && (t.textContent.match(/: (done|failed|cancelled)/g) || []).length === 2; }""",
        timeout=240_000,
    )
    assert panel.locator(".wb-improve-progress").inner_text().count(": done") == 2, panel.inner_text()
    names = page.evaluate(
        "() => document.querySelector('.wb-improve-curve .js-plotly-plot')._fullData.map(t => t.name)"
    )
    assert names.count("variance") == 2 and names.count("random") == 2  # error against labels and against QM time
    scan = page.evaluate("() => document.querySelector('.wb-improve-scan .js-plotly-plot')._fullData.map(t => t.name)")
    assert "before" in scan and "after" in scan and "reference: gfn2-xtb" in scan
    wait_for_ink(page, ".wb-improve-view")
    assert "extrema" in panel.locator(".wb-improve-scan-note").inner_text()
    assert all(not box.inner_text().strip() for box in panel.locator(".wb-error-box").all())
    page.locator(".wb-app").screenshot(path=str(ARTIFACTS / "workbench-improve.png"))


def test_console_has_no_widget_errors(page):
    assert widget_errors(page) == []
