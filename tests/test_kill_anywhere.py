"""Kill anywhere: each stage (extract, detect of two layers, aggregate), started as a pipeline starts it, is killed
with SIGKILL at a seeded random moment of its run, then run again. The outputs equal those of an uninterrupted
run (timing columns aside), no process of the killed stage survives, and no temp file is left."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.processes import alive
from tetrad.io import remove_stale_temps
from tetrad.params import compose_params, load_params
from tetrad.stages import manifest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
STAGES = [["extract.py"], ["detect.py", "--layer", "audio"], ["detect.py", "--layer", "semantic"], ["aggregate.py"]]
TIMING = ("compute_s",)  # measured times: the only columns allowed to differ between two runs


def _project(folder: Path, mini_root: Path) -> Path:
    """Eight mini clips (and the faulty files), audio and semantic layers (tiny), four shards of two videos."""
    overrides = ["~layer/visual", "~layer/lip", "~layer/sync", "extract.kinds=[audio,frames]", "extract.shard_size=2",
                 f"datasets.mini.root={mini_root}", "datasets.mini.limit=10", f"weights.dir={folder / 'weights'}",
                 "mlflow.enabled=false", "aggregate.bootstrap=20", "layer.audio.variant=tiny",
                 "layer.semantic.variant=tiny"]
    folder.mkdir(parents=True)
    params = load_params(compose_params(folder / "params.yaml", overrides, ROOT / "conf"))
    manifest.run(params, "mini", folder)
    return folder


def _start(stage: list[str], project: Path) -> subprocess.Popen:
    env = {**os.environ, "TETRAD_STAGE": stage[0]}  # as `tetrad run` starts it
    return subprocess.Popen([sys.executable, str(ROOT / "stages" / stage[0]), "--dataset", "mini", *stage[1:]],
                            cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run(stage: list[str], project: Path) -> float:
    start = time.monotonic()
    assert _start(stage, project).wait(timeout=600) == 0, stage
    return time.monotonic() - start


def _kill_at(stage: list[str], project: Path, after_s: float) -> bool:
    """Start the stage, SIGKILL it `after_s` seconds in; True when it was still running. Every process it had
    started must be gone within seconds."""
    proc = _start(stage, project)
    parent, seen = psutil.Process(proc.pid), set()
    deadline = time.monotonic() + after_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            seen |= set(parent.children(recursive=True))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL) if running else None
    proc.wait(timeout=60)
    end = time.monotonic() + 15
    while any(alive(p) for p in seen) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(alive(p) for p in seen), [p.pid for p in seen if alive(p)]
    return running


def _outputs(project: Path) -> dict[str, object]:
    data, out = project / "data/mini", {}
    for kind in ("audio", "frames"):
        shards = sorted((data / "cache" / kind).glob("part-*.parquet"))
        out[f"cache/{kind}"] = pd.concat([pd.read_parquet(s) for s in shards], ignore_index=True)
    for layer in ("audio", "semantic"):
        out[f"scores/{layer}"] = pd.read_parquet(data / "scores" / f"{layer}.parquet").drop(columns=list(TIMING))
    videos = pd.read_parquet(project / "reports/mini/videos.parquet")
    out["videos"] = videos.drop(columns=[c for c in videos if c.endswith("_compute_s")])
    metrics = json.loads((project / "reports/mini/metrics.json").read_text())
    for key in ("gpu_time_saved_frac", "time_per_video_s_full", "time_per_video_s_cascade"):
        metrics["cascade"].pop(key)
    out["metrics"] = metrics
    return out


def test_a_stage_killed_anywhere_resumes_to_the_same_outputs(tmp_path, mini_root):
    clean = _project(tmp_path / "clean", mini_root)
    took = [_run(stage, clean) for stage in STAGES]
    killed = _project(tmp_path / "killed", mini_root)
    shutil.copytree(clean / "weights", killed / "weights")  # the same demo checkpoints (written once, seeded)
    rng, landed = random.Random(7), 0
    for stage, seconds in zip(STAGES, took):
        landed += _kill_at(stage, killed, rng.uniform(0.3, 0.9) * seconds)
        if stage[0] == "detect.py":  # as if the kill had landed while the scores table was written
            (killed / "data/mini/scores").mkdir(parents=True, exist_ok=True)
            (killed / "data/mini/scores" / f".{stage[2]}.parquet.999999999.tmp").write_bytes(b"half")
        _run(stage, killed)
    assert landed >= 3, "the kills should land while the stages run"
    a, b = _outputs(clean), _outputs(killed)
    for name in a:
        if isinstance(a[name], pd.DataFrame):
            pd.testing.assert_frame_equal(a[name], b[name], obj=name)
        else:
            assert a[name] == b[name], name
    left = [p for p in (killed / "data").rglob("*.tmp")] + [p for p in (killed / "reports").rglob("*.tmp")]
    assert not left, left


def test_only_the_temp_files_of_dead_writers_are_removed(tmp_path):
    dead, live = tmp_path / ".a.parquet.999999999.tmp", tmp_path / f".b.parquet.{os.getpid()}.tmp"
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == [dead] and live.exists()
