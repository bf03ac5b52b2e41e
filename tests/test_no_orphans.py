"""No orphan: kill -9 an extract stage that a pipeline started, in the middle of its work, and every process it
started (the fork server and the decoding workers) is gone within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

from tests.processes import alive
from tetrad.params import load_params
from tetrad.stages import manifest as manifest_stage

ROOT = Path(__file__).resolve().parents[1]


def _project(tmp_path: Path, mini_root: Path) -> Path:
    """A folder with a params.yaml over the mini benchmark (audio and many frames per video: some seconds of
    work for two workers) and its manifest."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["mini"]["root"] = str(mini_root)
    params["extract"].update(kinds=["audio", "frames"], workers=2, shard_size=4)
    params["layer"] = {name: params["layer"][name] for name in ("audio", "semantic")}  # the layers of those kinds
    params["layer_names"] = list(params["layer"])
    params["extract"]["frames"]["n_frames"] = 100
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    manifest_stage.run(load_params(tmp_path / "params.yaml"), "mini", tmp_path)
    return tmp_path


def _wait(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_killed_extract_stage_leaves_no_process(tmp_path, mini_root):
    project = _project(tmp_path, mini_root)
    env = {**os.environ, "TETRAD_STAGE": "extract@mini"}  # as `tetrad run` starts it (DVC sets DVC_STAGE)
    stage = subprocess.Popen([sys.executable, str(ROOT / "stages/extract.py"), "--dataset", "mini"], cwd=project,
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(stage.pid)
    try:
        # the fork server and its two workers: three descendants, busy decoding
        assert _wait(lambda: len(parent.children(recursive=True)) >= 3, 120), "the workers never started"
        started = parent.children(recursive=True)
        stage.send_signal(signal.SIGKILL)
        stage.wait(timeout=30)
        assert _wait(lambda: not any(alive(p) for p in started), 15), \
            [(p.pid, p.cmdline()) for p in started if alive(p)]
    finally:
        for proc in [parent, *psutil.Process(os.getpid()).children(recursive=True)]:
            if proc.pid != os.getpid() and alive(proc) and "stages/extract.py" in " ".join(proc.cmdline()):
                proc.kill()
