"""The mini benchmark: a small, deterministic, generated audio-visual deepfake dataset.

Built only from offline material so `make demo` and the tests run without downloads:

* pictures: `skimage.data.astronaut()` (a real photograph of a person) animated by a seeded Ken-Burns
  pan/zoom; `skimage.data.coffee()` for the clip without a face;
* real speech: the alsa-utils voice recordings in /usr/share/sounds/alsa ("Front Center", ...);
* fake speech: `espeak-ng` saying the same words;
* fake pictures: two local face manipulations, `self_blend` (in the spirit of Self-Blended Images) and
  `mouth_retime` (the mouth patch stretched by a re-timed speech envelope).

Six sources s0..s5 each give four FakeAVCeleb-style categories A-D (24 clips), plus four faulty files that
real datasets contain (truncated, no audio track, no face, too short), plus two clips whose sound is shifted
against the pictures by a known number of frames (`shifted/`, `AUDIO_SHIFTS`): a mouth that moves with the
recorded speech, the speech then delayed or advanced, for the sync layer's offset search. `labels.csv` and `README.md`
describe every clip. `group` is the source id; a faulty file made from a source's material carries that
source's group (truncated: s0, no_audio: s1, short: s2) so it cannot leak across folds, and
`faulty/no_face` (other picture) has its own group `faulty_no_face`.

Everything random comes from `np.random.default_rng([seed, source_index])`, so a source's clips do not
depend on the others, and the encoders run single-threaded with fixed options so that reruns give
byte-identical files on the same install (same FFmpeg/x264 build).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import librosa
import numpy as np
import soundfile as sf
from skimage import data as skdata

log = logging.getLogger(__name__)

FPS = 25
SIZE = 320  # output frames are SIZE x SIZE pixels
SAMPLE_RATE = 44100  # not 16 kHz on purpose: the pipeline's resampler must run
N_SOURCES = 6
CATEGORIES = ("A", "B", "C", "D")
HEADER = ("video_id", "file", "label", "audio_label", "video_label", "category", "method", "group")
ALSA_DIR = Path("/usr/share/sounds/alsa")
SHORT_FRAMES = 15  # 0.6 s: too short for windowed detectors
# shifted/ clips: frames the audio is delayed (> 0) or advanced (< 0) against mouth motion made in sync with it.
# SyncNet's AV offset (vshift - argmin over shifts) of a clip whose audio is d frames late is -d.
AUDIO_SHIFTS = {"shifted/s1_audio_late5": 5, "shifted/s1_audio_early8": -8}
SHIFT_SOURCE = 1  # a mouth_retime source: its mouth follows the speech
TRUNCATE_FRACTION = 0.4

# One espeak-ng voice (+variant) per source, so the fake speech differs in timbre between sources.
_VOICES = ("en-us+f3", "en-gb+m3", "en-gb-scotland+f2", "en-029+m5", "en-gb-x-rp+f4", "en-us+m7")
_METHODS = ("self_blend", "mouth_retime")  # alternated by source index
_FACE_MARGIN = 16  # source pixels kept in view around the Haar box, so hairline and chin stay visible
_SIDE_RANGE = (210.0, 290.0)  # crop side in source pixels; 290 still maps the 95-px face to >100 px
_SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
_AAC_FRAME = 1024


@dataclass(frozen=True)
class Motion:
    """A Ken-Burns move: the square crop window (centre x, centre y, side) eases from start to end."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]


@dataclass(frozen=True)
class Source:
    """Everything drawn at random for one source; its A-D clips are rendered from this."""

    sid: str
    n_frames: int
    motion: Motion
    gain: tuple[float, float, float]  # per-channel brightness/tint of the photo
    method: str  # visual manipulation of its C and D clips
    words: tuple[str, ...]  # alsa recordings, in order
    lead_s: float  # silence before the first word
    gaps_s: tuple[float, ...]  # silence after each word
    voice: str
    speed: int  # espeak-ng words per minute
    pitch: int  # espeak-ng pitch, 0-99
    lag_frames: int  # how far the mouth_retime envelope is shifted from the speech it follows
    blend_seed: int  # seeds the self_blend jitter, so C and D get the same manipulation


