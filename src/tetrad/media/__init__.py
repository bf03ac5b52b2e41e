"""Decoding and per-kind preparation of media (PyAV for containers, librosa for audio files)."""
