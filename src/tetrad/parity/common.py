"""Helpers shared by the face-layer parity scripts (SBI, LipForensics): importing upstream files from a checkout
without leaving traces in `sys.modules`/`sys.path`, pinning them by sha256, loading the project's runtime patches
from `patches/`, and rewriting one marked section of the report.

Upstream code is only ever imported from the checkout at run time; nothing here contains any of it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import av
import numpy as np

from tetrad.io import file_sha256, write_text

__all__ = ["PATCHES_DIR", "FileCheck", "check_files", "decode_rgb", "files_lines", "isolated_import",
           "load_file_module", "load_patch", "max_abs", "publish", "quiet", "rewrite_section", "upstream_commit"]

log = logging.getLogger(__name__)

# The parity scripts run from the repository root (`make parity`), where the project keeps its runtime patches;
# TETRAD_PATCHES points elsewhere (an installed package has no patches/ beside it).
PATCHES_DIR = Path(os.environ.get("TETRAD_PATCHES", "patches"))


@dataclass(frozen=True)
class FileCheck:
    """One upstream file the check imports or reads, with its sha256 and the one pinned for the stated commit."""

    path: str
    sha256: str
    pinned: str

    @property
    def ok(self) -> bool:
        return self.sha256 == self.pinned


def check_files(checkout: Path, pins: dict[str, str]) -> list[FileCheck]:
    """Hash every pinned file: a different checkout would make the comparison about other code."""
    checks = []
    for rel, pinned in pins.items():
        path = checkout / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {checkout} the right upstream checkout?")
        checks.append(FileCheck(rel, file_sha256(path), pinned))
    for bad in (c for c in checks if not c.ok):
        log.warning("%s: sha256 %s differs from the pinned %s", bad.path, bad.sha256, bad.pinned)
    return checks


def decode_rgb(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of the first video stream as RGB uint8 (PyAV, decoded once), and the frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, float(stream.average_rate or 25)


def load_file_module(path: Path, name: str) -> ModuleType:
    """Import one self-contained file under a private name (no sys.path change)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def isolated_import(paths: Iterable[Path], names: Iterable[str]) -> Iterator[None]:
    """Put `paths` first on sys.path and hide/forget modules named `names` (or below them) for the duration.

    Upstream files import siblings under generic names (`utils`, `models`); ours or another checkout's modules of
    the same name must neither be picked up nor be replaced afterwards.
    """
    tops = set(names)

    def owned(key: str) -> bool:
        return key.split(".", 1)[0] in tops

    stash = {k: sys.modules.pop(k) for k in [k for k in sys.modules if owned(k)]}
    added = [str(p) for p in paths]
    sys.path[:0] = added
    try:
        yield
    finally:
        for key in [k for k in sys.modules if owned(k)]:
            del sys.modules[key]
        sys.modules.update(stash)
        for p in added:
            sys.path.remove(p)


def load_patch(name: str, patches_dir: Path = PATCHES_DIR) -> ModuleType:
    """One of the project's runtime patch modules (`patches/<name>.py`, not an installed package)."""
    key = f"tetrad_patches_{name}"
    if key not in sys.modules:
        path = patches_dir / f"{name}.py"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: runtime patch module missing (run from the repository root, or set "
                                    "TETRAD_PATCHES to the folder holding it)")
        sys.modules[key] = load_file_module(path, key)
    return sys.modules[key]


@contextlib.contextmanager
def quiet(what: str) -> Iterator[None]:
    """Upstream prints progress and errors to stdout; keep the console summary clean and log them instead."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            log.debug("%s: %s", what, line)


def upstream_commit(checkout: Path) -> str:
    """The checkout's full commit, for the report."""
    try:
        out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Max |a - b| in float64 (uint8 images must not wrap around); 0.0 for empty inputs."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a64.shape != b64.shape:
        raise ValueError(f"shape mismatch: {a64.shape} vs {b64.shape}")
    return float(np.abs(a64 - b64).max()) if a64.size else 0.0


def rewrite_section(out: Path, name: str, section: str) -> None:
    """Replace the text between `<!-- name:begin -->` and `<!-- name:end -->`, or append it; the rest is kept,
    so each parity script owns one section of the same report."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = out.read_text() if out.exists() else "# Parity with upstream\n"
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    write_text(text, out)


def publish(out: Path, name: str, section: str, failed: list[str]) -> int:
    """Write the section into the report, show it, and turn the failed checks into the exit status."""
    rewrite_section(out, name, section)
    print(section)
    if failed:
        print(f"parity FAILED: {', '.join(failed)}")
    return 1 if failed else 0


def files_lines(checks: list[FileCheck]) -> list[str]:
    """Report lines: each upstream file with its sha256 and whether it is the pinned one."""
    return [f"- `{c.path}` sha256 `{c.sha256}`" + ("" if c.ok else f" (**differs from pinned {c.pinned}**)")
            for c in checks]
