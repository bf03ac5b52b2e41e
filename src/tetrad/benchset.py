"""The bench set of `make bench`: deterministic talking-head clips at real video sizes (720p, 1080p), 25 fps,
H.264 + AAC, cached under data/bench/ keyed by their parameters.

Built like the mini benchmark (`tetrad.mini`, whose helpers it reuses): scikit-image's astronaut photo moved by a
seeded Ken-Burns pan/zoom (here a 16:9 window rescaled to the target size, so the face stays a real face at
each resolution) and real speech from the alsa-utils recordings. Only the bench (`tetrad.bench`) uses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data as skdata

from tetrad import mini

log = logging.getLogger(__name__)

VERSION = 1  # bump when the clips change for the same parameters
DEFAULT_DIR = Path("data/bench")
_SIDE_RANGE = (200.0, 280.0)  # window height in source pixels (the 512-px photo); 16:9 widths stay <= 512


@dataclass(frozen=True)
class BenchSet:
    n_clips: int = 2
    seconds: float = 10.0
    resolutions: tuple[str, ...] = ("720", "1080")  # "720" = 1280x720 (16:9), or "WxH"; clip i uses [i % len]
    fps: int = 25
    seed: int = 0

    def size(self, i: int) -> tuple[int, int]:
        """(width, height) of clip i."""
        return parse_resolution(self.resolutions[i % len(self.resolutions)])

    @property
    def key(self) -> str:
        """Names the clips' folder: other parameters, or another VERSION, generate new clips."""
        blob = json.dumps({**asdict(self), "version": VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def parse_resolution(text: str) -> tuple[int, int]:
    """(width, height): "720" -> (1280, 720), "1080" -> (1920, 1080), "320x240" -> (320, 240)."""
    text = str(text).lower().removesuffix("p")
    if "x" in text:
        w, h = (int(v) for v in text.split("x"))
    else:
        h = int(text)
        w = round(h * 16 / 9 / 2) * 2
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise ValueError(f"resolution {text!r}: width and height must be positive and even (yuv420p)")
    return w, h


def make_benchset(spec: BenchSet, root: Path = DEFAULT_DIR) -> list[Path]:
    """The clips of `spec` under root/<key>/ (generated once; reused while `clips.json` is there)."""
    folder = Path(root) / spec.key
    index = folder / "clips.json"
    if index.is_file():
        paths = [folder / name for name in json.loads(index.read_text())["clips"]]
        if all(p.is_file() for p in paths):
            return paths
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    words = mini._load_alsa_words(mini.ALSA_DIR)
    lengths = {w: len(a) / mini.SAMPLE_RATE for w, a in words.items()}
    photo = skdata.astronaut()
    x, y, w, h = mini._detect_face(photo)
    keep = (x - 16, y - 16, x + w + 16, y + h + 16)
    paths = []
    for i in range(spec.n_clips):
        width, height = spec.size(i)
        rng = np.random.default_rng([spec.seed, 7001, i])
        motion = mini._plan_motion(rng, keep, photo.shape[:2], _SIDE_RANGE)
        gain = tuple(float(g) for g in rng.uniform(0.9, 1.1) * rng.uniform(0.97, 1.03, 3))
        n_frames = round(spec.seconds * spec.fps)
        n_samples = round(spec.seconds * mini.SAMPLE_RATE)
        order, lead, gaps = mini._plan_words(rng, lengths, spec.seconds)
        parts = [mini._silence(lead)]
        for word, gap in zip(order, gaps):
            parts += [words[word], mini._silence(gap)]
        audio = mini._fit_length(np.concatenate(parts), n_samples)
        image = mini._tint(photo, gain)
        path = folder / f"clip{i:03d}_{width}x{height}.mp4"
        frames = (_render(image, motion, k, n_frames, width, height) for k in range(n_frames))
        write_mp4(path, frames, audio, width, height, spec.fps)
        paths.append(path)
        log.info("bench clip %s: %d frames, words %s", path.name, n_frames, order)
    index.write_text(json.dumps({"spec": asdict(spec), "version": VERSION, "clips": [p.name for p in paths]},
                                indent=1))
    return paths


def _render(image: np.ndarray, motion: mini.Motion, i: int, n: int, width: int, height: int) -> np.ndarray:
    """Frame i of n: the eased window (height `side` source px, the output's aspect) scaled to width x height."""
    t = i / max(n - 1, 1)
    ease = t * t * (3 - 2 * t)
    cx, cy, side = (a + (b - a) * ease for a, b in zip(motion.start, motion.end))
    k = height / side
    warp = np.float32([[k, 0, width / 2 - k * cx], [0, k, height / 2 - k * cy]])
    return cv2.warpAffine(image, warp, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def write_mp4(path: Path, frames: Iterable[np.ndarray], audio: np.ndarray, width: int, height: int, fps: int) -> None:
    """H.264 (libx264 yuv420p, single-threaded, as tetrad.mini) + mono AAC 44.1 kHz in mp4."""
    spf = mini.SAMPLE_RATE // fps
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as box:
        video = box.add_stream("libx264", rate=fps, width=width, height=height, pix_fmt="yuv420p")
        video.options = {"preset": "veryfast", "crf": "20", "x264-params": "mbtree=0"}
        video.codec_context.thread_count = 1
        sound = box.add_stream("aac", rate=mini.SAMPLE_RATE, layout="mono", bit_rate=96000)
        done = 0
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            mini._encode(box, video, frame)
            done = mini._encode_audio(box, sound, audio, done, (i + 1) * spf)
        mini._encode_audio(box, sound, audio, done, len(audio))
        mini._encode(box, sound, None)
        mini._encode(box, video, None)
