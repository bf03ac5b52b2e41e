"""Detectors. Adding one = a new module here, one import line below, one conf/layer/<layer>/<name>.yaml."""

from tetrad.layers import aasist, lipforensics, sbi, syncnet, ufd, w2v2  # noqa: F401  (registration side effect)
from tetrad.layers.base import CheckpointError, Detector, DetectorSpec, Unit
from tetrad.layers.registry import create_detector, detector_class, get_spec, list_detectors, register_detector

__all__ = ["CheckpointError", "Detector", "DetectorSpec", "Unit", "create_detector", "detector_class", "get_spec",
           "list_detectors", "register_detector"]
