"""Fail-fast cascade, simulated offline from the full per-layer scores and measured compute times.

Every layer ran on every video during evaluation, so the cascade's effect (which videos would stop after the
cheap first layer, how much model time that saves) is computed rather than re-run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tetrad.aggregate.fuse import fuse_weighted
from tetrad.aggregate.metrics import as_float
from tetrad.schemas import PARTIAL


def _layer_frame(videos: pd.DataFrame, layers: Sequence[str], suffix: str) -> pd.DataFrame:
    """`<layer><suffix>` columns of the layers present, renamed to the layer names."""
    cols = {layer: f"{layer}{suffix}" for layer in layers if f"{layer}{suffix}" in videos.columns}
    return pd.DataFrame({layer: as_float(videos[col]) for layer, col in cols.items()}, index=videos.index)


def _time_summary(videos: pd.DataFrame, layers: Sequence[str], rest: Sequence[str], stopped: np.ndarray) -> dict:
    """Model time with and without the cascade; layers a triggered video skips are the `rest` layers."""
    times = _layer_frame(videos, layers, "_compute_s")
    total = float(np.nansum(times.to_numpy())) if times.size else 0.0
    skipped = [layer for layer in rest if layer in times.columns]
    saved = float(np.nansum(times.loc[stopped, skipped].to_numpy())) if skipped else 0.0
    n = len(videos)
    return {
        "gpu_time_saved_frac": saved / total if total > 0 else None,
        "time_per_video_s_full": total / n if n else None,
        "time_per_video_s_cascade": (total - saved) / n if n else None,
    }


def cascade_stops(p_first: np.ndarray, fail_fast: float, status: Sequence[str] | None = None) -> np.ndarray:
    """The cascade's rule, shared by this simulation and `tetrad analyze` (which really skips the rest): a video
    stops when its first layer's P(fake) >= fail_fast; one the first layer could not score (NaN) never stops,
    nor one scored on a fragment (status `partial`: a file cut short), whose other layers still get their say."""
    stops = np.nan_to_num(np.asarray(p_first, dtype="float64"), nan=-np.inf) >= fail_fast
    return stops if status is None else stops & (np.asarray(status, dtype=object) != PARTIAL)


def simulate_cascade(
    videos: pd.DataFrame,
    first: str,
    rest: Sequence[str],
    fail_fast: float,
    weights: Mapping[str, float],
    missing: str = "abstain",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Cascade score per video and a summary.

    A video whose first-layer P(fake) >= fail_fast (from a whole file, not a `partial` one) stops there (score = that P, the rest count as not run);
    any other video, including one the first layer could not score, gets the weighted fusion of all layers.
    trigger_rate is over videos the first layer scored. gpu_time_saved_frac = rest layers' compute_s over
    triggered videos / all layers' compute_s over all videos.
    """
    layers = [first, *[r for r in rest if r != first]]
    probs = _layer_frame(videos, layers, "_p_fake")
    full = fuse_weighted(probs, weights, missing).to_numpy()
    if first in probs.columns:
        p_first = probs[first].to_numpy()
        stopped = cascade_stops(p_first, fail_fast, videos.get(f"{first}_status"))
        n_first = int(np.sum(~np.isnan(p_first)))
        note = None if n_first else f"first layer {first!r} scored no video: nothing can stop early"
    else:
        p_first, stopped, n_first = np.full(len(videos), np.nan), np.zeros(len(videos), bool), 0
        note = f"first layer {first!r} is absent from the table: the cascade equals the plain fusion"
    score = np.where(stopped, p_first, full)
    table = pd.DataFrame({"video_id": videos["video_id"].to_numpy(), "cascade_p_fake": score,
                          "cascade_stopped": stopped}, index=videos.index)
    n_triggered = int(stopped.sum())
    summary = {
        "fail_fast": float(fail_fast), "first": first, "rest": list(layers[1:]),
        "n_triggered": n_triggered, "n_first_scored": n_first,
        "trigger_rate": n_triggered / n_first if n_first else 0.0,  # nothing scored, nothing stopped
        **_time_summary(videos, layers, layers[1:], stopped), "note": note,
    }
    return table, summary