def make_mini(out: Path, seed: int = 0) -> Path:
    """Generate the mini benchmark into `out` (clips/, faulty/, shifted/, labels.csv, README.md); return `out`.

    Idempotent: earlier clips, labels and README in `out` are removed first; other files are left alone.
    """
    started = time.perf_counter()
    out = Path(out)
    words = _load_alsa_words(ALSA_DIR)
    _require_espeak()
    photo = skdata.astronaut()
    face = _detect_face(photo)
    sources = plan_sources(seed, words)
    _clear_outputs(out)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tetrad-mini-") as tmp:
        for source in sources:
            rows += _write_source(out, source, photo, face, words, Path(tmp))
    rows += _write_faulty(out, seed, sources, photo, face, words)
    rows += _write_shifted(out, sources[SHIFT_SOURCE], photo, face, words)
    rows.sort(key=lambda r: r["video_id"])
    _write_labels(out / "labels.csv", rows)
    _write_readme(out / "README.md", rows, seed)
    log.info("mini benchmark: %d clips in %s (%.1f s)", len(rows), out, time.perf_counter() - started)
    return out


def plan_sources(seed: int = 0, words: dict[str, np.ndarray] | None = None) -> list[Source]:
    """What `make_mini(seed)` draws for each source (durations, camera, words, voices, mouth lags)."""
    words = _load_alsa_words(ALSA_DIR) if words is None else words
    photo = skdata.astronaut()
    lengths = {word: len(wave) / SAMPLE_RATE for word, wave in words.items()}
    return [_plan_source(k, seed, _detect_face(photo), photo.shape, lengths) for k in range(N_SOURCES)]


def write_smoke_clip(path: Path, seconds: float = 2.0) -> Path:
    """A short clip with a face and a voiced tone, for `tetrad doctor --env`'s smoke analysis: the astronaut
    photo with a slow zoom on the face, a 150 Hz tone with 4 Hz syllable-like bursts (no espeak-ng or alsa
    recordings needed, so it runs in a bare container)."""
    photo = skdata.astronaut()
    x, y, w, h = _detect_face(photo)
    centre = (x + w / 2, y + h / 2)
    motion = Motion(start=(*centre, 2.4 * w), end=(*centre, 2.0 * w))
    n = max(1, round(seconds * FPS))
    t = np.arange(n * _SAMPLES_PER_FRAME) / SAMPLE_RATE
    voice = 0.3 * np.sin(2 * np.pi * 150 * t) * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    _write_mp4(Path(path), [_render(photo, motion, i, n) for i in range(n)], voice.astype(np.float32))
    return Path(path)


# ----------------------------------------------------------------------------------------------------
# material


def _load_alsa_words(folder: Path) -> dict[str, np.ndarray]:
    """The alsa-utils voice recordings as mono float32 at SAMPLE_RATE, keyed by their spoken words."""
    paths = sorted(p for p in folder.glob("*.wav") if p.stem != "Noise")
    if not paths:
        raise RuntimeError(f"no voice recordings in {folder}: install the Debian package alsa-utils")
    words = {}
    for path in paths:
        wave, rate = sf.read(path, dtype="float32", always_2d=True)
        wave = wave.mean(axis=1)
        if rate != SAMPLE_RATE:
            wave = librosa.resample(wave, orig_sr=rate, target_sr=SAMPLE_RATE)
        words[path.stem.replace("_", " ")] = wave.astype(np.float32)
    return words


def _require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng not found on PATH: install the Debian package espeak-ng")


