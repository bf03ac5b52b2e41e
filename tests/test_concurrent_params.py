"""One pipeline run, one set of parameters (tetrad.runguard): params.yaml rewritten under a running `dvc repro`,
as `dvc exp run -S` does before it meets DVC's lock, stops the run's next stage instead of letting it read the
new values; a workspace `dvc exp run -S`, which rewrites params.yaml before its own first stage, runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

BIN = Path(sys.executable).parent
# A stage waits (up to 60 s) for params.yaml to change when its `wait_in_<name>` file exists; stages one and two
# are Tetrad stages (stage_main: guarded), `pause` between them is a plain command, as any other tool's stage.
STEP = '''
import pathlib, sys, time, yaml

def main():
    x = yaml.safe_load(open("params.yaml"))["x"]
    if pathlib.Path(f"wait_in_{sys.argv[1]}").exists():
        before = pathlib.Path("params.yaml").read_text()
        pathlib.Path("started").touch()
        for _ in range(600):
            if pathlib.Path("params.yaml").read_text() != before:
                break
            time.sleep(0.1)
    pathlib.Path(f"{sys.argv[1]}.txt").write_text(f"{x}\\n")

if sys.argv[1] == "pause":
    main()
else:
    from tetrad.env import stage_main
    raise SystemExit(stage_main(main))
'''
DVC_YAML = '''stages:
  one:
    cmd: python step.py one
    deps: [step.py]
    params: [x]
    outs: [one.txt]
  pause:
    cmd: python step.py pause
    deps: [one.txt]
    outs: [pause.txt]
  two:
    cmd: python step.py two
    deps: [pause.txt]
    params: [x]
    outs: [two.txt]
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=tmp_path, check=True, env=_env())
    (tmp_path / "params.yaml").write_text("x: 1\n")
    (tmp_path / "step.py").write_text(STEP)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / ".gitignore").write_text("wait_in_*\nstarted\n")
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "a pipeline"], cwd=tmp_path, check=True)
    return tmp_path


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}


def _repro(project: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "dvc"), "repro", "--no-run-cache"], cwd=project, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.1)


def _rewritten_during(project: Path, stage: str) -> str:
    """`dvc repro`, with params.yaml rewritten while `stage` runs (what `dvc exp run -S x=2` does first)."""
    (project / f"wait_in_{stage}").touch()
    repro = _repro(project)
    _wait_for(project / "started")
    (project / "params.yaml").write_text("x: 2\n")
    out, _ = repro.communicate(timeout=300)
    assert repro.returncode != 0, out
    assert "params.yaml: changed while this pipeline run" in out, out
    assert "dvc exp run --queue" in out and "Traceback" not in out
    return out


def test_params_rewritten_between_stages_stop_the_next_one(project):
    out = _rewritten_during(project, "pause")
    assert "stage two did not start" in out, out
    assert (project / "one.txt").read_text() == "1\n" and not (project / "two.txt").exists()


def test_params_rewritten_during_a_stage_fail_it(project):
    """DVC records the params it finds after a stage: they would not be those its outputs were made with."""
    out = _rewritten_during(project, "one")
    assert "the outputs of stage one were made with the earlier file and are not recorded" in out, out
    assert "Running stage 'pause'" not in out and not (project / "dvc.lock").exists()


def test_a_run_that_keeps_its_params_and_a_workspace_exp_run_both_pass(project):
    repro = _repro(project)
    out, _ = repro.communicate(timeout=300)
    assert repro.returncode == 0, out
    assert (project / "two.txt").read_text() == "1\n"
    proc = subprocess.run([str(BIN / "dvc"), "exp", "run", "-S", "x=3"], cwd=project, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "one.txt").read_text() == "3\n" and (project / "two.txt").read_text() == "3\n"


def test_records_of_dead_runs_and_temp_files_of_killed_stages_are_removed(tmp_path):
    from tetrad.runguard import _forget_dead

    gone = subprocess.Popen(["true"])
    gone.wait()
    me = psutil.Process()
    live = tmp_path / f"tetrad-params-{me.pid}-{int(me.create_time())}.json"
    dead = tmp_path / f"tetrad-params-{gone.pid}-{int(time.time())}.json"
    reused = tmp_path / f"tetrad-params-{me.pid}-{int(me.create_time()) - 100}.json"  # same pid, another process
    temp = tmp_path / f".tetrad-params-{gone.pid}-1.json.{gone.pid}"
    for path in (live, dead, reused, temp):
        path.write_text("{}")
    _forget_dead(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]
