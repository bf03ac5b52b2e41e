"""The report's numbers and pictures on small known inputs: operating points, ECE, the worst cases, the headline
file, and figures that still draw when a score has nothing (one class, no rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tetrad import figures
from tetrad.aggregate.metrics import operating_points
from tetrad.report import headline
from tetrad.report_html import worst_cases

PNG = b"\x89PNG"


def test_operating_points_count_what_each_threshold_calls_fake():
    y, p = [0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.7, 0.9]
    ops = operating_points(y, p, [0.5, 0.8]).set_index("threshold")
    assert ops.loc[0.5].to_dict() == pytest.approx({"acc": 0.6, "tpr": 2 / 3, "fpr": 0.5,
                                                    "balanced_acc": (2 / 3 + 0.5) / 2})
    assert ops.loc[0.8, "tpr"] == pytest.approx(1 / 3) and ops.loc[0.8, "fpr"] == 0.0
    assert operating_points([], [], [0.5])[["acc", "tpr"]].isna().all(axis=None)  # nothing scored: no number


def test_ece_is_the_weighted_gap_per_bin():
    y = np.array([0, 1, 1, 1])
    p = np.array([0.05, 0.05, 0.95, 0.95])  # bin 0: fake rate 0.5 at mean 0.05; bin 9: 1.0 at 0.95
    assert figures.ece(y, p) == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert figures.ece(np.array([]), np.array([])) is None


def test_figures_draw_even_when_a_score_has_nothing():
    empty = figures.Score.of("nothing", np.array([np.nan]), np.array([0.3]))
    one_class = figures.Score.of("one class", np.array([1.0, 1.0]), np.array([0.3, 0.8]))
    both = figures.Score.of("both", np.array([0.0, 1.0, 1.0]), np.array([0.2, 0.7, 0.4]))
    scores = [empty, one_class, both]
    for fig in (figures.curves(scores, "t"), figures.distributions(scores, 0.5), figures.reliability(scores),
                figures.confusion(empty, 0.5), figures.confusion(both, 0.5), figures.heatmap(
                    pd.DataFrame({"mini": [0.9, np.nan]}, index=["audio", "visual"]))):
        assert figures.png(fig).startswith(PNG)


def test_worst_cases_are_the_most_confident_mistakes():
    videos = pd.DataFrame({"video_id": list("abcdef"), "label": [0, 0, 0, 1, 1, 1],
                           "audio_label": [0, 0, 0, 1, 1, 1], "video_label": [None] * 6,
                           "audio_p_fake": [0.1, 0.9, 0.6, 0.2, np.nan, 0.95],
                           "fused_seed_weights": [0.5, 0.4, 0.3, 0.1, 0.9, 0.8]})
    cases = worst_cases(videos, ["audio"], k=2)
    audio = [(c.kind, c.video_id) for c in cases if c.score == "audio"]
    assert audio == [("fp", "b"), ("fp", "c"), ("fn", "d"), ("fn", "f")]  # e has no score: never a case
    fused = [(c.kind, c.video_id) for c in cases if c.score == "fused seed_weights"]
    assert fused[:2] == [("fp", "a"), ("fp", "b")] and fused[2] == ("fn", "d")


def test_headline_keeps_the_few_numbers_a_terminal_shows():
    block = {"auc": 0.9, "auc_ci_low": 0.8, "auc_ci_high": 0.95, "ap": 0.9, "eer": 0.1, "acc": 0.85, "n": 10}
    metrics = {"threshold": 0.5, "n_videos": 10, "layers": {"audio": block},
               "fused": {"seed_weights": block, "logistic": {**block, "auc": 0.7}},
               "cascade": {**block, "acc": 0.6}}
    assert headline(metrics) == {"threshold": 0.5, "auc": {"audio": 0.9, "fused": 0.9, "logistic": 0.7, "cascade": 0.9},
                                 "acc": {"fused": 0.85, "cascade": 0.6}}
