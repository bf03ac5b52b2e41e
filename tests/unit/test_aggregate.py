"""Unit tests of tetrad.aggregate: reduce rules, fusions, folds, cascade, metrics, evaluate()."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

import tetrad.aggregate.fuse as fuse_mod
from tetrad.aggregate import (
    LeakError,
    binary_metrics,
    bootstrap_ci,
    build_video_table,
    check_group_leak,
    evaluate,
    fuse_logistic,
    fuse_tuned_weights,
    fuse_weighted,
    make_folds,
    per_category,
    reduce_units,
    roc_table,
    simulate_cascade,
)
from tetrad.aggregate.cascade import cascade_stops
from tetrad.params import AggregateParams

SEED_W = {"audio": 0.30, "visual": 0.25, "lip": 0.25, "semantic": 0.20}


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def units(rows: list[tuple]) -> pd.DataFrame:
    """(video_id, unit_idx, logit, p_fake, compute_s, status, error) rows as a SCORES-like table."""
    df = pd.DataFrame(rows, columns=["video_id", "unit_idx", "logit", "p_fake", "compute_s", "status", "error"])
    return df.assign(detector="det", t_start_s=0.0, t_end_s=1.0)


# --------------------------------------------------------------------------------------------- reduce


def test_mean_prob_and_failed_units_are_ignored() -> None:
    df = units([
        ("a", 0, 2.0, 0.9, 1.0, "ok", None),
        ("a", 1, -2.0, 0.1, 1.0, "ok", None),
        ("a", 2, None, None, 0.5, "error", "a: unit 2 broke"),
    ])
    out = reduce_units(df, "mean_prob").set_index("video_id")
    assert list(reduce_units(df, "mean_prob").columns) == [
        "video_id", "p_fake", "logit", "n_units", "n_skipped", "compute_s", "status", "error"]
    assert out.loc["a", "p_fake"] == pytest.approx(0.5)
    assert out.loc["a", "logit"] == pytest.approx(0.0)
    assert out.loc["a", "n_units"] == 2
    assert out.loc["a", "compute_s"] == pytest.approx(2.5)  # summed over every unit, failed ones too
    assert out.loc["a", "status"] == "ok" and out.loc["a", "error"] is None


def test_sigmoid_after_mean_differs_from_mean_of_sigmoid() -> None:
    df = units([("v", 0, 0.0, sigmoid(0.0), 1.0, "ok", None), ("v", 1, 4.0, sigmoid(4.0), 1.0, "ok", None)])
    after = reduce_units(df, "mean_logit_sigmoid")["p_fake"].iloc[0]
    before = reduce_units(df, "mean_prob")["p_fake"].iloc[0]
    assert after == pytest.approx(sigmoid(2.0))  # 0.8808
    assert before == pytest.approx((sigmoid(0.0) + sigmoid(4.0)) / 2)  # 0.7410
    assert after - before > 0.1


def test_max_face_mean_frame() -> None:
    df = units([
        ("v", 0, None, 0.2, 1.0, "ok", None),
        ("v", 1, None, 0.8, 1.0, "ok", None),
        ("v", 2, None, 0.4, 1.0, "ok", None),
    ]).assign(frame_idx=[0, 0, 1])
    out = reduce_units(df, "max_face_mean_frame")
    assert out["p_fake"].iloc[0] == pytest.approx((0.8 + 0.4) / 2)
    assert reduce_units(df, "mean_prob")["p_fake"].iloc[0] == pytest.approx(1.4 / 3)
    with pytest.raises(ValueError, match="frame_idx"):
        reduce_units(df.drop(columns="frame_idx"), "max_face_mean_frame")


@pytest.mark.parametrize("rule", ["mean_prob", "mean_logit_sigmoid"])
def test_failed_only_video_keeps_first_failure(rule: str) -> None:
    df = units([
        ("b", -1, None, None, None, "no_face", "b.mp4: no face in any frame"),
        ("b", -1, None, None, None, "error", "second failure"),
        ("c", 0, 1.0, 0.7, 1.0, "ok", None),
    ])
    out = reduce_units(df, rule).set_index("video_id")
    assert list(out.index) == ["b", "c"]
    assert out.loc["b", "status"] == "no_face"
    assert out.loc["b", "error"] == "b.mp4: no face in any frame"
    assert math.isnan(out.loc["b", "p_fake"]) and math.isnan(out.loc["b", "logit"])
    assert out.loc["b", "n_units"] == 0 and out.loc["b", "compute_s"] == 0.0
    assert out.loc["c", "status"] == "ok"


def test_ok_rows_without_score_do_not_count() -> None:
    out = reduce_units(units([("a", 0, None, None, 1.0, "ok", None)]), "mean_prob")
    assert out["status"].iloc[0] == "error" and "no unit" in out["error"].iloc[0]
    assert out["n_units"].iloc[0] == 0 and math.isnan(out["p_fake"].iloc[0])


def test_a_cut_file_is_scored_and_partial() -> None:
    """Units from a file cut short count like ok ones; the video is `partial`, carrying how much was lost."""
    cut = "a.mp4: cut short, only 44 of 131 video frames could be decoded"
    df = units([
        ("a", 0, 2.0, 0.9, 1.0, "partial", cut),
        ("a", 1, -2.0, 0.1, 1.0, "partial", cut),
        ("b", 0, 1.0, 0.7, 1.0, "ok", None),
    ])
    out = reduce_units(df, "mean_prob").set_index("video_id")
    assert out.loc["a", "p_fake"] == pytest.approx(0.5) and out.loc["a", "n_units"] == 2
    assert out.loc["a", "status"] == "partial" and out.loc["a", "error"] == cut and out.loc["a", "n_skipped"] == 0
    assert out.loc["b", "status"] == "ok" and out.loc["b", "error"] is None


def test_unknown_rule_is_named() -> None:
    with pytest.raises(ValueError, match="median_of_doom"):
        reduce_units(units([("a", 0, 0.0, 0.5, 1.0, "ok", None)]), "median_of_doom")


# ----------------------------------------------------------------------------------------------- fuse


def test_weights_renormalised_over_present_layers() -> None:
    p = pd.DataFrame({"audio": [1.0, 0.2], "visual": [0.0, 0.4], "lip": [np.nan, 0.6], "semantic": [np.nan, 0.8]})
    out = fuse_weighted(p, SEED_W)
    assert out.iloc[0] == pytest.approx(0.30 / 0.55)
    assert out.iloc[1] == pytest.approx(0.30 * 0.2 + 0.25 * 0.4 + 0.25 * 0.6 + 0.20 * 0.8)


def test_all_missing_is_nan_in_every_mode() -> None:
    p = pd.DataFrame({"audio": [np.nan, 0.9], "visual": [np.nan, 0.1]})
    for mode in ("abstain", "impute", "drop"):
        assert math.isnan(fuse_weighted(p, SEED_W, mode).iloc[0])


def test_missing_modes() -> None:
    p = pd.DataFrame({"audio": [0.8, 0.2, 0.5], "visual": [np.nan, 0.4, 0.6]})
    w = {"audio": 0.5, "visual": 0.5}
    assert fuse_weighted(p, w, "abstain").tolist() == pytest.approx([0.8, 0.3, 0.55])
    # impute: the missing visual score becomes the visual median over the table, (0.4 + 0.6) / 2
    assert fuse_weighted(p, w, "impute").tolist() == pytest.approx([0.65, 0.3, 0.55])
    dropped = fuse_weighted(p, w, "drop")
    assert math.isnan(dropped.iloc[0]) and dropped.iloc[1:].tolist() == pytest.approx([0.3, 0.55])
    with pytest.raises(ValueError, match="missing mode"):
        fuse_weighted(p, w, "guess")
    with pytest.raises(ValueError, match="no fusion weight"):
        fuse_weighted(p, {"audio": 1.0})


def tuning_table(n_groups: int = 8, per_group: int = 3, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Noisy two-layer scores: audio informative, visual weakly so; some scores missing."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    y = np.array([i % 2 for i in range(n)], dtype=float)
    groups = np.array([f"g{i // per_group}" for i in range(n)], dtype=object)
    p = pd.DataFrame({
        "audio": np.clip(0.3 + 0.4 * y + rng.normal(0, 0.15, n), 0, 1),
        "visual": np.clip(0.45 + 0.1 * y + rng.normal(0, 0.2, n), 0, 1),
    })
    p.loc[[1, 6], "visual"] = np.nan
    p.loc[4, "audio"] = np.nan
    return p, y, groups


def test_make_folds_groups_disjoint_and_cover() -> None:
    _, y, groups = tuning_table()
    folds = make_folds(y, groups, 3, seed=0)
    seen = np.concatenate([test for _, test in folds])
    assert sorted(seen.tolist()) == list(range(len(y)))
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])


def test_check_group_leak() -> None:
    check_group_leak(["a", "b"], ["c"])
    with pytest.raises(LeakError, match="'b'|b"):
        check_group_leak(["a", "b"], ["b", "c"])


def test_leaky_splitter_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    class Leaky:  # ignores groups, as a plain KFold would
        def __init__(self, n_splits: int, shuffle: bool, random_state: int) -> None:
            self.kf = KFold(n_splits, shuffle=shuffle, random_state=random_state)

        def split(self, x, y, groups):  # noqa: ANN001, ANN202
            return self.kf.split(x)

    monkeypatch.setattr(fuse_mod, "StratifiedGroupKFold", Leaky)
    p, y, groups = tuning_table()
    with pytest.raises(LeakError):
        fuse_tuned_weights(p, y, groups, folds=3, step=0.1, seed=0)


def test_tuned_weights_are_out_of_fold() -> None:
    p, y, groups = tuning_table()
    res = fuse_tuned_weights(p, y, groups, folds=3, step=0.1, seed=0, prior=SEED_W)
    assert res.reason is None and len(res.fold_weights) == 3
    assert res.scores.notna().all()
    # each held-out fold is scored with the weights chosen on the other folds only
    for (train, test), chosen in zip(make_folds(y, groups, 3, 0), res.fold_weights):
        assert not set(groups[train]) & set(groups[test])
        w = chosen["weights"]
        assert sum(w.values()) == pytest.approx(1.0)
        fill = p.iloc[train].median().to_dict()
        expected = fuse_weighted(p.iloc[test], w, "abstain", fill)
        assert res.scores.iloc[test].tolist() == pytest.approx(expected.tolist())
    assert binary_metrics(y, res.scores, 0.5)["auc"] > 0.8


def test_logistic_is_out_of_fold() -> None:
    p, y, groups = tuning_table()
    res = fuse_logistic(p, y, groups, folds=3, seed=0)
    assert res.reason is None and len(res.fold_weights) == 3
    assert set(res.fold_weights[0]["coef"]) == {"audio", "visual"}
    assert res.scores.between(0, 1).all()
    assert binary_metrics(y, res.scores, 0.5)["auc"] > 0.8
    again = fuse_logistic(p, y, groups, folds=3, seed=0)
    assert again.scores.tolist() == res.scores.tolist()


def test_tuning_impossible_gives_reason_not_error() -> None:
    p, y, groups = tuning_table(n_groups=2, per_group=4)
    for res in (fuse_tuned_weights(p, y, groups, 3, 0.1, 0), fuse_logistic(p, y, groups, 3, 0)):
        assert res.scores.isna().all() and "group" in res.reason
    p, y, groups = tuning_table()
    one_class = fuse_logistic(p, np.ones_like(y), groups, 3, 0)
    assert one_class.scores.isna().all() and "one class" in one_class.reason
    one_layer = fuse_tuned_weights(p[["audio"]], y, groups, 3, 0.1, 0)
    assert one_layer.scores.isna().all() and "2 layers" in one_layer.reason


# -------------------------------------------------------------------------------------------- cascade


def cascade_videos() -> pd.DataFrame:
    return pd.DataFrame({
        "video_id": ["v0", "v1", "v2", "v3"],
        "audio_p_fake": [0.95, 0.2, np.nan, 0.9],
        "visual_p_fake": [0.1, 0.4, 0.6, 0.3],
        "audio_compute_s": [1.0, 1.0, 1.0, 1.0],
        "visual_compute_s": [3.0, 3.0, 3.0, 3.0],
    })


def test_cascade_hand_computed() -> None:
    table, s = simulate_cascade(cascade_videos(), "audio", ["visual"], 0.9, {"audio": 0.5, "visual": 0.5}, "abstain")
    assert table["cascade_stopped"].tolist() == [True, False, False, True]  # >= fail_fast stops
    assert table["cascade_p_fake"].tolist() == pytest.approx([0.95, 0.3, 0.6, 0.9])
    assert s["n_triggered"] == 2
    assert s["trigger_rate"] == pytest.approx(2 / 3)  # v2 has no audio score: not in the denominator
    assert s["gpu_time_saved_frac"] == pytest.approx(6.0 / 16.0)
    assert s["time_per_video_s_full"] == pytest.approx(4.0)
    assert s["time_per_video_s_cascade"] == pytest.approx(2.5)
    assert s["note"] is None


def test_cascade_never_stops_on_a_fragment() -> None:
    """v3's audio P(fake) 0.9 reaches fail_fast, but from a file cut short: the other layers still count."""
    videos = cascade_videos().assign(audio_status=["ok", "ok", "decode_error", "partial"])
    table, s = simulate_cascade(videos, "audio", ["visual"], 0.9, {"audio": 0.5, "visual": 0.5}, "abstain")
    assert table["cascade_stopped"].tolist() == [True, False, False, False]
    assert table["cascade_p_fake"].iloc[3] == pytest.approx((0.9 + 0.3) / 2)
    assert cascade_stops(np.array([0.95, 0.95]), 0.9, ["ok", "partial"]).tolist() == [True, False]


