"""The mean face of mouth alignment: LipForensics' LRW `20words_mean_face.npy`, or a labelled demo stand-in.

The real file is upstream data (MIT) and is never committed: the weights manager fetches or imports it like a
checkpoint. Where no copy can be had, `make demo` writes a stand-in built from this project's own face detector
and landmarker on scikit-image's astronaut photo; its crops differ from upstream's, and every report says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tetrad import weights as wm
from tetrad.io import file_sha256, write_atomically
from tetrad.media.crops import STABLE_POINTS
from tetrad.params import Params
from tetrad.weights import Resolved
from tetrad.weights.catalog import WeightEntry

# The asset this module loads (read without importing this module by `tetrad weights`; literals only).
WEIGHTS = (
    WeightEntry(
        name="lipforensics_mean_face", layer="face", filename="20words_mean_face.npy",
        url="https://raw.githubusercontent.com/ahaliassos/LipForensics/d0bf5553bfb9676f1771d590472b26a3a76de894/"
        "preprocessing/20words_mean_face.npy",
        sha256="dbf68b2044171e1160716df7c53e8bbfaa0ee8c61fb41171d04cb6092bb81422", size=1168,
        licence="MIT", aliases=("lipforensics_20words_mean_face.npy",),
        source="ahaliassos/LipForensics@d0bf555:preprocessing/20words_mean_face.npy",
    ),
)


log = logging.getLogger(__name__)
NOSE_TIP = (128.870, 137.303)  # point 33 (nose tip) of LipForensics' LRW mean face
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


def resolve_mean_face(params: Params) -> Resolved:
    """The configured mean face (a weights entry name or a path), real or, where allowed, the stand-in."""
    return wm.resolve(params.extract.mouths.mean_face, Path(params.weights.dir), allow_demo=params.weights.allow_demo)


def write_demo_mean_face(params: Params) -> Path | None:
    """The labelled stand-in, when mouths are extracted, demo weights are allowed and no real file is present."""
    if "mouths" not in params.extract.kinds or not params.weights.allow_demo:
        return None
    target = wm.demo_target(params.extract.mouths.mean_face, params.weights.dir)
    if target is None:
        return None
    log.warning("no real %s: writing a DEMO STAND-IN mean face to %s (mouth crops will differ from upstream's)",
                target.name, target)
    write_atomically(target, write_standin_mean_face)
    return target
