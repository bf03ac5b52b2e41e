"""`make bench` on one tiny clip: the plan loop (a) and the stages (b) run, agree, and fill the report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tetrad.benchset import BenchSet, make_benchset, parse_resolution

LAYERS = ("audio", "visual", "lip", "semantic")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, str]:
    """One 1.2 s clip at 320x240, tiny demo-random models, 25 mouth frames (one LipForensics clip); for CPU
    time also fewer picture frames, one extract worker and MTCNN without its smallest scales."""
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "reports" / "bench.md"
    argv = ["--clips", "1", "--seconds", "1.2", "--resolutions", "320x240", "--mouth-frames", "25",
            "--variant", "tiny", "--data-dir", str(tmp / "data"), "--weights-dir", str(tmp / "weights"),
            "--override", "extract.faces.n_frames=6", "--override", "extract.frames.n_frames=4",
            "--override", "extract.workers=1", "--override", "extract.face.options.min_face_size=60",
            "--out", str(out)]
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
    assert [t["status"] for t in result["targets"]][1] == "not built yet"
    assert "Ratio (b)/(a)" in md and "## Targets" in md


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
