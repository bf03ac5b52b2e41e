"""Late fusion of the per-layer video P(fake): fixed weights, tuned weights, logistic stacking.

`p` tables have one column per layer (the layer name) holding that layer's video P(fake), NaN where the
layer has no score. Tuned fusions are fitted on grouped folds and report out-of-fold scores only, so a video
is never scored by weights that saw its own label (or its identity's other videos).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline

from tetrad.aggregate.metrics import as_float

MISSING_MODES = ("abstain", "impute", "drop")
EPS = 1e-6  # clip before logit so a detector's hard 0/1 stays finite


class LeakError(RuntimeError):
    """A group (identity/source) is in both the training and the held-out side of a fold."""


@dataclass(frozen=True)
class FusionResult:
    """Out-of-fold scores (NaN where not scored), what each fold chose, and why nothing was fitted if so."""

    scores: pd.Series
    fold_weights: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None


def _check_missing(missing: str) -> None:
    if missing not in MISSING_MODES:
        raise ValueError(f"unknown missing mode {missing!r}; expected one of {MISSING_MODES}")


def fuse_weighted(
    p: pd.DataFrame, weights: Mapping[str, float], missing: str = "abstain", fill: Mapping[str, float] | None = None
) -> pd.Series:
    """Weighted mean of the layer columns of `p`.

    abstain: weights renormalised over the layers present in the row. impute: a missing layer takes `fill`
    (default: the layer's median over `p`). drop: NaN when any layer is missing. A row with no layer at all
    is NaN in every mode (imputing every layer would invent a score), as is a row whose present layers all
    have weight 0.
    """
    _check_missing(missing)
    unweighted = [c for c in p.columns if c not in weights]
    if unweighted:
        raise ValueError(f"no fusion weight for layers {unweighted}; weights given for {sorted(weights)}")
    w = np.array([float(weights[c]) for c in p.columns], dtype="float64")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"fusion weights must be finite and >= 0, got {dict(weights)}")
    x = np.column_stack([as_float(p[c]) for c in p.columns]) if len(p.columns) else np.empty((len(p), 0))
    seen = ~np.isnan(x)
    if missing == "impute":
        med = column_medians(p) if fill is None else pd.Series(fill, dtype="float64")
        x = np.where(seen, x, med.reindex(p.columns).to_numpy(dtype="float64"))
    present = ~np.isnan(x)
    wsum = present.astype(float) @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(present, x, 0.0) @ w / wsum
    out[(wsum <= 0) | ~seen.any(axis=1)] = np.nan
    if missing == "drop":
        out[~seen.all(axis=1)] = np.nan
    return pd.Series(out, index=p.index, name="p_fake", dtype="float64")


def column_medians(p: pd.DataFrame) -> pd.Series:
    """Median of each layer column over its scored rows (NaN for a layer without any score)."""
    return pd.Series({c: np.nan if p[c].isna().all() else float(np.nanmedian(as_float(p[c]))) for c in p.columns},
                     dtype="float64")


def check_group_leak(train_groups: Any, test_groups: Any) -> None:
    """Raise LeakError if any group is on both sides of a split."""
    shared = set(pd.Series(train_groups, dtype=object)) & set(pd.Series(test_groups, dtype=object))
    if shared:
        listed = sorted(map(str, shared))
        raise LeakError(f"{len(listed)} group(s) in both train and test: {listed[:5]}")


def make_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped, stratified folds (positions into y), each checked for group leakage before use."""
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.zeros(len(y)), y.astype(int), groups))
    for train, test in folds:
        check_group_leak(groups[train], groups[test])
    return folds


def simplex_grid(n_layers: int, step: float) -> np.ndarray:
    """All weight vectors with entries in multiples of `step` summing to 1 (stars and bars)."""
    parts = round(1.0 / step)
    if not 0 < step <= 1 or abs(parts * step - 1.0) > 1e-9:
        raise ValueError(f"weight_grid_step must divide 1 (e.g. 0.1, 0.05), got {step}")
    rows = []
    for bars in itertools.combinations(range(parts + n_layers - 1), n_layers - 1):
        edges = np.array((-1, *bars, parts + n_layers - 1))
        rows.append(np.diff(edges) - 1)
    return np.array(rows, dtype="float64") / parts


def _eligible(p: pd.DataFrame, y: np.ndarray, missing: str) -> np.ndarray:
    """Rows a tuned fusion can use: a label and a score (every layer's under `drop`, any layer's otherwise)."""
    seen = p.notna().to_numpy()
    has = seen.all(axis=1) if missing == "drop" else seen.any(axis=1)
    return has & ~np.isnan(y)


def _tuning_obstacle(p: pd.DataFrame, y: np.ndarray, groups: np.ndarray, folds: int) -> str | None:
    """Why fold-wise tuning cannot run on these rows, or None. Reported instead of raised: a dataset
    without enough identities or classes still gets its fixed-weight numbers."""
    layers = [c for c in p.columns if p[c].notna().any()]
    if len(layers) < 2:
        return f"needs at least 2 layers with scores, got {layers}"
    if folds < 2:
        return f"needs folds >= 2, got {folds}"
    if len(np.unique(y)) < 2:
        return f"one class only among the {len(y)} labelled, scored videos"
    n_groups = len(pd.unique(pd.Series(groups, dtype=object)))
    if n_groups < folds:
        return f"{n_groups} group(s) among the labelled, scored videos, fewer than folds={folds}"
    return None


