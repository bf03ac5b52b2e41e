"""Semantic layer: UniversalFakeDetect (Ojha et al., CVPR 2023): frozen CLIP ViT-L/14 image tower + one linear head.

Backbone checkpoint: OpenAI's `ViT-L-14.pt` (a TorchScript archive of fp16 tensors) or the same keys as a plain
state dict. As upstream, weights are rounded to fp16 on load and the model computes in fp32. Head checkpoint:
UFD's `fc_weights.pth`, keys `weight` [1, 768] and `bias` [1]. The head sees the unnormalised projected
embedding (`encode_image`), never an L2-normalised one.

Inputs are never squashed: a picture that is not already 224x224 (a face crop, a cache built at another
`extract.frames.size`) is brought to 224 by option `crop`, the same rule as the frames cache
(`tetrad.media.frames.semantic_crop`): `center_crop` is upstream's evaluation (zero padding below 224),
`resize_crop` resizes the short side to `resize` first and keeps the aspect ratio.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg, build_model_from_openai_state_dict
from open_clip.model import convert_weights_to_fp16
from torch import nn
from torchvision.transforms.v2 import functional as TF

from tetrad.layers.base import CheckpointError, Detector, DetectorSpec, Unit, is_torchscript_archive
from tetrad.layers.base import load_checkpoint, load_strict, load_torchscript
from tetrad.layers.registry import register_detector
from tetrad.layers.units import image_units
from tetrad.media.frames import CROP_MODES, semantic_crop
from tetrad.params import ConfigError, build
from tetrad.weights.catalog import WeightEntry

# The checkpoints this detector can load (read without importing this module by `tetrad weights`; literals only).
WEIGHTS = (
    WeightEntry(
        name="clip_vitl14", layer="semantic", filename="ViT-L-14.pt",
        url="https://openaipublic.azureedge.net/clip/models/"
        "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
        sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", size=None,
        licence="MIT", aliases=("clip_ViT-L-14.pt",),
        source="openai/CLIP clip/clip.py _MODELS['ViT-L/14'] (TorchScript archive, fp16)",
    ),
    WeightEntry(
        name="ufd_fc", layer="semantic", filename="fc_weights.pth",
        url="https://raw.githubusercontent.com/Yuheng-Li/UniversalFakeDetect/1abc48606aea45e18d10847e51d21d6173cc957d/"
        "pretrained_weights/fc_weights.pth",
        sha256="477100745713bcc957beb2b40859536859b6483fd6301b3b9293151b194c7847", size=4083,
        licence="MIT", aliases=("ufd_fc_weights.pth",),
        source="Yuheng-Li/UniversalFakeDetect@1abc486:pretrained_weights/fc_weights.pth "
        "(MIT licence added in WisconsinAIVision/UniversalFakeDetect@76a0e3e)",
    ),
)


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UFDOptions:
    crop: str = "resize_crop"  # how a picture that is not 224x224 reaches the model (center_crop: upstream's eval)
    resize: int = 256  # resize_crop: the short side first goes to this many pixels (UFD's training resize)

    def __post_init__(self) -> None:
        if self.crop not in CROP_MODES:
            raise ConfigError(f"layer.semantic.options.crop: expected one of {CROP_MODES}, got {self.crop!r}")

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")
# (embed_dim, vision layers, vision width, patch, text width, text layers, vocab)
_ARCH = {"full": (768, 24, 1024, 14, 768, 12, 49408), "tiny": (768, 2, 64, 14, 64, 1, 1000)}


@register_detector
class UFDDetector(Detector):
    spec = DetectorSpec(
        name="ufd_clip_vitl14",
        layer="semantic",
        input_kind="frames",
        reduce="mean_prob",
        label="logit = fc(encode_image(x)), 1 = fake; P(fake) = sigmoid(logit)",
        weights={"backbone": "clip_vitl14", "head": "ufd_fc"},
        checkpoint_format="backbone: OpenAI CLIP ViT-L-14.pt (TorchScript or state dict); head: {weight, bias}",
        upstream="Yuheng-Li/UniversalFakeDetect@1abc486",
        licence="MIT (code and head, WisconsinAIVision@76a0e3e); CLIP weights MIT (OpenAI)",
        paper="Towards Universal Fake Image Detectors that Generalize Across Generative Models (CVPR 2023)",
        input_size=(3, 224, 224),
        normalisation="RGB/255, CLIP mean/std",
        other_inputs=("faces",),
        upstream_options={"crop": "center_crop"},
    )
    options_type = UFDOptions

    def __init__(self, backbone: nn.Module, head: nn.Linear, options: UFDOptions = UFDOptions()) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = head
        self.options = options

    @classmethod
    def from_weights(cls, weights: Mapping[str, Path], variant: str, options: Mapping[str, Any]) -> UFDDetector:
        opts = build(UFDOptions, dict(options), "layer.semantic.options")
        backbone = load_clip_visual(Path(weights["backbone"]), variant)
        head = nn.Linear(backbone.output_dim, 1)
        load_strict(head, load_checkpoint(Path(weights["head"])), Path(weights["head"]))
        return cls(backbone, head, opts)

    def make_units(self, rows: pd.DataFrame) -> list[Unit]:
        """Whole-frame crops (224, as cached) or other pictures (face crops), cropped to 224 by option `crop`."""
        units = image_units(str(rows["video_id"].iloc[0]), rows)
        other = {u.data.shape[:2] for u in units} - {(224, 224)}
        if not other:
            return units
        opts = self.options
        log.info("%s: pictures of %s px brought to 224x224 by %s", units[0].video_id,
                 ", ".join(f"{w}x{h}" for h, w in sorted(other)), opts.crop)
        return [u if u.data.shape[:2] == (224, 224)
                else dataclasses.replace(u, data=semantic_crop(u.data, 224, opts.crop, opts.resize)) for u in units]

    def preprocess(self, units: list[Unit]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack([u.data for u in units])).permute(0, 3, 1, 2)
        return TF.normalize(batch.float() / 255.0, CLIP_MEAN, CLIP_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x)).squeeze(1)

    @classmethod
    def write_demo_weights(cls, slot: str, path: Path, variant: str, seed: int) -> None:
        torch.manual_seed(seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        if slot == "backbone":
            torch.save(openai_state_dict(random_clip(variant)), path)
        elif slot == "head":
            head = nn.Linear(_ARCH[variant][0], 1)
            nn.init.normal_(head.weight, 0.0, 0.25)  # like the real head's spread (L2 ~6 over 768 inputs)
            nn.init.zeros_(head.bias)
            torch.save(head.state_dict(), path)
        else:
            raise KeyError(f"ufd_clip_vitl14 has no weight slot {slot!r}")


def read_openai_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """OpenAI ships a TorchScript archive; users may also have a plain state dict with the same keys."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if is_torchscript_archive(path):
        return load_torchscript(path, {w.sha256 for w in WEIGHTS if w.name == "clip_vitl14" and w.sha256})
    return load_checkpoint(path)


