"""The notebook player in a real browser: JupyterLab + headless Chromium driven by Playwright.

The helpers (`jupyter_lab` fixture, `open_notebook`, `run_all_cells`) take any notebook path
under the server's root folder, so other notebooks can be driven the same way.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from kakashi.config import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
FPS = 24
PLAYER_CELL = f"""\
import numpy as np
from kakashi.widgets import Player

fps, sr, seconds = {FPS}, 22050, 8
t = np.arange(seconds * fps) / fps
stand = np.array([[0, .95, 0], [-.12, .95, 0], [-.12, .52, .02], [-.12, .1, 0], [.12, .95, 0],
                  [.12, .52, .02], [.12, .1, 0], [0, 1.18, .01], [0, 1.44, 0], [0, 1.55, .06],
                  [0, 1.68, .04], [.16, 1.42, 0], [.42, 1.42, 0], [.66, 1.42, 0], [-.16, 1.42, 0],
                  [-.42, 1.42, 0], [-.66, 1.42, 0]])
poses = np.repeat(stand[None], len(t), axis=0)                       # [T, 17, 3] metres
poses[:, [12, 13, 15, 16], 1] += 0.3 * np.sin(2 * np.pi * t)[:, None]  # arms wave at 1 Hz
tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(seconds * sr) / sr)
Player(poses, fps, audio=tone, sr=sr, size=320)
"""


@dataclass
class Lab:
    url: str
    token: str
    root: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    """A JupyterLab server on localhost serving a temporary root folder; shut down afterwards."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (Debian: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("jupyter")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), IPYTHONDIR=str(home / "ipython"),
               JUPYTER_PLATFORM_DIRS="1")
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))  # no "get Jupyter news?" prompt
    log = open(home / "lab.log", "wb")
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter), "lab", "--no-browser", f"--port={port}", f"--IdentityProvider.token={token}",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI often run as root
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start: " + (home / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield Lab(url, token, root)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def write_notebook(path: Path, *cells: str) -> Path:
    """A notebook of code cells at `path`, for the python3 kernel."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def open_notebook(page, lab: Lab, notebook: str, timeout_s: float = 60) -> None:
    """Open `notebook` (a path relative to the server root) and wait for its kernel to be idle."""
    page.goto(f"{lab.url}/lab/tree/{notebook}?token={lab.token}&reset")
    page.wait_for_function(
        """() => {
          const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
          const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
          return !!k && k.status === 'idle';
        }""", timeout=timeout_s * 1000)


def run_all_cells(page, timeout_s: float = 120) -> None:
    """Clear the open notebook's outputs, run every cell and wait until all ran or one failed."""
    page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => {
          const w = window.jupyterapp.shell.currentWidget;
          const code = w.content.widgets.filter(c => c.model.type === 'code');
          const failed = code.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
          return w.sessionContext.session.kernel.status === 'idle'
                 && (failed || code.every(c => c.model.executionCount !== null));
        }""", timeout=timeout_s * 1000)
    errors = page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
              .filter(c => c.model.type === 'code')
              .flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error'))
              .map(o => o.ename + ': ' + o.evalue)""")
    if errors:
        raise AssertionError(f"a cell failed: {errors}")


STATE_JS = """() => {
  const audio = document.querySelector('audio[class*="kakashi-audio-"]');
  const readout = document.querySelector('[class*="kakashi-frame-"] .widget-readout');
  const img = document.querySelector('[class*="kakashi-image-"]');
  return {frame: parseInt(readout.textContent), time: audio.currentTime, paused: audio.paused,
          synced: audio.dataset.synced === '1', image: img.getAttribute('src')};
}"""


@pytest.mark.timeout(240)
def test_player_plays_in_sync_in_jupyterlab(jupyter_lab, browser, tmp_path):
    write_notebook(jupyter_lab.root / "player.ipynb", PLAYER_CELL)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        open_notebook(page, jupyter_lab, "player.ipynb")
        run_all_cells(page)
        page.wait_for_selector('[class*="kakashi-play-"] button', timeout=60_000)
        page.wait_for_function("() => { const a = document.querySelector('audio[class*=\"kakashi-audio-\"]');"
                               " return a && a.dataset.synced === '1'; }", timeout=30_000)
        before = page.evaluate(STATE_JS)
        assert before["frame"] == 0 and before["paused"]
        page.locator('[class*="kakashi-play-"] button').first.click()
        time.sleep(2.5)
        samples = []
        for _ in range(4):
            samples.append(page.evaluate(STATE_JS))
            time.sleep(0.25)
        print("player states while playing:", json.dumps([{k: v for k, v in s.items() if k != "image"}
                                                          for s in samples]))
        first, last = samples[0], samples[-1]
        assert first["frame"] >= FPS, "the frame counter did not advance"
        assert last["frame"] > first["frame"]
        assert not last["paused"] and last["time"] > first["time"] > 0.5, "the music is not playing"
        for s in samples:  # audio time follows the frame (a few frames of slack for polling)
            assert abs(s["time"] - s["frame"] / FPS) < 0.3, s
        page.wait_for_function(f"() => document.querySelector('[class*=\"kakashi-image-\"]')"
                               f".getAttribute('src') !== {json.dumps(before['image'])}", timeout=10_000)
        shot = tmp_path / "player.png"
        page.locator('[class*="kakashi-play-"]').scroll_into_view_if_needed()
        page.screenshot(path=str(shot))
        print(f"screenshot: {shot}")
        page.locator('[class*="kakashi-play-"] button').first.click()  # pause
        page.wait_for_function("() => document.querySelector('audio[class*=\"kakashi-audio-\"]').paused",
                               timeout=5_000)
    finally:
        page.close()
