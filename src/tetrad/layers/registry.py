"""One registry of detectors: register, create, list."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tetrad.layers.base import Detector, DetectorSpec

_REGISTRY: dict[str, type[Detector]] = {}


def register_detector(cls: type[Detector]) -> type[Detector]:
    """Class decorator; a name registered twice is a bug, not an override."""
    name = cls.spec.name
    if name in _REGISTRY:
        raise ValueError(f"detector {name!r} is already registered by {_REGISTRY[name].__module__}")
    _REGISTRY[name] = cls
    return cls


def list_detectors() -> list[str]:
    return sorted(_REGISTRY)


def detector_class(name: str) -> type[Detector]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; registered: {list_detectors()}") from None


def get_spec(name: str) -> DetectorSpec:
    return detector_class(name).spec


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def create_detector(
    name: str,
    weights: Mapping[str, Path],
    variant: str = "full",
    options: Mapping[str, Any] | None = None,
    device: str = "cpu",
) -> Detector:
    """Build a detector from checkpoint files (one per weight slot), in eval mode on `device`."""
    cls = detector_class(name)
    if variant not in cls.spec.variants:
        raise ValueError(f"detector {name!r} has no variant {variant!r} (has {cls.spec.variants})")
    missing = sorted(set(cls.spec.weights) - set(weights))
    if missing:
        raise ValueError(f"detector {name!r} needs weight slots {missing}")
    model = cls.from_weights(weights, variant, dict(options or {}))
    return model.to(resolve_device(device)).eval()
