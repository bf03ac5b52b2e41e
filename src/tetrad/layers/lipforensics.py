"""Lip layer: LipForensics (Haliassos et al., CVPR 2021; ahaliassos/LipForensics@d0bf555, MIT), inference only.

Network (our own implementation; the module names give exactly upstream's state-dict keys, so the released
`lipforensics_ff.pth`, `{"model": state_dict}`, loads strictly): a 3D front-end (Conv3d 1->64, k=(5,7,7),
BatchNorm3d, PReLU, MaxPool3d) over greyscale mouth clips; a ResNet-18 trunk without stem applied frame by frame
(BasicBlocks with PReLU, 1x1-conv downsample, global average pool -> 512); a multi-scale TCN (4 blocks of 3
branches with kernels 3/5/7, dilation 1/2/4/8, non-causal symmetric chomp, 768 channels); the mean over time;
`tcn.tcn_output` Linear(768, 1). Hyper-parameters: upstream `models/configs/lrw_resnet18_mstcn.json`.

Input: the `mouths` cache (README "Mouth crops"): aligned 96x96 greyscale crops of every frame; clips of 25
consecutive frames from frame 0 without overlap (the remainder is dropped), centre-cropped to 88x88, /255,
normalised with mean 0.421 and std 0.165. One logit per clip, 1 = fake; the video score is sigmoid(mean of the
clip logits) (`spec.reduce` "mean_logit_sigmoid"), upstream ranks by the mean logit. A video with fewer than 25
frames has no clip and gets status too_short. Option `max_frames` keeps only the first N frames (upstream's
FF++ evaluation uses 110; CelebDF and DFDC all frames, the default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from tetrad.layers.base import Detector, DetectorSpec, Unit, load_checkpoint, load_strict
from tetrad.layers.calibrate import calibrate_head, fit_batchnorm, probe_images
from tetrad.layers.registry import register_detector
from tetrad.media import pixels
from tetrad.params import ConfigError, build
from tetrad.schemas import StatusError, scored
from tetrad.weights.catalog import WeightEntry

# The checkpoints this detector can load (read without importing this module by `tetrad weights`; literals only).
WEIGHTS = (
    WeightEntry(
        name="lipforensics_ff", layer="lip", filename="lipforensics_ff.pth",
        licence="MIT (code); no separate licence stated for the weights",
        manual="LipForensics' FF++ checkpoint lipforensics_ff.pth is on Google Drive and cannot be downloaded "
        "automatically. Open https://drive.google.com/file/d/1wfZnxZpyNd5ouJs0LjVls7zU0N_W73L7/view in a browser "
        "(or run `gdown 1wfZnxZpyNd5ouJs0LjVls7zU0N_W73L7 -O lipforensics_ff.pth`), save it as "
        "lipforensics_ff.pth, then run `tetrad weights import DIR` on the folder holding it.",
        source="ahaliassos/LipForensics@d0bf555:README.md (Google Drive 1wfZnxZpyNd5ouJs0LjVls7zU0N_W73L7)",
    ),
)


MEAN, STD = 0.421, 0.165
CROP = 88


@dataclass(frozen=True)
class LipArch:
    frontend: int = 64  # front-end channels (= trunk input)
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)  # ResNet-18 stages
    hidden: int = 256  # TCN channels per branch (x 3 branches)
    kernels: tuple[int, ...] = (3, 5, 7)
    tcn_layers: int = 4
    dropout: float = 0.2


ARCHS = {"full": LipArch(), "tiny": LipArch(frontend=8, widths=(8, 8, 16, 16), hidden=4)}


@dataclass(frozen=True)
class LipOptions:
    clip_frames: int = 25  # frames per clip (upstream --frames_per_clip)
    max_frames: int | None = None  # score only the first N frames (upstream FF++ eval: 110)

    def __post_init__(self) -> None:
        if self.clip_frames < 1:
            raise ConfigError(f"layer.lip.options.clip_frames: must be >= 1, got {self.clip_frames}")
        if self.max_frames is not None and self.max_frames < self.clip_frames:
            raise ConfigError(f"layer.lip.options.max_frames: {self.max_frames} is shorter than one clip")


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.PReLU(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.PReLU(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + (x if self.downsample is None else self.downsample(x)))


class Trunk(nn.Module):
    """ResNet-18 without its stem: (N, frontend, H, W) -> (N, widths[-1])."""

    def __init__(self, c_in: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            self.add_module(f"layer{i + 1}", nn.Sequential(BasicBlock(c_in, width, stride),
                                                           BasicBlock(width, width, 1)))
            c_in = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
        return self.avgpool(x).flatten(1)


class ConvBranch(nn.Module):
    """Dilated Conv1d, BatchNorm, a symmetric trim of the padding (length kept), PReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.trim = (kernel - 1) * dilation // 2
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=(kernel - 1) * dilation, dilation=dilation)
        self.batchnorm = nn.BatchNorm1d(c_out)
        self.non_lin = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.batchnorm(self.conv(x))
        return self.non_lin(out[:, :, self.trim:out.shape[2] - self.trim] if self.trim else out)


