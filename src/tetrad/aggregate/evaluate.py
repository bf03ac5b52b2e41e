"""Join the reduced layer scores onto the manifest and compute every reported number.

Label policy: a layer is scored against its modality-true label (`layer_label`, e.g. audio -> audio_label,
face/frame layers -> video_label) because a lip-sync detector cannot see a cloned voice; where that column is
null for a row (the dataset does not say), the row falls back to the file-level `label`. Fusions and the
cascade answer "is anything in this file fake?" and always use `label`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tetrad.aggregate.cascade import simulate_cascade
from tetrad.aggregate.fuse import FusionResult, fuse_logistic, fuse_tuned_weights, fuse_weighted
from tetrad.aggregate.reduce import REDUCED_COLUMNS
from tetrad.aggregate.metrics import CI_METRICS, as_float, binary_metrics, bootstrap_ci, per_category, roc_table
from tetrad.params import AggregateParams
from tetrad.schemas import LAYER_LABELS, scored

MANIFEST_COLUMNS = ["video_id", "label", "audio_label", "video_label", "category", "method", "group", "split",
                    "status", "error"]
LAYER_FIELDS = ("p_fake", "status", "error", "compute_s")
COUNT_FIELDS = ("n_units", "n_skipped")  # units scored / skipped (e.g. SBI frames without a face), when known
MISSING = "missing"  # <layer>_status of a manifest video absent from the layer's reduced table
FUSIONS = ("seed_weights", "tuned_weights", "logistic")


@dataclass(frozen=True)
class Evaluation:
    videos: pd.DataFrame  # one row per manifest row: labels, per-layer scores/status, fused scores, verdict
    metrics: dict[str, Any]  # JSON-serialisable (no NaN): see `evaluate`
    curves: dict[str, pd.DataFrame]  # ROC tables: layer_<layer>, fused_<fusion>, cascade


def build_video_table(manifest: pd.DataFrame, reduced: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Left-join each layer's reduced table onto the manifest; every manifest row survives.

    Columns: MANIFEST_COLUMNS, then per layer `<layer>_p_fake/_status/_error/_compute_s` (and `_n_units` /
    `_n_skipped` where the reduced table has them, and a video rule's own outputs, e.g. `sync_av_offset`). A
    video absent from a layer's table gets status "missing" and an error naming it. Videos only in a layer table
    are ignored.
    """
    lacking = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if lacking:
        raise ValueError(f"manifest lacks columns {lacking}")
    out = manifest[MANIFEST_COLUMNS].reset_index(drop=True)
    for layer, table in reduced.items():
        if table["video_id"].duplicated().any():
            raise ValueError(f"layer {layer!r}: reduced table has duplicate video_id rows (reduce first)")
        own = [c for c in table.columns if c not in REDUCED_COLUMNS]  # e.g. SyncNet's av_offset, av_conf
        fields = [*LAYER_FIELDS, *(f for f in COUNT_FIELDS if f in table.columns), *own]
        cols = {f: f"{layer}_{f}" for f in fields}
        out = out.merge(table[["video_id", *fields]].rename(columns=cols), on="video_id", how="left",
                        validate="many_to_one")
        absent = out[f"{layer}_status"].isna()
        out[f"{layer}_status"] = out[f"{layer}_status"].astype(object).where(~absent, MISSING)
        message = out["video_id"].astype(str) + f": no {layer} score row for this manifest video"
        error = out[f"{layer}_error"].astype(object)
        out[f"{layer}_error"] = error.where(error.notna(), None).where(~absent, message)  # None, not NaN
        out[f"{layer}_p_fake"] = as_float(out[f"{layer}_p_fake"])
        out[f"{layer}_compute_s"] = as_float(out[f"{layer}_compute_s"])
    return out


def modality_label(layer: str) -> str:
    """The label column a layer is scored against (`schemas.LAYER_LABELS`: the audio layer against the audio
    track's own label, picture layers against the pictures'); a layer not listed there, against `label`."""
    return LAYER_LABELS.get(layer, "label")


def layer_labels(videos: pd.DataFrame, label_col: str) -> np.ndarray:
    """The layer's modality-true label, falling back to the file-level `label` where it is null."""
    if label_col not in videos.columns:
        raise ValueError(f"label column {label_col!r} is not in the video table")
    own, file_level = as_float(videos[label_col]), as_float(videos["label"])
    return np.where(np.isnan(own), file_level, own)


def score_metrics(y: Any, score: Any, groups: Any, params: AggregateParams) -> dict[str, Any]:
    """binary_metrics plus `<metric>_ci_low/_ci_high` from the grouped bootstrap."""
    out: dict[str, Any] = binary_metrics(y, score, params.threshold)
    ci = bootstrap_ci(y, score, groups, params.threshold, params.bootstrap, params.ci, params.seed)
    for name in CI_METRICS:
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = ci[name] if ci[name] else (None, None)
    out["ci_resamples_used"], out["ci_resamples_skipped"] = ci["n_resamples_used"], ci["n_resamples_skipped"]
    return out


