"""Weights manager: every checkpoint the detectors can use, kept in a git-ignored cache.

Tetrad never commits model weights (they belong to their authors). This module knows each checkpoint (layer,
upstream source, sha256 where upstream pins one, size, licence), downloads or imports it into the cache
(`weights/` by default) and verifies it. Layout:

    <dir>/<layer>/<filename>                 the real checkpoint (a folder for Hugging Face entries)
    <dir>/<layer>/demo-random/<filename>     a random-initialised demo checkpoint (written by other code)
    <file>.sha256.json                       sidecar {sha256, size, mtime_ns}: a big file is hashed once

Detectors call `resolve()`, which returns only a verified (or upstream-unpinned) real file, or, when allowed and
no real file exists, the demo checkpoint. A real file whose sha256 does not match is an error, never a silent
fallback to the demo.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import logging
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from tetrad.io import file_sha256

log = logging.getLogger(__name__)

Layer = Literal["audio", "visual", "lip", "semantic", "face"]  # "face": assets of the face/mouth extractors
Kind = Literal["file", "hf_dir"]
Status = Literal["verified", "present-unpinned", "missing", "mismatch", "incomplete"]
LAYERS: tuple[str, ...] = ("audio", "visual", "lip", "semantic", "face")
KINDS: tuple[str, ...] = ("file", "hf_dir")
DEFAULT_DIR = Path("weights")
DEMO_SUBDIR = "demo-random"
SIDECAR_SUFFIX = ".sha256.json"
# What `fetch` takes from a Hugging Face repo: configs and safetensors, not duplicate .bin / training files.
HF_ALLOW_PATTERNS: tuple[str, ...] = ("*.json", "*.safetensors", "*.txt", "*.md")
_CHUNK = 1 << 20
# File times tick coarsely (a few ms), so a file rewritten in the same tick as it was hashed keeps its mtime. A
# sidecar is only written for a file whose mtime is at least this old; files we write ourselves are "settled"
# (mtime moved this far back) so they are hashed once.
_RACY_NS = 2_000_000_000


class WeightsError(RuntimeError):
    """A checkpoint is corrupt, cannot be downloaded, or cannot be imported."""


class WeightsNotFound(WeightsError):
    """No usable checkpoint (real, or demo where allowed) exists; the message says what to run."""


class ManualDownloadRequired(WeightsError):
    """The checkpoint cannot be downloaded automatically; the message holds the human instructions."""

    def __init__(self, message: str, entries: Sequence[WeightEntry] = (), fetched: Sequence[Path] = ()):
        super().__init__(message)
        self.entries = tuple(entries)
        self.fetched = list(fetched)


@dataclass(frozen=True)
class WeightEntry:
    """One checkpoint the detectors can use."""

    name: str
    layer: Layer
    filename: str  # relative to <dir>/<layer>/; a folder name for kind "hf_dir"
    kind: Kind = "file"
    url: str | None = None  # direct download URL, or the Hugging Face repo id for kind "hf_dir"
    sha256: str | None = None  # None where upstream pins none
    size: int | None = None  # bytes
    licence: str = ""
    source: str = ""  # repo@commit:path, or a page
    manual: str | None = None  # exact human instructions when it cannot be downloaded automatically
    aliases: tuple[str, ...] = ()  # other file (or folder) names it is known by
    hf_files: tuple[str, ...] = ()  # kind "hf_dir": files that must exist in the folder

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"{self.name}: layer {self.layer!r} is not one of {LAYERS}")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "hf_dir" and not self.hf_files:
            raise ValueError(f"{self.name}: an hf_dir entry needs hf_files")
        if self.sha256 is not None and (len(self.sha256) != 64 or self.sha256.lower() != self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lower-case hex digits")
        if self.manual is None and not self.url:
            raise ValueError(f"{self.name}: an entry needs a url or manual instructions")

    @property
    def automatic(self) -> bool:
        """True when `fetch` can download it without a human."""
        return self.manual is None

    @property
    def names(self) -> tuple[str, ...]:
        """The file (or folder) name and its aliases."""
        return (self.filename, *self.aliases)


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


# --------------------------------------------------------------------------------------------------- registry

# raw.githubusercontent.com accepts a full commit SHA, so the URLs are pinned to the commits named in
# UPSTREAM.md (full SHAs read from the upstream repositories); the sha256 check guards the content as well.
_UFD_COMMIT = "1abc48606aea45e18d10847e51d21d6173cc957d"
_AASIST_COMMIT = "a04c9863f63d44471dde8a6abcb3b082b07cd1d1"
_LIPFORENSICS_COMMIT = "d0bf5553bfb9676f1771d590472b26a3a76de894"
_CLIP_VITL14_SHA = "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"


def _github_raw(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def _drive_instructions(what: str, file_id: str, filename: str, extra: str = "") -> str:
    return (
        f"{what} is on Google Drive and cannot be downloaded automatically. Open "
        f"https://drive.google.com/file/d/{file_id}/view in a browser (or run `gdown {file_id} -O {filename}`), "
        f"save it as {filename}, then run `tetrad weights import DIR` on the folder holding it.{extra}"
    )


_SBI_TERMS = (
    " Licence: SBI's code and weights are for academic or non-profit non-commercial research only; "
    "commercial use needs an agreement with the authors."
)

_ENTRIES: tuple[WeightEntry, ...] = (
    WeightEntry(
        name="ufd_fc", layer="semantic", filename="fc_weights.pth",
        url=_github_raw("Yuheng-Li/UniversalFakeDetect", _UFD_COMMIT, "pretrained_weights/fc_weights.pth"),
        sha256="477100745713bcc957beb2b40859536859b6483fd6301b3b9293151b194c7847", size=4083,
        licence="MIT", aliases=("ufd_fc_weights.pth",),
        source="Yuheng-Li/UniversalFakeDetect@1abc486:pretrained_weights/fc_weights.pth "
        "(MIT licence added in WisconsinAIVision/UniversalFakeDetect@76a0e3e)",
    ),
    WeightEntry(
        name="clip_vitl14", layer="semantic", filename="ViT-L-14.pt",
        url=f"https://openaipublic.azureedge.net/clip/models/{_CLIP_VITL14_SHA}/ViT-L-14.pt",
        sha256=_CLIP_VITL14_SHA, size=None, licence="MIT", aliases=("clip_ViT-L-14.pt",),
        source="openai/CLIP clip/clip.py _MODELS['ViT-L/14'] (TorchScript archive, fp16)",
    ),
    WeightEntry(
        name="w2v2_deepfake_v2", layer="audio", filename="Deepfake-audio-detection-V2", kind="hf_dir",
        url="MelodyMachine/Deepfake-audio-detection-V2", licence="apache-2.0",
        aliases=("w2v2_deepfake_v2", "MelodyMachine_Deepfake-audio-detection-V2"),
        hf_files=("config.json", "preprocessor_config.json", "model.safetensors"),
        source="https://huggingface.co/MelodyMachine/Deepfake-audio-detection-V2",
    ),
    WeightEntry(
        name="aasist", layer="audio", filename="AASIST.pth",
        url=_github_raw("clovaai/aasist", _AASIST_COMMIT, "models/weights/AASIST.pth"),
        sha256="51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0", size=1281532,
        licence="MIT", aliases=("aasist_AASIST.pth",),
        source="clovaai/aasist@a04c986:models/weights/AASIST.pth",
    ),
    WeightEntry(
        name="aasist_l", layer="audio", filename="AASIST-L.pth",
        url=_github_raw("clovaai/aasist", _AASIST_COMMIT, "models/weights/AASIST-L.pth"),
        sha256="814331d088032bb4c3fa61cc014789eadeed464209dd094ab3a2dd6ffbdce27a", size=426428,
        licence="MIT", aliases=("aasist_AASIST-L.pth",),
        source="clovaai/aasist@a04c986:models/weights/AASIST-L.pth",
    ),
    WeightEntry(
        name="lipforensics_ff", layer="lip", filename="lipforensics_ff.pth",
        licence="MIT (code); no separate licence stated for the weights",
        manual=_drive_instructions(
            "LipForensics' FF++ checkpoint lipforensics_ff.pth", "1wfZnxZpyNd5ouJs0LjVls7zU0N_W73L7",
            "lipforensics_ff.pth",
        ),
        source="ahaliassos/LipForensics@d0bf555:README.md (Google Drive 1wfZnxZpyNd5ouJs0LjVls7zU0N_W73L7)",
    ),
    WeightEntry(
        name="lipforensics_mean_face", layer="face", filename="20words_mean_face.npy",
        url=_github_raw("ahaliassos/LipForensics", _LIPFORENSICS_COMMIT, "preprocessing/20words_mean_face.npy"),
        sha256="dbf68b2044171e1160716df7c53e8bbfaa0ee8c61fb41171d04cb6092bb81422", size=1168,
        licence="MIT", aliases=("lipforensics_20words_mean_face.npy",),
        source="ahaliassos/LipForensics@d0bf555:preprocessing/20words_mean_face.npy",
    ),
    WeightEntry(
        name="sbi_ffc23", layer="visual", filename="FFc23.tar",
        licence="research-only (SBI licence: non-commercial research use)", aliases=("sbi_FFc23.tar",),
        manual=_drive_instructions(
            "SBI's FF++ c23 checkpoint FFc23.tar", "1X0-NYT8KPursLZZdxduRQju6E52hauV0", "FFc23.tar", _SBI_TERMS
        ),
        source="mapooon/SelfBlendedImages@9fe4efe:README.md (Google Drive 1X0-NYT8KPursLZZdxduRQju6E52hauV0)",
    ),
    WeightEntry(
        name="sbi_ffraw", layer="visual", filename="FFraw.tar",
        licence="research-only (SBI licence: non-commercial research use)", aliases=("sbi_FFraw.tar",),
        manual=_drive_instructions(
            "SBI's FF++ raw checkpoint FFraw.tar", "12sLyqBp0VFwdpA-oZLdIOkOTkz_ZnIhV", "FFraw.tar", _SBI_TERMS
        ),
        source="mapooon/SelfBlendedImages@9fe4efe:README.md (Google Drive 12sLyqBp0VFwdpA-oZLdIOkOTkz_ZnIhV)",
    ),
)

REGISTRY: dict[str, WeightEntry] = {e.name: e for e in _ENTRIES}


def _registry(registry: Mapping[str, WeightEntry] | None) -> Mapping[str, WeightEntry]:
    return REGISTRY if registry is None else registry


def get_entry(name: str, registry: Mapping[str, WeightEntry] | None = None) -> WeightEntry:
    """The entry called `name`; KeyError listing the known names otherwise."""
    reg = _registry(registry)
    if name not in reg:
        raise KeyError(f"unknown weights entry {name!r}; known: {', '.join(sorted(reg))}")
    return reg[name]


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
    return [verify_entry(e, weights_dir) for e in _registry(registry).values()]


# --------------------------------------------------------------------------------------------------- resolve


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
    reg = _registry(registry)
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


# --------------------------------------------------------------------------------------------------- fetch


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
    reg = _registry(registry)
    names = [names] if isinstance(names, str) else names
    entries = [get_entry(n, reg) for n in names] if names else [e for e in reg.values() if e.automatic]
    paths: list[Path] = []
    manual: list[WeightEntry] = []
    for entry in entries:
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


# --------------------------------------------------------------------------------------------------- import


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
            raise WeightsError(f"copy of {src} changed while copying: {bad}")
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
    cache = Path(weights_dir).resolve()
    files, dirs = _scan(src, cache)
    sha_of = _HashMemo()
    imported: list[tuple[str, Path]] = []
    for entry in _registry(registry).values():
        if verify_entry(entry, weights_dir).ok:
            log.info("import: %s already present in %s; skipped", entry.name, weights_dir)
            continue
        target = path_for(entry, weights_dir)
        if entry.kind == "hf_dir":
            found = _match_dir(entry, dirs)
            done = _copy_dir(found, target) if found else None
        else:
            found = _match_file(entry, files, sha_of)
            done = _copy_file(entry, found, target) if found else None
        if done is None:
            log.info("import: nothing in %s matches %s; skipped", src, entry.name)
            continue
        log.info("import: %s <- %s", entry.name, found)
        imported.append((entry.name, done))
    return imported


# --------------------------------------------------------------------------------------------------- CLI


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_list(args: argparse.Namespace) -> int:
    reg = _registry(getattr(args, "registry", None))
    rows = [["name", "layer", "status", "size", "licence", "demo-random", "source"]]
    for ver in list_status(args.dir, reg):
        entry = reg[ver.name]
        size = ver.size if ver.size is not None else entry.size
        how = "" if entry.automatic or ver.ok else " (manual)"
        rows.append([ver.name, ver.layer, ver.status + how, _human(size), entry.licence.split(" (")[0],
                     "yes" if ver.demo_present else "no", entry.source])
    print(_table(rows))
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    reg = _registry(getattr(args, "registry", None))
    names = args.names or [n for n, e in reg.items() if e.automatic]
    rc = 0
    for name in names:
        try:
            for path in fetch([name], args.dir, timeout=args.timeout, registry=reg):
                print(f"{name}: {path}")
        except ManualDownloadRequired as exc:
            print(f"manual download needed: {exc}")
            rc = max(rc, 2)
        except (WeightsError, KeyError) as exc:
            print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
            rc = 1
    if not args.names:
        for ver in list_status(args.dir, reg):
            if not reg[ver.name].automatic and not ver.ok:
                print(f"manual: {ver.name}: {reg[ver.name].manual}")
    return rc


def _cmd_import(args: argparse.Namespace) -> int:
    try:
        imported = import_dir(args.src, args.dir, registry=getattr(args, "registry", None))
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in imported:
        print(f"imported {name}: {path}")
    if not imported:
        print(f"nothing new to import from {args.src}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    bad = 0
    for ver in list_status(args.dir, getattr(args, "registry", None)):
        print(f"{ver.name:24s} {ver.status:17s} {ver.message}")
        bad += ver.status in ("mismatch", "incomplete")
    return 1 if bad else 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add `weights {list,fetch,import,verify}` to a parser's subparsers; handlers return an exit code."""
    parser = subparsers.add_parser("weights", help="list, fetch, import and verify model weights")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    sub = parser.add_subparsers(dest="weights_command", metavar="{list,fetch,import,verify}")
    commands = {
        "list": (_cmd_list, "show every checkpoint and its state"),
        "fetch": (_cmd_fetch, "download checkpoints (default: every automatic one)"),
        "import": (_cmd_import, "copy matching checkpoints from a local folder"),
        "verify": (_cmd_verify, "check sha256 of every checkpoint (exit 1 on a mismatch)"),
    }
    for name, (handler, text) in commands.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="weights cache folder (default: weights)")
        if name == "fetch":
            p.add_argument("names", nargs="*", metavar="NAME", help=f"entries: {', '.join(REGISTRY)}")
            p.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
        if name == "import":
            p.add_argument("src", type=Path, metavar="DIR", help="folder to search (recursively)")
        p.set_defaults(func=handler)
    return parser