class TemporalBlock(nn.Module):
    """Two multi-branch stages (branch outputs concatenated), dropout, a 1x1 residual projection, PReLU."""

    def __init__(self, c_in: int, c_out: int, kernels: tuple[int, ...], dilation: int, dropout: float) -> None:
        super().__init__()
        self.n = len(kernels)
        for stage, width_in in ((0, c_in), (1, c_out)):
            for k, kernel in enumerate(kernels):
                self.add_module(f"cbcr{stage}_{k}", ConvBranch(width_in, c_out // self.n, kernel, dilation))
        self.dropout0 = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        # upstream projects whenever c_in // branches != c_out, which holds for every block of this config
        self.downsample = nn.Conv1d(c_in, c_out, 1) if c_in // self.n != c_out else None
        self.relu_final = nn.PReLU(c_out)

    def _stage(self, stage: int, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, f"cbcr{stage}_{k}")(x) for k in range(self.n)], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout1(self._stage(1, self.dropout0(self._stage(0, x))))
        return self.relu_final(out + (x if self.downsample is None else self.downsample(x)))


class MultiscaleTCN(nn.Module):
    def __init__(self, network: nn.Sequential) -> None:
        super().__init__()
        self.network = network


class TCNHead(nn.Module):
    def __init__(self, arch: LipArch, c_in: int) -> None:
        super().__init__()
        width = arch.hidden * len(arch.kernels)
        blocks = [TemporalBlock(c_in if i == 0 else width, width, arch.kernels, 2 ** i, arch.dropout)
                  for i in range(arch.tcn_layers)]
        self.mb_ms_tcn = MultiscaleTCN(nn.Sequential(*blocks))
        self.tcn_output = nn.Linear(width, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, width): the TCN, then the mean over time (all clips are full length)."""
        return self.mb_ms_tcn.network(x.transpose(1, 2)).mean(2)


class LipNet(nn.Module):
    """(B, 1, T, 88, 88) normalised greyscale clips -> (B, 1) logits (1 = fake), upstream's parameter names."""

    def __init__(self, arch: LipArch) -> None:
        super().__init__()
        self.arch = arch
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, arch.frontend, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False),
            nn.BatchNorm3d(arch.frontend),
            nn.PReLU(arch.frontend),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        self.trunk = Trunk(arch.frontend, arch.widths)
        self.tcn = TCNHead(arch, arch.widths[-1])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.frontend3D(x)
        b, c, t, h, w = x.shape
        x = self.trunk(x.transpose(1, 2).reshape(b * t, c, h, w))
        return self.tcn.features(x.view(b, t, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tcn.tcn_output(self.embed(x))


def mouth_clips(video_id: str, rows: pd.DataFrame, clip_frames: int, max_frames: int | None) -> list[Unit]:
    """Non-overlapping clips of consecutive frames from frame 0; the remainder is dropped (upstream's sampler)."""
    ok, starts = clip_plan(video_id, rows, clip_frames, max_frames)
    encodings = ok["encoding"] if "encoding" in ok else [None] * len(ok)
    frames = np.stack([pixels.decode(b, (int(h), int(w), 1), e)[..., 0] for b, h, w, e in
                       zip(ok["image"], ok["height"], ok["width"], encodings)])
    pts, idx = ok["pts_s"].to_numpy(), ok["frame_idx"].to_numpy()
    return [Unit(video_id, c, float(pts[s]), float(pts[s + clip_frames - 1]), frames[s:s + clip_frames],
                 frame_idx=int(idx[s])) for c, s in enumerate(starts)]


def clip_plan(video_id: str, rows: pd.DataFrame, clip_frames: int,
              max_frames: int | None) -> tuple[pd.DataFrame, list[int]]:
    """The rows the clips read (ok, in frame order, capped at `max_frames`) and each clip's first position among
    them. It reads only status and frame_idx, so `count_units` counts by it without decoding a pixel."""
    ok = rows[scored(rows["status"])].sort_values("frame_idx")
    if max_frames is not None:
        ok = ok.iloc[:max_frames]
    n = len(ok)
    if n < clip_frames:
        raise StatusError("too_short", f"{video_id}: {n} mouth frames, fewer than one {clip_frames}-frame clip")
    idx = ok["frame_idx"].to_numpy()
    if not np.array_equal(idx, np.arange(idx[0], idx[0] + n)):
        raise StatusError("error", f"{video_id}: mouth frames are not consecutive in the cache")
    return ok, list(range(0, n - clip_frames + 1, clip_frames))


@register_detector
class LipForensicsDetector(Detector):
    spec = DetectorSpec(
        name="lipforensics_rn18_mstcn",
        layer="lip",
        input_kind="mouths",
        reduce="mean_logit_sigmoid",
        label="one logit per 25-frame clip, 1 = fake; video P(fake) = sigmoid(mean clip logit)",
        weights={"model": "lipforensics_ff"},
        checkpoint_format='{"model": state_dict}: frontend3D.*, trunk.layer1-4.*, tcn.mb_ms_tcn.network.0-3.*, '
                          "tcn.tcn_output.*; no module. prefix",
        upstream="ahaliassos/LipForensics@d0bf555",
        licence="MIT (code); no separate licence stated for the weights",
        paper="Lips Don't Lie: A Generalisable and Robust Approach to Face Forgery Detection (CVPR 2021)",
        input_size=(1, 25, CROP, CROP),
        normalisation="greyscale/255, centre crop 88, mean 0.421, std 0.165",
    )
    options_type = LipOptions
    count_columns = ("status", "frame_idx")

    def __init__(self, arch: LipArch, options: LipOptions) -> None:
        super().__init__()
        self.net = LipNet(arch)
        self.options = options

    @classmethod
    def from_weights(cls, weights: Mapping[str, Path], variant: str,
                     options: Mapping[str, Any]) -> LipForensicsDetector:
        detector = cls(ARCHS[variant], build(LipOptions, dict(options), "layer.lip.options"))
        path = Path(weights["model"])
        load_strict(detector.net, load_checkpoint(path, key="model"), path)
        return detector

    def make_units(self, rows: pd.DataFrame) -> list[Unit]:
        return mouth_clips(str(rows["video_id"].iloc[0]), rows, self.options.clip_frames, self.options.max_frames)

    def count_units(self, rows: pd.DataFrame) -> int:
        return len(clip_plan(str(rows["video_id"].iloc[0]), rows, self.options.clip_frames,
                             self.options.max_frames)[1])

    def preprocess(self, units: list[Unit]) -> torch.Tensor:
        clips = torch.from_numpy(np.stack([u.data for u in units])).float() / 255.0  # (B, T, H, W)
        h, w = clips.shape[-2:]
        top, left = int(round((h - CROP) / 2.0)), int(round((w - CROP) / 2.0))  # torchvision's CenterCrop
        clips = clips[..., top:top + CROP, left:left + CROP]
        return ((clips - MEAN) / STD).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)

    @classmethod
    def write_demo_weights(cls, slot: str, path: Path, variant: str, seed: int) -> None:
        if slot != "model":
            raise KeyError(f"{cls.spec.name} has no weight slot {slot!r}")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = LipNet(ARCHS[variant])
            probes = ((probe_images(4 * 25, CROP, 1, seed) - MEAN) / STD).view(4, 25, 1, CROP, CROP)
            probes = probes.transpose(1, 2).contiguous()
            fit_batchnorm(net, probes)
            with torch.no_grad():
                hidden = net.embed(probes)
            calibrate_head(net.tcn.tcn_output, hidden, seed)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": net.state_dict()}, path)