def _detect_face(image: np.ndarray) -> tuple[int, int, int, int]:
    """The largest frontal face (x, y, w, h) found by OpenCV's Haar cascade; found once, reused."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("cannot load OpenCV's haarcascade_frontalface_default.xml")
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(60, 60))
    if len(boxes) == 0:
        raise RuntimeError("no face found in skimage.data.astronaut() by the Haar cascade")
    x, y, w, h = max(boxes, key=lambda b: int(b[2]) * int(b[3]))
    return int(x), int(y), int(w), int(h)


# ----------------------------------------------------------------------------------------------------
# planning


def _plan_source(k: int, seed: int, face: tuple, shape: tuple, lengths: dict[str, float]) -> Source:
    """Draw one source's duration, camera move, tint, word order and voice from its own RNG."""
    rng = np.random.default_rng([seed, k])
    n_frames = int(rng.integers(80, 141))  # 3.2-5.6 s, inside the 3-6 s spec with margin for AAC padding
    x, y, w, h = face
    keep = (x - _FACE_MARGIN, y - _FACE_MARGIN, x + w + _FACE_MARGIN, y + h + _FACE_MARGIN)
    motion = _plan_motion(rng, keep, shape[:2], _SIDE_RANGE)
    gain = tuple(float(g) for g in rng.uniform(0.85, 1.15) * rng.uniform(0.96, 1.04, 3))
    order, lead, gaps = _plan_words(rng, lengths, n_frames / FPS)
    return Source(
        sid=f"s{k}",
        n_frames=n_frames,
        motion=motion,
        gain=gain,
        method=_METHODS[k % len(_METHODS)],
        words=order,
        lead_s=lead,
        gaps_s=gaps,
        voice=_VOICES[k % len(_VOICES)],
        speed=int(rng.integers(140, 181)),
        pitch=int(rng.integers(30, 71)),
        lag_frames=int(rng.integers(8, 15)),
        blend_seed=int(rng.integers(2**31)),
    )


def _plan_motion(rng: np.random.Generator, keep: tuple, hw: tuple, sides: tuple) -> Motion:
    """A slow move whose every window contains `keep` (x0, y0, x1, y1) and stays inside the image.

    The constraints are linear in (cx, cy, side), so if both ends satisfy them every eased point between
    them does too.
    """
    side0 = float(rng.uniform(*sides))
    side1 = float(np.clip(side0 + rng.uniform(-40, 40), *sides))
    start = _place_window(rng, keep, hw, side0, None)
    end = _place_window(rng, keep, hw, side1, start)
    return Motion(start=start, end=end)


def _place_window(rng, keep: tuple, hw: tuple, side: float, near: tuple | None) -> tuple:
    """A random feasible window centre for `side`; within 35 px of `near` when given (a slow pan)."""
    height, width = hw
    half = side / 2
    lo_x, hi_x = max(half, keep[2] - half), min(width - half, keep[0] + half)
    lo_y, hi_y = max(half, keep[3] - half), min(height - half, keep[1] + half)
    if lo_x > hi_x or lo_y > hi_y:
        raise ValueError(f"crop side {side:.0f} cannot contain the region {keep}")
    if near is not None:
        lo_x, hi_x = max(lo_x, near[0] - 35), min(hi_x, near[0] + 35)
        lo_y, hi_y = max(lo_y, near[1] - 35), min(hi_y, near[1] + 35)
    return float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y)), side


def _plan_words(rng, lengths: dict[str, float], duration_s: float) -> tuple[tuple, float, tuple]:
    """A seeded word order with short silences, just long enough to fill `duration_s`.

    `lengths` maps each recording to its duration in seconds; whole shuffled rounds are drawn so no
    word repeats before all have been said.
    """
    lead = float(rng.uniform(0.05, 0.3))
    order, gaps, total = [], [], lead
    while total < duration_s:
        for word in rng.permutation(sorted(lengths)):
            if total >= duration_s:
                break
            gap = float(rng.uniform(0.1, 0.35))
            order.append(str(word))
            gaps.append(gap)
            total += lengths[str(word)] + gap
    return tuple(order), lead, tuple(gaps)


# ----------------------------------------------------------------------------------------------------
# audio


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), np.float32)


