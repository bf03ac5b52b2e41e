"""Unit-level scores (windows, frames, faces, clips) to one score per video.

Each detector has its own published way of turning unit scores into a video score; using the wrong one shifts
the reported numbers, so the rule is named explicitly by the caller (from the detector's spec).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.special import expit

from tetrad.registry import Registry
from tetrad.schemas import ERROR, OK, PARTIAL, scored

REDUCERS: Registry[Callable[[pd.DataFrame], pd.DataFrame]] = Registry("reduce rule")
REDUCED_COLUMNS = ["video_id", "p_fake", "logit", "n_units", "n_skipped", "compute_s", "status", "error"]


@REDUCERS.register("mean_prob")
def _mean_prob(units: pd.DataFrame) -> pd.DataFrame:
    """Average the unit probabilities (and, for reference, the unit logits)."""
    out = units.groupby("video_id")[["p_fake", "logit"]].mean()
    return out.assign(n_units=units.groupby("video_id").size())


@REDUCERS.register("mean_logit_sigmoid")
def _mean_logit_sigmoid(units: pd.DataFrame) -> pd.DataFrame:
    """Average logits, then squash (LipForensics): differs from averaging sigmoids when units disagree."""
    logit = units.groupby("video_id")["logit"].mean()
    return pd.DataFrame({"p_fake": expit(logit), "logit": logit, "n_units": units.groupby("video_id").size()})


@REDUCERS.register("max_face_mean_frame")
def _max_face_mean_frame(units: pd.DataFrame) -> pd.DataFrame:
    """The most suspicious face of each frame, then the mean over frames (SBI).

    Taking the max inside a frame means one manipulated face among bystanders still flags the frame.
    """
    per_frame = units.groupby(["video_id", "frame_idx"])[["p_fake", "logit"]].max()
    out = per_frame.groupby(level="video_id").mean()
    return out.assign(n_units=units.groupby("video_id").size())


# SyncNet: shifts within this many frames (40 ms each) of the delivered alignment count as in sync for the ranking
# score; lip-sync errors this small are inside broadcast tolerance (ITU-R BT.1359: +45 / -125 ms detectable).
SYNC_TOLERANCE_FRAMES = 1
AV_COLUMNS = ["av_offset", "av_min_dist", "av_conf"]


@REDUCERS.register("av_offset")
def _av_offset(units: pd.DataFrame) -> pd.DataFrame:
    """SyncNet, upstream's video rule: each unit's `vector` holds its distances at audio shifts -S..+S; their
    mean over the windows gives the AV offset (S - argmin), the min distance and the confidence (median - min).
    The video logit (fake-positive) is the best mean distance within SYNC_TOLERANCE_FRAMES of shift 0 minus the
    median: minus the confidence at the alignment the file was delivered with."""
    out = {}
    for vid, group in units.groupby("video_id"):
        mean = np.stack(group["vector"].to_numpy()).astype(np.float64).mean(axis=0)
        out[vid] = av_sync(mean) | {"n_units": len(group)}
    frame = pd.DataFrame.from_dict(out, orient="index")
    return frame.assign(p_fake=expit(frame["logit"]))


def av_sync(mean: np.ndarray) -> dict[str, float]:
    """Offset, min distance, confidence and the sync logit of a mean distance vector (shift 0 at its middle)."""
    mid, low = len(mean) // 2, int(np.argmin(mean))  # argmin: the first minimum, as torch.min
    median = float(np.sort(mean)[(len(mean) - 1) // 2])  # torch.median: the lower middle value
    near = float(mean[max(mid - SYNC_TOLERANCE_FRAMES, 0):mid + SYNC_TOLERANCE_FRAMES + 1].min())
    return {"av_offset": mid - low, "av_min_dist": float(mean[low]), "av_conf": median - float(mean[low]),
            "logit": near - median}


RULES = tuple(REDUCERS.names())


def _usable_units(scores: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Units that count: status ok (or partial) and carrying the score the rule averages (an ok row without it
    adds nothing)."""
    needed = {"mean_logit_sigmoid": "logit", "av_offset": "vector"}.get(rule, "p_fake")
    units = scores[scored(scores["status"]) & scores[needed].notna()]
    own = {"max_face_mean_frame": ["frame_idx"], "av_offset": ["vector"]}.get(rule, [])
    cols = ["video_id", "p_fake", "logit", *own]
    return units[cols].astype({"p_fake": "float64", "logit": "float64"})


