"""Headless Chromium for the tests that look at what people see (the HTML report, `dvc plots show`, MLflow's UI):
a screenshot, and the state of every <img> after the page loaded, read back from the DOM Chromium dumps."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# Written into a copy of the page (the report itself carries no script): on load, every image's class and
# naturalWidth (0 when it did not load) go into an attribute of <body>, which --dump-dom prints.
_PROBE = """<script>window.addEventListener("load", () => document.body.setAttribute("data-images",
JSON.stringify([...document.images].map(i => [i.className, i.naturalWidth]))));</script>"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium (the Makefile's system-deps installs it with apt)")
    return path


def _run(args: list[str], url: str) -> str:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args, url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def loaded_images(page: Path) -> list[tuple[str, int]]:
    """(class, naturalWidth) of every <img> of `page` once loaded in Chromium. The probed copy sits beside the
    page (relative image paths, as `dvc plots show` writes them, must resolve) and is removed afterwards."""
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    try:
        dom = _run(["--dump-dom", "--virtual-time-budget=15000"], probe.as_uri())
    finally:
        probe.unlink()
    found = re.search(r'data-images="([^"]*)"', dom)
    assert found, "the probe did not run: the page never finished loading"
    return [tuple(x) for x in json.loads(found.group(1).replace("&quot;", '"'))]


def dom(url: str, budget_ms: int = 20000) -> str:
    """The DOM of `url` after `budget_ms` of (virtual) time: what a script-rendered page shows."""
    return _run(["--dump-dom", f"--virtual-time-budget={budget_ms}"], url)


def screenshot(url: str, out: Path, size: str = "1300,3000", budget_ms: int = 15000) -> Path:
    _run([f"--screenshot={out}", f"--window-size={size}", f"--virtual-time-budget={budget_ms}"], url)
    assert out.is_file() and out.stat().st_size > 0
    return out
