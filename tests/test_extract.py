"""Extract on the mini benchmark: every row reaches every cache with a status, and a killed run resumes."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tetrad import schemas
from tetrad.datasets import build_manifest
from tetrad.stages.extract import extract, shard_bounds, shard_name, with_sizes
from tetrad.io import read_table, write_table
from tetrad.params import DatasetParams, ExtractParams, FramesExtractParams

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ExtractParams(frames=FramesExtractParams(n_frames=2), shard_size=4, workers=1)


@pytest.fixture(scope="module")
def manifest(mini_root) -> pd.DataFrame:
    return build_manifest(DatasetParams(root=str(mini_root)))


@pytest.fixture(scope="module")
def caches(manifest, tmp_path_factory) -> dict[str, pd.DataFrame]:
    out = tmp_path_factory.mktemp("cache")
    dirs = {k: out / k for k in ("audio", "frames")}
    extract(manifest, ["audio", "frames"], PARAMS, dirs)
    return {k: read_table(sorted(d.glob("part-*.parquet")), {"audio": schemas.AUDIO}.get(k, schemas.FRAMES))
            for k, d in dirs.items()}


def by_video(table: pd.DataFrame) -> pd.Series:
    return table.groupby("video_id")["status"].first()


def test_every_manifest_row_reaches_every_cache(manifest, caches):
    for table in caches.values():
        assert set(table["video_id"]) == set(manifest["video_id"])


def test_faulty_files_get_statuses_and_one_line_errors(caches):
    audio, frames = by_video(caches["audio"]), by_video(caches["frames"])
    # the cut file keeps what decodes (44 of 131 frames, 1.76 of 5.24 s), saying so
    assert audio["faulty/truncated"] == "partial" and frames["faulty/truncated"] == "partial"
    assert audio["faulty/no_audio"] == "no_audio" and frames["faulty/no_audio"] == "ok"
    assert audio["faulty/short"] == "ok" and audio["faulty/no_face"] == "ok"
    errors = caches["audio"].set_index("video_id")["error"]
    assert "truncated.mp4" in errors["faulty/truncated"] and "\n" not in errors["faulty/truncated"]
    assert "cut short, only 1.76 of 5.24 s of audio" in errors["faulty/truncated"]
    cut = caches["frames"][caches["frames"]["video_id"] == "faulty/truncated"]
    assert cut["frame_idx"].tolist() == [0] and cut["image"].notna().all()  # frame 130 of [0, 130] never came
    assert "only 44 of 131 video frames" in cut["error"].iloc[0]
    assert "no audio stream" in errors["faulty/no_audio"]


def test_audio_is_16k_mono_float(caches):
    ok = caches["audio"][caches["audio"]["status"] == "ok"].set_index("video_id")
    assert (ok["sample_rate"] == 16000).all()
    assert ok.loc["faulty/short", "num_samples"] == pytest.approx(0.6 * 16000, rel=0.05)
    assert all(len(w) == n for w, n in zip(ok["waveform"], ok["num_samples"]))
    assert all(-1.0 <= min(w) and max(w) <= 1.0 for w in ok["waveform"])


def test_frames_are_uniform_224_rgb(caches):
    ok = caches["frames"][caches["frames"]["status"] == "ok"]
    assert set(zip(ok["height"], ok["width"], ok["channels"])) == {(224, 224, 3)}
    assert ok.groupby("video_id").size().eq(2).all()
    first = ok[ok["video_id"] == "clips/s0_A"].sort_values("frame_idx")
    assert first["frame_idx"].iloc[0] == 0 and first["pts_s"].iloc[0] == 0.0


def test_worker_log_records_reach_the_parents_handlers(manifest, tmp_path, caplog):
    """The workers' records are written here by the parent's handlers (through tqdm.write while the bar runs):
    a worker has no handler, so they used to go straight to stderr (warnings, tearing the bar) or nowhere."""
    caplog.set_level(logging.INFO)
    few = manifest[manifest["video_id"].isin(["faulty/truncated", "faulty/no_audio"])]
    assert len(few) == 2
    extract(few, ["audio"], PARAMS, {"audio": tmp_path / "audio"})
    from_workers = [r for r in caplog.records if r.process != os.getpid()]
    assert {r.name for r in from_workers} == {"tetrad.stages.extract"}
    assert any("truncated.mp4" in r.getMessage() for r in from_workers)
    assert any("no audio stream" in r.getMessage() for r in from_workers)


def test_the_bar_counts_the_videos_left_to_extract_from_the_start(manifest, tmp_path, monkeypatch):
    import io

    from tetrad.stages import extract as stage

    made = []

    class Recording(stage.tqdm):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **{**kwargs, "file": io.StringIO()})
            made.append((kwargs["total"], self))

    monkeypatch.setattr(stage, "tqdm", Recording)
    few = manifest.iloc[:6]  # two shards of 4 and 2 videos; the first one is then resumed
    dirs = {"audio": tmp_path / "audio"}
    extract(few, ["audio"], PARAMS, dirs)
    (tmp_path / "audio" / sorted(p.name for p in dirs["audio"].glob("part-*"))[1]).unlink()
    extract(few, ["audio"], PARAMS, dirs)
    assert [(total, bar.n, bar.unit) for total, bar in made] == [(6, 6, "video"), (2, 2, "video")]


def _project(tmp: Path, manifest: pd.DataFrame) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["extract"].update(shard_size=2, workers=1, kinds=["audio", "frames"])  # no face kinds: fast
    params["layer"] = {k: v for k, v in params["layer"].items() if v["input"] in ("audio", "frames")}
    params["layer_names"] = list(params["layer"])
    params["extract"]["frames"]["n_frames"] = 2
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    write_table(manifest, tmp / "data/mini/manifest.parquet", schemas.MANIFEST)
    return tmp


def _run_stage(project: Path, kill_after_shards: int | None = None) -> None:
    cmd = [sys.executable, str(ROOT / "stages/extract.py"), "--dataset", "mini"]
    proc = subprocess.Popen(cmd, cwd=project, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if kill_after_shards is None:
        assert proc.wait(timeout=300) == 0
        return
    audio = project / "data/mini/cache/audio"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(audio.glob("part-*.parquet"))) < kill_after_shards:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _read_cache(project: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for kind, schema in (("audio", schemas.AUDIO), ("frames", schemas.FRAMES)):
        files = sorted((project / "data/mini/cache" / kind).glob("part-*.parquet"))
        out[kind] = read_table(files, schema)
    return out


@pytest.mark.slow
def test_killed_extract_resumes_to_the_same_result(manifest, tmp_path):
    killed = _project(tmp_path / "killed", manifest)
    _run_stage(killed, kill_after_shards=3)
    partial = sorted((killed / "data/mini/cache/audio").glob("part-*.parquet"))
    assert 3 <= len(partial) < 14, "the kill should land midway"
    written = {p.name: p.stat().st_mtime_ns for p in partial}
    _run_stage(killed)
    kept = {p.name: p.stat().st_mtime_ns for p in (killed / "data/mini/cache/audio").glob("part-*.parquet")}
    assert all(kept[name] == mtime for name, mtime in written.items()), "finished shards must not be redone"
    assert not list((killed / "data/mini/cache").rglob("*.tmp")), "no temp file may survive"
    clean = _project(tmp_path / "clean", manifest)
    _run_stage(clean)
    a, b = _read_cache(killed), _read_cache(clean)
    for kind in a:
        pd.testing.assert_frame_equal(a[kind], b[kind])


def test_shards_are_cut_by_source_bytes_and_count():
    sizes = pd.DataFrame({"bytes": [100, 100, 300, 50, 50, 50, 2000, 10]})
    by_bytes = ExtractParams(shard_mb=400 / 2**20, shard_size=64)
    # 100+100 (+300 > 400) | 300+50+50 (+50 > 400) | 50 (+2000) | 2000 alone | 10
    assert shard_bounds(sizes, by_bytes) == [(0, 2), (2, 5), (5, 6), (6, 7), (7, 8)]
    by_count = ExtractParams(shard_mb=1e6, shard_size=3)
    assert shard_bounds(sizes, by_count) == [(0, 3), (3, 6), (6, 8)]
    assert shard_bounds(sizes.iloc[:0], by_count) == []


def test_a_file_replaced_by_another_size_makes_a_new_shard(tmp_path):
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x" * 10)
    rows = with_sizes(pd.DataFrame({"video_id": ["a"], "path": [str(clip)]}))
    before = shard_name("audio", PARAMS, 0, rows)
    clip.write_bytes(b"x" * 11)
    assert shard_name("audio", PARAMS, 0, with_sizes(rows)) != before


def test_a_file_over_a_limit_is_a_row_with_its_status(manifest):
    from dataclasses import replace

    from tetrad.params import LimitsParams
    from tetrad.stages.extract import extract_video

    row = manifest.set_index("video_id").loc["clips/s0_A"].to_dict() | {"video_id": "clips/s0_A"}
    short = replace(PARAMS, limits=LimitsParams(max_duration_s=1.0))
    rows = extract_video(row, ["audio", "frames"], short)
    assert [r["status"] for v in rows.values() for r in v] == ["too_long", "too_long"]
    assert re.fullmatch(rf"{re.escape(row['path'])}: lasts \d+\.\d s, over extract\.limits\.max_duration_s=1",
                        rows["frames"][0]["error"])
    small = replace(PARAMS, limits=LimitsParams(max_megapixels=0.01))
    rows = extract_video(row, ["audio", "frames"], small)
    assert [r["status"] for v in rows.values() for r in v] == ["too_large", "too_large"]
    assert rows["frames"][0]["error"].endswith("frames, over extract.limits.max_megapixels=0.01")
    hurried = replace(PARAMS, limits=LimitsParams(timeout_s=0.001))
    rows = extract_video(row, ["audio", "frames"], hurried)
    assert [r["status"] for v in rows.values() for r in v] == ["timeout", "timeout"]
    assert rows["audio"][0]["error"] == f"{row['path']}: took longer than extract.limits.timeout_s=0.001 s"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no timer left behind
    assert all(r["status"] == "ok" for v in extract_video(row, ["audio", "frames"], PARAMS).values() for r in v)
