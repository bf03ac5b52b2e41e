"""No checkpoint runs code: a pickle whose loading would write a marker file, and a TorchScript archive whose
`__setstate__` would print a marker, are both refused in one line naming the file, and the marker never appears.
A TorchScript archive loads only when its sha256 is pinned (OpenAI's ViT-L-14.pt)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tetrad.io import file_sha256
from tetrad.layers.base import CheckpointError, load_checkpoint, load_torchscript
from tetrad.layers.ufd import read_openai_state_dict

MARKER = "TETRAD-PAYLOAD-RAN"


class _Payload:
    """Unpickling this calls os.system: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return os.system, (f"touch {self.marker}",)


def _scripted_payload(path: Path) -> Path:
    """A TorchScript module whose `__setstate__`, run by torch.jit.load, prints MARKER."""
    source = f'''
import torch
from typing import Tuple

class Payload(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.zeros(2)

    def forward(self, x):
        return x + self.w

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, bool]:
        return (self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, bool]) -> None:
        print("{MARKER}")
        self.w = state[0]
        self.training = state[1]

torch.jit.script(Payload()).save({str(path)!r})
'''
    module = path.with_suffix(".py")
    module.write_text(source)  # TorchScript compiles from a source file
    subprocess.run([sys.executable, str(module)], check=True, capture_output=True, timeout=120)
    return path


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_that_runs_code_is_refused(tmp_path, writer):
    marker, path = tmp_path / "marker", tmp_path / "evil.pth"
    if writer == "pickle":
        path.write_bytes(pickle.dumps({"weight": _Payload(marker)}, protocol=2))  # torch.load's own protocol
    else:
        torch.save({"weight": _Payload(marker)}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"{path}: refused") and "\n" not in message and "posix.system" in message
    assert not marker.exists()
    if writer == "pickle":  # the payload is live: loading it unsafely runs it
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_torchscript_setstate_payload_is_refused(tmp_path, capfd):
    path = _scripted_payload(tmp_path / "ViT-L-14.pt")
    for load in (read_openai_state_dict, load_checkpoint):
        with pytest.raises(CheckpointError) as err:
            load(path)
        message = str(err.value)
        assert message.startswith(f"{path}: refused: a TorchScript archive") and "\n" not in message
        assert "torch.jit.load" in message  # the conversion command, for a file the user trusts
    assert MARKER not in capfd.readouterr().out
    ran = subprocess.run([sys.executable, "-c", f"import torch; torch.jit.load({str(path)!r})"],
                         capture_output=True, text=True, timeout=120)
    assert MARKER in ran.stdout  # the payload is live: torch.jit.load runs it


def test_a_pinned_torchscript_archive_loads(tmp_path):
    path = tmp_path / "linear.pt"
    torch.jit.script(torch.nn.Linear(3, 2)).save(str(path))
    state = load_torchscript(path, {file_sha256(path)})
    assert set(state) == {"weight", "bias"} and state["weight"].shape == (2, 3)
