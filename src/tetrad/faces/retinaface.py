"""RetinaFace (Deng et al., CVPR 2020), ResNet-50 body, as ternaus/retinaface@b72317d (pip `retinaface_pytorch`
0.0.8) ships it: the face detector upstream SBI crops with (`get_model("resnet50_2020-07-20", max_size=2048)`).

Network: torchvision's ResNet-50 up to layer4 (layers 2-4 feed a 3-level FPN), one SSH context module per level,
and 1x1 class / box / landmark heads with 2 anchors per cell. Module names are upstream's, so the state-dict keys
are the release's (`body.layer2.0.conv1.weight`, `fpn.merge1.1.running_var`, `ssh3.conv7x7_3.0.weight`,
`LandmarkHead.2.conv1x1.bias`, ...).

Checkpoint: the release `retinaface_resnet50_2020-07-20-f168fae3c.zip` is a zip holding one torch-saved state
dict, the format torch hub extracts before loading. It is read here without extracting (`weights_only=True`, on
the CPU) and loaded with torch's strictness; a plain torch-saved state dict (`.pth`) is accepted as well.

Inference follows upstream's `Model.predict_jsons`, batched over frames of one size (one forward per batch):
1. Resize so the longer side is `max_size`, up or down (albumentations 1.0.0 `LongestMaxSize`: the new sides are
   `round(side * max_size / longer)`, half to even, cv2 INTER_LINEAR). No padding: the network runs at that size
   and the priors are laid out for it.
2. ImageNet normalisation in float32, as albumentations' `Normalize`: `(x - 255 * mean) * (1 / (255 * std))`.
3. Priors of sizes 16/32, 64/128, 256/512 px at steps 8/16/32 (unclipped), decoded with variances 0.1/0.2.
4. Faces with a softmax score strictly above `confidence`; torchvision's NMS at IoU `nms` in resized pixels, so
   the faces come out highest score first.
5. Boxes and points scaled back by original height / resized height (upstream uses the height ratio for x too).
6. Upstream's clipping loop only decides which boxes to drop (one starting at or after the last pixel column or
   row); boxes are returned unclipped. Boxes and points are rounded to 2 decimals. Upstream rounds the score to
   2 decimals too; `Face.score` keeps the full probability (upstream's is `round(score, 2)`).

Demo-random weights (`write_demo_weights`, written by `write_demo_checkpoint` into the weights cache's
`face/demo-random/` when no real file exists and demo weights are allowed), in the release's exact format. Plain
random weights are degenerate for a detector (no prior passes 0.7, or all do), and a random face direction on the
coarse level, calibrated so a few priors pass on one picture, still finds 0-2 faces at 128 px and 20-50 at
1024 px (measured): the count grows with the picture's area. So the demo network is built to find the same small
number everywhere: a seeded random network with BatchNorm statistics fitted on one generated picture; class
biases of -30 on the two fine levels (no small prior ever passes); on the coarse level, a position signal made
from the convs' zero padding (one fpn.output3 channel held at 1, one ssh3 channel summing the top row and left
column of a 3x3 kernel over it) that only the top-left cell carries, plus a small picture-dependent term, so
exactly that cell's two priors (256 and 512 px) pass, with scores that vary with the picture (about 0.8-1.0);
small box and landmark heads move those boxes half a prior into the frame and put 5 face-like points in them.
Every frame then gets 1-2 nested faces at its top-left, at any size. `crowded=True` gives the parity variant:
no pin, a random coarse face direction, so dozens of priors pass on large pictures and NMS has work to do.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import nms as torchvision_nms

from tetrad import weights as wm
from tetrad.errors import UserError
from tetrad.faces.base import Face, FaceDetector, register_face_detector
from tetrad.randinit import fit_batchnorm
from tetrad.weights.catalog import WeightEntry

# The checkpoint this detector loads (read without importing this module by `tetrad weights`; literals only).
# Upstream pins no sha256: its file name ends in "-f168fae3c", the first hex digits of the file's sha256 by torch
# hub's `check_hash` convention, but `get_model` loads it with check_hash=False. The prefix is checked on load
# (a warning, since upstream itself would load the file); the full digest could not be checked here (no copy).
WEIGHTS = (
    WeightEntry(
        name="retinaface_resnet50", layer="face", filename="retinaface_resnet50_2020-07-20-f168fae3c.zip",
        url="https://github.com/ternaus/retinaface/releases/download/0.01/"
        "retinaface_resnet50_2020-07-20-f168fae3c.zip",
        licence="MIT (ternaus/retinaface)",
        source="ternaus/retinaface@b72317d:retinaface/pre_trained_models.py (resnet50_2020-07-20)",
    ),
)

log = logging.getLogger(__name__)

ENTRY = "retinaface_resnet50"
MIN_SIZES = ((16, 32), (64, 128), (256, 512))  # prior sides in resized pixels, per level
STEPS = (8, 16, 32)  # strides of layer2/3/4
VARIANCES = (0.1, 0.2)  # centre and size encodings
MEAN = (0.485, 0.456, 0.406)  # ImageNet, as albumentations' Normalize defaults
STD = (0.229, 0.224, 0.225)
ROUNDING_DIGITS = 2
HUB_HASH = re.compile(r"-([a-f0-9]*)\.")  # torch hub: the hex digits before the first dot after a hyphen
CHANNELS = 256  # FPN / SSH width of the resnet50 model


class CheckpointError(UserError, RuntimeError):
    """A RetinaFace checkpoint is unreadable or does not match the network; the message names the file."""


# --------------------------------------------------------------------------------------------------- network


def _conv_bn(cin: int, cout: int, kernel: int, relu: bool) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ ReLU): upstream's `conv_bn*` blocks (their LeakyReLU has slope 0 at 256
    channels, which is ReLU); index 0 is the conv and 1 the norm, as the state-dict keys need."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class FPN(nn.Module):
    """1x1 lateral convs to 256 channels; the coarser map is upsampled (nearest) and added, then a 3x3 merge."""

    def __init__(self, in_channels: tuple[int, ...], out: int) -> None:
        super().__init__()
        self.output1, self.output2, self.output3 = (_conv_bn(c, out, 1, True) for c in in_channels)
        self.merge1 = _conv_bn(out, out, 3, True)
        self.merge2 = _conv_bn(out, out, 3, True)

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        fine, mid, coarse = self.output1(maps[0]), self.output2(maps[1]), self.output3(maps[2])
        mid = self.merge2(mid + F.interpolate(coarse, size=mid.shape[-2:], mode="nearest"))
        fine = self.merge1(fine + F.interpolate(mid, size=fine.shape[-2:], mode="nearest"))
        return [fine, mid, coarse]


class SSH(nn.Module):
    """Single-stage context module: 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) branches, concatenated, ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half, quarter = channels // 2, channels // 4
        self.conv3X3 = _conv_bn(channels, half, 3, False)
        self.conv5X5_1 = _conv_bn(channels, quarter, 3, True)
        self.conv5X5_2 = _conv_bn(quarter, quarter, 3, False)
        self.conv7X7_2 = _conv_bn(quarter, quarter, 3, True)
        self.conv7x7_3 = _conv_bn(quarter, quarter, 3, False)  # lower-case x: upstream's key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.conv5X5_1(x)
        branches = [self.conv3X3(x), self.conv5X5_2(shared), self.conv7x7_3(self.conv7X7_2(shared))]
        return F.relu(torch.cat(branches, dim=1))


