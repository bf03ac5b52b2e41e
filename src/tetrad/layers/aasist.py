"""Audio layer: AASIST and AASIST-L (Jung et al., ICASSP 2022; clovaai/aasist@a04c986, MIT), inference only.

Architecture (our own implementation; its module tree gives exactly upstream's state-dict keys, so the published
`AASIST.pth` / `AASIST-L.pth` load strictly): a fixed sinc band-pass front-end (mel-spaced, computed for 16 kHz,
not in the state dict), |.| and 3x3 max-pooling, six residual blocks, then a spectral and a temporal graph
attention layer with graph pooling, two heterogeneous-graph branches with a master node, and a readout of
max/mean node statistics into `out_layer` (2 classes). Hyper-parameters are upstream's `model_config` blocks
(`config/AASIST.conf`, `config/AASIST-L.conf`), held in `ARCHS`.

Input protocol (upstream `data_utils.py::pad`): the 16 kHz float waveform as decoded, no level normalisation,
windows of 64600 samples (4.0375 s); a clip shorter than a window is tiled (repeated from its start) to 64600.
Windows per clip (option `windows`):
  - "all" (default): non-overlapping 64600-sample windows from t = 0; when a tail remains, one last window is
    aligned to the clip's end (as `tetrad.layers.units.audio_windows`), so no sample is dropped and no window
    is padded. Video score = mean of window P(fake) (`spec.reduce` "mean_prob").
  - "first": upstream's evaluation rule, the first 64600 samples only (one unit per clip).
Any non-empty clip is scored, tiled as upstream tiles it (`min_s`, default 0, can exclude shorter clips as
too_short); audio not at 16 kHz is an error.

Score convention: upstream's model returns logits [B, 2] with class 1 = bona fide, and ranks by the raw
bona fide logit l1 (higher = more real). Our `forward` returns the fake-positive logit l0 - l1, so
sigmoid(logit) = softmax[:, 0] = P(spoof); `score` also returns l1, stored as `upstream_score`.

Upstream quirks kept because eval-mode outputs must match: each non-first residual block holds a `bn1` that
upstream's forward never applies (conv1 reads the block input); the fourth pool ratio and fourth temperature of
the config are unused; all four heterogeneous layers share the third temperature and the four
heterogeneous-branch pools share the third pool ratio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from tetrad.layers.calibrate import calibrate_head, fit_batchnorm
from tetrad.layers.base import Detector, DetectorSpec, Unit, load_checkpoint, load_strict
from tetrad.layers.registry import register_detector
from tetrad.layers.units import AUDIO_COUNT_COLUMNS, window_starts, windows_at
from tetrad.params import ConfigError, build
from tetrad.schemas import StatusError
from tetrad.weights.catalog import WeightEntry

# The checkpoints this detector can load (read without importing this module by `tetrad weights`; literals only).
WEIGHTS = (
    WeightEntry(
        name="aasist", layer="audio", filename="AASIST.pth",
        url="https://raw.githubusercontent.com/clovaai/aasist/a04c9863f63d44471dde8a6abcb3b082b07cd1d1/"
        "models/weights/AASIST.pth",
        sha256="51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0", size=1281532,
        licence="MIT", aliases=("aasist_AASIST.pth",),
        source="clovaai/aasist@a04c986:models/weights/AASIST.pth",
    ),
    WeightEntry(
        name="aasist_l", layer="audio", filename="AASIST-L.pth",
        url="https://raw.githubusercontent.com/clovaai/aasist/a04c9863f63d44471dde8a6abcb3b082b07cd1d1/"
        "models/weights/AASIST-L.pth",
        sha256="814331d088032bb4c3fa61cc014789eadeed464209dd094ab3a2dd6ffbdce27a", size=426428,
        licence="MIT", aliases=("aasist_AASIST-L.pth",),
        source="clovaai/aasist@a04c986:models/weights/AASIST-L.pth",
    ),
)


SAMPLE_RATE = 16000
WINDOW_RULES = ("all", "first")
UPSTREAM = "clovaai/aasist@a04c986"


@dataclass(frozen=True)
class AASISTArch:
    """Upstream's `model_config`: `filts` is split into `n_sinc` (filts[0]) and `blocks` (filts[1:])."""

    nb_samp: int  # samples per window
    first_conv: int  # sinc kernel length (an even length is made odd: 128 -> 129 taps)
    n_sinc: int  # sinc bands; 70 bands -> 23 spectral graph nodes after 3x3 pooling
    blocks: tuple[tuple[int, int], ...]  # (c_in, c_out) of residual blocks 1-4; blocks 5 and 6 repeat the 4th
    gat_dims: tuple[int, int]
    pool_ratios: tuple[float, float, float, float]
    temperatures: tuple[float, float, float, float]

    @classmethod
    def from_conf(cls, model_config: Mapping[str, Any]) -> AASISTArch:
        """From a `model_config` block as in upstream's .conf files (used by the parity check)."""
        filts = model_config["filts"]
        return cls(
            nb_samp=int(model_config["nb_samp"]), first_conv=int(model_config["first_conv"]), n_sinc=int(filts[0]),
            blocks=tuple((int(a), int(b)) for a, b in filts[1:]),
            gat_dims=tuple(int(d) for d in model_config["gat_dims"]),
            pool_ratios=tuple(float(r) for r in model_config["pool_ratios"]),
            temperatures=tuple(float(t) for t in model_config["temperatures"]),
        )

    def as_conf(self) -> dict[str, Any]:
        """The `model_config` block upstream's `Model(d_args)` takes (parity tests build upstream from it)."""
        return {"architecture": "AASIST", "nb_samp": self.nb_samp, "first_conv": self.first_conv,
                "filts": [self.n_sinc, *[list(b) for b in self.blocks]], "gat_dims": list(self.gat_dims),
                "pool_ratios": list(self.pool_ratios), "temperatures": list(self.temperatures)}


