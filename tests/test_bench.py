"""`make bench` on one tiny clip: the plan loop (a), the stages (b) and their fast mode (c) run, the numbers agree
where the compute is the same, the fast-mode and bf16 deltas are measured, and the report holds them all."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tetrad.benchset import BenchSet, make_benchset, parse_resolution

LAYERS = ("audio", "visual", "lip", "semantic")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, str]:
    """One 1.2 s clip at 320x240, tiny demo-random models, 25 mouth frames (one LipForensics clip); for CPU
    time also fewer picture frames, one extract worker, RetinaFace at the clip's own size and the mouth track's
    MTCNN without its smallest scales; no mini benchmark
    (its AUC maths is tested in tests/unit/test_benchagree.py), bf16 on."""
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "reports" / "bench.md"
    argv = ["--clips", "1", "--seconds", "1.2", "--resolutions", "320x240", "--mouth-frames", "25",
            "--variant", "tiny", "--data-dir", str(tmp / "data"), "--weights-dir", str(tmp / "weights"),
            "--override", "extract.faces.n_frames=6", "--override", "extract.frames.n_frames=4",
            "--override", "extract.workers=1", "--override", "extract.face.mouth_options.min_face_size=60",
            "--override", "extract.face.options.max_size=320",
            "--no-mini", "--out", str(out)]
    # its own process: extract forks its workers, and a pytest process that already ran torch would hand them
    # OpenMP's thread pool (a deadlock when a worker uses more than one thread)
    proc = subprocess.run([sys.executable, "-m", "tetrad.bench", *argv], capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.with_suffix(".json").read_text()), out.read_text()


def test_report_holds_every_number(report):
    result, md = report
    assert {"machine", "config", "plan", "stages", "ratio_b_over_a", "extract_frames_per_s", "delta",
            "targets"} <= set(result)
    assert {"cores", "torch_threads", "torch", "cuda", "gpu"} <= set(result["machine"])
    config = result["config"]
    assert config["n_clips"] == 1 and config["resolutions"] == [[320, 240]] and config["variant"] == "tiny"
    assert set(config["weights"]) == set(LAYERS) and set(config["frames_per_layer"]) == set(LAYERS)
    assert result["plan"]["clips_per_s"] > 0 and result["stages"]["clips_per_s"] > 0
    assert set(result["plan"]["layers"]) == set(LAYERS) == set(result["stages"]["detect"])
    stages = result["stages"]
    assert stages["extract_s"] > 0 and stages["extract_worker_peak_rss_bytes"]
    assert all(v > 0 for v in stages["cache_bytes_per_clip"].values())
    assert set(stages["cache_bytes_per_clip"]) == {"audio", "frames", "faces", "mouths"}
    for section in ("Ratio (b)/(a)", "## (c) fast mode", "## Agreement: fast vs exact", "## bf16 vs fp32",
                    "## Targets"):
        assert section in md, section
    assert result["mini"] is None and "not run (--no-mini)" in md


def test_fast_mode_ran_on_the_same_clips(report):
    result, _ = report
    fast = result["fast"]
    assert fast["total_s"] > 0 and fast["clips_per_s"] > 0 and fast["extract_s"] > 0
    assert set(fast["detect"]) == set(LAYERS) and all(t["total_s"] > 0 for t in fast["detect"].values())
    assert set(fast["cache_bytes_per_clip"]) == set(result["stages"]["cache_bytes_per_clip"])
    assert all(v > 0 for v in fast["cache_bytes_per_clip"].values())
    ratio = result["ratio_c_over_a"]
    assert ratio > 0 and ratio == pytest.approx(result["plan"]["total_s"] / fast["total_s"])


def test_fast_vs_exact_agreement_is_measured_and_sane(report):
    result, _ = report
    agreement = result["agreement"]
    mouths = agreement["mouths"]
    assert mouths["frames"] == 25  # every capped mouth frame, ok in both runs
    assert mouths["mean_abs_diff"] >= 0 and 0 <= mouths["max_abs_diff"] <= 255
    assert 0 <= mouths["share_equal"] <= mouths["share_within_2"] <= 1
    faces = agreement["faces"]
    assert faces["faces"] > 0 and 0 < faces["iou_min"] <= faces["iou_mean"] <= 1
    assert 0 <= faces["frames_face_count_differs"] <= faces["frames"] == 6
    for layer in LAYERS:
        delta = agreement["p_fake"][layer]
        assert delta["videos"] == 1 and 0 <= delta["max_abs_delta_p_fake"] <= 1, layer
    # audio and semantic read caches the face mode does not touch: (c) scores them exactly as (b) does
    assert agreement["p_fake"]["audio"]["max_abs_delta_p_fake"] <= 1e-6
    assert agreement["p_fake"]["semantic"]["max_abs_delta_p_fake"] <= 1e-6


def test_bf16_moves_the_scores_and_says_by_how_much(report):
    result, _ = report
    bf16 = result["bf16"]
    assert set(bf16) == set(LAYERS)
    for layer, d in bf16.items():
        assert d["units"] == result["delta"][layer]["n_units_b"], layer  # every fp32 unit has its bf16 twin
        assert math.isfinite(d["max_abs_delta_logit"]) and d["max_abs_delta_logit"] >= 0, layer
        assert 0 <= d["max_abs_delta_p_fake"] <= 1 and d["bf16_total_s"] > 0, layer
    assert any(d["max_abs_delta_logit"] > 0 for d in bf16.values())  # bf16 did run: fp32 would give 0


def test_fixed_cost_and_cache_bytes_are_split_out(report):
    result, _ = report
    fixed, stages = result["extract_fixed"], result["stages"]
    assert 0 < fixed["import_s"] < fixed["fixed_s"] < stages["extract_s"]
    assert fixed["per_clip_s"] == pytest.approx(stages["extract_s"] - fixed["fixed_s"])
    assert 0 < fixed["VmRSS"] <= fixed["VmHWM"] and fixed["RssAnon"] > 0
    assert all(0 < t["load_s"] < t["total_s"] for t in stages["detect"].values())
    raw = stages["cache"]["raw_equivalent_per_clip"]
    assert raw["mouths"] == 25 * 96 * 96  # 25 grey 96x96 mouth crops
    assert raw["faces"] > 0 and raw["faces"] % (380 * 380 * 3) == 0  # boxes, counted at the crop they stand for
    assert raw["audio"] == pytest.approx(4 * 16000 * 1.2, rel=0.05)
    measured = sum(stages["cache_bytes_per_clip"].values())
    assert stages["cache"]["shrink"] == pytest.approx(sum(raw.values()) / measured)


def test_targets_have_computed_statuses(report):
    result, md = report
    exact, fast, cache, rss = result["targets"]
    assert exact["status"] == ("met" if result["ratio_b_over_a"] >= 1.25 else "not met")
    assert fast["status"] == ("met" if result["ratio_c_over_a"] >= 4.0 else "not met")
    assert "agreement" in fast["measured"]
    assert cache["status"] == ("met" if result["stages"]["cache"]["shrink"] >= 5.0 else "not met")
    assert "raw-pixel equivalent of the same rows, the previous format" in cache["measured"]
    over = result["extract_fixed"]["VmRSS"] > 500e6  # the baseline alone over the target: not met at any size
    assert rss["status"].startswith("not met: the baseline") if over else rss["status"].startswith("not measured")
    assert all(t["status"] in md for t in result["targets"])


def test_ratio_is_positive(report):
    result, _ = report
    ratio = result["ratio_b_over_a"]
    assert isinstance(ratio, float) and ratio > 0
    assert ratio == pytest.approx(result["plan"]["total_s"] / result["stages"]["total_s"])


def test_same_compute_gives_same_numbers(report):
    result, _ = report
    for layer in LAYERS:
        delta = result["delta"][layer]
        assert delta["n_units_a"] == delta["n_units_b"] > 0, layer
        assert delta["max_abs_delta_p_fake"] is not None and delta["max_abs_delta_p_fake"] <= 1e-4, layer


def test_benchset_is_cached_and_sized(tmp_path):
    spec = BenchSet(1, 0.6, ("64x48",))
    first = make_benchset(spec, tmp_path)
    stamp = first[0].stat().st_mtime_ns
    assert make_benchset(spec, tmp_path) == first and first[0].stat().st_mtime_ns == stamp  # reused
    assert parse_resolution("720") == (1280, 720) and parse_resolution("1080") == (1920, 1080)
    import av

    with av.open(str(first[0])) as box:
        video = box.streams.video[0]
        assert (video.width, video.height, video.frames) == (64, 48, 15) and box.streams.audio
