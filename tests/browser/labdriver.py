"""Drive JupyterLab in Debian's headless Chromium with Playwright: start a server, open and run a notebook,
read what the widgets drew. Used by the browser tests and to take the README's screenshots.

Everything started here is stopped by the context managers, also when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: Console messages that mean a widget's frontend and Python side do not match.
WIDGET_ERRORS = ("Failed to load model class", "is not registered")

# JavaScript run in the page ------------------------------------------------------------------------
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}"""

# Pixels of a WebGL canvas that differ from its corner (background) colour. The canvas is copied into
# a 2D canvas first: nglview keeps its drawing buffer, so the copy holds what is on screen.
CANVAS_INK = """(canvas) => {
  const copy = document.createElement('canvas');
  copy.width = canvas.width; copy.height = canvas.height;
  const ctx = copy.getContext('2d');
  ctx.drawImage(canvas, 0, 0);
  const d = ctx.getImageData(0, 0, copy.width, copy.height).data;
  const bg = [d[0], d[1], d[2]];
  let ink = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - bg[0]) + Math.abs(d[i + 1] - bg[1]) + Math.abs(d[i + 2] - bg[2]) > 48) ink++;
  }
  return {ink: ink, total: copy.width * copy.height};
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_lab_settings(folder: Path) -> Path:
    """A JupyterLab settings folder: every cell rendered (no windowing), no news or update checks."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    return folder


class LabServer:
    """A JupyterLab server on a free loopback port, serving ``root``; stop() ends it and its kernels."""

    def __init__(self, root: Path, workdir: Path, env: dict | None = None):
        self.root = Path(root)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(workdir) / "jupyterlab.log"
        settings = write_lab_settings(Path(workdir) / "lab-settings")
        self.env = dict(os.environ)
        self.env.update(
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(Path(workdir) / "workspaces"),
            JUPYTER_CONFIG_DIR=str(Path(workdir) / "config"),
            JUPYTER_RUNTIME_DIR=str(Path(workdir) / "runtime"),
            OMP_NUM_THREADS="1",
            **(env or {}),
        )
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> LabServer:
        command = [
            str(Path(sys.executable).with_name("jupyter-lab")),
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def notebook_url(self, relative: str) -> str:
        return f"{self.url}/lab/tree/{relative}?reset&token={self.token}"

    def stop(self) -> None:
        """Shut the server down through its API (it ends its kernels), then kill whatever is left."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            family = []
        request = urllib.request.Request(
            f"{self.url}/api/shutdown", method="POST", headers={"Authorization": f"token {self.token}"}
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=10).close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            self.process.kill()
            self.process.wait(timeout=5)
        # Kernels run in their own sessions: end each one this server started, by its id.
        for child in family:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(family, timeout=5)


@contextlib.contextmanager
def jupyterlab(root: Path, workdir: Path, env: dict | None = None):
    server = LabServer(root, workdir, env)
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def chromium_page(viewport=(1480, 1500)):
    """A page in Debian's headless Chromium, with the console collected in ``page.console_lines``."""
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM} is missing: install Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.console_lines = []
            page.on("console", lambda message: page.console_lines.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: page.console_lines.append(f"pageerror: {error}"))
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def open_and_run(page, server: LabServer, notebook: str, timeout_ms: int = 90_000) -> None:
    """Open a notebook in JupyterLab, wait for its kernel, run all cells and wait until they finish."""
    page.goto(server.notebook_url(notebook), wait_until="domcontentloaded")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_ms)
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_ms)
    # Close the file browser so the notebook gets the width of the window.
    page.evaluate(
        "() => { if (!jupyterapp.shell.leftCollapsed) jupyterapp.commands.execute('application:toggle-left-area'); }"
    )
    page.evaluate("() => jupyterapp.commands.execute('notebook:run-all-cells')")
    # Every code cell has an execution count once it has run.
    page.wait_for_function(
        """() => {
          const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
          return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=timeout_ms,
    )


def canvas_ink(page, selector: str) -> dict:
    """Non-background pixels of the first canvas under ``selector``: ``{"ink": n, "total": n}``."""
    return page.locator(f"{selector} canvas").first.evaluate(CANVAS_INK)


def canvas_image(page, selector: str) -> str:
    """The data URL of the first canvas under ``selector`` (to tell whether the drawing changed)."""
    return page.locator(f"{selector} canvas").first.evaluate("(c) => c.toDataURL()")


def widget_errors(page) -> list[str]:
    return [line for line in page.console_lines if any(e in line for e in WIDGET_ERRORS)]
