"""Downloading checkpoints into the cache: direct URLs with a progress bar and sha256 check, Hugging Face repos.

A download goes to a temp file that is renamed in only after its sha256 matches, so the cache never holds a
partial or corrupt checkpoint. Entries on Google Drive and the like cannot be fetched; their instructions are
collected into one ManualDownloadRequired.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tetrad.weights.catalog import WeightEntry, get_entry, registry_or_entries
from tetrad.weights.errors import ManualDownloadRequired, WeightsError
from tetrad.weights.store import (
    _CHUNK, DEFAULT_DIR, _mismatch_message, _settle, _tmp_name, _write_sidecar, path_for, verify_entry,
)

log = logging.getLogger(__name__)

# What `fetch` takes from a Hugging Face repo: configs and safetensors, not duplicate .bin / training files.
HF_ALLOW_PATTERNS: tuple[str, ...] = ("*.json", "*.safetensors", "*.txt", "*.md")


def _stream(response: Any, out: Path, label: str, progress: bool) -> tuple[str, int]:
    """Copy a response body to `out` with a progress bar; return (sha256, bytes)."""
    total = int(response.headers.get("Content-Length") or 0) or None
    digest, done = hashlib.sha256(), 0
    with open(out, "wb") as fh, tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not progress, leave=False
    ) as bar:
        while block := response.read(_CHUNK):
            fh.write(block)
            digest.update(block)
            done += len(block)
            bar.update(len(block))
    if total is not None and done != total:
        raise WeightsError(f"{label}: download truncated ({done} of {total} bytes)")
    return digest.hexdigest(), done


def _download_file(entry: WeightEntry, target: Path, timeout: float, progress: bool) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(target)
    log.info("downloading %s from %s", entry.name, entry.url)
    try:
        with urllib.request.urlopen(str(entry.url), timeout=timeout) as response:
            sha, size = _stream(response, tmp, entry.name, progress)
        _settle(tmp)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"cannot download weights {entry.name!r} from {entry.url}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if entry.sha256 is not None and sha != entry.sha256:
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"downloaded {_mismatch_message(entry, target, sha, size)} from {entry.url}; deleted")
    os.replace(tmp, target)
    st = target.stat()
    _write_sidecar(target, sha, st.st_size, st.st_mtime_ns)
    log.info("%s: %s (%d bytes, sha256 %s)", entry.name, target, size, sha)
    return target


def _download_hf_dir(entry: WeightEntry, target: Path, timeout: float) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - optional dependency
        raise WeightsError(f"weights {entry.name!r} need huggingface_hub: pip install huggingface_hub") from None
    target.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s from the Hugging Face repo %s", entry.name, entry.url)
    try:
        snapshot_download(
            str(entry.url), local_dir=target, allow_patterns=list(HF_ALLOW_PATTERNS), etag_timeout=timeout
        )
    except Exception as exc:  # noqa: BLE001 - the hub raises many types (HTTP, offline, auth); one line each
        raise WeightsError(f"cannot download weights {entry.name!r} from Hugging Face {entry.url}: {exc}") from None
    absent = [f for f in entry.hf_files if not (target / f).is_file()]
    if absent:
        raise WeightsError(f"{target}: Hugging Face repo {entry.url} gave no {', '.join(absent)}")
    return target


def _manual_error(
    entries: Sequence[WeightEntry], weights_dir: Path | str, fetched: Sequence[Path]
) -> ManualDownloadRequired:
    lines = [f"{e.name}: {e.manual} It belongs at {path_for(e, weights_dir)}." for e in entries]
    return ManualDownloadRequired("\n".join(lines), entries, fetched)


def fetch(
    names: Iterable[str] | None = None,
    weights_dir: Path | str = DEFAULT_DIR,
    timeout: float = 30,
    registry: Mapping[str, WeightEntry] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download entries (default: every automatic one) into the cache, verified; skip those already good.

    Manual entries that are requested and absent raise ManualDownloadRequired after the automatic ones are done
    (its `.fetched` holds their paths). Network errors raise one-line WeightsError (urllib timeout `timeout`).
    """
    reg = registry_or_entries(registry)
    names = [names] if isinstance(names, str) else names
    wanted = [get_entry(n, reg) for n in names] if names else [e for e in reg.values() if e.automatic]
    paths: list[Path] = []
    manual: list[WeightEntry] = []
    for entry in wanted:
        ver = verify_entry(entry, weights_dir)
        if ver.ok:
            log.info("%s: already present (%s)", entry.name, ver.status)
            paths.append(ver.path)
        elif not entry.automatic:
            manual.append(entry)
        elif entry.kind == "hf_dir":
            paths.append(_download_hf_dir(entry, ver.path, timeout))
        else:
            paths.append(_download_file(entry, ver.path, timeout, progress))
    if manual:
        raise _manual_error(manual, weights_dir, paths)
    return paths
