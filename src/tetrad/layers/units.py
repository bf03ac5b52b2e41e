"""Cutting cache rows into scoring units (shared by detectors of the same input kind)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tetrad.layers.base import Unit
from tetrad.media import pixels
from tetrad.schemas import StatusError, scored

# What an audio detector's `count_units` reads of the cache: a clip's length, never its samples.
AUDIO_COUNT_COLUMNS = ("status", "sample_rate", "num_samples")


def audio_windows(video_id: str, wave: np.ndarray, sr: int, window_s: float, min_s: float) -> list[Unit]:
    """Equal-length windows so a batch never needs padding (wav2vec2 mean-pools without a mask), by the rule of
    `window_starts`."""
    return windows_at(video_id, wave, sr, *window_starts(video_id, len(wave), sr, window_s, min_s))


def window_starts(video_id: str, n: int, sr: int, window_s: float, min_s: float) -> tuple[list[int], int]:
    """The windowing rule on a clip's length alone: each window's first sample and the window length, in
    samples. Cutting (`audio_windows`) and counting (the detectors' `count_units`, the progress bar's total)
    both go through it, so the count cannot drift from the units cut.

    Rule: windows of `window_s` with stride `window_s` from t = 0; when the clip is longer than one window
    and a tail remains, one last window is aligned to the clip's end (it overlaps the previous one) so every
    window has the same length and no sample is dropped. A clip shorter than one window is one window of the
    whole clip; a clip shorter than `min_s` (or empty) is too short to score.
    """
    win = int(round(window_s * sr))
    if n == 0 or n < int(round(min_s * sr)):
        raise StatusError("too_short", f"{video_id}: audio is {n / sr:.3f} s ({n} samples at {sr} Hz), shorter "
                                       f"than the layer's minimum min_s={min_s:.3f} s ({int(round(min_s * sr))} "
                                       "samples; 0 = any non-empty clip)")
    if n <= win:
        return [0], n
    starts = list(range(0, n - win + 1, win))
    if starts[-1] + win < n:
        starts.append(n - win)
    return starts, win


def windows_at(video_id: str, wave: np.ndarray, sr: int, starts: list[int], win: int) -> list[Unit]:
    """The `win`-sample windows of `wave` starting at `starts`."""
    return [Unit(video_id, i, s / sr, (s + win) / sr, wave[s:s + win]) for i, s in enumerate(starts)]


def image_units(video_id: str, rows: pd.DataFrame) -> list[Unit]:
    """One unit per cached image (frame or face crop), in frame order."""
    ok = rows[scored(rows["status"])].sort_values(["frame_idx", "face_idx"])
    units = []
    for i, row in enumerate(ok.itertuples(index=False)):
        shape = (int(row.height), int(row.width), int(row.channels))
        image = pixels.decode(row.image, shape, getattr(row, "encoding", None))
        units.append(Unit(video_id, i, float(row.pts_s), float(row.pts_s), image, frame_idx=int(row.frame_idx)))
    if not units:
        raise StatusError("error", f"{video_id}: no decoded images in the cache")
    return units
