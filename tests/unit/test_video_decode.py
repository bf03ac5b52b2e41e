"""Frames as a player shows them, and a cut file keeping what decodes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tetrad.badmedia import _cut, write_video
from tetrad.media.decode import decode, frame_indices, read_frames
from tetrad.schemas import StatusError


def _frames(path: Path, n: int) -> list[np.ndarray]:
    return [f[2] for f in decode(path, None, lambda total: frame_indices(total, n)).frames]


def test_a_rotated_phone_clip_decodes_upright_as_opencv_reads_it(tmp_path):
    """Stored sideways (160 x 96) with a display rotation: upright (portrait, 160 rows) as OpenCV's VideoCapture,
    upstream's reader, gives it; the second pass (read_frames) turns it the same way."""
    plain = write_video(tmp_path / "portrait.mp4", 5, size=(160, 96))
    rotated = write_video(tmp_path / "rotated.mp4", 5, size=(160, 96), rotation=-90)
    ours, reference = _frames(rotated, 5), _frames(plain, 5)
    assert [f.shape for f in ours] == [(160, 96, 3)] * 5
    cap = cv2.VideoCapture(str(rotated))
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr.shape == (160, 96, 3)
    assert np.abs(ours[0].astype(int) - bgr[:, :, ::-1].astype(int)).mean() < 3  # one decoder, two RGB converters
    # two encodes of the same picture (chroma subsampled along other axes) are close; upside down is far off
    assert np.abs(ours[0].astype(int) - reference[0].astype(int)).mean() < 8
    assert np.abs(np.rot90(ours[0], 2).astype(int) - reference[0].astype(int)).mean() > 20
    again = next(read_frames(rotated, {0}))[2]
    assert np.array_equal(again, ours[0])


def test_a_cut_file_keeps_the_frames_and_audio_that_decode(tmp_path):
    """A web-style mp4 cut after 60 % of its bytes: the frames before the cut and their audio are kept, the
    picks past it dropped, and `cut` says how much was lost per stream."""
    path = tmp_path / "cut.mp4"
    _cut(path)
    out = decode(path, 16000, lambda n: frame_indices(n, 10))
    assert out.n_frames == 50 and 0 < out.n_decoded < 50
    assert [f[0] for f in out.frames] == [i for i in frame_indices(50, 10) if i < out.n_decoded]
    assert out.errors == {} and 0 < out.audio.size < 2.0 * 16000
    assert f"only {out.n_decoded} of 50 video frames could be decoded" in out.cut["video"]
    assert "s of audio could be decoded" in out.cut["audio"] and str(path) in out.cut["audio"]


def test_a_file_cut_before_its_first_frame_is_a_decode_error(tmp_path):
    """Nothing of the video came: its kinds are a decode_error naming the file (the file may not even open)."""
    whole = write_video(tmp_path / "whole.mp4", 20, audio_s=0.8, faststart=True)
    path = tmp_path / "stub.mp4"
    path.write_bytes(whole.read_bytes()[:2000])  # the index and hardly any media
    try:
        out = decode(path, 16000, lambda n: frame_indices(n, 4))
    except StatusError as exc:
        error = exc
    else:
        assert out.n_decoded == 0 and not out.frames, out.cut
        error = out.errors["video"]
    assert error.status == "decode_error" and str(path) in str(error)
