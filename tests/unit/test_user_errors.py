"""User errors at the edges: a stage or the CLI prints one line naming the key or file, and a hint, and exits 2;
the traceback only with --verbose or TETRAD_DEBUG=1. A bug keeps its traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tetrad.env import guarded
from tetrad.layers.base import CheckpointError
from tetrad.registry import UnknownName

ROOT = Path(__file__).resolve().parents[2]


def test_a_user_error_is_one_line_and_a_hint(capsys, monkeypatch):
    monkeypatch.delenv("TETRAD_DEBUG", raising=False)

    def bad_checkpoint() -> int:
        raise CheckpointError("weights/audio/x.pth: cannot read checkpoint (EOFError: Ran out of input)")

    assert guarded(bad_checkpoint) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "error: weights/audio/x.pth: cannot read checkpoint (EOFError: Ran out of input)"
    assert lines[1].startswith("hint: `tetrad weights list`") and len(lines) == 2

    def unknown() -> int:
        raise UnknownName("no detector 'aasist2' (registered: aasist, w2v2)")

    assert guarded(unknown) == 2
    assert capsys.readouterr().err.splitlines()[0] == "error: no detector 'aasist2' (registered: aasist, w2v2)"
    with pytest.raises(CheckpointError):
        guarded(bad_checkpoint, verbose=True)
    monkeypatch.setenv("TETRAD_DEBUG", "1")
    with pytest.raises(CheckpointError):
        guarded(bad_checkpoint)


def test_a_bug_keeps_its_traceback():
    def bug() -> int:
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        guarded(bug)


def test_a_stage_with_a_bad_config_says_so_in_one_line(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["extract"]["frames"]["n_frames"] = -3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cmd = [sys.executable, str(ROOT / "stages/extract.py"), "--dataset", "mini"]
    env = {k: v for k, v in os.environ.items() if k != "TETRAD_DEBUG"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines()[0] == ("error: params.yaml: extract.frames.n_frames: -3 is outside the allowed "
                                           "range [1, 100000]")
    debug = subprocess.run(cmd, cwd=tmp_path, env={**env, "TETRAD_DEBUG": "1"}, capture_output=True, text=True,
                           timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
