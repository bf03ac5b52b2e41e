"""The mean face of mouth alignment: LipForensics' LRW `20words_mean_face.npy`, or a labelled demo stand-in.

The real file is upstream data (MIT) and is never committed: the weights manager fetches or imports it like a
checkpoint. Where no copy can be had, `make demo` writes a stand-in built from this project's own face detector
and landmarker on scikit-image's astronaut photo; its crops differ from upstream's, and every report says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tetrad.io import file_sha256
from tetrad.media.crops import STABLE_POINTS

log = logging.getLogger(__name__)
NOSE_TIP = (128.870, 137.303)  # point 33 of the LRW mean face (UPSTREAM.md §2)
STANDIN_FACE_WIDTH = 150.0  # jaw width (points 0 -> 16) of the stand-in in the 256x256 frame


def load_mean_face(path: Path) -> tuple[np.ndarray, str]:
    """(68, 2) float64 x, y in the 256x256 aligned frame, and the file's sha256."""
    try:
        points = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the mean face ({exc})") from None
    if points.shape != (68, 2) or not np.issubdtype(points.dtype, np.floating) or not np.isfinite(points).all():
        raise ValueError(f"{path}: expected a finite float (68, 2) array of landmarks, got {points.dtype} "
                         f"{points.shape}")
    return points.astype(np.float64), file_sha256(path)


def standin_mean_face() -> np.ndarray:
    """68 points of the astronaut photo's face, scaled to a 150 px jaw and moved so point 33 is LRW's."""
    import skimage.data

    from tetrad.faces import create_face_detector, create_landmarker

    image = skimage.data.astronaut()
    faces = create_face_detector("mtcnn", {}, "cpu").detect([image])[0]
    if not faces:
        raise RuntimeError("stand-in mean face: no face found on skimage's astronaut photo")
    points = create_landmarker("dlib68").landmarks(image, faces[0].box).astype(np.float64)
    scale = STANDIN_FACE_WIDTH / np.linalg.norm(points[16] - points[0])
    points = (points - points[33]) * scale + np.array(NOSE_TIP)
    assert np.isfinite(points[STABLE_POINTS]).all()
    return points


def write_standin_mean_face(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.save(fh, standin_mean_face())
