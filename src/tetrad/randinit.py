"""Non-degenerate random weights for demo and parity checkpoints, shared by the detectors (tetrad.layers) and the
face detectors (tetrad.faces): with default BatchNorm statistics a random network gives every input the same
output, so the statistics are fitted on probe inputs first."""

from __future__ import annotations

import torch
from torch import nn


def fit_batchnorm(net: nn.Module, probes: torch.Tensor) -> None:
    """Running statistics = those of one pass over the probes; leaves the net in eval mode."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch, the running stats are that batch's
    net.train()
    with torch.no_grad():
        net(probes)
    for bn in norms:
        bn.momentum = 0.1
    net.eval()
