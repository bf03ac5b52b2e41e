"""The weights cache on disk: where each checkpoint lives, its sha256 (hashed once), its state, and `resolve`.

Layout (git-ignored, `weights/` by default; Tetrad never commits model weights, they belong to their authors):

    <dir>/<layer>/<filename>                 the real checkpoint (a folder for Hugging Face entries)
    <dir>/<layer>/demo-random/<filename>     a random-initialised demo checkpoint (written by other code)
    <file>.sha256.json                       sidecar {sha256, size, mtime_ns}: a big file is hashed once

Detectors call `resolve()`, which returns only a verified (or upstream-unpinned) real file, or, when allowed and
no real file exists, the demo checkpoint. A real file whose sha256 does not match is an error, never a silent
fallback to the demo.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tetrad.weights.catalog import WeightEntry, entries, get_entry, registry_or_entries
from tetrad.weights.errors import WeightsError, WeightsNotFound

log = logging.getLogger(__name__)

Status = Literal["verified", "present-unpinned", "missing", "mismatch", "incomplete"]
DEFAULT_DIR = Path("weights")
DEMO_SUBDIR = "demo-random"
SIDECAR_SUFFIX = ".sha256.json"
_CHUNK = 1 << 20
# File times tick coarsely (a few ms), so a file rewritten in the same tick as it was hashed keeps its mtime. A
# sidecar is only written for a file whose mtime is at least this old; files we write ourselves are "settled"
# (mtime moved this far back) so they are hashed once.
_RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Verification:
    """The state of one entry in the cache."""

    name: str
    layer: str
    status: Status
    path: Path
    expected_sha256: str | None
    sha256: str | None  # computed; for hf_dir a digest over its hf_files
    size: int | None  # actual bytes on disk (None when missing)
    message: str
    demo_present: bool

    @property
    def ok(self) -> bool:
        return self.status in ("verified", "present-unpinned")


@dataclass(frozen=True)
class Resolved:
    """The checkpoint a detector should load."""

    name: str
    path: Path
    source: Literal["real", "demo-random"]
    sha256: str


# --------------------------------------------------------------------------------------------------- paths


def path_for(entry: WeightEntry, weights_dir: Path | str = DEFAULT_DIR, demo: bool = False) -> Path:
    """Where the entry lives in the cache: `<dir>/<layer>/[demo-random/]<filename>`."""
    base = Path(weights_dir) / entry.layer
    return (base / DEMO_SUBDIR if demo else base) / entry.filename


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _is_aux(path: Path) -> bool:
    """Sidecars and temp files are ours, never checkpoints."""
    return path.name.endswith((SIDECAR_SUFFIX, ".tmp")) or path.name.startswith(".")


def _tmp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


# --------------------------------------------------------------------------------------------------- hashing


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (as `tetrad.io.file_sha256`, which would import pandas and pyarrow here)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _read_sidecar(path: Path, size: int, mtime_ns: int) -> str | None:
    try:
        data = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("size") != size or data.get("mtime_ns") != mtime_ns:
        return None
    sha = data.get("sha256")
    return sha if isinstance(sha, str) and len(sha) == 64 else None


def _is_racy(mtime_ns: int) -> bool:
    return time.time_ns() - mtime_ns < _RACY_NS


def _settle(path: Path) -> None:
    """Move a just-written file's mtime back so its sidecar is trusted at once (any later write changes it)."""
    st = path.stat()
    if _is_racy(st.st_mtime_ns):
        os.utime(path, ns=(st.st_atime_ns, time.time_ns() - _RACY_NS))


def _write_sidecar(path: Path, sha: str, size: int, mtime_ns: int) -> None:
    side = _sidecar(path)
    if _is_racy(mtime_ns):
        log.debug("%s was modified moments ago; its sha256 is not cached yet", path)
        return
    tmp = _tmp_name(side)
    try:
        tmp.write_text(json.dumps({"sha256": sha, "size": size, "mtime_ns": mtime_ns}, sort_keys=True) + "\n")
        os.replace(tmp, side)
    except OSError as exc:  # a read-only folder only costs a re-hash next time
        log.debug("cannot write %s: %s", side, exc)
        tmp.unlink(missing_ok=True)


def cached_sha256(path: Path, write_cache: bool = True) -> str:
    """sha256 of a file, reusing `<file>.sha256.json` when its size and mtime_ns still match."""
    path = Path(path)
    st = path.stat()
    sha = _read_sidecar(path, st.st_size, st.st_mtime_ns)
    if sha is not None:
        return sha
    log.info("hashing %s (%d bytes)", path, st.st_size)
    sha = file_sha256(path)
    if write_cache:
        _write_sidecar(path, sha, st.st_size, st.st_mtime_ns)
    return sha


