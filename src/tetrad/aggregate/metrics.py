"""Binary detection metrics, grouped-bootstrap confidence intervals, ROC tables and per-category summaries.

Conventions: label 1 = fake, score = P(fake); a video is predicted fake when score > threshold. Rows whose
score or label is NaN are left out (and `n` says how many rows were used). A metric that is undefined for
the data (e.g. AUC with one class) is None, never a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    roc_auc_score,
    roc_curve,
)

CI_METRICS = ("auc", "ap", "acc", "balanced_acc", "eer", "tpr_at_fpr_1pct")
MIN_VALID_FRAC = 0.5  # fewer valid bootstrap resamples than this fraction -> no CI (it would be biased)
FPR_TARGET = 0.01


def as_float(values: Any) -> np.ndarray:
    """Labels/scores as float64 with NaN for missing (handles pandas nullable ints, None, pd.NA)."""
    if isinstance(values, (pd.Series, pd.Index)):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy("float64", na_value=np.nan))


def _valid(y: Any, score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Used rows (both label and score known) and their labels (int) and scores."""
    yf, sf = as_float(y), as_float(score)
    if yf.shape != sf.shape:
        raise ValueError(f"labels and scores differ in length: {yf.shape} vs {sf.shape}")
    keep = ~np.isnan(yf) & ~np.isnan(sf)
    return keep, yf[keep].astype(int), sf[keep]


def eer_from_roc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Equal error rate: where FPR = FNR on the ROC polyline, linearly interpolated between points."""
    diff = fpr - (1.0 - tpr)  # non-decreasing along the curve: -1 at (0, 0), +1 at (1, 1)
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return float(fpr[i])
    t = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float = FPR_TARGET) -> float:
    """Best TPR among operating points with FPR <= target (a reachable threshold, no interpolation)."""
    return float(tpr[fpr <= target + 1e-12].max())


def binary_metrics(y: Any, score: Any, threshold: float) -> dict[str, float | int | None]:
    """AUC, AP, ACC, balanced ACC, EER, TPR@FPR=1% and counts over rows with a label and a score."""
    _, yv, sv = _valid(y, score)
    n_pos, n_neg = int(yv.sum()), int(len(yv) - yv.sum())
    out: dict[str, float | int | None] = {m: None for m in CI_METRICS}
    out.update(n=int(len(yv)), n_pos=n_pos, n_neg=n_neg)
    if len(yv) == 0:
        return out
    pred = (sv > threshold).astype(int)
    out["acc"] = float(accuracy_score(yv, pred))
    if n_pos == 0 or n_neg == 0:
        return out  # ranking metrics and per-class balance need both classes
    fpr, tpr, _ = roc_curve(yv, sv, drop_intermediate=False)
    out.update(
        auc=float(roc_auc_score(yv, sv)),
        ap=float(average_precision_score(yv, sv)),
        balanced_acc=float(balanced_accuracy_score(yv, pred)),
        eer=eer_from_roc(fpr, tpr),
        tpr_at_fpr_1pct=tpr_at_fpr(fpr, tpr),
    )
    return out


def _group_rows(groups: np.ndarray) -> list[np.ndarray]:
    """Row positions of each distinct group (the bootstrap draws whole groups: videos of one identity
    are correlated, so resampling videos would understate the uncertainty)."""
    codes, _ = pd.factorize(pd.Series(groups, dtype=object), use_na_sentinel=False)
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1) if len(codes) else []


def bootstrap_ci(
    y: Any, score: Any, groups: Any, threshold: float, n_resamples: int, ci: float, seed: int
) -> dict[str, Any]:
    """Percentile CIs of CI_METRICS from resampling groups with replacement.

    Returns {metric: (lo, hi) or None, "n_resamples_used": int, "n_resamples_skipped": int}. Resamples
    with one class are skipped (the ranking metrics are undefined there) and counted; a metric gets None
    when fewer than MIN_VALID_FRAC of the resamples were valid.
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    keep, yv, sv = _valid(y, score)
    rows = _group_rows(np.asarray(pd.Series(groups, dtype=object))[keep])
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in CI_METRICS}
    skipped = 0
    for _ in range(n_resamples if rows else 0):
        idx = np.concatenate([rows[g] for g in rng.integers(0, len(rows), len(rows))])
        m = binary_metrics(yv[idx], sv[idx], threshold)
        if m["auc"] is None:
            skipped += 1
            continue
        for name in CI_METRICS:
            draws[name].append(float(m[name]))
    used = n_resamples - skipped if rows else 0
    out: dict[str, Any] = {m: _percentile(draws[m], ci, n_resamples) for m in CI_METRICS}
    return out | {"n_resamples_used": used, "n_resamples_skipped": n_resamples - used}


def _percentile(values: Sequence[float], ci: float, n_resamples: int) -> tuple[float, float] | None:
    if not values or len(values) < max(2, math.ceil(MIN_VALID_FRAC * n_resamples)):
        return None
    lo, hi = np.percentile(values, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    return float(lo), float(hi)


def roc_table(y: Any, score: Any) -> pd.DataFrame:
    """ROC points for DVC plots; sklearn's leading +inf threshold is dropped (JSON/CSV cannot carry it)."""
    _, yv, sv = _valid(y, score)
    if len(yv) == 0 or yv.min() == yv.max():
        return pd.DataFrame({"fpr": [], "tpr": [], "threshold": []}, dtype="float64")
    fpr, tpr, thr = roc_curve(yv, sv)
    finite = np.isfinite(thr)
    return pd.DataFrame({"fpr": fpr[finite], "tpr": tpr[finite], "threshold": thr[finite]})


def per_category(
    videos: pd.DataFrame, score_cols: Mapping[str, str], label_col: str, threshold: float, by: str = "category"
) -> dict[str, dict[str, Any]]:
    """Per dataset category (e.g. FakeAVCeleb A-D), or per value of column `by` (e.g. the manipulation method):
    counts and, per score, mean P(fake) and fake-call rate.

    Rows without a value are left out; a dataset without categories gives {}.
    """
    out: dict[str, dict[str, Any]] = {}
    cat = videos[by]
    for name in sorted(cat.dropna().unique()):
        rows = videos[cat == name]
        entry: dict[str, Any] = {"n": int(len(rows)), "n_fake": int(np.nansum(as_float(rows[label_col]) == 1))}
        for score_name, col in score_cols.items():
            s = as_float(rows[col])
            s = s[~np.isnan(s)]
            entry[score_name] = {
                "n_scored": int(len(s)),
                "mean_p_fake": float(s.mean()) if len(s) else None,
                "pred_fake_rate": float((s > threshold).mean()) if len(s) else None,
            }
        out[str(name)] = entry
    return out


def operating_points(y: Any, score: Any, thresholds: Sequence[float]) -> pd.DataFrame:
    """ACC, TPR, FPR and balanced ACC at each threshold (fake when score > threshold), over rows with both."""
    _, yv, sv = _valid(y, score)
    rows = []
    for t in thresholds:
        tn, fp, fn, tp = confusion_matrix(yv, (sv > t).astype(int), labels=[0, 1]).ravel() if len(yv) else (0,) * 4
        tpr = tp / (tp + fn) if tp + fn else np.nan
        fpr = fp / (fp + tn) if fp + tn else np.nan
        rows.append({"threshold": float(t), "acc": (tp + tn) / len(yv) if len(yv) else np.nan, "tpr": tpr,
                     "fpr": fpr, "balanced_acc": (tpr + 1 - fpr) / 2})
    return pd.DataFrame(rows, columns=["threshold", "acc", "tpr", "fpr", "balanced_acc"])
