"""Adding a detector is one module, one conf file and one import line (README, "Adding a detector"): a toy fifth
detector written the way the README tells a user, outside the package, runs through detect and aggregate.

The module and the conf live under a temporary directory; the import line is the one a user adds to
`src/tetrad/layers/__init__.py`, executed here since the module is not inside the package. Nothing else of the
repository is edited: the stages run in-process on a copy of `conf/` plus the new conf file.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from tetrad.params import compose_params
from tetrad.layers.registry import DETECTORS
from tetrad.params import load_params
from tetrad.stages import aggregate, detect, extract, manifest
from tetrad.weights import catalog

ROOT = Path(__file__).resolve().parents[1]

TOY_MODULE = '''
"""A toy audio detector: one linear unit on the log energy of 1-second windows."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tetrad.layers import Detector, DetectorSpec, register_detector
from tetrad.layers.base import load_checkpoint, load_strict
from tetrad.layers.units import AUDIO_COUNT_COLUMNS, audio_windows, window_starts
from tetrad.weights.catalog import WeightEntry

WEIGHTS = (
    WeightEntry(name="toy_energy", layer="audio", filename="toy_energy.pth",
                manual="A toy: `tetrad demo-weights` writes it.", licence="MIT"),
)


@register_detector
class ToyEnergy(Detector):
    spec = DetectorSpec(name="toy_energy", layer="audio", input_kind="audio", reduce="mean_prob",
                        label="logit = w * log-energy + b", weights={"model": "toy_energy"},
                        checkpoint_format="state dict {linear.weight, linear.bias}", upstream="none",
                        licence="MIT", paper="none")

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    @classmethod
    def from_weights(cls, weights: Mapping[str, Path], variant: str, options: Mapping[str, Any]) -> "ToyEnergy":
        model = cls()
        load_strict(model, load_checkpoint(Path(weights["model"])), Path(weights["model"]))
        return model

    @classmethod
    def write_demo_weights(cls, slot: str, path: Path, variant: str, seed: int) -> None:
        torch.manual_seed(seed)
        torch.save(cls().state_dict(), path)

    def make_units(self, rows):
        row = rows.iloc[0]
        wave = np.asarray(row["waveform"], dtype=np.float32)
        return audio_windows(str(row["video_id"]), wave, int(row["sample_rate"]), 1.0, 0.5)

    count_columns = AUDIO_COUNT_COLUMNS  # one window per second: counted from the clip's length, not its samples

    def count_units(self, rows):
        row = rows.iloc[0]
        return len(window_starts(str(row["video_id"]), int(row["num_samples"]), int(row["sample_rate"]), 1.0,
                                 0.5)[0])

    def preprocess(self, units):
        energy = [np.log(np.mean(u.data.astype(np.float64) ** 2) + 1e-9) for u in units]
        return torch.tensor(energy, dtype=torch.float32)[:, None]

    def forward(self, x):
        return self.linear(x)[:, 0]
'''

TOY_CONF = """detector: toy_energy
input: audio
weights:
  model: toy_energy
variant: full
batch_size: 8
device: cpu
options: {}
"""


@pytest.fixture()
def toy_detector(tmp_path, monkeypatch):
    """The user's module, imported by its one import line; unregistered afterwards."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "toy_energy.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.setattr(catalog, "_RUNTIME", dict(catalog._RUNTIME))  # the toy's WEIGHTS leave with the test
    importlib.import_module("toy_energy")  # the import line
    yield
    DETECTORS.remove("toy_energy")
    sys.modules.pop("toy_energy", None)


def test_a_toy_fifth_detector_runs_through_detect_and_aggregate(toy_detector, mini_root, tmp_path, caplog):
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    (conf / "layer" / "audio" / "toy_energy.yaml").write_text(TOY_CONF)  # the conf file
    overrides = ["layer/audio=toy_energy", "~layer/visual", "~layer/lip", "~layer/semantic", "~layer/sync",
                 "extract.kinds=[audio]", "extract.workers=1", f"datasets.mini.root={mini_root}",
                 f"weights.dir={tmp_path / 'weights'}", "mlflow.enabled=false", "aggregate.bootstrap=20"]
    params = load_params(compose_params(tmp_path / "params.yaml", overrides, conf))
    assert list(params.layer) == ["audio"] and params.layer["audio"].detector == "toy_energy"
    manifest.run(params, "mini", tmp_path)
    extract.run(params, "mini", tmp_path)
    scores = detect.run(params, "mini", "audio", tmp_path)
    metrics = aggregate.run(params, "mini", tmp_path)

    assert (tmp_path / "weights/audio/demo-random/toy_energy.pth").is_file()  # declared in the module, found
    assert set(scores["detector"]) == {"toy_energy"} and scores["p_fake"].notna().sum() > 20
    assert "more than its count_units counted" not in caplog.text  # the progress total was exact
    audio = metrics["layers"]["audio"]
    assert audio["detector"] == "toy_energy" and audio["weights"] == "demo-random" and audio["auc"] is not None
    videos = pd.read_parquet(tmp_path / "reports/mini/videos.parquet").set_index("video_id")
    assert len(videos) == 30 and videos.loc["faulty/no_audio", "audio_status"] == "no_audio"