FitPredict = Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], tuple[np.ndarray, dict[str, Any]]]


def _out_of_fold(
    p: pd.DataFrame, y: Any, groups: Any, folds: int, seed: int, missing: str, fit_predict: FitPredict
) -> FusionResult:
    """Run `fit_predict` on grouped folds of the eligible rows and collect held-out scores."""
    _check_missing(missing)
    yf = as_float(y)
    gr = np.asarray(pd.Series(groups, dtype=object))
    scores = pd.Series(np.nan, index=p.index, name="p_fake", dtype="float64")
    rows = np.flatnonzero(_eligible(p, yf, missing))
    pe, ye, ge = p.iloc[rows], yf[rows], gr[rows]
    reason = _tuning_obstacle(pe, ye, ge, folds)
    if reason:
        return FusionResult(scores, [], reason)
    chosen: list[dict[str, Any]] = []
    for k, (train, test) in enumerate(make_folds(ye, ge, folds, seed)):
        if len(np.unique(ye[train])) < 2:
            nan = pd.Series(np.nan, index=p.index, name="p_fake", dtype="float64")
            return FusionResult(nan, [], f"fold {k}: the training side holds one class only")
        pred, info = fit_predict(pe.iloc[train], ye[train], pe.iloc[test])
        scores.iloc[rows[test]] = pred
        chosen.append({"fold": k, "n_train": int(len(train)), "n_test": int(len(test)), **info})
    return FusionResult(scores, chosen, None)


def _grid_search(
    train: pd.DataFrame, y: np.ndarray, step: float, missing: str, prior: Mapping[str, float]
) -> tuple[dict[str, float], float]:
    """Weights (over layers with data) maximising training AUC; ties go to the point nearest `prior`."""
    layers = [c for c in train.columns if train[c].notna().any()]
    grid = simplex_grid(len(layers), step)
    fill = column_medians(train).to_dict()
    aucs = np.empty(len(grid))
    for i, w in enumerate(grid):
        fused = fuse_weighted(train[layers], dict(zip(layers, w)), missing, fill).to_numpy()
        # A weight vector that leaves a row unscored counts it as chance, so it cannot win by dropping rows.
        aucs[i] = roc_auc_score(y, np.where(np.isnan(fused), 0.5, fused))
    ref = np.array([float(prior.get(c, 0.0)) for c in layers])
    ref = ref / ref.sum() if ref.sum() > 0 else np.full(len(layers), 1 / len(layers))
    best = np.flatnonzero(aucs >= aucs.max() - 1e-12)
    pick = best[np.argmin(((grid[best] - ref) ** 2).sum(axis=1))]
    weights = {c: 0.0 for c in train.columns} | {c: float(v) for c, v in zip(layers, grid[pick])}
    return weights, float(aucs[pick])


def fuse_tuned_weights(
    p: pd.DataFrame, y: Any, groups: Any, folds: int, step: float, seed: int,
    missing: str = "abstain", prior: Mapping[str, float] | None = None,
) -> FusionResult:
    """Out-of-fold weighted fusion whose weights are searched on a simplex grid per training side.

    `prior` (e.g. the seed weights) only breaks AUC ties. Held-out rows are fused with the training side's
    weights and, under `impute`, the training side's medians. fold_weights: [{fold, weights, train_auc, ...}].
    """

    def fit_predict(train: pd.DataFrame, yt: np.ndarray, test: pd.DataFrame) -> tuple[np.ndarray, dict[str, Any]]:
        weights, auc = _grid_search(train, yt, step, missing, prior or {})
        fill = column_medians(train).to_dict()
        return fuse_weighted(test, weights, missing, fill).to_numpy(), {"weights": weights, "train_auc": auc}

    return _out_of_fold(p, y, groups, folds, seed, missing, fit_predict)


def fuse_logistic(
    p: pd.DataFrame, y: Any, groups: Any, folds: int, seed: int, missing: str = "abstain"
) -> FusionResult:
    """Out-of-fold stacking: median-imputed logit(P) of each layer -> logistic regression.

    Stacking needs a value in every column, so `abstain` and `impute` both impute (with the training side's
    medians); `drop` fits and scores only rows with every layer. fold_weights: [{fold, coef, intercept, ...}].
    """

    def fit_predict(train: pd.DataFrame, yt: np.ndarray, test: pd.DataFrame) -> tuple[np.ndarray, dict[str, Any]]:
        model = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), LogisticRegression(max_iter=1000)
        )
        model.fit(_logit_features(train), yt.astype(int))
        lr = model[-1]
        info = {"coef": dict(zip(train.columns, map(float, lr.coef_[0]))), "intercept": float(lr.intercept_[0])}
        return model.predict_proba(_logit_features(test))[:, 1], info

    return _out_of_fold(p, y, groups, folds, seed, missing, fit_predict)


def _logit_features(p: pd.DataFrame) -> np.ndarray:
    """Log-odds of each layer: scores near 0/1 carry most evidence, which the logit scale keeps linear."""
    x = np.column_stack([as_float(p[c]) for c in p.columns])
    return logit(np.clip(x, EPS, 1 - EPS))