_TEMPERATURES = (2.0, 2.0, 100.0, 100.0)
AASIST_FULL = AASISTArch(64600, 128, 70, ((1, 32), (32, 32), (32, 64), (64, 64)), (64, 32),
                         (0.5, 0.7, 0.5, 0.5), _TEMPERATURES)
AASIST_L_FULL = AASISTArch(64600, 128, 70, ((1, 32), (32, 32), (32, 24), (24, 24)), (24, 32),
                           (0.4, 0.5, 0.7, 0.5), _TEMPERATURES)
# Same module tree, small widths, a short sinc kernel and 1 s windows (the window length is only an input-protocol
# constant; upstream's Model accepts any length): for tests and CI.
AASIST_TINY = AASISTArch(16000, 16, 70, ((1, 4), (4, 4), (4, 8), (8, 8)), (8, 8), (0.5, 0.7, 0.5, 0.5),
                         _TEMPERATURES)
ARCHS: dict[str, dict[str, AASISTArch]] = {
    "aasist": {"full": AASIST_FULL, "tiny": AASIST_TINY},
    "aasist_l": {"full": AASIST_L_FULL, "tiny": AASIST_TINY},
}


@dataclass(frozen=True)
class AASISTOptions:
    windows: str = "all"  # all | first (see the module docstring)
    # Upstream's eval `pad` tiles any non-empty clip to nb_samp samples and scores it, so by default so do we
    # (0: the smallest clip accepted is one sample). A positive value reports shorter clips as too_short.
    min_s: float = 0.0

    def __post_init__(self) -> None:
        if self.windows not in WINDOW_RULES:
            raise ConfigError(f"layer.audio.options.windows: expected one of {WINDOW_RULES}, got {self.windows!r}")
        if self.min_s < 0:
            raise ConfigError(f"layer.audio.options.min_s: must be >= 0, got {self.min_s}")


# --------------------------------------------------------------------------------------------- input protocol


