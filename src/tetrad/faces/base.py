"""Face detection and landmarks behind one small registry (conf/face/).

A face detector turns a batch of RGB frames into boxes, scores and 5 points per face; a landmarker turns one
frame and one box into 68 points. Extract runs them once per file; every face layer reads the cached results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # float32 [x0, y0, x1, y1] in frame pixels, not clipped to the frame (as RetinaFace's)
    score: float  # detector confidence
    points: np.ndarray | None = field(default=None, repr=False)  # float32 (5, 2) x, y: eyes, nose, mouth corners

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = (float(v) for v in self.box)
        return (x1 - x0) * (y1 - y0)


class FaceDetector:
    """Subclasses set `name` and implement `detect`; construction loads their (pip-shipped) weights."""

    name: str = ""

    def detect(self, frames: list[np.ndarray]) -> list[list[Face]]:
        """Faces of each RGB uint8 HWC frame (all frames the same size), highest score first."""
        raise NotImplementedError


class Landmarker:
    """Subclasses set `name` and `n_points` and implement `landmarks`."""

    name: str = ""
    n_points: int = 68

    def landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """float32 (n_points, 2) x, y of the face inside `box` in an RGB uint8 frame."""
        raise NotImplementedError


_DETECTORS: dict[str, Callable[..., FaceDetector]] = {}
_LANDMARKERS: dict[str, Callable[..., Landmarker]] = {}


def register_face_detector(name: str) -> Callable[[type], type]:
    return _register(_DETECTORS, name, "face detector")


def register_landmarker(name: str) -> Callable[[type], type]:
    return _register(_LANDMARKERS, name, "landmarker")


def _register(table: dict, name: str, what: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        if name in table:
            raise ValueError(f"{what} {name!r} is already registered")
        cls.name = name
        table[name] = cls
        return cls
    return deco


def list_face_detectors() -> list[str]:
    return sorted(_DETECTORS)


def list_landmarkers() -> list[str]:
    return sorted(_LANDMARKERS)


def create_face_detector(name: str, options: Mapping[str, Any] | None = None, device: str = "cpu") -> FaceDetector:
    if name not in _DETECTORS:
        raise KeyError(f"unknown face detector {name!r}; registered: {list_face_detectors()}")
    return _DETECTORS[name](device=device, **dict(options or {}))


def create_landmarker(name: str) -> Landmarker:
    if name not in _LANDMARKERS:
        raise KeyError(f"unknown landmarker {name!r}; registered: {list_landmarkers()}")
    return _LANDMARKERS[name]()
