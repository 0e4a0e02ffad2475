"""Take the README's screenshots of the workbench: the app notebook in JupyterLab and headless Chromium, driven
like a user drives it (no fast mode): train a multi-fidelity and a single-fidelity model, compare them, click a
parity point, scan a dihedral against a QM reference, animate a mode.

    python tests/browser/screenshots.py [--out docs/img] [--epochs 30] [--width 32]

The runs use the Training panel's defaults unless told otherwise; takes several minutes on a laptop CPU (the
training runs are real). Screenshots of the tabs go to ``--out``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labdriver import chromium_page, jupyterlab, open_and_run, widget_errors  # noqa: E402
from test_workbench_browser import POINT_XY, show_tab, wait_for_ink  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MINUTES = 60_000


def set_number(panel, label: str, value) -> None:
    field = panel.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")


def choose(panel, labels: list[str]) -> None:
    """Select these entries (and only these) in the panel's first multiple-choice list."""
    panel.locator(".widget-select-multiple select").first.select_option(label=labels)


def train(page, epochs: int | None, width: int | None) -> None:
    """Start a multi-fidelity run with the panel's defaults (what a new user gets), then a single-fidelity one."""
    panel = show_tab(page, "Training")
    if epochs is not None:
        set_number(panel, "Epochs", epochs)
        set_number(panel, "Patience", epochs)
    if width is not None:
        set_number(panel, "Width", width)
    panel.locator(".wb-start").click()  # multi-fidelity on every level
    panel.locator(".wb-strategy button", has_text="single").click()
    panel.get_by_label("queue after the runs in progress").check()
    panel.locator(".wb-start").click()  # single-fidelity on the target level, once the first has finished
    page.wait_for_function(
        "() => [...document.querySelectorAll('.wb-runs tbody tr')].filter(r => r.innerText.includes('done'))"
        ".length === 2",
        timeout=60 * MINUTES,
    )
    panel.get_by_label("Show run").select_option(index=0)
    page.wait_for_timeout(1500)


def compare(page) -> None:
    panel = show_tab(page, "Compare")
    choose(panel, ["multifidelity-hipnn", "single-hipnn"])
    # both runs model CCSD(T), which has energies only: their parity is on energies
    panel.locator(".widget-toggle-buttons button", has_text="energies").click()
    panel.locator(".wb-compare").click()
    page.wait_for_function(
        "() => { const gd = document.querySelector('.wb-parity .js-plotly-plot');"
        "        return gd && gd._fullData.some(t => t.type === 'scattergl' && t.mode === 'markers'); }",
        timeout=10 * MINUTES,
    )
    parity = ".wb-parity .js-plotly-plot"
    trace = page.evaluate(
        f"() => document.querySelector('{parity}')._fullData.find(t => t.mode === 'markers' && t.name !== 'y = x').name"
    )
    panel.locator(parity).scroll_into_view_if_needed()
    x, y = page.evaluate(POINT_XY, [parity, trace, 5])  # the test split holds 17 CCSD(T) energies
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    panel.locator(".wb-force-info", has_text="Configuration").wait_for(timeout=MINUTES)
    wait_for_ink(page, ".wb-force-view")
    page.mouse.move(5, 5)


def scan(page, reference: str) -> None:
    panel = show_tab(page, "PES")
    choose(panel, ["multifidelity-hipnn", "single-hipnn"])  # the default multi-fidelity model keeps its target's head
    panel.locator(".wb-reference-level input").fill(reference)
    panel.locator(".wb-reference-level input").press("Enter")
    set_number(panel, "every", 3)
    panel.locator(".wb-scan").click()
    panel.locator(".wb-smoothness", has_text="Smoothness").wait_for(timeout=30 * MINUTES)
    wait_for_ink(page, ".wb-pes-view")


def vibrate(page) -> None:
    panel = show_tab(page, "Vibrations")
    choose(panel, ["multifidelity-hipnn", "single-hipnn"])
    panel.locator(".wb-vibrate").click()
    panel.locator(".wb-frequencies td", has_text="O-H stretch").first.wait_for(timeout=30 * MINUTES)
    wait_for_ink(page, ".wb-mode-view")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--epochs", type=int, help="epochs and patience of both runs (default: the panel's)")
    parser.add_argument("--width", type=int, help="model width (default: the panel's)")
    parser.add_argument("--reference", default="mp2/cc-pvdz", help="level of the PES scan's reference points")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="workbench-shots-") as tmp:
        work = Path(tmp)
        root = work / "root"
        root.mkdir()
        shutil.copy(REPO / "notebooks" / "workbench.ipynb", root / "workbench.ipynb")
        env = {"WORKBENCH_FAST": "0", "WORKBENCH_CACHE": str(work / "cache")}
        with jupyterlab(root, work, env=env) as server, chromium_page(viewport=(1480, 2400)) as page:
            open_and_run(page, server, "workbench.ipynb", timeout_ms=5 * MINUTES)
            page.wait_for_selector(".wb-dataset-panel .wb-summary", timeout=5 * MINUTES)
            steps = [
                ("training", lambda: train(page, args.epochs, args.width)),
                ("compare", lambda: compare(page)),
                ("pes", lambda: scan(page, args.reference)),
                ("vibrations", lambda: vibrate(page)),
            ]
            for name, step in steps:
                step()
                path = args.out / f"workbench-{name}.png"
                page.locator(".wb-app").screenshot(path=str(path))
                print(f"wrote {path}", flush=True)
            errors = widget_errors(page)
            if errors:
                raise SystemExit(f"widget errors in the console: {errors}")


if __name__ == "__main__":
    main()
