"""Face detection and landmarks behind one small registry (conf/face/).

A face detector turns a batch of RGB frames into boxes, scores and 5 points per face; a landmarker turns one
frame and one box into 68 points. Extract runs them once per file; every face layer reads the cached results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tetrad.registry import Registry


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
    weights_entry: str = ""  # weights-registry name of its checkpoint; "" when the pip package ships it
    upstream_options: Mapping[str, Any] = {}  # the options its upstream pipeline runs it with (tetrad.protocol)

    @classmethod
    def write_demo_checkpoint(cls, weights: str | Path, weights_dir: str | Path) -> Path | None:
        """Detectors with a `weights_entry` write their labelled demo-random checkpoint when no real one is
        present (and return its path); the others have nothing to write."""
        return None

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


FACE_DETECTORS: Registry[type[FaceDetector]] = Registry("face detector")
LANDMARKERS: Registry[type[Landmarker]] = Registry("landmarker")


def register_face_detector(name: str) -> Callable[[type], type]:
    return _named(FACE_DETECTORS, name)


def register_landmarker(name: str) -> Callable[[type], type]:
    return _named(LANDMARKERS, name)


def _named(registry: Registry, name: str) -> Callable[[type], type]:
    def add(cls: type) -> type:
        cls.name = name
        return registry.add(name, cls)
    return add


def list_face_detectors() -> list[str]:
    return FACE_DETECTORS.names()


def list_landmarkers() -> list[str]:
    return LANDMARKERS.names()


def face_detector_class(name: str) -> type[FaceDetector]:
    return FACE_DETECTORS.get(name)


def create_face_detector(name: str, options: Mapping[str, Any] | None = None, device: str = "cpu",
                         weights: Path | None = None) -> FaceDetector:
    """A detector on `device`; `weights` is its checkpoint file, for detectors whose weights do not ship with a
    pip package (their class sets `weights_entry`, the weights-registry name)."""
    cls = face_detector_class(name)
    if cls.weights_entry and weights is None:
        raise ValueError(f"face detector {name!r} needs its checkpoint ({cls.weights_entry!r}); none was given")
    kwargs = dict(options or {})
    if cls.weights_entry:
        kwargs["weights"] = weights  # the resolved file, in place of any name in the options
    return cls(device=device, **kwargs)


def create_landmarker(name: str) -> Landmarker:
    return LANDMARKERS.get(name)()
