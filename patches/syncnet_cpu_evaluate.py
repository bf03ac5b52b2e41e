"""Runtime patch for joonson/syncnet_python@6efbb1c, `SyncNetInstance.py` (`SyncNetInstance.__init__`, `evaluate`).

What: while `cpu_evaluate(module, frames, audio)` is active,
1. `torch.nn.Module.cuda` and `torch.Tensor.cuda` return the module / tensor unchanged (it stays on the CPU);
2. the module's `subprocess` is replaced by an object whose `call(command, ...)` stands in for upstream's two
   ffmpeg commands: the frame extraction (`... -f image2 DIR/%06d.jpg`) writes the given BGR frames as lossless
   PNG data under those names, and the audio extraction (`... DIR/audio.wav`) writes the given int16 samples
   as a 16 kHz wav; any other command is refused.
Both are put back on exit, even after an error. Upstream's own code still reads the files (`cv2.imread`,
`scipy.io.wavfile.read`), computes the MFCC with python_speech_features, cuts the windows, runs the network,
searches the offsets and computes the confidence.

Why: `__init__` and `evaluate` move the network and every batch to CUDA (`.cuda()`), and the parity checks run
on CPU. And `evaluate` decodes the video with ffmpeg, as JPEG frames: lossy, and decoded by another decoder than
ours, so the comparison would be about JPEG and not about SyncNet. Handing upstream the exact frames and samples
tetrad decoded makes the two sides see the same input. The recorded calls let the report state what was replaced.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import cv2
import numpy as np
import torch
from scipy.io import wavfile

UPSTREAM = "joonson/syncnet_python@6efbb1c"
TARGET = "SyncNetInstance.py: S().cuda(), tensor.cuda(), subprocess.call(ffmpeg ...) in evaluate"
SUMMARY = ("SyncNetInstance: .cuda() on the network and the batches left on the CPU; evaluate's two ffmpeg calls "
           "write tetrad's decoded frames (lossless, under upstream's .jpg names) and int16 16 kHz samples")


@contextmanager
def cpu_evaluate(module: ModuleType, frames: np.ndarray, audio: np.ndarray) -> Iterator[list[str]]:
    """Make `module.SyncNetInstance` run on CPU with `frames` (N, H, W, 3 BGR uint8) and `audio` (int16)."""
    calls: list[str] = []
    originals = (torch.nn.Module.cuda, torch.Tensor.cuda, module.subprocess)

    def stay(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self

    def call(command: str, *args: Any, **kwargs: Any) -> int:
        target = Path(command.split()[-1])
        if target.name == "audio.wav":
            wavfile.write(target, 16000, audio.astype(np.int16))
            calls.append(f"ffmpeg audio extraction -> {len(audio)} int16 samples written to audio.wav")
        elif re.fullmatch(r"%0\d+d\.jpg", target.name):
            width = int(target.name[2])
            for i, frame in enumerate(frames, start=1):
                (target.parent / f"{i:0{width}d}.jpg").write_bytes(cv2.imencode(".png", frame)[1].tobytes())
            calls.append(f"ffmpeg frame extraction -> {len(frames)} frames written losslessly")
        else:
            raise RuntimeError(f"unexpected command in the parity run: {command}")
        return 0

    torch.nn.Module.cuda, torch.Tensor.cuda = stay, stay
    module.subprocess = SimpleNamespace(call=call)
    try:
        yield calls
    finally:
        torch.nn.Module.cuda, torch.Tensor.cuda, module.subprocess = originals
