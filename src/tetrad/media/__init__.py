"""Decoding and per-kind preparation of media (PyAV for every container and audio file, soxr to resample)."""
