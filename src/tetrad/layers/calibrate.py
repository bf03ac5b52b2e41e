"""Demo-random checkpoints that are not degenerate.

A freshly initialised network scores every input alike (SBI: 0.4901 for every face; LipForensics: logits near
-16), because BatchNorm running statistics are the identity and the head is unscaled. Fitting the BatchNorm
statistics on seeded probe inputs and scaling/centring a random head gives scores that vary with the input.
The module tree, and so the file format, stays exactly upstream's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tetrad.randinit import fit_batchnorm

__all__ = ["calibrate_head", "fit_batchnorm", "probe_images"]


def probe_images(n: int, size: int, channels: int, seed: int) -> torch.Tensor:
    """Seeded smooth random images in [0, 1], [n, channels, size, size], of varied contrast and scale."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        coarse = torch.rand(1, channels, 4 + 2 * i, 4 + 2 * i, generator=gen)
        image = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        image = (image - 0.5) * (0.3 + 0.1 * i) + 0.5
        if i % 2:  # pixel noise too, so inputs sharper than the probes do not saturate the random net
            image = image + (torch.rand(image.shape, generator=gen) - 0.5) * 0.2 * i
        out.append(image)
    return torch.cat(out).clamp(0, 1)


def calibrate_head(head: nn.Linear, hidden: torch.Tensor, seed: int, two_logits: bool = False) -> None:
    """A random head scaled so the detector's score (one logit, or the difference of two) spreads by about 1.5
    over the probes, each output centred on 0."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        weight = torch.randn(head.weight.shape, generator=gen)
        raw = hidden @ weight.T
        score = raw[:, 1] - raw[:, 0] if two_logits else raw[:, 0]
        scale = 1.5 / score.std().clamp_min(1e-6)
        head.weight.copy_(weight * scale)
        head.bias.copy_(-raw.mean(0) * scale)
