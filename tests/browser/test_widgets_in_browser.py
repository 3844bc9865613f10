"""The attention explorer works for a learner in a real browser.

JupyterLab starts on 127.0.0.1, headless Chromium opens a small notebook that shows
``viz.attention_explorer`` on fixed weights, runs its cell with Shift+Enter, moves the head
slider with the keyboard, and the figure is redrawn. Unit tests check the explorer's Python side;
only a browser shows that the widget JavaScript loads and that a moved slider reaches the kernel
and comes back as a new picture.

Needs the system package ``chromium`` and the ``browser`` extra (Playwright, which drives the
system Chromium and downloads no browser). Run it with ``python3 scripts/course.py browser-test``;
the default test run leaves it out (see ``conftest.py`` here).
"""

from __future__ import annotations

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
from urllib.parse import urlsplit

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

INSTALL_HINT = (
    "install Chromium (Debian/Ubuntu: `sudo apt-get install chromium`) and run "
    "`python3 scripts/course.py browser-test`, which installs the `browser` extra"
)
WAIT_MS = 120_000  # a busy 2-core machine needs most of a minute to start JupyterLab and a kernel

EXPLORER_CELL = """\
import numpy as np
from mmcourse import viz

rng = np.random.default_rng(0)
scores = rng.normal(size=(2, 3, 5, 5))
weights = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)  # (L, H, T, T), rows sum to 1
viz.attention_explorer(weights, ["the", "cat", "sat", "on", "mats"])"""


def chromium_path() -> str:
    path = os.environ.get("MMCOURSE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(f"the browser check needs Chromium, none was found: {INSTALL_HINT}", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(server: subprocess.Popen, url: str, log: Path) -> None:
    # No proxy: a proxy from the environment must not stand between us and loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            opener.open(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {WAIT_MS // 1000} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def jupyter_lab(tmp_path: Path):
    """A JupyterLab server on a free loopback port, serving a folder with ``explorer.ipynb``."""
    notebooks, settings = tmp_path / "notebooks", tmp_path / "lab-settings"
    notebooks.mkdir()
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(new_notebook(cells=[new_code_cell(EXPLORER_CELL)], metadata={"kernelspec": kernelspec}),
                   notebooks / "explorer.ipynb")
    # JupyterLab asks whether to fetch news from the web; answer no before it asks.
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false"}))

    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        # Settings, workspaces and runtime files stay in the temporary folder, not the user's home.
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
    )
    log = tmp_path / "jupyter.log"
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebooks}",
        "--allow-root",  # containers often run as root; JupyterLab refuses that without the flag
    ]
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, f"{base}/api/status?token={token}", log)
        yield base, token
    finally:
        server.terminate()  # JupyterLab shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def browser_page():
    """A headless Chromium page that may reach loopback only, and the list of URLs it refused."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the browser check needs Playwright: {INSTALL_HINT}", pytrace=False)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-proxy-server"])
        try:
            page, refused = browser.new_page(viewport={"width": 1400, "height": 900}), []

            def loopback_only(route):
                url = route.request.url
                if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in ("127.0.0.1", "localhost"):
                    route.continue_()
                else:
                    refused.append(url)
                    route.abort()

            page.route("**/*", loopback_only)
            yield page, refused
        finally:
            browser.close()


def figure_png(page) -> str:
    """The explorer's figure as shown: the data URL of the output image, once the browser has decoded it."""
    image = page.locator(".jp-OutputArea-output img")
    image.wait_for(timeout=WAIT_MS)
    assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "the figure did not decode"
    return image.get_attribute("src")


def test_moving_the_head_slider_redraws_the_explorer_figure(browser_page, jupyter_lab):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # present: browser_page checked

    page, refused = browser_page  # first: without Chromium there is no point starting JupyterLab
    base, token = jupyter_lab
    page.goto(f"{base}/lab/tree/explorer.ipynb?token={token}")
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=WAIT_MS)  # kernel ready

    page.locator(".jp-CodeCell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")

    # The widgets render as controls, not as the text a viewer without the widget manager shows.
    sliders = page.locator(".jp-OutputArea-output .widget-hslider")
    sliders.first.wait_for(timeout=WAIT_MS)
    assert sliders.locator(".widget-label").all_inner_texts() == ["layer", "head"]
    assert page.locator(".jp-OutputArea-output .widget-dropdown select").input_value() == "4: mats"
    head = sliders.filter(has=page.get_by_text("head", exact=True))
    readout, handle = head.locator(".widget-readout"), head.locator(".noUi-handle")
    assert readout.inner_text() == "0"
    before = figure_png(page)
    assert before.startswith("data:image/png;base64,")

    handle.focus()
    page.keyboard.press("ArrowRight")
    try:
        page.wait_for_function(
            "old => { const img = document.querySelector('.jp-OutputArea-output img');"
            " return img !== null && img.src !== old; }",
            arg=before,
            timeout=WAIT_MS,
        )
    except PlaywrightTimeout:
        pytest.fail(f"the head slider moved but the figure was not redrawn within {WAIT_MS // 1000} s")
    assert readout.inner_text() == "1"
    assert handle.get_attribute("aria-valuenow") == "1.0"
    after = figure_png(page)
    assert after.startswith("data:image/png;base64,") and after != before
    assert page.locator(".jp-OutputArea-output img").count() == 1, "the figure must be redrawn in place"
    assert refused == [], f"the page tried to leave this machine: {refused}"
