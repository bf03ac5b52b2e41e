"""Tiny dataset trees for the adapter tests: real (tiny) media, label files byte-faithful to the real formats.

Media are encoded once per session and copied into each tree. The real label files in shared/datasets-real/
(next to the checkout, or $TETRAD_SHARED/datasets-real) are read only from a temporary copy, and the tests that
need them skip when the folder is absent.
"""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tetrad.datasets.registry import run_adapter
from tetrad.params import DatasetParams

RATE = 16000


def shared_real_dir() -> Path:
    shared = os.environ.get("TETRAD_SHARED") or Path(__file__).resolve().parents[3] / "shared"
    return Path(shared) / "datasets-real"


def real_copy(rel: str, dest: Path) -> Path:
    """Copy one real label file to `dest` (a temporary tree), or skip the test when it is not available."""
    src = shared_real_dir() / rel
    if not src.is_file():
        pytest.skip(f"{src} not available")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def _write_mp4(path: Path, audio: bool) -> None:
    """8 frames of 64x64 H.264 at 25 fps, plus 0.32 s of mono AAC when `audio`."""
    with av.open(str(path), mode="w", format="mp4") as box:
        video = box.add_stream("libx264", rate=25, width=64, height=64, pix_fmt="yuv420p")
        video.codec_context.thread_count = 1
        sound = box.add_stream("aac", rate=RATE, layout="mono") if audio else None
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 30 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            box.mux(video.encode(frame))
        if sound is not None:
            mux_tone(box, sound, 5120, RATE)
        box.mux(video.encode(None))


def mux_tone(box: av.container.OutputContainer, sound: av.audio.stream.AudioStream, n_samples: int,
             rate: int) -> None:
    """`n_samples` of a quiet mono sine into an AAC stream of `box`, in 1024-sample frames, then flushed."""
    tone = (0.2 * np.sin(np.arange(n_samples) * 0.05)).astype(np.float32)
    for start in range(0, len(tone), 1024):
        chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts, chunk.time_base = rate, start, Fraction(1, rate)
        box.mux(sound.encode(chunk))
    box.mux(sound.encode(None))


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """av: video+audio mp4; video: video-only mp4; flac: 0.5 s of speech-band noise; corrupt: random bytes."""
    folder = tmp_path_factory.mktemp("media")
    out = {"av": folder / "av.mp4", "video": folder / "video.mp4", "flac": folder / "a.flac",
           "corrupt": folder / "corrupt.mp4"}
    _write_mp4(out["av"], audio=True)
    _write_mp4(out["video"], audio=False)
    sf.write(out["flac"], np.random.default_rng(0).uniform(-0.1, 0.1, RATE // 2), RATE, format="FLAC")
    out["corrupt"].write_bytes(np.random.default_rng(1).bytes(4096))
    return out


def place(root: Path, rel: str, src: Path) -> Path:
    """Copy a media file to root/rel (folders created)."""
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def write(path: Path, text: str) -> Path:
    """Write a label file byte for byte (no newline translation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def manifest(adapter: str, root: Path, **options) -> pd.DataFrame:
    return run_adapter(DatasetParams(name=adapter, adapter=adapter, root=str(root), options=options))


def by_id(table: pd.DataFrame) -> dict[str, dict]:
    """{video_id: row}, with pandas NA turned into None so rows compare with plain dicts."""
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    return {r["video_id"]: r for r in rows}


def labels(row: dict) -> tuple:
    return row["label"], row["audio_label"], row["video_label"]