def _first_failure(scores: pd.DataFrame) -> pd.DataFrame:
    """Status and error of each video's first failing row, kept as a pair (groupby.first would mix rows)."""
    failing = scores[~scored(scores["status"])]
    return failing.drop_duplicates("video_id", keep="first").set_index("video_id")[["status", "error"]]


def reduce_units(scores: pd.DataFrame, rule: str) -> pd.DataFrame:
    """One row per video_id in `scores`: video p_fake/logit by `rule`, n_units used, summed compute_s, status.

    A video without a usable unit keeps the status and error of its first failing row and NaN scores, so
    the failure reaches the report instead of silently vanishing.
    """
    reducer = REDUCERS.get(rule)
    if rule == "max_face_mean_frame" and "frame_idx" not in scores.columns:
        raise ValueError("reduce rule 'max_face_mean_frame' needs a 'frame_idx' column in the unit scores")
    ids = pd.Index(sorted(scores["video_id"].unique()), name="video_id")
    units = _usable_units(scores, rule)
    empty = ["p_fake", "logit", "n_units"] + (AV_COLUMNS if rule == "av_offset" else [])
    agg = reducer(units) if len(units) else pd.DataFrame(columns=empty)
    if rule == "av_offset":  # whole frames, NA where a video has no score (one cast, found or empty)
        agg = agg.astype({"av_offset": "Int64"})
    out = agg.reindex(ids)
    out["n_units"] = out["n_units"].fillna(0).astype("int64")
    skipped = scores[scored(scores["status"]) & scores["p_fake"].isna() & scores["logit"].isna()]
    out["n_skipped"] = skipped.groupby("video_id").size().reindex(ids).fillna(0).astype("int64")
    # min_count=0: a video whose rows carry no time (e.g. a status-only row) spent 0 s of model time.
    out["compute_s"] = pd.to_numeric(scores["compute_s"]).groupby(scores["video_id"]).sum(min_count=0)
    out["compute_s"] = out["compute_s"].astype("float64")
    extra = [c for c in agg.columns if c not in REDUCED_COLUMNS]  # a rule's own outputs, e.g. av_offset
    return _attach_status(out, _first_failure(scores), _cut(scores)).reset_index()[REDUCED_COLUMNS + extra]


def _cut(scores: pd.DataFrame) -> pd.Series:
    """The `partial` error of each video scored from a file that was cut short."""
    cut = scores[scores["status"] == PARTIAL]
    return cut.drop_duplicates("video_id").set_index("video_id")["error"]


def _attach_status(out: pd.DataFrame, failure: pd.DataFrame, cut: pd.Series) -> pd.DataFrame:
    """ok where at least one unit counted (partial, with its error, when the file was cut short); otherwise the
    first failure (or an explicit error if none)."""
    has_score = out["n_units"] > 0
    fail = failure.reindex(out.index)
    cut = cut.reindex(out.index)
    status = np.where(has_score, np.where(cut.notna(), PARTIAL, OK), fail["status"].fillna(ERROR).astype(object))
    fallback = out.index.to_series().map(lambda v: f"{v}: no unit with status ok and a score")
    error = np.where(has_score, cut.astype(object).where(cut.notna(), None),
                     fail["error"].astype(object).where(fail["status"].notna(), fallback))
    out = out.astype({"p_fake": "float64", "logit": "float64"})
    out.loc[~has_score, ["p_fake", "logit"]] = np.nan
    return out.assign(status=pd.Series(status, index=out.index, dtype=object),
                      error=pd.Series(error, index=out.index, dtype=object))