def _layer_block(
    videos: pd.DataFrame, layer: str, label_col: str, detector: str | None, params: AggregateParams
) -> tuple[dict[str, Any], pd.DataFrame]:
    y, score = layer_labels(videos, label_col), videos[f"{layer}_p_fake"]
    status = videos[f"{layer}_status"].astype(str)
    n_ok = int(scored(status).sum())  # partial videos (cut files) are scored too; `statuses` tells them apart
    block: dict[str, Any] = {
        "detector": detector,
        "label": label_col,
        "n_label_fallback": int(np.sum(np.isnan(as_float(videos[label_col])) & ~np.isnan(y))),
        "coverage": n_ok / len(videos) if len(videos) else None,
        "n_ok": n_ok,
        "statuses": {str(k): int(v) for k, v in status.value_counts().sort_index().items()},
    }
    for field in COUNT_FIELDS:  # e.g. n_skipped: SBI frames excluded for want of a face
        if f"{layer}_{field}" in videos.columns:
            block[field] = int(videos[f"{layer}_{field}"].fillna(0).sum())
    return block | score_metrics(y, score, videos["group"], params), roc_table(y, score)


def _fusions(videos: pd.DataFrame, layers: list[str], params: AggregateParams) -> dict[str, FusionResult]:
    """The three fusions on the same label, groups and folds."""
    p = pd.DataFrame({layer: videos[f"{layer}_p_fake"] for layer in layers}, index=videos.index)
    y, groups = videos["label"], videos["group"]
    seed = fuse_weighted(p, params.seed_weights, params.missing)
    tuned = fuse_tuned_weights(p, y, groups, params.folds, params.weight_grid_step, params.seed,
                               params.missing, prior=params.seed_weights)
    stacked = fuse_logistic(p, y, groups, params.folds, params.seed, params.missing)
    used = {layer: float(params.seed_weights[layer]) for layer in layers}
    return {"seed_weights": FusionResult(seed, [{"weights": used}], None), "tuned_weights": tuned,
            "logistic": stacked}


def verdicts(score: pd.Series, threshold: float) -> pd.Series:
    """"fake"/"real" from the seed-weight fusion; null for unscored videos (no verdict is better than a guess)."""
    v = np.where(score > threshold, "fake", "real").astype(object)
    return pd.Series(np.where(score.isna(), None, v), index=score.index, dtype=object)


def evaluate(
    manifest: pd.DataFrame,
    reduced: Mapping[str, pd.DataFrame],
    layer_label: Mapping[str, str],
    detectors: Mapping[str, str],
    params: AggregateParams,
    dataset: str | None = None,
) -> Evaluation:
    """Video table, metrics (per layer, fused, cascade, per category) and ROC curves.

    A layer missing from `layer_label` is scored against `label`. Tuned fusions that cannot run report NaN
    scores and a `reason`. All metric values are plain floats/ints/None.
    """
    videos = build_video_table(manifest, reduced)
    layers = list(reduced)
    metrics: dict[str, Any] = {"dataset": dataset, "n_videos": int(len(videos)), "layers": {}, "fused": {},
                               "threshold": float(params.threshold), "missing": params.missing}
    curves: dict[str, pd.DataFrame] = {}
    for layer in layers:
        label_col = layer_label.get(layer, "label")
        metrics["layers"][layer], curves[f"layer_{layer}"] = _layer_block(
            videos, layer, label_col, detectors.get(layer), params)
    y, groups = videos["label"], videos["group"]
    for name, result in _fusions(videos, layers, params).items():
        videos[f"fused_{name}"] = result.scores.to_numpy()
        metrics["fused"][name] = _fusion_block(name, result, y, groups, params)
        curves[f"fused_{name}"] = roc_table(y, result.scores)
    metrics["cascade"] = _cascade_block(videos, layers, params, curves)
    videos["verdict"] = verdicts(videos["fused_seed_weights"], params.threshold)
    metrics["n_scored"] = int(videos["fused_seed_weights"].notna().sum())
    score_cols = {layer: f"{layer}_p_fake" for layer in layers}
    score_cols |= {f"fused_{n}": f"fused_{n}" for n in FUSIONS} | {"cascade": "cascade_p_fake"}
    metrics["per_category"] = per_category(videos, score_cols, "label", params.threshold)
    return Evaluation(videos=videos, metrics=jsonable(metrics), curves=curves)


def _fusion_block(name: str, result: FusionResult, y: Any, groups: Any, params: AggregateParams) -> dict:
    block = score_metrics(y, result.scores, groups, params)
    if name == "seed_weights":
        return block | {"weights": result.fold_weights[0]["weights"]}
    return block | {"fold_weights": result.fold_weights, "reason": result.reason}


def _cascade_block(
    videos: pd.DataFrame, layers: list[str], params: AggregateParams, curves: dict[str, pd.DataFrame]
) -> dict[str, Any]:
    """Adds cascade_p_fake / cascade_stopped to `videos` and the cascade ROC to `curves`."""
    first = params.cascade_first
    table, summary = simulate_cascade(videos, first, [x for x in layers if x != first], params.fail_fast,
                                      params.seed_weights, params.missing)
    videos["cascade_p_fake"] = table["cascade_p_fake"].to_numpy()
    videos["cascade_stopped"] = table["cascade_stopped"].to_numpy()
    curves["cascade"] = roc_table(videos["label"], videos["cascade_p_fake"])
    return summary | score_metrics(videos["label"], videos["cascade_p_fake"], videos["group"], params)


def jsonable(obj: Any) -> Any:
    """Plain Python values for json.dumps(allow_nan=False): numpy scalars unwrapped, NaN/inf -> None."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj
