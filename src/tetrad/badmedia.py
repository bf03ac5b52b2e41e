"""A bad-media corpus: every kind of file a benchmark or a user's folder throws at the pipeline, in the `folder`
dataset layout (`real/`, `fake/`), with the statuses each layer must give it.

Broken files (corrupt, truncated past its index, cut after its index so part of it decodes, empty), missing streams (no audio, audio only), odd shapes (one frame, fewer
frames than a lip clip, 4K, portrait, rotated, odd sizes, variable frame rate), odd names (unicode and spaces, upper-case
and wrong extensions, the same stem twice), links (dangling, a loop), an unreadable file, a file over
`extract.limits.max_duration_s`, and audio in 8/16-bit and float at 8/44.1/48 kHz, mono and 5.1. Each case says
which statuses each layer may give: exact ones where the file decides (a corrupt file is `decode_error`
everywhere), a set where a face detector decides (random demo weights find faces or not).

A phone's portrait clip is stored sideways with a display rotation (`rotated.mp4`); decode turns its frames
upright, as OpenCV's VideoCapture does for upstream's code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import soundfile as sf
from skimage import data as skdata

LONG_S = 40.0  # the long file's duration: tests set extract.limits.max_duration_s below it
RATE = 16000
ANY_FACE = frozenset({"ok", "no_face"})  # what a face detector with random weights may find
LIP = frozenset({"ok", "no_face", "too_short"})
PARTIAL = frozenset({"partial"})  # a cut file: scored on what decoded


@dataclass(frozen=True)
class Case:
    """One file: where it goes, how it is made, and the statuses each layer may give it."""
    rel: str
    make: Callable[[Path], None]
    audio: frozenset[str] = frozenset({"ok"})
    semantic: frozenset[str] = frozenset({"ok"})
    visual: frozenset[str] = ANY_FACE
    lip: frozenset[str] = LIP
    sync: frozenset[str] | None = None  # None: what the face track and the sound allow together (sync_allowed)

    def expected(self) -> dict[str, frozenset[str]]:
        sync = self.sync if self.sync is not None else sync_allowed(self.audio, self.lip)
        return {"audio": self.audio, "semantic": self.semantic, "visual": self.visual, "lip": self.lip,
                "sync": sync}


def sync_allowed(audio: frozenset[str], lip: frozenset[str]) -> frozenset[str]:
    """SyncNet reads the mouths cache's face track and the sound of the same frames: it fails as either does, or
    is too short for one 5-frame window; a file that fails one way everywhere fails that way for it too."""
    if len(lip) == 1 and lip == audio:
        return lip
    allowed = set(lip) | {"too_short"} | (set(audio) - {"ok"})
    if not audio & {"ok", "partial"}:
        allowed -= {"ok", "partial"}
    return frozenset(allowed)


def _everywhere(status: str) -> dict[str, frozenset[str]]:
    return {layer: frozenset({status}) for layer in ("audio", "semantic", "visual", "lip", "sync")}


def _audio_only() -> dict[str, frozenset[str]]:
    return {"semantic": frozenset({"no_video"}), "visual": frozenset({"no_video"}), "lip": frozenset({"no_video"})}


def _picture(h: int, w: int, i: int) -> np.ndarray:
    """The astronaut photograph (a real face) scaled to h x w, drifting a little from frame to frame."""
    photo = cv2.resize(skdata.astronaut(), (w + 8, h + 8), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(photo[i % 8:i % 8 + h, i % 8:i % 8 + w])


def _tone(seconds: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    wave = 0.3 * np.sin(2 * np.pi * (220 + 200 * t) * t)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def write_video(path: Path, n_frames: int, size: tuple[int, int] = (128, 128), fps: float = 25.0,
                audio_s: float | None = None, codec: str = "libx264", pix_fmt: str = "yuv420p",
                fmt: str | None = None, pts: list[int] | None = None, faststart: bool = False,
                rotation: int = 0) -> Path:
    """A clip of the astronaut: `size` (h, w), `n_frames` at `fps` (or at the given `pts` in 1/1000 s: variable
    frame rate), with a mono AAC tone of `audio_s` seconds when given; `faststart` puts the mp4's index first;
    `rotation` (degrees counter-clockwise, a multiple of 90) stores the pictures turned back by it, with a display
    rotation that turns them upright again, as a phone stores a portrait clip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    options = {"movflags": "faststart"} if faststart else {}
    turns = round(rotation / 90) % 4
    stored_h, stored_w = (w, h) if turns % 2 else (h, w)
    with av.open(str(path), mode="w", format=fmt or "mp4", options=options) as box:
        video = box.add_stream(codec, rate=Fraction(fps).limit_denominator(1000), width=stored_w,
                               height=stored_h, pix_fmt=pix_fmt)
        if turns:
            video.set_display_rotation(rotation)
        video.codec_context.thread_count = 1
        if pts:  # timestamps in milliseconds, irregular
            video.codec_context.time_base = video.time_base = Fraction(1, 1000)
        sound = box.add_stream("aac", rate=RATE, layout="mono") if audio_s else None
        for i in range(n_frames):
            stored = np.ascontiguousarray(np.rot90(_picture(h, w, i), -turns))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts, frame.time_base = (pts[i], Fraction(1, 1000)) if pts else (i, 1 / Fraction(fps))
            box.mux(video.encode(frame))
        box.mux(video.encode(None))
        if sound is not None:
            _mux_audio(box, sound, _tone(audio_s)[:, 0])
    return path