def _fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Pad with silence or cut to `n` samples; a cut ends in a 20 ms fade so it does not click."""
    if len(wave) < n:
        return np.pad(wave, (0, n - len(wave))).astype(np.float32)
    wave = wave[:n].astype(np.float32)
    fade = min(n, int(0.02 * SAMPLE_RATE))
    wave[n - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return wave


def _real_audio(source: Source, words: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The source's alsa recordings in its word order, separated by its silences, cut to `n` samples."""
    parts = [_silence(source.lead_s)]
    for word, gap in zip(source.words, source.gaps_s):
        parts += [words[word], _silence(gap)]
    return _fit_length(np.concatenate(parts), n)


def _fake_audio(source: Source, n: int, workdir: Path) -> np.ndarray:
    """espeak-ng saying the same words as the real track, in the source's voice, speed and pitch."""
    text = ". ".join(word.lower() for word in source.words) + "."
    wav = workdir / f"{source.sid}_espeak.wav"
    cmd = ["espeak-ng", "-w", str(wav), "-v", source.voice, "-s", str(source.speed), "-p", str(source.pitch)]
    result = subprocess.run([*cmd, text], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"espeak-ng failed for {source.sid}: {result.stderr.strip()}")
    wave, rate = sf.read(wav, dtype="float32", always_2d=True)
    wave = librosa.resample(wave.mean(axis=1), orig_sr=rate, target_sr=SAMPLE_RATE)
    # The alsa recordings peak near 0.5; match it so loudness alone does not give the fake away.
    wave = wave * (0.5 / max(float(np.abs(wave).max()), 1e-6))
    return _fit_length(np.concatenate([_silence(source.lead_s), wave]), n)


def _mouth_track(audio: np.ndarray, n_frames: int, lag: int) -> np.ndarray:
    """Per-frame mouth stretch following the speech loudness `lag` frames late (lips out of sync)."""
    chunks = _fit_length(audio, n_frames * _SAMPLES_PER_FRAME).reshape(n_frames, _SAMPLES_PER_FRAME)
    rms = np.sqrt((chunks.astype(np.float64) ** 2).mean(axis=1))
    envelope = np.convolve(rms / max(rms.max(), 1e-9), np.ones(3) / 3, mode="same")
    late = np.concatenate([np.zeros(lag), envelope])[:n_frames]
    return 0.06 + 0.34 * late  # up to 40 %: a jaw drop no face makes


# ----------------------------------------------------------------------------------------------------
# pictures


def _tint(photo: np.ndarray, gain: tuple) -> np.ndarray:
    return np.clip(photo.astype(np.float32) * np.float32(gain), 0, 255).astype(np.uint8)


