"""dlib's 68-point shape predictor (iBUG 300-W layout, as LipForensics' landmarks), from face-recognition-models.

The model file ships in the pip package `face-recognition-models`; its `__init__` needs pkg_resources, which
new setuptools no longer has, so the file is located without importing the package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from tetrad.faces.base import Landmarker, register_landmarker

MODEL_FILE = "shape_predictor_68_face_landmarks.dat"


def predictor_path() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("dlib68 landmarks need the pip package face-recognition-models (make install)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dlib 68-point model missing from face-recognition-models")
    return path


@register_landmarker("dlib68")
class Dlib68(Landmarker):
    n_points = 68

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self.predictor = dlib.shape_predictor(str(predictor_path()))

    def landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        shape = self.predictor(np.ascontiguousarray(frame), self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