class Head(nn.Module):
    """A 1x1 conv giving `width` numbers per anchor, laid out [batch, cell (row-major) * anchor, width]."""

    def __init__(self, channels: int, width: int, anchors: int = 2) -> None:
        super().__init__()
        self.width = width
        self.conv1x1 = nn.Conv2d(channels, anchors * width, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return out.view(out.shape[0], -1, self.width)


class RetinaFaceNet(nn.Module):
    """The resnet50 RetinaFace of the release; forward gives (box offsets, class logits, landmark offsets)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = IntermediateLayerGetter(resnet50(weights=None), {"layer2": 1, "layer3": 2, "layer4": 3})
        self.fpn = FPN((512, 1024, 2048), CHANNELS)
        self.ssh1, self.ssh2, self.ssh3 = SSH(CHANNELS), SSH(CHANNELS), SSH(CHANNELS)
        self.ClassHead = nn.ModuleList(Head(CHANNELS, 2) for _ in STEPS)
        self.BboxHead = nn.ModuleList(Head(CHANNELS, 4) for _ in STEPS)
        self.LandmarkHead = nn.ModuleList(Head(CHANNELS, 10) for _ in STEPS)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The SSH output of each level (strides 8, 16, 32)."""
        levels = self.fpn(list(self.body(x).values()))
        return [ssh(level) for ssh, level in zip((self.ssh1, self.ssh2, self.ssh3), levels)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        loc = torch.cat([head(f) for head, f in zip(self.BboxHead, feats)], dim=1)
        conf = torch.cat([head(f) for head, f in zip(self.ClassHead, feats)], dim=1)
        landmarks = torch.cat([head(f) for head, f in zip(self.LandmarkHead, feats)], dim=1)
        return loc, conf, landmarks


# --------------------------------------------------------------------------------------------------- geometry


def resized_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """(height, width) after LongestMaxSize: Python's round (half to even), as albumentations 1.0.0's py3round."""
    scale = max_size / float(max(width, height))
    if scale == 1.0:
        return height, width
    return round(height * scale), round(width * scale)


def resize_longest(frame: np.ndarray, max_size: int) -> np.ndarray:
    """The frame with its longer side at `max_size` (up or down), cv2 INTER_LINEAR; unchanged when it already is."""
    height, width = frame.shape[:2]
    new_h, new_w = resized_size(height, width, max_size)
    if (new_h, new_w) == (height, width):
        return frame
    return cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)


def normalise(batch: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, 3] RGB -> float32 [N, 3, H, W], with albumentations' float32 constants and op order (so the
    values are bit-identical to its `Normalize`, on any device)."""
    mean = torch.tensor(np.float32(MEAN) * np.float32(255), device=batch.device)
    scale = torch.tensor(np.reciprocal(np.float32(STD) * np.float32(255)), device=batch.device)
    x = (batch.float() - mean) * scale
    return x.permute(0, 3, 1, 2).contiguous()


def priors(height: int, width: int) -> torch.Tensor:
    """[n, 4] float32 (cx, cy, w, h) relative to the resized image: levels in order, cells row-major, then the
    two sizes of the level; computed in float64 like upstream's Python floats, never clipped."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy = (np.arange(rows, dtype=np.float64) + 0.5) * step / height
        cx = (np.arange(cols, dtype=np.float64) + 0.5) * step / width
        grid = np.empty((rows, cols, len(sizes), 4))
        grid[..., 0] = cx[None, :, None]
        grid[..., 1] = cy[:, None, None]
        grid[..., 2] = np.array(sizes, dtype=np.float64) / width
        grid[..., 3] = np.array(sizes, dtype=np.float64) / height
        out.append(grid.reshape(-1, 4))
    return torch.from_numpy(np.concatenate(out)).float()