def test_cascade_without_first_layer_is_plain_fusion() -> None:
    videos = cascade_videos()
    w = {"audio": 0.5, "visual": 0.5, "lip": 0.5}
    table, s = simulate_cascade(videos, "lip", ["audio", "visual"], 0.9, w, "abstain")
    plain = fuse_weighted(videos[["audio_p_fake", "visual_p_fake"]].set_axis(["audio", "visual"], axis=1), w)
    assert table["cascade_p_fake"].tolist() == pytest.approx(plain.tolist())
    assert not table["cascade_stopped"].any()
    assert s["trigger_rate"] == 0.0 and s["gpu_time_saved_frac"] == 0.0 and "lip" in s["note"]


# -------------------------------------------------------------------------------------------- metrics


def test_metrics_perfect_separation() -> None:
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 0.5)
    assert m == {"auc": 1.0, "ap": 1.0, "acc": 1.0, "balanced_acc": 1.0, "eer": 0.0, "tpr_at_fpr_1pct": 1.0,
                 "n": 4, "n_pos": 2, "n_neg": 2}


def test_metrics_hand_computed() -> None:
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.5)
    assert m["auc"] == pytest.approx(0.75)
    assert m["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert m["acc"] == pytest.approx(0.75) and m["balanced_acc"] == pytest.approx(0.75)
    assert m["eer"] == pytest.approx(0.5) and m["tpr_at_fpr_1pct"] == pytest.approx(0.5)
    # a tie between a real and a fake video makes a diagonal ROC segment: EER interpolated to 0.25
    assert binary_metrics([0, 0, 1, 1], [0.5, 0.1, 0.5, 0.9], 0.5)["eer"] == pytest.approx(0.25)


def test_metrics_one_class_is_none_and_nan_rows_excluded() -> None:
    m = binary_metrics([1, 1, 1], [0.2, 0.7, 0.9], 0.5)
    assert m["auc"] is None and m["ap"] is None and m["eer"] is None and m["balanced_acc"] is None
    assert m["tpr_at_fpr_1pct"] is None and m["acc"] == pytest.approx(2 / 3) and m["n_neg"] == 0
    clean = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.5)
    noisy = binary_metrics(pd.array([0, None, 0, 1, 1, 1], dtype="Int8"), [0.1, 0.99, 0.4, 0.35, np.nan, 0.8], 0.5)
    assert noisy == clean and noisy["n"] == 4
    assert binary_metrics([], [], 0.5)["n"] == 0


