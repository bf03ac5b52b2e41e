"""Whole-frame inputs of the semantic layer (UFD)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from torchvision.transforms.v2 import functional as TF

CROP_MODES = ("resize_crop", "center_crop")


def semantic_crop(rgb: np.ndarray, size: int, mode: str, resize: int) -> np.ndarray:
    """224x224 RGB uint8 for UFD.

    `center_crop` is upstream's evaluation protocol (validate.py): CenterCrop(224) with no resize, zero
    padding for small images. On a 1080p video frame that sees only the central 224 px, so the default
    `resize_crop` first resizes the short side to `resize` (256, UFD's training resize, bilinear) and then
    centre-crops: a documented deviation from upstream's eval, matching its training distribution.
    """
    image = Image.fromarray(rgb)
    if mode == "resize_crop":
        image = TF.resize(image, [resize], interpolation=TF.InterpolationMode.BILINEAR)
    elif mode not in CROP_MODES:
        raise ValueError(f"unknown semantic crop mode {mode!r}")
    return np.asarray(TF.center_crop(image, [size, size]), dtype=np.uint8)