def _render(image: np.ndarray, motion: Motion, i: int, n: int) -> np.ndarray:
    """Frame `i` of `n`: the eased crop window scaled to SIZE x SIZE."""
    t = i / max(n - 1, 1)
    ease = t * t * (3 - 2 * t)  # smoothstep: the camera starts and stops gently
    cx, cy, side = (a + (b - a) * ease for a, b in zip(motion.start, motion.end))
    k = SIZE / side
    warp = np.float32([[k, 0, -k * (cx - side / 2)], [0, k, -k * (cy - side / 2)]])
    return cv2.warpAffine(image, warp, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _camera(image: np.ndarray, source: Source, n: int | None = None) -> list[np.ndarray]:
    """The source's Ken-Burns move over `image`; `n` < n_frames gives a prefix of the same move."""
    total = source.n_frames
    return [_render(image, source.motion, i, total) for i in range(total if n is None else n)]


def _soft_ellipse(hw: tuple, centre: tuple, axes: tuple, sigma: float) -> np.ndarray:
    """A filled ellipse blurred into a [0, 1] float mask: blending through it leaves a soft seam."""
    mask = np.zeros(hw[:2], np.float32)
    centre_px = (int(round(centre[0])), int(round(centre[1])))
    axes_px = (int(round(axes[0])), int(round(axes[1])))
    cv2.ellipse(mask, centre_px, axes_px, 0, 0, 360, 1.0, thickness=-1)
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def _blend(base: np.ndarray, top: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    return np.rint(top.astype(np.float32) * m + base.astype(np.float32) * (1 - m)).astype(np.uint8)


def _self_blend(image: np.ndarray, face: tuple, rng: np.random.Generator) -> np.ndarray:
    """Self-Blended-Images style fake: a jittered, rescaled copy of the face pasted back softly."""
    x, y, w, h = face
    cx, cy = x + w / 2, y + h / 2
    warp = cv2.getRotationMatrix2D((cx, cy), 0.0, float(rng.uniform(1.02, 1.06)))
    warp[:, 2] += rng.uniform(-3, 3, 2)
    donor = cv2.warpAffine(image, warp, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # At least 6 % per channel, so the pasted face differs in colour and the seam is really there.
    gain = np.float32(1 + rng.choice([-1.0, 1.0], 3) * rng.uniform(0.06, 0.12, 3))
    donor = np.clip(donor.astype(np.float32) * gain + np.float32(rng.uniform(-8, 8, 3)), 0, 255)
    r, sigma = float(rng.uniform(0.9, 1.05)), float(rng.uniform(3, 6))
    mask = _soft_ellipse(image.shape, (cx, cy + 0.06 * h), (0.38 * w * r, 0.5 * h * r), sigma)
    return _blend(image, donor.astype(np.uint8), mask)


def _stretch_mouth(image: np.ndarray, face: tuple, amount: float) -> np.ndarray:
    """Stretch the mouth-and-chin patch under the nose down by `amount`, like a jaw dropping too far."""
    x, y, w, h = face
    # Lower middle of the Haar box, down past the box to include the chin (the box ends near the lip line).
    x0, x1 = x + w * 20 // 100, x + w * 80 // 100
    y0, y1 = y + h * 60 // 100, min(y + h * 112 // 100, image.shape[0])
    patch = image[y0:y1, x0:x1]
    ph, pw = patch.shape[:2]
    # Anchored at the top row: the nose stays, the lips and chin move down, the most at the bottom.
    tall = cv2.resize(patch, (pw, int(round(ph * (1 + amount)))), interpolation=cv2.INTER_LINEAR)[:ph]
    mask = _soft_ellipse(patch.shape, (pw / 2, ph / 2), (pw / 2 - 6, ph / 2 - 6), 3.0)
    out = image.copy()
    out[y0:y1, x0:x1] = _blend(patch, tall, mask)
    return out


def _fake_frames(image: np.ndarray, face: tuple, source: Source, audio: np.ndarray) -> list[np.ndarray]:
    """The source's camera move over a manipulated face; `audio` drives mouth_retime."""
    if source.method == "self_blend":
        # A still photo: one manipulated image moved by the camera is the same as manipulating each frame.
        return _camera(_self_blend(image, face, np.random.default_rng(source.blend_seed)), source)
    amounts = _mouth_track(audio, source.n_frames, source.lag_frames)
    return [
        _render(_stretch_mouth(image, face, float(a)), source.motion, i, source.n_frames)
        for i, a in enumerate(amounts)
    ]


# ----------------------------------------------------------------------------------------------------
# encoding


def _write_mp4(path: Path, frames: list[np.ndarray], audio: np.ndarray | None) -> None:
    """H.264 (libx264, yuv420p) + mono AAC in mp4, audio interleaved with the frames it belongs to.

    `faststart` puts the index (moov) first, as web videos have it: a cut file then still opens and fails
    part-way through decoding, like a broken download.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as box:
        video = box.add_stream("libx264", rate=FPS, width=SIZE, height=SIZE, pix_fmt="yuv420p")
        # Single-threaded (x264 output depends on the thread count) and without macroblock-tree rate
        # control, which made x264 output vary between runs for identical input (heap-dependent).
        video.options = {"preset": "veryfast", "crf": "20", "x264-params": "mbtree=0"}
        video.codec_context.thread_count = 1
        sound = None
        if audio is not None:
            sound = box.add_stream("aac", rate=SAMPLE_RATE, layout="mono", bit_rate=96000)
        done = 0
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            _encode(box, video, frame)
            if sound is not None:
                done = _encode_audio(box, sound, audio, done, (i + 1) * _SAMPLES_PER_FRAME)
        if sound is not None:
            _encode_audio(box, sound, audio, done, len(audio))
            _encode(box, sound, None)
        _encode(box, video, None)


def _encode(box, stream, frame) -> None:
    """Encode one frame (None flushes) and mux whatever packets come out."""
    for packet in stream.encode(frame):
        box.mux(packet)


def _encode_audio(box, stream, audio: np.ndarray, start: int, upto: int) -> int:
    """Encode AAC-sized chunks of `audio` from `start` until `upto`; return where it stopped."""
    while start < min(upto, len(audio)):
        chunk = np.ascontiguousarray(audio[None, start : start + _AAC_FRAME], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
        _encode(box, stream, frame)
        start += chunk.shape[1]
    return start


# ----------------------------------------------------------------------------------------------------
# clips


def _clear_outputs(out: Path) -> None:
    """Remove what an earlier run wrote, so renamed or dropped clips do not linger."""
    for folder in ("clips", "faulty", "shifted"):
        shutil.rmtree(out / folder, ignore_errors=True)
    for name in ("labels.csv", "README.md"):
        (out / name).unlink(missing_ok=True)
    (out / "clips").mkdir(parents=True)
    (out / "faulty").mkdir(parents=True)


def _write_source(out: Path, s: Source, photo, face, words, workdir: Path) -> list[dict]:
    """Write the four category clips of one source and return their label rows."""
    image = _tint(photo, s.gain)
    n = s.n_frames * _SAMPLES_PER_FRAME
    real, fake = _real_audio(s, words, n), _fake_audio(s, n, workdir)
    camera = _camera(image, s)
    _write_mp4(out / "clips" / f"{s.sid}_A.mp4", camera, real)
    _write_mp4(out / "clips" / f"{s.sid}_B.mp4", camera, fake)
    _write_mp4(out / "clips" / f"{s.sid}_C.mp4", _fake_frames(image, face, s, real), real)
    _write_mp4(out / "clips" / f"{s.sid}_D.mp4", _fake_frames(image, face, s, fake), fake)
    log.debug("wrote %s: %d frames, words %s", s.sid, s.n_frames, s.words)
    return [_category_row(s, category) for category in CATEGORIES]


def _write_faulty(out: Path, seed: int, sources: list[Source], photo, face, words) -> list[dict]:
    """The broken or degenerate files a real dataset has; each reuses a source where it can."""
    s0, s1, s2 = sources[0], sources[1], sources[2]
    good = (out / "clips" / f"{s0.sid}_A.mp4").read_bytes()
    (out / "faulty" / "truncated.mp4").write_bytes(good[: int(len(good) * TRUNCATE_FRACTION)])
    image1 = _tint(photo, s1.gain)
    real1 = _real_audio(s1, words, s1.n_frames * _SAMPLES_PER_FRAME)
    _write_mp4(out / "faulty" / "no_audio.mp4", _fake_frames(image1, face, s1, real1), None)
    image2 = _tint(photo, s2.gain)
    real2 = _real_audio(s2, words, SHORT_FRAMES * _SAMPLES_PER_FRAME)
    _write_mp4(out / "faulty" / "short.mp4", _camera(image2, s2, SHORT_FRAMES), real2)
    no_face = _plan_no_face(seed, {w: len(a) / SAMPLE_RATE for w, a in words.items()})
    real_nf = _real_audio(no_face, words, no_face.n_frames * _SAMPLES_PER_FRAME)
    _write_mp4(out / "faulty" / "no_face.mp4", _camera(skdata.coffee(), no_face), real_nf)
    return _faulty_rows(s0, s1, s2, no_face)


def _write_shifted(out: Path, s: Source, photo, face, words) -> list[dict]:
    """The source's mouth driven by its real speech with no lag (in sync), the speech then shifted in time."""
    if s.method != "mouth_retime":
        raise ValueError(f"{s.sid}: shifted clips need a mouth_retime source, not {s.method}")
    n = s.n_frames * _SAMPLES_PER_FRAME
    real = _real_audio(s, words, n)
    frames = _fake_frames(_tint(photo, s.gain), face, dataclasses.replace(s, lag_frames=0), real)
    rows = []
    for vid, shift in AUDIO_SHIFTS.items():
        moved = _shifted(real, shift * _SAMPLES_PER_FRAME)
        _write_mp4(out / f"{vid}.mp4", frames, moved)
        when = f"{abs(shift)} frames ({abs(shift) / FPS:.2f} s) {'late' if shift > 0 else 'early'}"
        rows.append(_row(vid, 0, 1, "C", "av_shift", s.sid, shows=f"mouth moving with the speech; speech {when}",
                         how=f"mouth_retime of {s.sid} with no lag; its real audio shifted {shift:+d} frames "
                             f"(expected SyncNet AV offset {-shift:+d})"))
    return rows


def _shifted(wave: np.ndarray, samples: int) -> np.ndarray:
    """`wave` delayed (samples > 0) or advanced (< 0), silence filling the gap, its length kept."""
    out = np.zeros_like(wave)
    if samples >= 0:
        out[samples:] = wave[:len(wave) - samples]
    else:
        out[:samples] = wave[-samples:]
    return out


def _plan_no_face(seed: int, lengths: dict[str, float]) -> Source:
    """A source over skimage's coffee cup (no person in it), drawn from its own RNG stream."""
    rng = np.random.default_rng([seed, N_SOURCES])
    n_frames = int(rng.integers(80, 141))
    height, width = skdata.coffee().shape[:2]
    keep = (width // 2 - 60, height // 2 - 60, width // 2 + 60, height // 2 + 60)  # the cup stays in view
    motion = _plan_motion(rng, keep, (height, width), (260.0, 380.0))
    order, lead, gaps = _plan_words(rng, lengths, n_frames / FPS)
    return Source(
        sid="faulty_no_face", n_frames=n_frames, motion=motion, gain=(1.0, 1.0, 1.0), method="real",
        words=order, lead_s=lead, gaps_s=gaps, voice="", speed=0, pitch=0, lag_frames=0, blend_seed=0,
    )  # voice and manipulation fields unused: this clip has real audio and a real picture


# ----------------------------------------------------------------------------------------------------
# labels and README


def _row(vid: str, audio: int | None, video: int | None, category: str, method: str, group: str, **text) -> dict:
    """One labels.csv row (plus README text); `label` is 1 when any known modality is fake."""
    label = max(v for v in (audio, video) if v is not None)
    return {
        "video_id": vid, "file": f"{vid}.mp4", "label": label, "audio_label": audio, "video_label": video,
        "category": category, "method": method, "group": group, **text,
    }


def _category_row(s: Source, category: str) -> dict:
    said = ", ".join(s.words)
    real_voice = f'alsa-utils recordings "{said}"'
    fake_voice = f'espeak-ng -v {s.voice} -s {s.speed} -p {s.pitch} saying "{said}"'
    camera = f"Ken-Burns over astronaut photo, {s.n_frames / FPS:.2f} s"
    fake_video = {
        "self_blend": "face replaced by a colour-jittered, rescaled copy of itself through a soft ellipse",
        "mouth_retime": f"mouth stretched open following the speech loudness {s.lag_frames / FPS:.2f} s late",
    }[s.method]
    spec = {
        "A": (0, 0, "real", "real face, real voice", f"{camera}; {real_voice}"),
        "B": (1, 0, "espeak", "real face, synthetic voice", f"pictures of {s.sid}_A; {fake_voice}"),
        "C": (0, 1, s.method, f"{fake_video}; real voice", f"camera of {s.sid}_A; {real_voice}"),
        "D": (1, 1, f"{s.method}+espeak", f"{fake_video}; synthetic voice",
              f"camera of {s.sid}_A; {fake_voice}"),
    }[category]
    audio, video, method, shows, how = spec
    return _row(f"clips/{s.sid}_{category}", audio, video, category, method, s.sid, shows=shows, how=how)


def _faulty_rows(s0: Source, s1: Source, s2: Source, no_face: Source) -> list[dict]:
    """Faulty files derived from a source share its group (no leakage across folds); no_face has its own."""
    return [
        _row("faulty/truncated", 0, 0, "A", "real", s0.sid,
             shows="header intact, media cut: opens, then decoding fails part-way",
             how=f"first {TRUNCATE_FRACTION:.0%} of the bytes of clips/{s0.sid}_A.mp4"),
        _row("faulty/no_audio", None, 1, "C", s1.method, s1.sid, shows="fake face, no audio stream",
             how=f"the pictures of clips/{s1.sid}_C.mp4, video stream only"),
        _row("faulty/no_face", 0, 0, "A", "real", no_face.sid, shows="coffee cup, no person; real voice",
             how=f"Ken-Burns over skimage coffee photo, {no_face.n_frames / FPS:.2f} s; "
             f'alsa-utils recordings "{", ".join(no_face.words)}"'),
        _row("faulty/short", 0, 0, "A", "real", s2.sid, shows="real face, real voice, only 0.6 s",
             how=f"first {SHORT_FRAMES} frames and 0.6 s of audio of clips/{s2.sid}_A.mp4, re-encoded"),
    ]


def _write_labels(path: Path, rows: list[dict]) -> None:
    """labels.csv: ints 0 = real, 1 = fake; an empty cell means the modality is absent/unknown."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow(["" if row[key] is None else row[key] for key in HEADER])


_README_HEAD = """# Mini benchmark

Generated by `tetrad.mini.make_mini(out, seed={seed})`; do not edit, regenerate. A tiny audio-visual
deepfake dataset in the FakeAVCeleb convention, built only from offline material, for `make demo` and the
tests. Labels are 0 = real, 1 = fake; an empty modality label means that modality is absent.

| category | label | audio_label | video_label | meaning |
|---|---|---|---|---|
| A | 0 | 0 | 0 | real video, real audio |
| B | 1 | 1 | 0 | real video, fake audio (espeak-ng) |
| C | 1 | 0 | 1 | fake video (self_blend or mouth_retime), real audio |
| D | 1 | 1 | 1 | fake video, fake audio |

Material:

- pictures: `skimage.data.astronaut()` (photograph of astronaut Eileen Collins, public domain, NASA), the
  face located once with OpenCV's Haar cascade; `skimage.data.coffee()` (no person) for `faulty/no_face`;
- real speech: the alsa-utils voice recordings `/usr/share/sounds/alsa/*.wav` except `Noise.wav`;
- fake speech: `espeak-ng` saying the same words.

Media: H.264 (libx264, yuv420p) + AAC mono 44100 Hz in mp4, {fps} fps, {size}x{size} pixels. All sources show
the same person (one photograph) and the same recorded speaker: `group` (the source id) keeps a source's
clips together across folds; it does not separate identities. Faulty files derived from a source carry
that source's group; `faulty/no_face` has its own. The `shifted/` clips (category C, method av_shift) show a
mouth opening with the recorded speech, the speech then delayed or advanced by a known number of frames: out
of sync by construction, for the sync layer. The real clips are a still photograph moved by a
camera, so the lips never move with the speech, in real clips either. The words listed are those
started within the clip; the last one may be cut off at the end.

| video_id | category | label/audio/video | method | shows | made by |
|---|---|---|---|---|---|
"""


def _write_readme(path: Path, rows: list[dict], seed: int) -> None:
    lines = [_README_HEAD.format(seed=seed, fps=FPS, size=SIZE)]
    for r in rows:
        labels = "/".join("" if r[k] is None else str(r[k]) for k in ("label", "audio_label", "video_label"))
        cells = (r["video_id"], r["category"], labels, r["method"], r["shows"], r["how"])
        lines.append("| " + " | ".join(str(c) for c in cells) + " |\n")
    path.write_text("".join(lines))
