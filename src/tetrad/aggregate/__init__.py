"""Aggregation: unit scores -> video scores -> fusions, cascade and metrics (pure functions, no IO)."""

from tetrad.aggregate.cascade import simulate_cascade
from tetrad.aggregate.evaluate import (Evaluation, build_video_table, evaluate, jsonable, layer_labels,
                                       modality_label)
from tetrad.aggregate.fuse import (
    FusionResult,
    LeakError,
    check_group_leak,
    fuse_logistic,
    fuse_tuned_weights,
    fuse_weighted,
    make_folds,
)
from tetrad.aggregate.metrics import binary_metrics, bootstrap_ci, per_category, roc_table
from tetrad.aggregate.reduce import RULES, reduce_units

__all__ = [
    "RULES",
    "Evaluation",
    "FusionResult",
    "LeakError",
    "binary_metrics",
    "bootstrap_ci",
    "build_video_table",
    "check_group_leak",
    "evaluate",
    "fuse_logistic",
    "fuse_tuned_weights",
    "fuse_weighted",
    "jsonable",
    "layer_labels",
    "make_folds",
    "modality_label",
    "per_category",
    "reduce_units",
    "roc_table",
    "simulate_cascade",
]