def noisy_scores(n: int = 60, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.array([i % 2 for i in range(n)], dtype=float)
    score = np.clip(0.35 + 0.3 * y + rng.normal(0, 0.2, n), 0, 1)
    return y, score, np.array([f"g{i // 3}" for i in range(n)])


def test_bootstrap_ci_contains_point_and_is_deterministic() -> None:
    y, score, groups = noisy_scores()
    point = binary_metrics(y, score, 0.5)
    ci = bootstrap_ci(y, score, groups, 0.5, 100, 0.95, seed=7)
    for name in ("auc", "ap", "acc", "balanced_acc", "eer"):
        lo, hi = ci[name]
        assert lo <= point[name] <= hi and lo < hi
    assert ci["n_resamples_used"] == 100 and ci["n_resamples_skipped"] == 0
    assert bootstrap_ci(y, score, groups, 0.5, 100, 0.95, seed=7) == ci
    assert bootstrap_ci(y, score, groups, 0.5, 100, 0.95, seed=8) != ci


def test_bootstrap_skips_one_class_resamples() -> None:
    # positives live in one group out of 10: about (9/10)**10 = 35% of the resamples miss it
    y = np.array([1, 1] + [0] * 18, dtype=float)
    score = np.linspace(0.9, 0.1, 20)
    groups = np.array([f"g{i // 2}" for i in range(20)])
    ci = bootstrap_ci(y, score, groups, 0.5, 100, 0.95, seed=0)
    assert 20 < ci["n_resamples_skipped"] < 60 and ci["n_resamples_used"] + ci["n_resamples_skipped"] == 100
    assert ci["auc"] is not None
    # too few valid resamples for an honest interval -> None rather than a made-up range
    assert bootstrap_ci(y, score, groups, 0.5, 1, 0.95, seed=0)["auc"] is None
    assert bootstrap_ci(y, score, groups, 0.5, 0, 0.95, seed=0)["auc"] is None


def test_roc_table() -> None:
    t = roc_table([0, 0, 1, 1, 1], [0.1, 0.4, 0.35, 0.8, np.nan])
    assert list(t.columns) == ["fpr", "tpr", "threshold"]
    assert np.isfinite(t.to_numpy()).all() and t["fpr"].iloc[-1] == 1.0 and t["tpr"].iloc[-1] == 1.0
    assert roc_table([1, 1], [0.2, 0.3]).empty


def test_per_category() -> None:
    videos = pd.DataFrame({
        "category": ["A", "A", "B", "B", "C", "C", "D", "D", None],
        "label": [0, 0, 0, 1, 1, 0, 1, 1, 1],
        "s": [0.1, 0.3, 0.2, 0.9, 0.7, np.nan, 0.6, 0.4, 0.9],
    })
    out = per_category(videos, {"fused": "s"}, "label", 0.5)
    assert list(out) == ["A", "B", "C", "D"]
    assert out["A"] == {"n": 2, "n_fake": 0, "fused": {"n_scored": 2, "mean_p_fake": pytest.approx(0.2),
                                                          "pred_fake_rate": 0.0}}
    assert out["B"]["n_fake"] == 1 and out["B"]["fused"]["pred_fake_rate"] == 0.5
    assert out["C"]["fused"] == {"n_scored": 1, "mean_p_fake": pytest.approx(0.7), "pred_fake_rate": 1.0}
    assert out["D"]["n_fake"] == 2 and out["D"]["fused"]["mean_p_fake"] == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------- evaluate


def make_manifest(n: int = 12, n_groups: int = 6) -> pd.DataFrame:
    ids = [f"v{i:02d}" for i in range(n)]
    label = [i % 2 for i in range(n)]
    return pd.DataFrame({
        "video_id": ids, "path": [f"/data/{v}.mp4" for v in ids],
        "label": pd.array(label, dtype="Int8"),
        "audio_label": pd.array([None if i % 4 == 1 else v for i, v in enumerate(label)], dtype="Int8"),
        "video_label": pd.array(label, dtype="Int8"),
        "category": list("ABCD") * (n // 4), "method": ["real" if v == 0 else "fsgan" for v in label],
        "group": [f"id{i % n_groups}" for i in range(n)], "split": "test", "sha256": None,
        "status": "ok", "error": None,
    })


def make_reduced(manifest: pd.DataFrame, noise: float, seed: int, failed: tuple[int, ...] = ()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = manifest["label"].to_numpy(dtype=float)
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, noise, len(y)), 0, 1)
    status = np.array(["ok"] * len(y), dtype=object)
    error = np.array([None] * len(y), dtype=object)
    p[list(failed)], status[list(failed)], error[list(failed)] = np.nan, "no_audio", "no audio stream"
    return pd.DataFrame({"video_id": manifest["video_id"], "p_fake": p, "logit": np.nan, "n_units": 3,
                         "compute_s": np.where(np.isnan(p), 0.0, 1.5), "status": status, "error": error})


def test_build_video_table_keeps_every_row() -> None:
    man = make_manifest()
    audio = make_reduced(man, 0.1, 0, failed=(2,))
    videos = build_video_table(man, {"audio": audio.iloc[1:]})
    assert len(videos) == len(man) and videos["video_id"].tolist() == man["video_id"].tolist()
    assert videos.loc[0, "audio_status"] == "missing" and "v00" in videos.loc[0, "audio_error"]
    assert videos.loc[2, "audio_status"] == "no_audio" and math.isnan(videos.loc[2, "audio_p_fake"])
    assert {"audio_p_fake", "audio_status", "audio_error", "audio_compute_s", "category", "split"} <= set(videos)
    with pytest.raises(ValueError, match="duplicate"):
        build_video_table(man, {"audio": pd.concat([audio, audio])})


def test_evaluate_end_to_end() -> None:
    man = make_manifest()
    reduced = {"audio": make_reduced(man, 0.15, 1, failed=(3,)), "visual": make_reduced(man, 0.25, 2).iloc[1:]}
    params = AggregateParams(bootstrap=50, folds=3)
    ev = evaluate(man, reduced, {"audio": "audio_label", "visual": "video_label"},
                  {"audio": "aasist", "visual": "sbi"}, params)
    m = json.loads(json.dumps(ev.metrics, allow_nan=False))
    assert m["n_videos"] == 12 and m["n_scored"] == 12 and m["dataset"] is None
    assert m["threshold"] == 0.5 and m["missing"] == "abstain"
    audio = m["layers"]["audio"]
    assert audio["detector"] == "aasist" and audio["label"] == "audio_label" and audio["n_label_fallback"] == 3
    assert audio["statuses"] == {"no_audio": 1, "ok": 11} and audio["n_ok"] == 11
    assert audio["coverage"] == pytest.approx(11 / 12) and audio["n"] == 11
    assert m["layers"]["visual"]["statuses"] == {"missing": 1, "ok": 11}
    for block in (audio, *m["fused"].values(), m["cascade"]):
        for key in ("auc", "ap", "acc", "balanced_acc", "eer", "tpr_at_fpr_1pct", "n", "n_pos", "n_neg",
                    "auc_ci_low", "auc_ci_high", "eer_ci_low", "eer_ci_high"):
            assert key in block
    assert m["fused"]["seed_weights"]["weights"] == {"audio": 0.30, "visual": 0.25}
    assert m["fused"]["tuned_weights"]["reason"] is None and len(m["fused"]["tuned_weights"]["fold_weights"]) == 3
    assert m["fused"]["logistic"]["reason"] is None
    assert m["cascade"]["first"] == "audio" and m["cascade"]["fail_fast"] == 0.9
    assert set(m["per_category"]) == {"A", "B", "C", "D"}
    assert {"fused_seed_weights", "fused_tuned_weights", "fused_logistic", "cascade_p_fake", "cascade_stopped",
            "verdict"} <= set(ev.videos.columns)
    assert len(ev.videos) == 12 and set(ev.videos["verdict"]) <= {"fake", "real"}
    assert {"layer_audio", "layer_visual", "fused_seed_weights", "fused_tuned_weights", "fused_logistic",
            "cascade"} <= set(ev.curves)


def test_evaluate_reports_why_tuning_could_not_run() -> None:
    man = make_manifest(n=8, n_groups=2)
    reduced = {"audio": make_reduced(man, 0.1, 0), "visual": make_reduced(man, 0.1, 1, failed=(0, 1))}
    ev = evaluate(man, reduced, {"audio": "audio_label"}, {}, AggregateParams(bootstrap=20, folds=3))
    m = json.loads(json.dumps(ev.metrics, allow_nan=False))
    assert "group" in m["fused"]["tuned_weights"]["reason"] and m["fused"]["tuned_weights"]["auc"] is None
    assert m["fused"]["logistic"]["n"] == 0
    assert m["layers"]["visual"]["label"] == "label" and m["layers"]["visual"]["detector"] is None
    assert ev.videos["fused_tuned_weights"].isna().all()