def tile_to_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Upstream's eval `pad`: the first `length` samples, or the clip repeated from its start up to `length`."""
    if len(wave) == 0:
        raise ValueError("cannot tile an empty waveform")
    if len(wave) >= length:
        return wave[:length]
    repeats = length // len(wave) + 1
    return np.tile(wave, repeats)[:length]


def window_plan(video_id: str, n: int, sr: int, nb_samp: int, min_s: float, rule: str) -> tuple[list[int], int]:
    """Each unit's first sample and its length before tiling, for an `n`-sample clip, by `rule` ("all" or
    "first"): what `window_units` cuts and `count_units` counts."""
    if sr != SAMPLE_RATE:
        raise StatusError("error", f"{video_id}: AASIST needs 16 kHz audio, the cache holds {sr} Hz")
    starts, win = window_starts(video_id, n, sr, nb_samp / sr, min_s)
    return (starts[:1] if rule == "first" else starts), win


def window_units(video_id: str, wave: np.ndarray, sr: int, nb_samp: int, min_s: float, rule: str) -> list[Unit]:
    """Cut a clip into `nb_samp`-sample units by `rule` ("all" or "first"); short clips are tiled."""
    units = windows_at(video_id, wave, sr, *window_plan(video_id, len(wave), sr, nb_samp, min_s, rule))
    return [dataclasses.replace(u, data=tile_to_length(u.data, nb_samp)) for u in units]


# --------------------------------------------------------------------------------------------- network


def sinc_filter_bank(n_filters: int, kernel_size: int, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Fixed band-pass filters [n_filters, 1, taps]: band edges equally spaced in mel between the lowest and the
    highest bin of a 512-point FFT grid (0 Hz to Nyquist); each filter is the difference of two ideal low-pass
    sincs, times a Hamming window. The sinc argument is evaluated in float32, as upstream does."""
    taps = kernel_size + 1 if kernel_size % 2 == 0 else kernel_size
    grid_hz = (sample_rate // 2) * np.linspace(0.0, 1.0, 257)
    grid_mel = 2595.0 * np.log10(1.0 + grid_hz / 700.0)
    edges_mel = np.linspace(grid_mel.min(), grid_mel.max(), n_filters + 1)
    edges_hz = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    t = np.arange(-(taps - 1) // 2, (taps - 1) // 2 + 1).astype(np.float32)
    window = np.hamming(taps).astype(np.float32)
    bank = np.empty((n_filters, taps), dtype=np.float32)
    for i, (low, high) in enumerate(zip(edges_hz[:-1], edges_hz[1:])):
        ideal = _lowpass(high, t, sample_rate) - _lowpass(low, t, sample_rate)
        bank[i] = window * ideal.astype(np.float32)
    return torch.from_numpy(bank).unsqueeze(1)


def _lowpass(cutoff: float, t: np.ndarray, sample_rate: int) -> np.ndarray:
    arg = (np.float32(2.0 * cutoff) * t) / np.float32(sample_rate)  # float32, like upstream's torch arithmetic
    return (2.0 * cutoff / sample_rate) * np.sinc(arg).astype(np.float64)


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, first: bool) -> None:
        super().__init__()
        if not first:
            self.bn1 = nn.BatchNorm2d(c_in)  # in upstream's checkpoints, never applied by its forward
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=(2, 3), padding=(0, 1))
        self.conv_downsample = nn.Conv2d(c_in, c_out, kernel_size=(1, 3), padding=(0, 1)) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        skip = x if self.conv_downsample is None else self.conv_downsample(x)
        return F.max_pool2d(out + skip, (1, 3))


def _attention_vector(dim: int) -> nn.Parameter:
    weight = nn.Parameter(torch.empty(dim, 1))
    nn.init.xavier_normal_(weight)
    return weight


def _node_norm(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm over every node of every graph: features are the last dimension."""
    return bn(x.reshape(-1, x.size(-1))).reshape(x.shape)


def _pairwise(x: torch.Tensor) -> torch.Tensor:
    """(B, N, D) -> (B, N, N, D): element-wise product of every pair of nodes."""
    return x.unsqueeze(2) * x.unsqueeze(1)


class GraphAttentionLayer(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _attention_vector(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.tanh(self.att_proj(_pairwise(x))) @ self.att_weight  # (B, N, N, 1)
        att = torch.softmax(scores.squeeze(-1) / self.temperature, dim=-1)  # over neighbours j of node i
        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        return F.selu(_node_norm(self.bn, out))


class HtrgGraphAttentionLayer(nn.Module):
    """Graph of two node types (temporal first, then spectral) plus a master node that attends to all nodes."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = _attention_vector(out_dim)  # type-1 to type-1 edges
        self.att_weight22 = _attention_vector(out_dim)  # type-2 to type-2 edges
        self.att_weight12 = _attention_vector(out_dim)  # edges across types, both directions
        self.att_weightM = _attention_vector(out_dim)  # master node
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(self, x1: torch.Tensor, x2: torch.Tensor,
                master: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n1 = x1.size(1)
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)
        att = self._node_attention(x, n1)
        new_master = self._master_update(x, master)
        out = self.proj_with_att(att @ x) + self.proj_without_att(x)
        out = F.selu(_node_norm(self.bn, out))
        return out[:, :n1], out[:, n1:], new_master

    def _node_attention(self, x: torch.Tensor, n1: int) -> torch.Tensor:
        hidden = torch.tanh(self.att_proj(_pairwise(x)))  # (B, N, N, D)
        is_type1 = torch.arange(x.size(1), device=x.device) < n1
        both1 = (is_type1[:, None] & is_type1[None, :])[..., None]
        both2 = (~is_type1[:, None] & ~is_type1[None, :])[..., None]
        scores = torch.where(both1, hidden @ self.att_weight11,
                             torch.where(both2, hidden @ self.att_weight22, hidden @ self.att_weight12))
        return torch.softmax(scores.squeeze(-1) / self.temperature, dim=-1)

    def _master_update(self, x: torch.Tensor, master: torch.Tensor) -> torch.Tensor:
        scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # (B, N, 1)
        att = torch.softmax(scores / self.temperature, dim=1)
        return self.proj_with_attM(att.transpose(1, 2) @ x) + self.proj_without_attM(master)


class GraphPool(nn.Module):
    """Keep the top `ratio` of nodes by a learned sigmoid gate, scaled by their gate, in descending gate order."""

    def __init__(self, ratio: float, in_dim: int) -> None:
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(in_dim, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.proj(h))  # (B, N, 1)
        keep = max(int(h.size(1) * self.ratio), 1)
        idx = torch.topk(gate, keep, dim=1).indices.expand(-1, -1, h.size(2))
        return torch.gather(h * gate, 1, idx)


class AASISTNet(nn.Module):
    """The network: waveform [B, T] -> logits [B, 2] (class 1 = bona fide), upstream's parameter names."""

    def __init__(self, arch: AASISTArch) -> None:
        super().__init__()
        self.arch = arch
        g0, g1 = arch.gat_dims
        channels = arch.blocks[-1][1]
        self.register_buffer("sinc", sinc_filter_bank(arch.n_sinc, arch.first_conv), persistent=False)
        self.first_bn = nn.BatchNorm2d(1)
        # One-element Sequentials only to reproduce upstream's key names (encoder.<i>.0.<...>).
        pairs = [*arch.blocks, arch.blocks[-1], arch.blocks[-1]]
        self.encoder = nn.Sequential(*[nn.Sequential(ResidualBlock(a, b, first=i == 0))
                                       for i, (a, b) in enumerate(pairs)])
        self.pos_S = nn.Parameter(torch.randn(1, arch.n_sinc // 3, channels))
        self.master1 = nn.Parameter(torch.randn(1, 1, g0))
        self.master2 = nn.Parameter(torch.randn(1, 1, g0))
        temps, ratios = arch.temperatures, arch.pool_ratios
        self.GAT_layer_S = GraphAttentionLayer(channels, g0, temps[0])
        self.GAT_layer_T = GraphAttentionLayer(channels, g0, temps[1])
        self.HtrgGAT_layer_ST11 = HtrgGraphAttentionLayer(g0, g1, temps[2])
        self.HtrgGAT_layer_ST12 = HtrgGraphAttentionLayer(g1, g1, temps[2])
        self.HtrgGAT_layer_ST21 = HtrgGraphAttentionLayer(g0, g1, temps[2])
        self.HtrgGAT_layer_ST22 = HtrgGraphAttentionLayer(g1, g1, temps[2])
        self.pool_S = GraphPool(ratios[0], g0)
        self.pool_T = GraphPool(ratios[1], g0)
        self.pool_hS1 = GraphPool(ratios[2], g1)
        self.pool_hT1 = GraphPool(ratios[2], g1)
        self.pool_hS2 = GraphPool(ratios[2], g1)
        self.pool_hT2 = GraphPool(ratios[2], g1)
        self.out_layer = nn.Linear(5 * g1, 2)

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, T] -> feature map [B, C, spectral nodes, frames]."""
        x = F.conv1d(wave.unsqueeze(1), self.sinc)
        x = F.max_pool2d(x.abs().unsqueeze(1), (3, 3))
        return self.encoder(F.selu(self.first_bn(x)))

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, T] -> upstream's `last_hidden` [B, 5 * gat_dims[1]]."""
        e = self.encode(wave).abs()
        out_S = self.pool_S(self.GAT_layer_S(e.amax(dim=3).transpose(1, 2) + self.pos_S))
        out_T = self.pool_T(self.GAT_layer_T(e.amax(dim=2).transpose(1, 2)))
        t1, s1, m1 = self._branch(out_T, out_S, self.master1, self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12,
                                  self.pool_hT1, self.pool_hS1)
        t2, s2, m2 = self._branch(out_T, out_S, self.master2, self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22,
                                  self.pool_hT2, self.pool_hS2)
        t, s, m = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        return torch.cat([t.abs().amax(dim=1), t.mean(dim=1), s.abs().amax(dim=1), s.mean(dim=1), m.squeeze(1)],
                         dim=1)

    @staticmethod
    def _branch(nodes_t: torch.Tensor, nodes_s: torch.Tensor, master: torch.Tensor,
                first: HtrgGraphAttentionLayer, second: HtrgGraphAttentionLayer,
                pool_t: GraphPool, pool_s: GraphPool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One heterogeneous branch: a layer, pooling, then a second layer added as a residual."""
        t, s, m = first(nodes_t, nodes_s, master)
        t, s = pool_t(t), pool_s(s)
        t_aug, s_aug, m_aug = second(t, s, m)
        return t + t_aug, s + s_aug, m + m_aug

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.out_layer(self.embed(wave))


# --------------------------------------------------------------------------------------------- detectors


@register_detector
class AASISTDetector(Detector):
    spec = DetectorSpec(
        name="aasist",
        layer="audio",
        input_kind="audio",
        reduce="mean_prob",
        label="upstream logits [l0 spoof, l1 bona fide]; logit = l0 - l1, P(fake) = sigmoid(logit) = softmax[0]; "
              "upstream_score = l1 (upstream ranks by the raw bona fide logit, higher = real)",
        weights={"model": "aasist"},
        checkpoint_format="plain state dict of upstream models/AASIST.py Model (229 tensors, no prefix)",
        upstream=UPSTREAM,
        licence="MIT (code and weights)",
        paper="AASIST: Audio Anti-Spoofing using Integrated Spectro-Temporal Graph Attention Networks (ICASSP 2022)",
        input_size=(AASIST_FULL.nb_samp,),
        normalisation="none: raw 16 kHz float waveform; short clips tiled to 64600 samples",
        upstream_options={"windows": "first"},
    )
    options_type = AASISTOptions
    count_columns = AUDIO_COUNT_COLUMNS

    def __init__(self, arch: AASISTArch, options: AASISTOptions) -> None:
        super().__init__()
        self.net = AASISTNet(arch)
        self.options = options

    @classmethod
    def from_weights(cls, weights: Mapping[str, Path], variant: str, options: Mapping[str, Any]) -> AASISTDetector:
        opts = build(AASISTOptions, dict(options), "layer.audio.options")
        detector = cls(ARCHS[cls.spec.name][variant], opts)
        path = Path(weights["model"])
        load_strict(detector.net, load_checkpoint(path), path)
        return detector

    def make_units(self, rows: pd.DataFrame) -> list[Unit]:
        row = rows.iloc[0]
        wave = np.asarray(row["waveform"], dtype=np.float32)
        return window_units(str(row["video_id"]), wave, int(row["sample_rate"]), self.net.arch.nb_samp,
                            self.options.min_s, self.options.windows)

    def count_units(self, rows: pd.DataFrame) -> int:
        row = rows.iloc[0]
        return len(window_plan(str(row["video_id"]), int(row["num_samples"]), int(row["sample_rate"]),
                               self.net.arch.nb_samp, self.options.min_s, self.options.windows)[0])

    def preprocess(self, units: list[Unit]) -> torch.Tensor:
        n = self.net.arch.nb_samp  # tiling here too, so units cut elsewhere (tests, tools) follow the protocol
        return torch.from_numpy(np.stack([tile_to_length(np.asarray(u.data, np.float32), n) for u in units]))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Upstream's output layout: [B, 2], class 0 = spoof, class 1 = bona fide."""
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        return logits[:, 0] - logits[:, 1]

    def score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        return logits[:, 0] - logits[:, 1], logits[:, 1]

    @classmethod
    def write_demo_weights(cls, slot: str, path: Path, variant: str, seed: int) -> None:
        if slot != "model":
            raise KeyError(f"{cls.spec.name} has no weight slot {slot!r}")
        with torch.random.fork_rng():  # leave the caller's global RNG as it was
            torch.manual_seed(seed)
            net = AASISTNet(ARCHS[cls.spec.name][variant])
            calibrate_random_net(net, seed)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)


@register_detector
class AASISTLDetector(AASISTDetector):
    spec = dataclasses.replace(
        AASISTDetector.spec,
        name="aasist_l",
        weights={"model": "aasist_l"},
        checkpoint_format="plain state dict of upstream models/AASIST.py Model, AASIST-L.conf (229 tensors)",
        paper=AASISTDetector.spec.paper + "; AASIST-L is the paper's light variant (85k parameters)",
    )


# --------------------------------------------------------------------------------------------- demo weights


def probe_signals(n: int, seed: int) -> torch.Tensor:
    """Seeded synthetic waveforms [8, n] of different character (noise levels, tones, chirp, clicks)."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / SAMPLE_RATE
    noise = [torch.randn(n, generator=gen) * a for a in (0.01, 0.05, 0.2)]
    tones = [0.3 * torch.sin(2 * torch.pi * f * t) for f in (150.0, 1000.0)]
    chirp = 0.3 * torch.sin(2 * torch.pi * 100.0 * t * (1 + 4 * t))
    clicks = (torch.rand(n, generator=gen) > 0.999).float() * 0.8 + torch.randn(n, generator=gen) * 0.005
    am = torch.randn(n, generator=gen) * 0.1 * (1 + torch.sin(2 * torch.pi * 3.0 * t))
    return torch.stack([*noise, *tones, chirp, clicks, am]).float()


def calibrate_random_net(net: AASISTNet, seed: int) -> None:
    """Random init scores every input alike (degenerate BatchNorm statistics, unscaled head): fit the BatchNorm
    running statistics on seeded probe signals, then scale and centre a random head so l0 - l1 has a spread of
    about 1.5 over the probes. The module tree, and so the file format, is unchanged."""
    probes = probe_signals(net.arch.nb_samp, seed)
    fit_batchnorm(net, probes)
    with torch.no_grad():
        hidden = net.embed(probes)
    calibrate_head(net.out_layer, hidden, seed, two_logits=True)