def _dir_digest(folder: Path, files: Iterable[str], write_cache: bool = True) -> str:
    """A digest over named files of a folder: sha256 of 'relpath sha256' lines, sorted."""
    lines = [f"{rel} {cached_sha256(folder / rel, write_cache)}\n" for rel in sorted(files)]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _all_files(folder: Path) -> list[str]:
    """Every checkpoint-like file under a folder (relative paths), skipping ours and hidden ones."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [str((Path(root) / f).relative_to(folder)) for f in sorted(files) if not _is_aux(Path(f))]
    return out


# --------------------------------------------------------------------------------------------------- verify


def _mismatch_message(entry: WeightEntry, path: Path, actual: str, size: int) -> str:
    expected_size = f", expected {entry.size} bytes" if entry.size is not None else ""
    return (
        f"{path}: sha256 mismatch for weights {entry.name!r}: expected {entry.sha256}, got {actual} "
        f"({size} bytes{expected_size})"
    )


def _verify_file(entry: WeightEntry, path: Path) -> tuple[Status, str | None, int | None, str]:
    if not path.is_file():
        return "missing", None, None, f"{path} does not exist"
    size = path.stat().st_size
    sha = cached_sha256(path)
    if entry.sha256 is None:
        return "present-unpinned", sha, size, f"{path}: upstream pins no sha256; computed {sha}"
    if sha != entry.sha256:
        return "mismatch", sha, size, _mismatch_message(entry, path, sha, size)
    return "verified", sha, size, f"{path}: sha256 {sha} verified"


def _verify_hf_dir(entry: WeightEntry, path: Path) -> tuple[Status, str | None, int | None, str]:
    if not path.is_dir():
        return "missing", None, None, f"{path} does not exist"
    absent = [f for f in entry.hf_files if not (path / f).is_file()]
    if absent:
        return "incomplete", None, None, f"{path}: missing {', '.join(absent)}"
    size = sum((path / f).stat().st_size for f in entry.hf_files)
    sha = _dir_digest(path, entry.hf_files)
    message = f"{path}: upstream pins no sha256; digest of its {len(entry.hf_files)} files {sha}"
    return "present-unpinned", sha, size, message


def verify_entry(entry: WeightEntry, weights_dir: Path | str = DEFAULT_DIR) -> Verification:
    """Check the real checkpoint of `entry` in the cache (hashing it at most once per change)."""
    path = path_for(entry, weights_dir)
    check = _verify_hf_dir if entry.kind == "hf_dir" else _verify_file
    status, sha, size, message = check(entry, path)
    demo = path_for(entry, weights_dir, demo=True).exists()
    return Verification(entry.name, entry.layer, status, path, entry.sha256, sha, size, message, demo)


def list_status(
    weights_dir: Path | str = DEFAULT_DIR, registry: Mapping[str, WeightEntry] | None = None
) -> list[Verification]:
    """Verification of every entry, in registry order."""
    return [verify_entry(e, weights_dir) for e in registry_or_entries(registry).values()]


# --------------------------------------------------------------------------------------------------- resolve


def demo_target(name: str, weights_dir: Path | str = DEFAULT_DIR) -> Path | None:
    """Where a demo-random stand-in for entry `name` should be written, with its folder made; None when `name` is
    no entry (a user's own path), a real file is present (or broken: never hidden behind a demo), or the demo
    file exists already."""
    entry = entries().get(name)
    if entry is None or verify_entry(entry, weights_dir).status != "missing":
        return None
    target = path_for(entry, weights_dir, demo=True)
    if target.exists():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _how_to_get(entry: WeightEntry, weights_dir: Path | str) -> str:
    dir_opt = "" if Path(weights_dir) == DEFAULT_DIR else f" --dir {weights_dir}"
    if entry.manual:
        return f"{entry.manual} (run it as `tetrad weights import DIR{dir_opt}`)"
    return (
        f"Run `tetrad weights fetch {entry.name}{dir_opt}` to download it, or "
        f"`tetrad weights import DIR{dir_opt}` to copy it from a local folder that holds it."
    )


def _not_found(entry: WeightEntry, weights_dir: Path | str, allow_demo: bool) -> WeightsNotFound:
    where = path_for(entry, weights_dir)
    demo = f"; no demo-random checkpoint at {path_for(entry, weights_dir, demo=True)} either" if allow_demo else ""
    return WeightsNotFound(
        f"weights {entry.name!r} ({entry.layer} layer) not found at {where}{demo}. {_how_to_get(entry, weights_dir)}"
    )


def _resolve_path(path: Path) -> Resolved:
    """A user's own checkpoint (file or folder): used as real weights, its sha256 computed."""
    if path.is_file():
        return Resolved(str(path), path, "real", cached_sha256(path, write_cache=False))
    if path.is_dir():
        return Resolved(str(path), path, "real", _dir_digest(path, _all_files(path), write_cache=False))
    raise WeightsNotFound(f"weights path {path} does not exist")


def _looks_like_path(name: str | Path, registry: Mapping[str, WeightEntry]) -> bool:
    if isinstance(name, Path):
        return True
    return name not in registry and ("/" in name or os.sep in name or Path(name).exists())


def resolve(
    name: str | Path,
    weights_dir: Path | str = DEFAULT_DIR,
    allow_demo: bool = False,
    registry: Mapping[str, WeightEntry] | None = None,
) -> Resolved:
    """The checkpoint to load for `name` (a registry name, or an explicit file or folder path).

    Real file if present and not mismatched; else the demo-random file if `allow_demo` and it exists; else
    WeightsNotFound saying what to run. A mismatched or incomplete real checkpoint raises WeightsError.
    """
    reg = registry_or_entries(registry)
    if _looks_like_path(name, reg):
        return _resolve_path(Path(name))
    entry = get_entry(str(name), reg)
    ver = verify_entry(entry, weights_dir)
    if ver.status in ("mismatch", "incomplete"):
        fix = _how_to_get(entry, weights_dir)
        raise WeightsError(f"{ver.message}. Delete it, then fetch or import a good copy. {fix}")
    if ver.ok and ver.sha256 is not None:
        return Resolved(entry.name, ver.path, "real", ver.sha256)
    demo = path_for(entry, weights_dir, demo=True)
    if allow_demo and demo.exists():
        log.warning("weights %r: no real checkpoint at %s; using the random demo %s", entry.name, ver.path, demo)
        sha = _dir_digest(demo, _all_files(demo)) if demo.is_dir() else cached_sha256(demo)
        return Resolved(entry.name, demo, "demo-random", sha)
    raise _not_found(entry, weights_dir, allow_demo)
