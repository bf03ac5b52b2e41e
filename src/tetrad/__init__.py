"""Tetrad: reproducible batch evaluation of audio-visual deepfake detectors."""

__version__ = "0.1.0"
