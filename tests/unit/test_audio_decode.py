"""One audio decode for every path: the same file gives the same 16 kHz samples whichever kinds are extracted."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from tetrad.media.decode import decode, resample

RATE = 16000


def _speechlike(n: int, rate: int, channels: int, seed: int) -> np.ndarray:
    """A chirp plus noise, loud enough to use the int16 range, (n, channels)."""
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    base = 0.4 * np.sin(2 * np.pi * (200 + 900 * t) * t) + 0.05 * rng.standard_normal(n)
    return np.stack([base * (1 - 0.2 * c) for c in range(channels)], axis=1)


def _mp4(path: Path, wave: np.ndarray, rate: int, n_frames: int = 12) -> None:
    with av.open(str(path), "w") as box:
        video = box.add_stream("libx264", rate=25, width=64, height=64, pix_fmt="yuv420p")
        audio = box.add_stream("aac", rate=rate, layout="mono")
        for i in range(n_frames):
            image = np.full((64, 64, 3), 10 * i, np.uint8)
            box.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        box.mux(video.encode())
        samples = wave.astype(np.float32).reshape(1, -1)
        for start in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 1024]),
                                               format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            box.mux(audio.encode(frame))
        box.mux(audio.encode())


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, tuple[Path, int, int]]:
    """name -> (file, native rate, native samples): odd lengths, so a padding sample would show."""
    root = tmp_path_factory.mktemp("audio")
    out = {}
    for name, rate, n, channels, fmt in [("wav44k", 44100, 44101, 2, "PCM_16"), ("flac48k", 48000, 48005, 1, "PCM_16"),
                                         ("wav16k", 16000, 24001, 1, "PCM_16"), ("flac16k", 16000, 17777, 1, "PCM_24")]:
        path = root / f"{name}.{name[:-3].rstrip('0123456789')}"
        sf.write(path, _speechlike(n, rate, channels, seed=len(out)), rate, subtype=fmt)
        out[name] = (path, rate, n)
    mp4 = root / "clip.mp4"
    _mp4(mp4, _speechlike(22050, 22050, 1, seed=9)[:, 0], 22050)
    out["mp4"] = (mp4, 22050, None)
    return out


@pytest.mark.parametrize("name", ["wav44k", "flac48k", "wav16k", "flac16k", "mp4"])
def test_audio_is_the_same_whichever_kinds_are_extracted(media, name):
    path, _, _ = media[name]
    alone = decode(path, RATE, None).audio
    with_video = decode(path, RATE, lambda n: [0] if n else []).audio
    assert alone is not None and alone.dtype == np.float32 and alone.size > 0
    assert with_video is not None and np.array_equal(alone, with_video)


@pytest.mark.parametrize("name", ["wav44k", "flac48k"])
def test_resampled_length_is_exact_and_samples_are_soxr_hq(media, name):
    path, rate, n = media[name]
    got = decode(path, RATE, None).audio
    assert got.size == round(n * RATE / rate)  # librosa would give ceil(): one padding zero on these lengths
    native, _ = sf.read(str(path), dtype="float32", always_2d=True)
    assert np.array_equal(got, resample(native.mean(axis=1, dtype=np.float32), rate, RATE))


@pytest.mark.parametrize("name", ["wav16k", "flac16k"])
def test_16k_files_are_read_as_soundfile_reads_them(media, name):
    path, _, n = media[name]
    got = decode(path, RATE, None).audio
    expected, _ = sf.read(str(path), dtype="float32")
    assert got.size == n and np.array_equal(got, expected)


def test_an_audio_file_without_samples_is_no_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1)), RATE)
    with pytest.raises(Exception, match="no_audio|no samples|cannot decode"):
        decode(path, RATE, None)


@pytest.mark.parametrize("name", ["wav44k", "flac48k", "wav16k", "flac16k", "mp4"])
def test_a_whole_file_is_not_taken_for_a_cut_one(media, name):
    assert decode(media[name][0], RATE, None).errors == {}


def test_a_cut_file_read_for_its_audio_alone_keeps_what_decodes_and_says_it_is_cut(media, tmp_path):
    """The audio-first pass of `tetrad analyze` decodes no video, so no frame count can show the cut: the
    audio falling short of the duration the header declares does. A web-style mp4 (index first) cut part-way
    opens and decodes without an error of FFmpeg's own."""
    whole = tmp_path / "web.mp4"
    with av.open(str(media["mp4"][0])) as src, av.open(str(whole), "w", options={"movflags": "+faststart"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    assert decode(whole, RATE, None).errors == {}
    with av.open(str(whole)) as box:  # cut where an audio packet starts, half-way: a clean cut, as a download's
        starts = [p.pos for p in box.demux(audio=0) if p.pos is not None and p.size]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: starts[len(starts) // 2]])
    decoded = decode(cut, RATE, None)
    assert decoded.errors == {} and 0 < decoded.audio.size  # what decoded is kept, and said to be cut
    assert re.search(r"cut short, only [\d.]+ of [\d.]+ s of audio could be decoded", decoded.cut["audio"])
    assert abs(decoded.audio.size / RATE - float(decoded.cut["audio"].split("only ")[1].split(" ")[0])) < 0.01


def test_an_audio_only_file_is_no_video_for_the_picture_kinds(media):
    path = media["wav16k"][0]
    out = decode(path, RATE, lambda n: list(range(min(n, 4))))
    assert out.errors["video"].status == "no_video" and "audio" not in out.errors
    assert str(out.errors["video"]) == f"{path}: no video stream (an audio-only file)"
    assert len(out.audio) == 24001  # the audio is still there for the audio layer