def _mux_audio(box: av.container.OutputContainer, sound: av.audio.stream.AudioStream, wave: np.ndarray) -> None:
    step = sound.codec_context.frame_size or 1024
    for start in range(0, len(wave), step):
        chunk = wave[start:start + step]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = RATE, start
        box.mux(sound.encode(frame))
    box.mux(sound.encode(None))


def _plain(path: Path) -> None:
    write_video(path, 30, audio_s=1.2)


def _bytes(data: bytes) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return make


def _truncated(path: Path) -> None:
    whole = write_video(path.with_name(".whole.mp4"), 30, audio_s=1.2)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 2])


def _cut(path: Path) -> None:
    """A web-style mp4 (index first) cut after 60 % of its bytes: it opens, and about half of it decodes."""
    whole = write_video(path.with_name(".whole.mp4"), 50, audio_s=2.0, faststart=True)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: int(len(data) * 0.6)])


def _wav(seconds: float, rate: int, channels: int, subtype: str, fmt: str = "WAV") -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _tone(seconds, rate, channels), rate, subtype=subtype, format=fmt)
    return make


def _link(target: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)  # relative to the link's folder
    return make


def _locked(path: Path) -> None:
    _plain(path)
    path.chmod(0)  # root still reads it: the test also denies it through os.access


CASES: tuple[Case, ...] = (
    Case("real/plain.mp4", _plain),
    Case("fake/corrupt.mp4", _bytes(np.random.default_rng(0).bytes(20000)), **_everywhere("decode_error")),
    Case("fake/truncated.mp4", _truncated, **_everywhere("decode_error")),
    Case("fake/cut.mp4", _cut, audio=PARTIAL, semantic=PARTIAL, visual=PARTIAL | {"no_face"},
         lip=PARTIAL | {"no_face", "too_short"}),
    Case("fake/empty.mp4", _bytes(b""), **_everywhere("decode_error")),
    Case("real/no_audio.mp4", lambda p: write_video(p, 30), audio=frozenset({"no_audio"})),
    Case("real/audio_only.wav", _wav(1.5, RATE, 1, "PCM_16"), **_audio_only()),
    Case("fake/one_frame.mp4", lambda p: write_video(p, 1, audio_s=0.04), lip=frozenset({"too_short", "no_face"})),
    Case("fake/ten_frames.mp4", lambda p: write_video(p, 10, audio_s=0.4), lip=frozenset({"too_short", "no_face"})),
    Case("real/uhd.mp4", lambda p: write_video(p, 2, size=(2160, 3840), audio_s=0.08),
         lip=frozenset({"too_short", "no_face"})),
    Case("real/portrait.mp4", lambda p: write_video(p, 30, size=(160, 96), audio_s=1.2)),
    Case("real/rotated.mp4", lambda p: write_video(p, 30, size=(160, 96), audio_s=1.2, rotation=-90)),
    Case("real/odd_size.mkv", lambda p: write_video(p, 30, size=(97, 61), codec="mjpeg", pix_fmt="yuvj444p",
                                                     fmt="matroska", audio_s=1.2)),
    Case("real/vfr.mp4", lambda p: write_video(p, 30, audio_s=1.2, pts=[int(i * 40 + (i % 3) * 13) for i in
                                                                          range(30)])),
    Case("fake/wrong_extension.avi", lambda p: write_video(p, 30, audio_s=1.2, fmt="mp4")),
    Case("real/UPPER.MP4", _plain),
    Case("real/ünïcode name with spaces.mp4", _plain),
    Case("real/same.mp4", _plain),
    Case("real/same.wav", _wav(1.5, RATE, 1, "PCM_16"), **_audio_only()),
    Case("fake/dangling.mp4", _link("gone.mp4"), **_everywhere("error")),
    Case("fake/loop.mp4", _link("loop.mp4"), **_everywhere("error")),
    Case("fake/locked.mp4", _locked, **_everywhere("error")),
    Case("fake/long_tiny.mp4", lambda p: write_video(p, int(LONG_S * 2), size=(16, 16), fps=2.0),
         **_everywhere("too_long")),
    Case("real/u8_8k.wav", _wav(1.5, 8000, 1, "PCM_U8"), **_audio_only()),
    Case("real/float_48k.wav", _wav(1.5, 48000, 2, "FLOAT"), **_audio_only()),
    Case("real/surround_44k.flac", _wav(1.5, 44100, 6, "PCM_16", "FLAC"), **_audio_only()),
)


def make_bad_media(root: Path) -> dict[str, Case]:
    """Write the corpus under `root` (real/, fake/); returns {video_id: case}, video ids as the folder adapter
    gives them."""
    from tetrad.datasets.common import video_ids

    for case in CASES:
        case.make(root / case.rel)
    ids = video_ids([c.rel for c in CASES])
    return dict(zip(ids, CASES))


def locked_paths(root: Path) -> set[str]:
    """The files made unreadable (absolute, as the manifest lists them), for a test run as root to deny."""
    return {os.path.join(str(root.resolve()), *c.rel.split("/")) for c in CASES if c.make is _locked}