def load_clip_visual(path: Path, variant: str) -> nn.Module:
    """The CLIP image tower in fp32, after the fp16 rounding upstream applies on load."""
    state = read_openai_state_dict(path)
    if "visual.proj" not in state:
        raise CheckpointError(f"{path}: not an OpenAI CLIP ViT state dict (no 'visual.proj'; keys {sorted(state)[:5]})")
    try:
        model = build_model_from_openai_state_dict(state, quick_gelu=True, cast_dtype=torch.float16)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path}: does not match CLIP: {str(exc).splitlines()[0][:500]}") from None
    visual = model.visual.float()
    if variant == "full":
        _check_vitl14(visual, path)
    return visual


def _check_vitl14(visual: nn.Module, path: Path) -> None:
    width, layers = visual.conv1.weight.shape[0], len(visual.transformer.resblocks)
    patch, dim = visual.conv1.weight.shape[-1], visual.output_dim
    if (width, layers, patch, dim) != (1024, 24, 14, 768):
        raise CheckpointError(f"{path}: expected ViT-L/14 (width 1024, 24 layers, patch 14, dim 768), "
                              f"got width {width}, {layers} layers, patch {patch}, dim {dim}")


def random_clip(variant: str) -> CLIP:
    embed, v_layers, v_width, patch, t_width, t_layers, vocab = _ARCH[variant]
    vision = CLIPVisionCfg(layers=v_layers, width=v_width, patch_size=patch, image_size=224)
    text = CLIPTextCfg(context_length=77, vocab_size=vocab, width=t_width, heads=max(1, t_width // 64),
                       layers=t_layers)
    return CLIP(embed, vision_cfg=vision, text_cfg=text, quick_gelu=True)


def openai_state_dict(model: CLIP) -> dict[str, torch.Tensor]:
    """The OpenAI file layout: fp16 where OpenAI converts, plus its three integer entries."""
    convert_weights_to_fp16(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["input_resolution"] = torch.tensor(model.visual.image_size[0])
    state["context_length"] = torch.tensor(model.context_length)
    state["vocab_size"] = torch.tensor(model.vocab_size)
    return state
