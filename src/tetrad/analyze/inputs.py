"""Which files `tetrad analyze` reads: the files named, and the media found in the folders named (recursively, by
content, not by extension), as a manifest the extract and detect code reads like any dataset's."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av
import pandas as pd

from tetrad import schemas
from tetrad.datasets.manifest import access_problem
from tetrad.errors import UserError

log = logging.getLogger(__name__)
# FFmpeg opens still pictures and plain text as one-frame "videos" (image2, *_pipe, tty): in a folder they are
# photos, thumbnails or notes, not media to analyse.
_NOT_MEDIA_FORMATS = ("image2", "tty")


class UsageError(UserError, ValueError):
    """The command line names nothing analysable (a path that does not exist, a folder without media, an unknown
    layer); the CLI prints the message and exits 2."""


def is_media(path: Path) -> bool:
    """Whether FFmpeg finds an audio or a video stream in the file (a picture or a text file is not media)."""
    try:
        with av.open(str(path), timeout=10) as box:
            names = box.format.name.split(",")
            if any(n in _NOT_MEDIA_FORMATS or n.endswith("_pipe") for n in names):
                return False
            return bool(box.streams.audio or box.streams.video)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return False


def find_media(paths: list[Path]) -> list[Path]:
    """Every file named (bad ones included: each gets its own entry with what is wrong), then the media files of
    every folder named, sorted; a file reached twice is kept once."""
    found: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            files = _readable_files(path)
            media = [p for p in files if is_media(p)]
            log.info("%s: %d media files (%d other files skipped)", path, len(media), len(files) - len(media))
            if not media:
                raise UsageError(f"{path}: no audio or video file in this folder")
        elif path.exists():
            media = [path]
        else:
            raise UsageError(f"{path}: no such file or folder")
        for file in media:
            found.setdefault(os.path.realpath(file), file)
    return list(found.values())


def _readable_files(folder: Path) -> list[Path]:
    """The files under `folder` that can be read; each one that cannot (a dangling link, a link loop, no read
    permission) gets a warning line with the reason, rather than vanishing without a word."""
    # links to folders are left out (is_dir follows links): rglob walks folders itself
    entries = sorted(p for p in folder.rglob("*") if p.is_file() or (p.is_symlink() and not p.is_dir()))
    readable = []
    for entry in entries:
        why = access_problem(str(entry))
        if why is None:
            readable.append(entry)
        else:
            log.warning("%s: skipped: %s", entry, why)
    return readable


def manifest_of(files: list[Path]) -> pd.DataFrame:
    """MANIFEST-shaped rows for unlabelled files: video_id is the path as given (unique, readable in the output)."""
    n = len(files)
    table = pd.DataFrame({
        "video_id": [str(f) for f in files],
        "path": [os.path.realpath(f) for f in files],
        **{col: pd.array([None] * n, dtype="Int8") for col in ("label", "audio_label", "video_label")},
        **{col: pd.Series([None] * n, dtype=object) for col in ("category", "method", "split", "sha256", "error")},
        "group": pd.Series([str(f) for f in files], dtype=object),
        "status": schemas.OK,
    })
    return table[schemas.MANIFEST.names]
