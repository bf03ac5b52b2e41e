"""Downloading checkpoints into the cache: direct URLs with a progress bar and sha256 check, Hugging Face repos.

A download goes to a temp file that is renamed in only after its sha256 matches, so the cache never holds a
partial or corrupt checkpoint. Entries on Google Drive and the like cannot be fetched; their instructions are
collected into one ManualDownloadRequired.

A mirror (`mirror=`, the CLI's `--mirror` or $TETRAD_WEIGHTS_MIRROR) replaces the scheme and host of each direct
URL and keeps its path, so a local server laid out like the upstream paths stands in for every upstream host.
`fetch_open` is what `make demo` runs: the openly licensed, sha256-pinned files, stopping at the first host that
cannot be reached (offline), and never placing anything instead of a file whose sha256 is wrong.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tetrad.weights.catalog import WeightEntry, get_entry, registry_or_entries
from tetrad.weights.errors import ManualDownloadRequired, WeightsError, WeightsMismatch, WeightsUnreachable
from tetrad.weights.store import (
    _CHUNK, DEFAULT_DIR, _mismatch_message, _settle, _tmp_name, _write_sidecar, path_for, verify_entry,
)

log = logging.getLogger(__name__)

# What `fetch` takes from a Hugging Face repo: configs and safetensors, not duplicate .bin / training files.
HF_ALLOW_PATTERNS: tuple[str, ...] = ("*.json", "*.safetensors", "*.txt", "*.md")
MIRROR_ENV = "TETRAD_WEIGHTS_MIRROR"  # the default of `tetrad weights fetch --mirror`


def mirrored(url: str, mirror: str | None) -> str:
    """`url` with the mirror's scheme and host (and path prefix, if any) in place of its own, its path kept.

    Only http(s) URLs are redirected (Hugging Face repos have their own HF_ENDPOINT); no mirror: `url` itself.
    """
    parts = urllib.parse.urlsplit(url)
    if not check_mirror(mirror) or parts.scheme not in ("http", "https"):
        return url
    base = urllib.parse.urlsplit(str(mirror))
    return urllib.parse.urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))


def check_mirror(mirror: str | None) -> str | None:
    """The mirror, or None for none (""); WeightsError when it is not an http(s)://HOST[:PORT][/PATH] URL."""
    if not mirror:
        return None
    base = urllib.parse.urlsplit(mirror)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise WeightsError(f"weights mirror {mirror!r} is not an http(s)://HOST[:PORT][/PATH] URL")
    return mirror


def _open(entry: WeightEntry, url: str, timeout: float) -> Any:
    """The response for `url`; WeightsUnreachable when no connection could be made (the machine is offline)."""
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:  # the host answered (404, 403, ...): reachable, only this file is not
        raise WeightsError(f"cannot download weights {entry.name!r} from {url}: {exc}") from None
    except urllib.error.URLError as exc:  # urllib wraps what fails before an answer (DNS, refused, timeout)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):  # a missing local file (file://) says nothing of the network
            raise WeightsError(f"cannot download weights {entry.name!r} from {url}: {exc.reason}") from None
        raise WeightsUnreachable(f"cannot reach {parts.netloc} for weights {entry.name!r}: {exc.reason}") from None


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


def _download_file(entry: WeightEntry, url: str, target: Path, timeout: float, progress: bool) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(target)
    log.info("downloading %s from %s", entry.name, url)
    try:
        with _open(entry, url, timeout) as response:
            sha, size = _stream(response, tmp, entry.name, progress)
        _settle(tmp)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise WeightsError(f"cannot download weights {entry.name!r} from {url}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if entry.sha256 is not None and sha != entry.sha256:
        tmp.unlink(missing_ok=True)
        raise WeightsMismatch(f"downloaded {_mismatch_message(entry, target, sha, size)} from {url}; deleted")
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
    mirror: str | None = None,
) -> list[Path]:
    """Download entries (default: every automatic one) into the cache, verified; skip those already good.

    Manual entries that are requested and absent raise ManualDownloadRequired after the automatic ones are done
    (its `.fetched` holds their paths). Network errors raise one-line WeightsError (urllib timeout `timeout`):
    WeightsUnreachable when no connection could be made, WeightsMismatch for a wrong sha256 (nothing written).
    `mirror` redirects direct URLs (see `mirrored`).
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
            paths.append(_download_file(entry, mirrored(str(entry.url), mirror), ver.path, timeout, progress))
    if manual:
        raise _manual_error(manual, weights_dir, paths)
    return paths


@dataclass
class OpenFetch:
    """What `fetch_open` did, by entry name."""

    fetched: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # already good in the cache
    refused: dict[str, str] = field(default_factory=dict)  # wrong sha256: deleted, nothing placed instead
    unavailable: dict[str, str] = field(default_factory=dict)  # the host answered without the file (404, ...)
    offline: str | None = None  # why, when a host could not be reached; the entries after it were not tried


def open_entries(registry: Mapping[str, WeightEntry] | None = None) -> list[WeightEntry]:
    """The entries anyone may download and that are checked: openly licensed single files with a pinned sha256."""
    return [e for e in registry_or_entries(registry).values()
            if e.automatic and e.kind == "file" and e.sha256 is not None and e.openly_licensed]


def fetch_open(
    weights_dir: Path | str = DEFAULT_DIR,
    timeout: float = 5,
    registry: Mapping[str, WeightEntry] | None = None,
    mirror: str | None = None,
    progress: bool = True,
) -> OpenFetch:
    """Fetch the `open_entries` not yet in the cache; the first unreachable host ends it (offline).

    Stopping there keeps an offline `make demo` from waiting a timeout per entry. A refused (wrong sha256) or
    unavailable file is recorded and the next entry tried; the caller decides what each means.
    """
    reg = registry_or_entries(registry)
    done = OpenFetch()
    wanted = open_entries(reg)
    done.present = [e.name for e in wanted if verify_entry(e, weights_dir).ok]
    for entry in (e for e in wanted if e.name not in done.present):
        try:
            fetch([entry.name], weights_dir, timeout, reg, progress, mirror)
        except WeightsUnreachable as exc:
            done.offline = str(exc)
            break
        except WeightsMismatch as exc:
            done.refused[entry.name] = str(exc)
        except WeightsError as exc:
            done.unavailable[entry.name] = str(exc)
        else:
            done.fetched.append(entry.name)
    return done
