"""The detector registry: register, create, list. A detector module's `WEIGHTS` join the weights catalog when
it registers, so a detector kept outside this package is found by `resolve` too."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tetrad.env import resolve_device
from tetrad.layers.base import Detector, DetectorSpec
from tetrad.registry import Registry
from tetrad.weights.catalog import add_entries

DETECTORS: Registry[type[Detector]] = Registry("detector")


def register_detector(cls: type[Detector]) -> type[Detector]:
    """Class decorator: the class's `spec.name` is its registry name."""
    DETECTORS.add(cls.spec.name, cls)
    add_entries(getattr(sys.modules.get(cls.__module__), "WEIGHTS", ()))
    return cls


def list_detectors() -> list[str]:
    return DETECTORS.names()


def detector_class(name: str) -> type[Detector]:
    return DETECTORS.get(name)


def get_spec(name: str) -> DetectorSpec:
    return detector_class(name).spec


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
