"""Parity of the face layers with upstream code (SBI, LipForensics), on a small synthetic face video.

Runs the comparison functions of `tetrad.parity.sbi` / `tetrad.parity.lipforensics` against checkouts found via
TETRAD_UPSTREAM_SBI / TETRAD_UPSTREAM_LIPFORENSICS or at ../upstream/{SelfBlendedImages,LipForensics} next to
the repository; skipped when absent. SBI uses the tiny variant (upstream's Detector built with the same reduced
width/depth through the runtime patch); LipForensics uses the full network, since upstream's `get_model` builds
a fixed architecture from its config json (it is small enough on CPU).
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import skimage.data
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TETRAD_SHARED", REPO.parent / "shared")) / "upstream-data"


def checkout(env: str, name: str, marker: str) -> Path:
    path = Path(os.environ.get(env) or REPO.parent / "upstream" / name)
    if not (path / marker).is_file():
        pytest.skip(f"no {name} checkout at {path} (set {env})")
    return path


def _frames(n: int) -> list[np.ndarray]:
    """The astronaut's head moving a little over a grey 192x192 canvas (about 100 px of face)."""
    face = np.asarray(Image.fromarray(skimage.data.astronaut()[20:260, 120:330]).resize((168, 192)))
    frames = []
    for i in range(n):
        canvas = np.full((192, 192, 3), 90, np.uint8)
        x = 10 + i % 5
        canvas[:, x:x + 168] = face
        frames.append(canvas)
    return frames


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("parity_faces") / "astronaut.mp4"
    with av.open(str(path), mode="w") as box:
        stream = box.add_stream("libx264", rate=25, width=192, height=192, pix_fmt="yuv420p")
        for i, rgb in enumerate(_frames(26)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            box.mux(stream.encode(frame))
        box.mux(stream.encode(None))
    return path


def test_sbi_crops_and_logits_match_upstream(face_video, tmp_path):
    from tetrad.parity import sbi

    up, crops, logits, calls = sbi.run(checkout("TETRAD_UPSTREAM_SBI", "SelfBlendedImages", "src/inference/model.py"),
                                       [face_video], 6, tmp_path, variant="tiny")
    assert all(f.ok for f in up.files), [f.path for f in up.files if not f.ok]
    (crop,) = crops
    assert len(crop.planted) == 4  # two extra faces, exact half area, edge boxes, no-face sentinel
    assert crop.ours_idx == crop.upstream_idx and len(crop.ours_idx) >= 7
    assert crop.max_diff == 0 and crop.n_diff_pixels == 0 and not crop.frames_mismatched
    (result,) = logits
    assert result.ok, result
    assert calls and calls[0]["advprop"] is True and calls[0]["num_classes"] == 2


def test_lipforensics_crops_and_logits_match_upstream(face_video, tmp_path):
    from tetrad.parity import lipforensics

    root = checkout("TETRAD_UPSTREAM_LIPFORENSICS", "LipForensics", "models/spatiotemporal_net.py")
    mean_face = SHARED / "lipforensics_20words_mean_face.npy"
    mean_face = mean_face if mean_face.is_file() else root / "preprocessing" / "20words_mean_face.npy"
    before = {k: sys.modules.get(k) for k in ("utils", "models")}
    up, crop, logits, calls = lipforensics.run(root, face_video, mean_face, tmp_path, examples=False)
    assert {k: sys.modules.get(k) for k in before} == before  # upstream's generic module names did not leak
    assert all(f.ok for f in up.files), [f.path for f in up.files if not f.ok]
    assert crop.n_frames == 26 and crop.ok, crop  # includes the 11 frames reusing the last transform
    (result,) = logits
    assert result.n_clips == 1 and result.ok, result
    assert any("map_location='cpu'" in c for c in calls)
