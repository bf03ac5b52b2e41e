"""Importing checkpoints from a local folder (an offline machine, a colleague's copy) into the cache.

Files are matched by sha256 where upstream pins one (so a renamed copy is still found), else by file name or
alias; Hugging Face folders by name with all their required files. Copies are verified before being renamed in,
and the source folder is never written to.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from tetrad.weights.catalog import WeightEntry, registry_or_entries
from tetrad.weights.errors import WeightsError, WeightsMismatch
from tetrad.weights.store import (
    DEFAULT_DIR, _all_files, _is_aux, _mismatch_message, _settle, _tmp_name, _write_sidecar, cached_sha256,
    file_sha256, path_for, verify_entry,
)

log = logging.getLogger(__name__)


class _HashMemo:
    """sha256 of source files, each hashed at most once per import (no sidecars written into the source)."""

    def __init__(self) -> None:
        self._memo: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        if path not in self._memo:
            self._memo[path] = cached_sha256(path, write_cache=False)
        return self._memo[path]


def _scan(src: Path, skip: Path) -> tuple[list[Path], list[Path]]:
    """Files and folders under `src`, sorted, without our sidecars/temp files or the cache itself."""
    files: list[Path] = []
    dirs: list[Path] = [src]
    for root, subdirs, names in os.walk(src):
        here = Path(root)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and (here / d).resolve() != skip)
        dirs += [here / d for d in subdirs]
        files += [here / n for n in sorted(names) if not _is_aux(Path(n))]
    return files, dirs


def _match_file(entry: WeightEntry, files: list[Path], sha_of: _HashMemo) -> Path | None:
    """By sha256 where pinned (only same-size files when the size is known), else by file name or alias."""
    named = [f for f in files if f.name in entry.names]
    if entry.sha256 is None:
        return named[0] if named else None
    if entry.size is not None:
        candidates = [f for f in files if f.stat().st_size == entry.size]
    else:  # unknown size: hashing every file would be slow, so only name matches are checked
        candidates = named
    for f in candidates:
        if sha_of(f) == entry.sha256:
            return f
    for f in named:
        log.warning(
            "import: %s is named like %r but its sha256 %s is not %s; skipped", f, entry.name, sha_of(f), entry.sha256
        )
    return None


def _match_dir(entry: WeightEntry, dirs: list[Path]) -> Path | None:
    for d in dirs:
        if d.name in entry.names and all((d / f).is_file() for f in entry.hf_files):
            return d
    return None


def _copy_file(entry: WeightEntry, src: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(target)
    try:
        shutil.copyfile(src, tmp)  # data only: a read-only source must not make the cache read-only
        _settle(tmp)
        sha = file_sha256(tmp)
        if entry.sha256 is not None and sha != entry.sha256:
            bad = _mismatch_message(entry, target, sha, tmp.stat().st_size)
            raise WeightsMismatch(f"copy of {src} changed while copying: {bad}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    _write_sidecar(target, sha, st.st_size, st.st_mtime_ns)
    return target


def _copy_dir(src: Path, target: Path) -> Path:
    """Copy a folder's files (data only, no hidden files or sidecars) to a temp folder, then rename it in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(target)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for rel in _all_files(src):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, tmp / rel)
            _settle(tmp / rel)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _import_one(entry: WeightEntry, files: list[Path], dirs: list[Path], sha_of: _HashMemo,
                target: Path) -> tuple[Path | None, Path | None]:
    """(source found, cache path written) for one entry; (None, None) when nothing under the source matches."""
    if entry.kind == "hf_dir":
        found = _match_dir(entry, dirs)
        return found, _copy_dir(found, target) if found else None
    found = _match_file(entry, files, sha_of)
    return found, _copy_file(entry, found, target) if found else None


def import_dir(
    src: Path | str, weights_dir: Path | str = DEFAULT_DIR, registry: Mapping[str, WeightEntry] | None = None
) -> list[tuple[str, Path]]:
    """Copy matching checkpoints from a local folder (searched recursively) into the cache, verified.

    Returns (entry name, cache path) for each entry imported; entries already good in the cache, and entries
    with no match in `src`, are skipped and logged.
    """
    src = Path(src)
    if not src.is_dir():
        raise WeightsError(f"cannot import weights: {src} is not a folder")
    files, dirs = _scan(src, Path(weights_dir).resolve())
    sha_of = _HashMemo()
    imported: list[tuple[str, Path]] = []
    for entry in registry_or_entries(registry).values():
        if verify_entry(entry, weights_dir).ok:
            log.info("import: %s already present in %s; skipped", entry.name, weights_dir)
            continue
        found, done = _import_one(entry, files, dirs, sha_of, path_for(entry, weights_dir))
        if done is None:
            log.info("import: nothing in %s matches %s; skipped", src, entry.name)
            continue
        log.info("import: %s <- %s", entry.name, found)
        imported.append((entry.name, done))
    return imported
