"""Decode a media file: audio resampled to mono float32 and a chosen set of RGB frames, in one demux pass that
streams the frames to a callback (nothing holds a whole video); `read_frames` streams them again for a second pass.

Video decodes with frame threading (FFmpeg's AUTO: frame and slice threads), 1.3-1.8x faster than the default
slice threading. Frame threading does not raise on a truncated stream, it stops early, so a stream that gives
fewer frames than its header declares is reported as truncated (the whole file: its audio is not trusted either).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import librosa
import numpy as np

from tetrad.schemas import StatusError

AUDIO_ONLY_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus"}
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
    faces: dict | None = None  # face detections per frame index, filled once by the extractors that need them


def frame_indices(n_total: int, n_pick: int) -> list[int]:
    """Uniformly spaced frame indices, linspace(0, N-1, n) truncated to int, as SBI and UFD-style sampling do."""
    if n_total <= 0:
        return []
    return sorted(set(np.linspace(0, n_total - 1, n_pick, endpoint=True, dtype=int).tolist()))


def decode(path: Path, sample_rate: int | None, pick: Callable[[int], list[int]] | None,
           on_frame: FrameSink | None = None) -> Decoded:
    """Decode audio (when sample_rate is set) and the frames chosen by pick(n_frames), reading the file once.

    With `on_frame`, each picked frame goes to it as soon as it is decoded and is not kept; without, the frames
    are collected in `Decoded.frames`."""
    path = Path(path)
    if path.suffix.lower() in AUDIO_ONLY_SUFFIXES and pick is None:
        return _decode_audio_file(path, sample_rate)
    out = Decoded(path, sample_rate=sample_rate)
    with _opened(path) as container:
        return _demux(container, out, pick, on_frame or out.frames.append)


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
                yield index, float(frame.time or 0.0), frame.to_ndarray(format="rgb24")


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
        out.errors["video"] = StatusError("decode_error", f"{path}: no video stream")
        pick = None
    wanted: set[int] = set()
    if pick and video_s is not None:
        video_s.thread_type = "AUTO"
        out.n_frames = video_s.frames or _count_packets(path)
        out.fps = float(video_s.average_rate or 0)
        wanted = set(pick(out.n_frames))
    streams = [s for s, use in ((audio_s, bool(sample_rate)), (video_s, bool(wanted))) if s is not None and use]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate) if sample_rate else None
    chunks: list[np.ndarray] = []
    index = 0
    for packet in container.demux(streams):
        for frame in packet.decode():
            if isinstance(frame, av.AudioFrame):
                chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(frame))
            else:
                if index in wanted:
                    sink((index, float(frame.time or 0.0), frame.to_ndarray(format="rgb24")))
                index += 1
    if resampler is not None:
        chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(None))
        out.audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    _check_complete(out, wanted, index)
    return out


def _check_complete(out: Decoded, wanted: set[int], decoded: int) -> None:
    if wanted and decoded < out.n_frames:
        raise StatusError("decode_error", f"{out.path}: only {decoded} of {out.n_frames} video frames could be "
                                          "decoded (truncated or corrupt file)")
    if out.audio is not None and out.audio.size == 0:
        out.errors["audio"] = StatusError("no_audio", f"{out.path}: audio stream holds no samples")


def _count_packets(path: Path) -> int:
    """Containers without a frame count in the header: count video packets (demux only, no decode)."""
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(video=0) if p.size)


def _decode_audio_file(path: Path, sample_rate: int | None) -> Decoded:
    try:
        wave, sr = librosa.load(path, sr=sample_rate, mono=True)
    except Exception as exc:  # soundfile/audioread raise many types
        raise StatusError("decode_error", f"{path}: cannot decode audio ({type(exc).__name__}: {exc})") from None
    if wave.size == 0:
        raise StatusError("no_audio", f"{path}: audio file holds no samples")
    return Decoded(path, sample_rate=int(sr), audio=wave.astype(np.float32))
