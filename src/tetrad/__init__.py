"""Tetrad: reproducible batch evaluation of audio-visual deepfake detectors."""

from tetrad.env import offline

__version__ = "0.1.0"

offline()  # before anything imports MLflow or a model hub: no telemetry, no hub lookups, wherever tetrad runs