def decode_boxes(loc: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """[n, 4] offsets -> (x0, y0, x1, y1) relative to the image (upstream's op order, for identical floats)."""
    centre = prior[:, :2] + loc[:, :2] * VARIANCES[0] * prior[:, 2:]
    size = prior[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    corner = centre - size / 2
    return torch.cat([corner, size + corner], dim=1)


def decode_points(pre: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """[n, 10] offsets -> 5 (x, y) points relative to the image."""
    offsets = pre.view(-1, 5, 2) * VARIANCES[0] * prior[:, None, 2:]
    return (prior[:, None, :2] + offsets).reshape(-1, 10)


def kept_by_upstream(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Upstream's clipping loop drops a box when its clipped x0 >= clipped x1 (or y): with
    `x1c = clip(x1, x0c + 1, W - 1)` that happens exactly when x0 >= W - 1 (np.clip returns the upper bound when
    the bounds cross), so a box starting at or after the last column (or row) is dropped; nothing else is."""
    return (boxes[:, 0] < width - 1) & (boxes[:, 1] < height - 1)


# --------------------------------------------------------------------------------------------------- checkpoint


def _is_release_zip(path: Path) -> bool:
    """torch hub's "legacy zip": a zip holding exactly one file (a torch.save file is a zip of many entries)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        members = zf.infolist()
    return len(members) == 1 and not members[0].is_dir()


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """The state dict in a release `.zip` or a plain `.pth`, read safely (weights_only, CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: RetinaFace checkpoint not found")
    try:
        if _is_release_zip(path):
            with zipfile.ZipFile(path) as zf:
                source: Path | io.BytesIO = io.BytesIO(zf.read(zf.infolist()[0]))
        else:
            source = path
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and zipfile raise many types for truncated or foreign files
        raise CheckpointError(f"{path}: cannot read a RetinaFace checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def _head(items: list[str], n: int = 6) -> str:
    return "[" + ", ".join(items[:n]) + (", ..." if len(items) > n else "") + "]"


def load_into(net: nn.Module, state: dict[str, torch.Tensor], path: Path | str) -> None:
    """Load with torch's strict rules (upstream's `load_state_dict`); the error names the file and the keys."""
    own = net.state_dict()
    shapes = [f"{k}: file {tuple(v.shape)} vs network {tuple(own[k].shape)}"
              for k, v in state.items() if k in own and v.shape != own[k].shape]
    if shapes:
        raise CheckpointError(f"{path}: {len(shapes)} tensors have the wrong shape for RetinaFace resnet50: "
                              f"{_head(shapes)}")
    result = net.load_state_dict(state, strict=False)  # what a strict load would refuse is checked right here
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{path}: not a RetinaFace resnet50 state dict: {len(result.missing_keys)} missing keys "
            f"{_head(result.missing_keys)}, {len(result.unexpected_keys)} unexpected keys "
            f"{_head(result.unexpected_keys)}")


def load_network(path: Path | str) -> RetinaFaceNet:
    """The network with the checkpoint's weights, in eval mode, on the CPU."""
    net = RetinaFaceNet()
    load_into(net, read_state_dict(path), path)
    return net.eval()


def write_checkpoint(state: dict[str, torch.Tensor], path: Path | str,
                     member: str = "retinaface_resnet50.pth") -> None:
    """A state dict in the release format: a zip holding one torch-saved file (any name: torch hub takes the one
    member there is)."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(member, buffer.getvalue())


def check_hub_hash(path: Path, sha256: str) -> bool:
    """torch hub's check_hash rule: the hex digits in the file name must begin the file's sha256. Upstream loads
    with check_hash=False, so a mismatch is only a warning. True when the name carries no digits or they match."""
    match = HUB_HASH.search(path.name)
    if match is None or not match.group(1) or sha256.startswith(match.group(1)):
        return True
    log.warning("%s: sha256 %s does not start with %s, the hash prefix in its name (torch hub's convention); "
                "is this the release file?", path, sha256, match.group(1))
    return False


# --------------------------------------------------------------------------------------------------- demo weights


def calibration_image(seed: int = 0, height: int = 360, width: int = 480) -> np.ndarray:
    """A seeded RGB picture: a smooth random background and one face-like ellipse with eyes and a mouth."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 216, (6, 8, 3)).astype(np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image.astype(np.int16) + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)
    cx, cy, ax = width // 2, height // 2, height // 5
    cv2.ellipse(image, (cx, cy), (ax, int(ax * 1.3)), 0, 0, 360, (224, 172, 140), -1)
    for dx in (-ax // 2, ax // 2):
        cv2.circle(image, (cx + dx, cy - ax // 3), max(2, ax // 8), (40, 30, 30), -1)
    cv2.ellipse(image, (cx, cy + ax // 2), (ax // 2, ax // 6), 0, 0, 360, (150, 60, 60), -1)
    return image


FACE_POINTS = ((-0.18, -0.12), (0.18, -0.12), (0.0, 0.05), (-0.14, 0.22), (0.14, 0.22))  # x, y / box side
FINE_LEVEL_BIAS = -30.0  # face-minus-background logit of the two fine levels: sigmoid(-30) ~ 1e-13
LOGIT_07 = math.log(0.7 / 0.3)  # the confidence threshold as a logit
CONSTANT_CHANNEL = 0  # fpn.output3 channel made 1 everywhere (the corner pin's input)
CORNER_CHANNEL = 0  # ssh3 channel that is 5 at the top-left cell, 3 on the top and left edges, 0 elsewhere
CORNER_GAIN = 3.0  # face logit per unit of the corner channel: corner 15, edges 9, inside 0
CORNER_MARGIN = 3.0  # the corner's face logit above logit(0.7) (edges sit 6 - 3 = 3 below it)
CONTENT_SPREAD = 0.4  # std of the picture-dependent part of the coarse face logit on the calibration picture
SHIFT = 5.0  # coarse box centre offset: 5 * 0.1 = half a prior side right and down, so corner boxes lie inside
CROWDED_PASSING = 3  # crowded variant: coarse priors above 0.7 on the calibration picture
CROWDED_SPREAD = 0.75  # crowded variant: std of the coarse face logit over the calibration priors


def _small_heads(net: RetinaFaceNet, gen: torch.Generator, shift: float) -> None:
    """Box and landmark heads with small random weights: boxes near their priors (coarse ones moved by `shift`),
    points in a face layout inside each box."""
    layout = torch.tensor(FACE_POINTS).flatten() / VARIANCES[0]
    for level, (box, mark) in enumerate(zip(net.BboxHead, net.LandmarkHead)):
        move = shift if level == len(STEPS) - 1 else 0.0
        for head, std in ((box.conv1x1, 0.02), (mark.conv1x1, 0.01)):
            head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * std)
        box.conv1x1.bias.copy_(torch.tensor([move, move, 0.0, 0.0]).repeat(2))
        mark.conv1x1.bias.copy_((layout + move).repeat(2))


def _silence_fine_levels(net: RetinaFaceNet) -> None:
    """Face logits of -30 on the stride-8 and stride-16 levels, whatever the picture."""
    for head in net.ClassHead[:2]:
        head.conv1x1.weight.mul_(0.01)
        head.conv1x1.bias.copy_(torch.tensor([0.0, FINE_LEVEL_BIAS]).repeat(2))


def _pin_corner(net: RetinaFaceNet) -> None:
    """A picture-independent signal at the top-left coarse cell, made from the convs' zero padding: one fpn.output3
    channel is the constant 1, and one ssh3 conv3X3 channel sums -1 over the top row and left column of its 3x3
    kernel on it: 0 at the corner cell (those taps read padding), -2 on the top and left edges, -5 elsewhere;
    its BatchNorm adds 5."""
    lateral, norm = net.fpn.output3[0], net.fpn.output3[1]
    lateral.weight[CONSTANT_CHANNEL] = 0.0
    norm.running_mean[CONSTANT_CHANNEL], norm.running_var[CONSTANT_CHANNEL] = 0.0, 1.0
    norm.weight[CONSTANT_CHANNEL], norm.bias[CONSTANT_CHANNEL] = 0.0, 1.0
    conv, bn = net.ssh3.conv3X3[0], net.ssh3.conv3X3[1]
    kernel = torch.zeros(3, 3)
    kernel[0, :], kernel[:, 0] = -1.0, -1.0
    conv.weight[CORNER_CHANNEL] = 0.0
    conv.weight[CORNER_CHANNEL, CONSTANT_CHANNEL] = kernel
    bn.running_mean[CORNER_CHANNEL], bn.running_var[CORNER_CHANNEL] = 0.0, 1.0 - bn.eps
    bn.weight[CORNER_CHANNEL], bn.bias[CORNER_CHANNEL] = 1.0, 5.0


def _face_logits(weight: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """Face-class logits (odd output channels) of a coarse class head weight on coarse features, flattened."""
    return F.conv2d(coarse, weight)[:, 1::2].flatten()


def _corner_classes(conv: nn.Conv2d, coarse: torch.Tensor, gen: torch.Generator) -> None:
    """Coarse face logit = CORNER_GAIN * corner channel + a small centred random picture term: only the corner
    cell's two priors pass 0.7, with scores that vary with the picture."""
    weight = torch.zeros(conv.weight.shape)
    weight[1::2] = torch.randn(weight[1::2].shape, generator=gen)
    weight[1::2, CORNER_CHANNEL] = 0.0
    content = _face_logits(weight, coarse)
    weight *= CONTENT_SPREAD / content.std().clamp_min(1e-6)
    centre = float(content.mean() * CONTENT_SPREAD / content.std().clamp_min(1e-6))
    weight[1::2, CORNER_CHANNEL] = CORNER_GAIN
    conv.weight.copy_(weight)
    corner = 5.0 * CORNER_GAIN
    conv.bias.copy_(torch.tensor([0.0, LOGIT_07 + CORNER_MARGIN - corner - centre]).repeat(2))


def _crowded_classes(conv: nn.Conv2d, coarse: torch.Tensor, gen: torch.Generator) -> None:
    """A random coarse face direction scaled to CROWDED_SPREAD, biased so CROWDED_PASSING priors of the
    calibration picture pass 0.7: many priors pass on larger or busier pictures, so NMS has work to do."""
    weight = torch.zeros(conv.weight.shape)
    weight[1::2] = torch.randn(weight[1::2].shape, generator=gen)
    weight *= CROWDED_SPREAD / _face_logits(weight, coarse).std().clamp_min(1e-6)
    kth = torch.topk(_face_logits(weight, coarse), CROWDED_PASSING).values[-1]
    conv.weight.copy_(weight)
    conv.bias.copy_(torch.tensor([0.0, float(LOGIT_07 + 0.25 - kth)]).repeat(2))


def demo_state_dict(seed: int = 0, crowded: bool = False, size: int = 480) -> dict[str, torch.Tensor]:
    """A non-degenerate random RetinaFace, deterministic for a seed (see the module docstring). `crowded`: the
    parity variant whose passing priors depend on the picture (dozens on large ones) instead of the corner pin."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = RetinaFaceNet()
    gen = torch.Generator().manual_seed(seed + 1)
    x = normalise(torch.from_numpy(resize_longest(calibration_image(seed), size))[None])
    fit_batchnorm(net, x)
    with torch.no_grad():
        _small_heads(net, gen, 0.0 if crowded else SHIFT)
        _silence_fine_levels(net)
        if not crowded:
            _pin_corner(net)
        coarse = net.features(x)[2]
        (_crowded_classes if crowded else _corner_classes)(net.ClassHead[2].conv1x1, coarse, gen)
    return net.state_dict()


def write_demo_weights(path: Path | str, seed: int = 0, crowded: bool = False) -> None:
    """A demo-random checkpoint in the release format (a zip of one state dict) at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_checkpoint(demo_state_dict(seed, crowded), path)


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Write under a per-process temp name, then rename: concurrent workers never see or mix half-written files."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_demo_checkpoint(weights: str | Path = ENTRY, weights_dir: Path | str = wm.DEFAULT_DIR,
                          seed: int = 0) -> Path | None:
    """The labelled demo-random checkpoint under `<dir>/face/demo-random/`, written when `weights` is a catalog
    name with no real file (present or broken) and no demo yet; None when nothing was written."""
    if isinstance(weights, Path):
        return None
    target = wm.demo_target(weights, weights_dir)
    if target is None:
        return None
    log.warning("no real %s: writing DEMO-RANDOM RetinaFace weights to %s (face boxes will not be upstream's)",
                weights, target)
    _write_atomically(target, lambda tmp: write_demo_weights(tmp, seed))
    return target


def resolve_weights(weights: str | Path = ENTRY, weights_dir: Path | str = wm.DEFAULT_DIR,
                    allow_demo: bool = False) -> tuple[Path, str]:
    """The checkpoint to load and its provenance ("real" | "demo-random"). A catalog name goes through the
    weights manager (the demo written first where allowed); a path is used as it is, labelled demo-random when it
    lies in a `demo-random` folder of the cache (as the extract stage hands over a resolved demo)."""
    if isinstance(weights, str) and weights in wm.entries():
        if allow_demo:
            write_demo_checkpoint(weights, weights_dir)
        resolved = wm.resolve(weights, weights_dir, allow_demo=allow_demo)
        path, source = resolved.path, resolved.source
    else:
        path = Path(weights)
        source = "demo-random" if wm.DEMO_SUBDIR in path.parts else "real"
    if source == "real" and path.is_file() and path.name == wm.get_entry(ENTRY).filename:
        check_hub_hash(path, wm.cached_sha256(path))
    return path, source


# --------------------------------------------------------------------------------------------------- detector


@contextlib.contextmanager
def _full_fp32(device: torch.device) -> Iterator[None]:
    """cuDNN convolutions in full fp32, as upstream's numbers on a CPU: PyTorch lets them use TF32 on Ampere and
    later GPUs by default (about 1e-3 relative error per product). A no-op on the CPU."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def _same_size_batches(frames: list[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive frames of one shape, at most `size` at a time (one forward pass each)."""
    batch: list[np.ndarray] = []
    for frame in frames:
        if batch and (len(batch) == size or frame.shape != batch[0].shape):
            yield batch
            batch = []
        batch.append(frame)
    if batch:
        yield batch


@register_face_detector("retinaface")
class RetinaFaceDetector(FaceDetector):
    """ternaus' RetinaFace resnet50 (`predict_jsons`), batched; `weights` is a catalog name or a file."""

    weights_entry = ENTRY
    upstream_options = {"max_size": 2048, "confidence": 0.7, "nms": 0.4}  # SBI's get_model / predict_jsons

    def __init__(self, device: str = "cpu", weights: str | Path = ENTRY, max_size: int = 2048,
                 confidence: float = 0.7, nms: float = 0.4, batch_size: int = 4,
                 weights_dir: str | Path = wm.DEFAULT_DIR, allow_demo: bool = False) -> None:
        self.device = torch.device(device)
        self.max_size, self.confidence, self.nms, self.batch_size = max_size, confidence, nms, batch_size
        self.weights, self.provenance = resolve_weights(weights, weights_dir, allow_demo)  # "real" | "demo-random"
        log.info("retinaface: %s weights %s on %s, max_size %d", self.provenance, self.weights, self.device,
                 max_size)
        self.net = load_network(self.weights).to(self.device)
        self._priors: dict[tuple[int, int], torch.Tensor] = {}
        self.dropped = 0  # NMS survivors removed by upstream's drop rule so far (they start past the frame)

    @classmethod
    def write_demo_checkpoint(cls, weights: str | Path, weights_dir: str | Path) -> Path | None:
        return write_demo_checkpoint(weights, weights_dir)

    def detect(self, frames: list[np.ndarray]) -> list[list[Face]]:
        """Faces per frame, boxes and points rounded to 2 decimals as upstream returns them."""
        return [[rounded(face) for face in faces] for faces in self.detect_unrounded(frames)]

    def detect_unrounded(self, frames: list[np.ndarray]) -> list[list[Face]]:
        """The same faces before upstream's final rounding (for parity checks and tests)."""
        out: list[list[Face]] = []
        for batch in _same_size_batches(frames, self.batch_size):
            out.extend(self._detect_batch(batch))
        return out

    def _priors_for(self, height: int, width: int) -> torch.Tensor:
        if (height, width) not in self._priors:
            self._priors[height, width] = priors(height, width).to(self.device)
        return self._priors[height, width]

    def _detect_batch(self, frames: list[np.ndarray]) -> list[list[Face]]:
        """One forward pass for frames of one size (resized on the CPU with cv2, as upstream; the rest on the
        detector's device), then each frame's threshold, NMS, scale-back and drop rule."""
        height, width = frames[0].shape[:2]
        resized = np.stack([resize_longest(f, self.max_size) for f in frames])
        new_h, new_w = resized.shape[1:3]
        with torch.inference_mode(), _full_fp32(self.device):
            x = normalise(torch.from_numpy(resized).to(self.device))
            loc, conf, marks = self.net(x)
            scores = F.softmax(conf, dim=-1)[..., 1]
            prior = self._priors_for(new_h, new_w)
            found = [self._select(loc[i], scores[i], marks[i], prior, new_h, new_w) for i in range(len(frames))]
        faces = [_faces(*f, height / new_h, height, width) for f in found]
        self.dropped += sum(len(f[0]) for f in found) - sum(len(f) for f in faces)
        return faces

    def _select(self, loc: torch.Tensor, scores: torch.Tensor, marks: torch.Tensor, prior: torch.Tensor,
                new_h: int, new_w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes and points in resized pixels and scores of one image, thresholded and NMS-ed as upstream."""
        size = torch.tensor([new_w, new_h], device=loc.device)
        boxes = decode_boxes(loc, prior) * size.repeat(2)
        points = decode_points(marks, prior) * size.repeat(5)
        valid = torch.where(scores > self.confidence)[0]
        boxes, points, scores = boxes[valid], points[valid], scores[valid]
        keep = torchvision_nms(boxes, scores, self.nms)
        return boxes[keep].cpu().numpy(), scores[keep].cpu().numpy(), points[keep].cpu().numpy()


def _faces(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, coeff: float, height: int,
           width: int) -> list[Face]:
    """Upstream's last step before rounding: scale back (in float32, as its numpy arrays), drop as its clipping
    loop does."""
    boxes = boxes * np.float32(coeff)
    points = points.reshape(-1, 10) * np.float32(coeff)
    keep = kept_by_upstream(boxes, height, width)
    return [Face(b, float(s), p.reshape(5, 2)) for b, s, p in zip(boxes[keep], scores[keep], points[keep])]


def rounded(face: Face, digits: int = ROUNDING_DIGITS) -> Face:
    """Box and points rounded as upstream's JSON (float64 `np.round`), stored as float32; the score is kept."""
    def rnd(values: np.ndarray) -> np.ndarray:
        return np.round(values.astype(np.float64), digits).astype(np.float32)
    return Face(rnd(face.box), face.score, None if face.points is None else rnd(face.points))
