"""Decode a media file: audio resampled to mono float32 and a chosen set of RGB frames, in one demux pass that
streams the frames to a callback (nothing holds a whole video); `read_frames` streams them again for a second pass.

Audio takes one path for every file and every set of kinds: PyAV decodes the stream at its own rate, the
samples become float32 exactly as soundfile reads them (int16 / 32768, int32 / 2**31), channels are averaged,
and python-soxr's "HQ" resampler brings them to the requested rate. soxr HQ is what librosa.load uses by
default (so the wav2vec2 layer sees what upstream's `librosa.load(sr=16000)` gives), but librosa then pads the
result to ceil(n * ratio) samples; we keep soxr's own length, round(n * ratio), the exact resampled length. A
16 kHz file is not resampled at all, so AASIST reads what upstream's soundfile reads.

Frames come upright: a display rotation in the container (phones' portrait clips) is applied, as OpenCV's
VideoCapture applies it for upstream's code.

Video decodes with frame threading (FFmpeg's AUTO: frame and slice threads), 1.3-1.8x faster than the default
slice threading. Frame threading does not raise on a truncated stream, it stops early, so a stream that gives
fewer frames than its header declares is cut. A cut file keeps what decoded: each stream that fell short (fewer
frames than declared, audio short of its declared duration, or FFmpeg failing part-way) is named in
`Decoded.cut` with how much was lost, and its rows become `partial`; a stream that gave nothing is a decode_error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import soxr

from tetrad.schemas import StatusError

AUDIO_ONLY_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus"}
RESAMPLER = "soxr HQ"  # recorded in the audio cache's run info
# full scale of PyAV's integer sample formats: dividing by it gives soundfile's float32 values exactly
# An audio stream that decodes to less than its declared duration, by more than this share (and at least
# AUDIO_SHORTFALL_S), is cut: an encoder's priming and padding differ by a few milliseconds, never by 10 %.
AUDIO_SHORTFALL = 0.10
AUDIO_SHORTFALL_S = 0.5
_FULL_SCALE = {"s16": 2.0 ** 15, "s16p": 2.0 ** 15, "s32": 2.0 ** 31, "s32p": 2.0 ** 31}
Frame = tuple[int, float, np.ndarray]  # (index in decode order, pts_s, RGB uint8 HWC)
FrameSink = Callable[[Frame], None]


@dataclass
class Decoded:
    path: Path
    sample_rate: int | None = None
    audio: np.ndarray | None = None  # mono float32
    n_frames: int = 0
    fps: float = 0.0
    frames: list[Frame] = field(default_factory=list)  # the picked frames, unless decode() streamed them
    errors: dict[str, StatusError] = field(default_factory=dict)  # per stream ("audio", "video"): why it is absent
    cut: dict[str, str] = field(default_factory=dict)  # per stream: how it fell short (its rows are `partial`)
    n_decoded: int = 0  # video frames actually decoded (fewer than n_frames when the video is cut)
    faces: dict | None = None  # face detections per frame index, filled once by the extractors that need them


def frame_indices(n_total: int, n_pick: int) -> list[int]:
    """Uniformly spaced frame indices, linspace(0, N-1, n) truncated to int, as SBI and UFD-style sampling do."""
    if n_total <= 0:
        return []
    return sorted(set(np.linspace(0, n_total - 1, n_pick, endpoint=True, dtype=int).tolist()))


def decode(path: Path, sample_rate: int | None, pick: Callable[[int], list[int]] | None,
           on_frame: FrameSink | None = None,
           check: Callable[[av.container.InputContainer], None] | None = None) -> Decoded:
    """Decode audio (when sample_rate is set) and the frames chosen by pick(n_frames), reading the file once.

    With `on_frame`, each picked frame goes to it as soon as it is decoded and is not kept; without, the frames
    are collected in `Decoded.frames`. `check` sees the open container before anything is decoded and may raise
    a StatusError (extract's per-file limits, tetrad.media.limits)."""
    path = Path(path)
    out = Decoded(path, sample_rate=sample_rate)
    with _opened(path) as container:
        if check is not None:
            check(container)
        _demux(container, out, pick, on_frame or out.frames.append)
    if path.suffix.lower() in AUDIO_ONLY_SUFFIXES and pick is None and "audio" in out.errors:
        raise out.errors["audio"]  # an audio file without audio has nothing else to give
    return out


def read_frames(path: Path, wanted: set[int]) -> Iterator[Frame]:
    """The frames whose indices are in `wanted`, streamed in order (a second pass over a file decode() read)."""
    with _opened(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        last = max(wanted, default=-1)
        for index, frame in enumerate(container.decode(stream)):
            if index > last:
                break
            if index in wanted:
                yield index, float(frame.time or 0.0), upright(frame)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[av.container.InputContainer]:
    """The open container; what FFmpeg raises while it is read becomes one decode_error line naming the file."""
    try:
        with av.open(str(path)) as container:
            yield container
    except StatusError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        raise StatusError("decode_error", f"{path}: cannot decode ({type(exc).__name__}: {exc})") from None


def _demux(container: av.container.InputContainer, out: Decoded, pick: Callable[[int], list[int]] | None,
           sink: FrameSink) -> Decoded:
    path, sample_rate = out.path, out.sample_rate
    audio_s = container.streams.audio[0] if container.streams.audio else None
    video_s = container.streams.video[0] if container.streams.video else None
    if sample_rate and audio_s is None:
        out.errors["audio"] = StatusError("no_audio", f"{path}: no audio stream")
        sample_rate = None
    if pick and video_s is None:
        out.errors["video"] = StatusError("no_video", f"{path}: no video stream (an audio-only file)")
        pick = None
    wanted: set[int] = set()
    if pick and video_s is not None:
        video_s.thread_type = "AUTO"
        out.n_frames = video_s.frames or _count_packets(path)
        out.fps = float(video_s.average_rate or 0)
        wanted = set(pick(out.n_frames))
    streams = [s for s, use in ((audio_s, bool(sample_rate)), (video_s, bool(wanted))) if s is not None and use]
    audio = _AudioCollector(out.path) if sample_rate else None
    failure = _read(container, streams, wanted, audio, sink, out)
    if audio is not None:
        out.audio = audio.wave(sample_rate)
    _check_complete(out, wanted, failure)
    if audio is not None and "audio" not in out.errors:
        _check_audio_length(out, audio_s, audio.seconds, failure)
    return out


def _read(container: av.container.InputContainer, streams: list, wanted: set[int], audio: _AudioCollector | None,
          sink: FrameSink, out: Decoded) -> str | None:
    """Demux and decode until the end, or until FFmpeg fails part-way: what came before the failure is kept
    (the caller decides whether it is enough) and the failure is returned as one line."""
    try:
        for packet in container.demux(streams):
            for frame in packet.decode():
                if isinstance(frame, av.AudioFrame):
                    audio.add(frame)
                    continue
                if out.n_decoded in wanted:
                    sink((out.n_decoded, float(frame.time or 0.0), upright(frame)))
                out.n_decoded += 1
    except av.error.FFmpegError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def upright(frame: av.VideoFrame) -> np.ndarray:
    """The frame's RGB as a player shows it. A phone's portrait clip is stored sideways with a display rotation,
    which FFmpeg's command line and OpenCV's VideoCapture (upstream's reader) apply; decoded as stored, its faces
    would lie on their side. `frame.rotation` is counter-clockwise, as np.rot90 turns."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = round(frame.rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


class _AudioCollector:
    """Mono float32 chunks at the stream's own rate; resampled once, at the end, as one signal."""

    def __init__(self, path: Path) -> None:
        self.path, self.rate = path, 0
        self.chunks: list[np.ndarray] = []

    def add(self, frame: av.AudioFrame) -> None:
        if self.rate and frame.sample_rate != self.rate:
            raise StatusError("decode_error", f"{self.path}: audio sample rate changes mid-stream "
                                              f"({self.rate} -> {frame.sample_rate} Hz)")
        self.rate = frame.sample_rate
        self.chunks.append(to_mono_float(frame))

    @property
    def seconds(self) -> float:
        return sum(len(c) for c in self.chunks) / self.rate if self.rate else 0.0

    def wave(self, sample_rate: int) -> np.ndarray:
        if not self.chunks:
            return np.zeros(0, np.float32)
        return resample(np.concatenate(self.chunks), self.rate, sample_rate)


def to_mono_float(frame: av.AudioFrame) -> np.ndarray:
    """One audio frame as mono float32: integer samples scaled as soundfile scales them, channels averaged."""
    name = frame.format.name
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed: one row of interleaved samples
        data = data.reshape(-1, channels).T
    if name in _FULL_SCALE:
        data = data.astype(np.float32) / np.float32(_FULL_SCALE[name])
    elif name in ("u8", "u8p"):
        data = (data.astype(np.float32) - 128.0) / np.float32(128.0)
    else:  # flt, fltp, dbl, dblp
        data = data.astype(np.float32)
    return data[0] if channels == 1 else data.mean(axis=0, dtype=np.float32)


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`wave` at `target` Hz with soxr HQ; round(n * target / rate) samples (no padding); unchanged if equal."""
    if rate == target:
        return np.ascontiguousarray(wave, np.float32)
    return soxr.resample(wave, rate, target, quality="HQ").astype(np.float32, copy=False)


def _check_complete(out: Decoded, wanted: set[int], failure: str | None) -> None:
    """A video stream that gave fewer frames than declared is cut (a decode_error when none of the frames wanted
    came); an audio stream that gave no sample is absent, or a decode_error when the file is broken."""
    short = bool(wanted) and out.n_decoded < out.n_frames
    why = failure or "truncated or corrupt file"
    if short and out.n_decoded <= min(wanted):
        out.errors["video"] = StatusError("decode_error", f"{out.path}: no video frame could be decoded ({why})")
    elif short:
        kept = sum(1 for i in wanted if i < out.n_decoded)
        out.cut["video"] = (f"{out.path}: cut short, only {out.n_decoded} of {out.n_frames} video frames could be "
                            f"decoded ({kept} of the {len(wanted)} picked; {why})")
    if out.audio is not None and out.audio.size == 0:
        out.errors["audio"] = (StatusError("decode_error", f"{out.path}: no audio sample could be decoded ({why})")
                               if short or failure else
                               StatusError("no_audio", f"{out.path}: audio stream holds no samples"))


def _check_audio_length(out: Decoded, stream: av.audio.stream.AudioStream, decoded_s: float,
                        failure: str | None) -> None:
    """Audio that falls short of the duration its header declares (or that FFmpeg stopped decoding) is cut; the
    check stands alone, so a cut file whose audio is read without its video (the audio-first pass of
    `tetrad analyze`) still reads as cut."""
    declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    if declared is not None and decoded_s < declared - max(AUDIO_SHORTFALL_S, AUDIO_SHORTFALL * declared):
        out.cut["audio"] = (f"{out.path}: cut short, only {decoded_s:.2f} of {declared:.2f} s of audio could be "
                            f"decoded ({failure or 'truncated or corrupt file'})")
    elif failure:
        out.cut["audio"] = f"{out.path}: cut short, decoding stopped after {decoded_s:.2f} s of audio ({failure})"


def _count_packets(path: Path) -> int:
    """Containers without a frame count in the header: count video packets (demux only, no decode)."""
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(video=0) if p.size)
