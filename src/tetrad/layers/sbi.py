"""Visual layer: Self-Blended Images (Shiohara & Yamasaki, CVPR 2022; mapooon/SelfBlendedImages@9fe4efe).

Network: efficientnet_pytorch 0.7.1 EfficientNet-B4 with a 2-class head, held as `self.net`, so the state-dict
keys are upstream's `Detector` keys (`net._conv_stem.weight` ... `net._fc.bias`). Built with `from_name`
(upstream's `from_pretrained` downloads ImageNet weights that the checkpoint then overwrites). Checkpoint:
`FFc23.tar` / `FFraw.tar`, `torch.save({"model": state_dict, "optimizer": ..., "epoch": ...})`; only `"model"`
is read, strictly.

Input: the `faces` cache (README "Face crops"): 380x380 RGB uint8 crops of every face with at least half the
largest area in each of 32 uniformly spaced frames, 1/8 margin; scaled to [0, 1] with no mean/std. Class 1 =
fake: logit = l1 - l0, so sigmoid(logit) = softmax[:, 1] = upstream's P(fake). Video score: the max over the faces
of each frame, then the mean over the frames that have a face (faceless frames are excluded and counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from efficientnet_pytorch import EfficientNet

from tetrad.layers.base import Detector, DetectorSpec, Unit, load_checkpoint, load_strict
from tetrad.layers.calibrate import calibrate_head, fit_batchnorm, probe_images
from tetrad.layers.registry import register_detector
from tetrad.layers.units import image_units
from tetrad.weights.catalog import WeightEntry

# The checkpoints this detector can load (read without importing this module by `tetrad weights`; literals only).
WEIGHTS = (
    WeightEntry(
        name="sbi_ffc23", layer="visual", filename="FFc23.tar",
        licence="research-only (SBI licence: non-commercial research use)", aliases=("sbi_FFc23.tar",),
        manual="SBI's FF++ c23 checkpoint FFc23.tar is on Google Drive and cannot be downloaded automatically. "
        "Open https://drive.google.com/file/d/1X0-NYT8KPursLZZdxduRQju6E52hauV0/view in a browser (or run "
        "`gdown 1X0-NYT8KPursLZZdxduRQju6E52hauV0 -O FFc23.tar`), save it as FFc23.tar, then run "
        "`tetrad weights import DIR` on the folder holding it. Licence: SBI's code and weights are for academic "
        "or non-profit non-commercial research only; commercial use needs an agreement with the authors.",
        source="mapooon/SelfBlendedImages@9fe4efe:README.md (Google Drive 1X0-NYT8KPursLZZdxduRQju6E52hauV0)",
    ),
    WeightEntry(
        name="sbi_ffraw", layer="visual", filename="FFraw.tar",
        licence="research-only (SBI licence: non-commercial research use)", aliases=("sbi_FFraw.tar",),
        manual="SBI's FF++ raw checkpoint FFraw.tar is on Google Drive and cannot be downloaded automatically. "
        "Open https://drive.google.com/file/d/12sLyqBp0VFwdpA-oZLdIOkOTkz_ZnIhV/view in a browser (or run "
        "`gdown 12sLyqBp0VFwdpA-oZLdIOkOTkz_ZnIhV -O FFraw.tar`), save it as FFraw.tar, then run "
        "`tetrad weights import DIR` on the folder holding it. Licence: SBI's code and weights are for academic "
        "or non-profit non-commercial research only; commercial use needs an agreement with the authors.",
        source="mapooon/SelfBlendedImages@9fe4efe:README.md (Google Drive 12sLyqBp0VFwdpA-oZLdIOkOTkz_ZnIhV)",
    ),
)


INPUT_SIZE = 380
# The tiny test variant: same module tree (block and key names), narrow and shallow.
VARIANTS: dict[str, dict[str, Any]] = {"full": {}, "tiny": {"width_coefficient": 0.1, "depth_coefficient": 0.1}}


def build_net(variant: str) -> EfficientNet:
    return EfficientNet.from_name("efficientnet-b4", num_classes=2, image_size=INPUT_SIZE, **VARIANTS[variant])


@register_detector
class SBIDetector(Detector):
    spec = DetectorSpec(
        name="sbi_effb4",
        layer="visual",
        input_kind="faces",
        reduce="max_face_mean_frame",
        label="upstream logits [l0 real, l1 fake]; logit = l1 - l0, P(fake) = sigmoid(logit) = softmax[:, 1]",
        weights={"model": "sbi_ffc23"},
        checkpoint_format='{"model": Detector.state_dict(), ...}: keys net._conv_stem.weight ... net._fc.bias [2]',
        upstream="mapooon/SelfBlendedImages@9fe4efe",
        licence="research-only (SBI licence); efficientnet_pytorch Apache-2.0",
        paper="Detecting Deepfakes with Self-Blended Images (CVPR 2022)",
        input_size=(3, INPUT_SIZE, INPUT_SIZE),
        normalisation="RGB/255, no mean/std",
    )

    def __init__(self, variant: str) -> None:
        super().__init__()
        self.net = build_net(variant)

    @classmethod
    def from_weights(cls, weights: Mapping[str, Path], variant: str, options: Mapping[str, Any]) -> SBIDetector:
        if options:
            raise ValueError(f"layer.visual.options: sbi_effb4 takes no options, got {sorted(options)}")
        detector = cls(variant)
        path = Path(weights["model"])
        load_strict(detector, load_checkpoint(path, key="model"), path)
        return detector

    def make_units(self, rows: pd.DataFrame) -> list[Unit]:
        return image_units(str(rows["video_id"].iloc[0]), rows)

    def preprocess(self, units: list[Unit]) -> torch.Tensor:
        shapes = {u.data.shape for u in units}
        if shapes != {(INPUT_SIZE, INPUT_SIZE, 3)}:  # static same-padding is computed for 380x380
            raise ValueError(f"sbi_effb4 needs {INPUT_SIZE}x{INPUT_SIZE} RGB crops, got {sorted(shapes)}")
        return torch.from_numpy(np.stack([u.data for u in units])).permute(0, 3, 1, 2).float() / 255.0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Upstream's output: [B, 2], class 1 = fake."""
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        return logits[:, 1] - logits[:, 0]

    @classmethod
    def write_demo_weights(cls, slot: str, path: Path, variant: str, seed: int) -> None:
        if slot != "model":
            raise KeyError(f"{cls.spec.name} has no weight slot {slot!r}")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            detector = cls(variant)
            net = detector.net
            probes = probe_images(8, INPUT_SIZE, 3, seed)
            fit_batchnorm(net, probes)
            with torch.no_grad():
                hidden = net._avg_pooling(net.extract_features(probes)).flatten(1)
            calibrate_head(net._fc, hidden, seed, two_logits=True)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": detector.state_dict(), "optimizer": {}, "epoch": 0}, path)
