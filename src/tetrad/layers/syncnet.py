"""Sync layer: SyncNet v2 (Chung & Zisserman, "Out of time: automated lip sync in the wild", ACCV 2016
workshops; joonson/syncnet_python@6efbb1c, MIT code), inference only. The one layer that hears and sees at once.

Network (our own implementation; the module names give exactly upstream's state-dict keys, so the released
`syncnet_v2.model`, a plain state dict, loads strictly with weights_only=True): two streams into one 1024-d
space. `netcnnaud` (six Conv2d/BatchNorm2d/ReLU blocks, three max-pools) + `netfcaud` (Linear 512-512,
BatchNorm1d, ReLU, Linear 512-1024) embed 13 MFCC x 20 steps (0.2 s of audio); `netcnnlip` (six Conv3d blocks,
the first over 5 frames) + `netfclip` embed 5 face frames of 224x224 (0.2 s of video at 25 fps).

Preprocessing, as upstream's `run_pipeline.py` + `SyncNetInstance.evaluate`:
- pictures: every frame at 25 fps (other rates are resampled to 25 fps by timestamp, as FFmpeg's `-r 25` does);
  the face track's boxes (the `mouths` cache's per-frame face boxes; frames without a detection interpolated
  linearly, as upstream's tracker fills its gaps) give centre and half-size, each median-filtered over 13 frames
  (scipy's `medfilt`, zero-padded ends, as upstream); the frame is padded with grey 110 and cut from
  y - s to y + s(1 + 2 * 0.4), x - s(1 + 0.4) to x + s(1 + 0.4) (the lower face), resized to 224x224
  (bilinear), fed as BGR values 0-255 without normalisation;
- audio: 16 kHz mono as 16-bit integers (as upstream's ffmpeg-written wav), MFCC by python_speech_features
  (upstream's library: 13 coefficients, 25 ms windows every 10 ms = 100 Hz);
- window i: frames i..i+4 against MFCC steps 4i..4i+19; a video of n frames (and of audio, 640 samples a frame)
  has min(n_video, n_audio) - 5 windows, upstream's count;
- the offset search: window i's video embedding against the audio embeddings of windows i-15..i+15 (a zero
  embedding beyond the ends, as upstream pads its feature list); distance = ||v - a + 1e-6||.

Units: one per window, its `vector` the 31 distances (audio shift -15..+15 windows; index 15 = in sync), its
times the 0.2 s it covers. The video rule (`tetrad.aggregate.reduce`, "av_offset") is upstream's: the mean
distance over windows per shift; AV offset = 15 - argmin, min distance = its minimum, confidence = median -
minimum. Ranking score (fake-positive logit): the best mean distance within +-1 frame of sync (40 ms, inside
broadcast lip-sync tolerance) minus the median, i.e. minus the confidence at the delivered alignment: high when
the pictures and the sound do not match where they are, whether they match elsewhere (a large |offset|) or
nowhere (low confidence). P(fake) = sigmoid(that logit): 0.5 where the delivered alignment is no better than a
typical wrong one. It is a monotone map of a distance, not a calibrated probability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
from scipy.signal import medfilt
from torch import nn

from tetrad.layers.base import CheckpointError, Detector, DetectorSpec, Unit, load_checkpoint, load_strict
from tetrad.layers.registry import register_detector
from tetrad.params import ConfigError, build
from tetrad.schemas import DECODE_ERROR, NO_FACE, TOO_SHORT, StatusError, scored
from tetrad.weights.catalog import WeightEntry

# The checkpoints this detector can load (read without importing this module by `tetrad weights`; literals only).
WEIGHTS = (
    WeightEntry(
        name="syncnet_v2", layer="sync", filename="syncnet_v2.model",
        url="http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
        licence="MIT (code); no separate licence stated for the weights",
        source="joonson/syncnet_python@6efbb1c:download_model.sh",
    ),
)

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
WINDOW = 5  # video frames per window
MFCC_PER_FRAME = 4  # 100 Hz MFCC against 25 fps
MFCC_WINDOW = 20
N_MFCC = 13
CROP = 224
PAD_GREY = 110
# shifts within this many frames of the delivered alignment count as in sync for the ranking score: the video rule's
# tetrad.aggregate.reduce.SYNC_TOLERANCE_FRAMES (not imported: the detect stage does not run the aggregate code;
# tests hold the two equal)
SYNC_TOLERANCE = 1


@dataclass(frozen=True)
class SyncArch:
    audio: tuple[int, ...] = (64, 192, 384, 256, 256, 512)  # netcnnaud block widths
    lip: tuple[int, ...] = (96, 256, 256, 256, 256, 512)  # netcnnlip block widths
    embed: int = 1024


ARCHS = {"full": SyncArch(), "tiny": SyncArch(audio=(8, 8, 8, 8, 8, 16), lip=(8, 8, 8, 8, 8, 16), embed=16)}


@dataclass(frozen=True)
class SyncOptions:
    vshift: int = 15  # upstream --vshift: the offset search covers -vshift..+vshift frames
    crop_scale: float = 0.4  # upstream --crop_scale
    smooth: int = 13  # median filter length over the track's centre and size (upstream's kernel_size)
    max_frames: int | None = None  # only the first N frames at 25 fps (a time cap; the protocol is every frame)

    def __post_init__(self) -> None:
        if self.vshift < 0:
            raise ConfigError(f"layer.sync.options.vshift: must be >= 0, got {self.vshift}")
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise ConfigError(f"layer.sync.options.smooth: must be an odd number >= 1, got {self.smooth}")
        if self.max_frames is not None and self.max_frames <= WINDOW:
            raise ConfigError(f"layer.sync.options.max_frames: {self.max_frames} leaves no {WINDOW}-frame window")


def _block(conv: nn.Module, norm: nn.Module, pool: nn.Module | None) -> list[nn.Module]:
    return [conv, norm, nn.ReLU(inplace=True), *([pool] if pool is not None else [])]


def audio_stream(w: tuple[int, ...]) -> nn.Sequential:
    """(N, 1, 13, 20) MFCC -> (N, w[5], 1, 1)."""
    c = [1, *w]
    pools = [nn.MaxPool2d(1, 1), nn.MaxPool2d(3, (1, 2)), None, None, nn.MaxPool2d(3, 2), None]
    layers: list[nn.Module] = []
    for i, pool in enumerate(pools):
        kernel, pad = ((5, 4), 0) if i == 5 else (3, 1)
        layers += _block(nn.Conv2d(c[i], c[i + 1], kernel, 1, pad), nn.BatchNorm2d(c[i + 1]), pool)
    return nn.Sequential(*layers)


def lip_stream(w: tuple[int, ...]) -> nn.Sequential:
    """(N, 3, 5, 224, 224) BGR frames -> (N, w[5], 1, 1, 1)."""
    c = [3, *w]
    convs = [((5, 7, 7), (1, 2, 2), 0), ((1, 5, 5), (1, 2, 2), (0, 1, 1)), ((1, 3, 3), 1, (0, 1, 1)),
             ((1, 3, 3), 1, (0, 1, 1)), ((1, 3, 3), 1, (0, 1, 1)), ((1, 6, 6), 1, 0)]
    pools = [nn.MaxPool3d((1, 3, 3), (1, 2, 2)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)), None, None,
             nn.MaxPool3d((1, 3, 3), (1, 2, 2)), None]
    layers: list[nn.Module] = []
    for i, ((kernel, stride, pad), pool) in enumerate(zip(convs, pools)):
        layers += _block(nn.Conv3d(c[i], c[i + 1], kernel, stride, pad), nn.BatchNorm3d(c[i + 1]), pool)
    return nn.Sequential(*layers)


def head(width: int, embed: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, embed))


class SyncNet(nn.Module):
    """The two streams, named as upstream's `S` module so its state dict loads strictly."""

    def __init__(self, arch: SyncArch) -> None:
        super().__init__()
        self.netcnnaud = audio_stream(arch.audio)
        self.netfcaud = head(arch.audio[-1], arch.embed)
        self.netfclip = head(arch.lip[-1], arch.embed)
        self.netcnnlip = lip_stream(arch.lip)

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def embed_video(self, frames: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.netcnnlip(frames).flatten(1))


@dataclass(frozen=True)
class AVWindow:
    """One window's input: its 5 face crops (RGB uint8, a view into the video's crops) and the MFCC windows of
    the audio it is compared with, 2 * vshift + 1 of them from audio window `first` on (zeros where `valid` is
    False: beyond the ends)."""

    frames: np.ndarray  # (5, 224, 224, 3) uint8 RGB
    mfcc: np.ndarray  # (2 * vshift + 1, 13, 20) float32
    valid: np.ndarray  # (2 * vshift + 1,) bool
    first: int  # index of the audio window at shift -vshift

    @property
    def shape(self) -> tuple[int, ...]:
        """What the detect engine batches by (equal shapes only): one flat tuple of ints, as an array's shape,
        so the Ray engine's plan (which carries shapes through Arrow) groups exactly as the local engine."""
        return (*self.frames.shape, *self.mfcc.shape)


def pack(units: list[Unit]) -> torch.Tensor:
    """A batch as one flat float32 tensor (the engine moves one tensor). Neighbouring windows of a video share
    30 of their 31 audio windows, so each distinct (video, audio window) is embedded once, as upstream embeds
    each audio window once: [B, U, S], the BGR frames (B, 3, 5, 224, 224), the U distinct MFCC windows, and the
    (B, S) index of each shift's window among them (-1: beyond the ends, a zero embedding)."""
    shifts = units[0].data.mfcc.shape[0]
    keys: dict[tuple[str, int], int] = {}
    mfccs: list[np.ndarray] = []
    index = np.full((len(units), shifts), -1, np.float32)
    for b, unit in enumerate(units):
        w: AVWindow = unit.data
        for m in np.flatnonzero(w.valid):
            key = (unit.video_id, w.first + int(m))
            if key not in keys:
                keys[key] = len(mfccs)
                mfccs.append(w.mfcc[m])
            index[b, m] = keys[key]
    frames = np.stack([u.data.frames[..., ::-1] for u in units]).transpose(0, 4, 1, 2, 3)  # RGB -> BGR; C T H W
    audio = np.stack(mfccs) if mfccs else np.zeros((0, N_MFCC, MFCC_WINDOW), np.float32)
    parts = [np.array([len(units), len(mfccs), shifts], np.float32), frames.astype(np.float32).ravel(),
             audio.astype(np.float32).ravel(), index.ravel()]
    return torch.from_numpy(np.concatenate(parts))


def unpack(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(frames (B, 3, 5, 224, 224), distinct MFCC windows (U, 1, 13, 20), index (B, S) long)."""
    b, u, s = (int(v) for v in x[:3].tolist())
    n_video = b * 3 * WINDOW * CROP * CROP
    n_audio = u * N_MFCC * MFCC_WINDOW
    frames = x[3:3 + n_video].view(b, 3, WINDOW, CROP, CROP)
    audio = x[3 + n_video:3 + n_video + n_audio].view(u, 1, N_MFCC, MFCC_WINDOW)
    return frames, audio, x[3 + n_video + n_audio:].view(b, s).long()


@register_detector
class SyncNetDetector(Detector):
    spec = DetectorSpec(
        name="syncnet_v2",
        layer="sync",
        input_kind="mouths",
        reduce="av_offset",
        label="one unit per 5-frame window: vector = AV distances at shifts -15..+15, logit = best distance "
              "within +-1 frame of sync minus the median (fake-positive); video: upstream's offset, min dist, "
              "confidence from the mean distances, P(fake) = sigmoid(the same logit on them)",
        weights={"model": "syncnet_v2"},
        checkpoint_format="plain state dict: netcnnaud.*, netfcaud.*, netcnnlip.*, netfclip.*; BatchNorm "
                          "num_batches_tracked absent in files written before PyTorch 0.4.1",
        upstream="joonson/syncnet_python@6efbb1c",
        licence="MIT (code); no separate licence stated for the weights",
        paper="Out of time: automated lip sync in the wild (ACCV 2016 workshops)",
        input_size=(3, WINDOW, CROP, CROP),
        normalisation="face crops BGR 0-255, not normalised; MFCC of int16 samples, not normalised",
        upstream_options={"vshift": 15, "crop_scale": 0.4, "smooth": 13, "max_frames": None},
    )
    options_type = SyncOptions
    count_columns = ("status", "frame_idx", "pts_s")
    reads_source = True

    def __init__(self, arch: SyncArch, options: SyncOptions) -> None:
        super().__init__()
        self.net = SyncNet(arch)
        self.options = options

    @classmethod
    def from_weights(cls, weights: Mapping[str, Path], variant: str, options: Mapping[str, Any]) -> SyncNetDetector:
        detector = cls(ARCHS[variant], build(SyncOptions, dict(options), "layer.sync.options"))
        path = Path(weights["model"])
        load_strict(detector.net, with_batch_counts(detector.net, load_checkpoint(path), path), path)
        return detector

    def make_units(self, rows: pd.DataFrame) -> list[Unit]:
        vid = str(rows["video_id"].iloc[0])
        plan = frame_plan(vid, rows, self.options.max_frames)
        crops, wave = read_av(vid, rows.attrs.get("source"), plan, self.options)
        return av_windows(vid, crops, mfcc(wave), len(wave), plan, self.options.vshift)

    def count_units(self, rows: pd.DataFrame) -> int:
        """From the frames: a clip whose audio is shorter than its pictures cuts fewer (the total is corrected)."""
        plan = frame_plan(str(rows["video_id"].iloc[0]), rows, self.options.max_frames)
        return max(len(plan.frame_idx) - WINDOW, 0)

    def preprocess(self, units: list[Unit]) -> torch.Tensor:
        return pack(units)

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2 * vshift + 1): each window's video embedding against the audio embeddings at each shift."""
        frames, audio, index = unpack(x)
        video = self.net.embed_video(frames)
        sound = self.net.embed_audio(audio) if len(audio) else video[:0]
        sound = torch.cat([sound, torch.zeros_like(video[:1])])  # row U: the zero embedding beyond the ends
        sound = sound[torch.where(index < 0, len(sound) - 1, index)]  # (B, S, E)
        return torch.nn.functional.pairwise_distance(video.unsqueeze(1).expand_as(sound), sound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sync_logit(self.distances(x))

    def score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logit, the window's own upstream-style confidence median - min, the distance vector)."""
        d = self.distances(x)
        return sync_logit(d), d.median(dim=1).values - d.min(dim=1).values, d

    @classmethod
    def write_demo_weights(cls, slot: str, path: Path, variant: str, seed: int) -> None:
        if slot != "model":
            raise KeyError(f"{cls.spec.name} has no weight slot {slot!r}")
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = SyncNet(ARCHS[variant])
            fit_streams(net, seed)
        state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # the release predates PyTorch's zip format and BatchNorm's batch counter: write the same kind of file
        torch.save(state, path, _use_new_zipfile_serialization=False)


def sync_logit(d: torch.Tensor) -> torch.Tensor:
    """Fake-positive: the best distance within SYNC_TOLERANCE of shift 0 minus the median over shifts."""
    mid = d.shape[-1] // 2
    near = d[..., max(mid - SYNC_TOLERANCE, 0):mid + SYNC_TOLERANCE + 1].min(dim=-1).values
    return near - d.median(dim=-1).values


def with_batch_counts(net: nn.Module, state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """BatchNorm's `num_batches_tracked` (added in PyTorch 0.4.1; unused in eval) filled with 0 where the file
    predates it, as PyTorch's own loader does for old files; every other key must still match exactly."""
    counters = [k for k in net.state_dict() if k.endswith("num_batches_tracked")]
    present = [k for k in counters if k in state]
    if present and len(present) != len(counters):
        raise CheckpointError(f"{path}: has num_batches_tracked for {len(present)} of {len(counters)} BatchNorm "
                              "layers: not a file of this network")
    return state if present else {**state, **{k: torch.tensor(0, dtype=torch.long) for k in counters}}


def fit_streams(net: SyncNet, seed: int) -> None:
    """Demo-random BatchNorm statistics fitted on seeded probes of each stream, so distances vary with input."""
    from tetrad.randinit import fit_batchnorm

    gen = torch.Generator().manual_seed(seed)
    video = torch.rand(6, 3, WINDOW, CROP, CROP, generator=gen) * 255
    audio = torch.randn(6, 1, N_MFCC, MFCC_WINDOW, generator=gen) * 10
    fit_batchnorm(nn.Sequential(net.netcnnlip, nn.Flatten(), net.netfclip), video)
    fit_batchnorm(nn.Sequential(net.netcnnaud, nn.Flatten(), net.netfcaud), audio)


# ------------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class FramePlan:
    """The 25 fps frame sequence: the source frame shown at each 1/25 s step, and the face track there."""

    frame_idx: np.ndarray  # (n,) source frame index per step
    boxes: np.ndarray  # (n, 4) x0, y0, x1, y1, detected or interpolated


def frame_plan(vid: str, rows: pd.DataFrame, max_frames: int | None) -> FramePlan:
    """Steps at k/25 s over the cached frames, as FFmpeg's fps filter converts a rate (upstream re-encodes at
    `-r 25`): each frame goes to the step nearest its time, a step shows the last frame that reached it, and a
    step no frame reached repeats the one before."""
    ok = rows[scored(rows["status"])].sort_values("frame_idx")
    if ok.empty:
        raise StatusError(NO_FACE, f"{vid}: no frame with a face track")
    pts = ok["pts_s"].to_numpy(np.float64)
    step_of = np.floor((pts - pts[0]) * FPS + 0.5).astype(np.int64)
    pick = np.searchsorted(step_of, np.arange(int(step_of[-1]) + 1), side="right") - 1
    if max_frames is not None:
        pick = pick[:max_frames]
    if len(pick) <= WINDOW:
        raise StatusError(TOO_SHORT, f"{vid}: {len(pick)} frames at 25 fps, SyncNet needs more than {WINDOW}")
    boxes = track_boxes(vid, ok) if "box" in ok else np.zeros((len(ok), 4))
    return FramePlan(ok["frame_idx"].to_numpy()[pick], boxes[pick])


def track_boxes(vid: str, ok: pd.DataFrame) -> np.ndarray:
    """Each frame's face box; frames without a detection interpolated linearly between their neighbours."""
    idx = ok["frame_idx"].to_numpy(np.float64)
    have = ok["box"].notna().to_numpy()
    if not have.any():
        raise StatusError(NO_FACE, f"{vid}: no frame has a detected face box")
    known = np.stack(ok["box"][have].to_numpy()).astype(np.float64)
    return np.stack([np.interp(idx, idx[have], known[:, j]) for j in range(4)], axis=1)


def smoothed_track(boxes: np.ndarray, kernel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre x, centre y and half-size s = max(w, h) / 2, each median-filtered (zero-padded ends, upstream)."""
    s = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    x, y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return medfilt(x, kernel), medfilt(y, kernel), medfilt(s, kernel)


def sync_crop(frame: np.ndarray, x: float, y: float, s: float, crop_scale: float) -> np.ndarray:
    """Upstream's crop: pad by s(1 + 2 cs) with grey, cut the lower-face box, resize to 224 (bilinear)."""
    pad = int(s * (1 + 2 * crop_scale))
    padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=PAD_GREY)
    my, mx = y + pad, x + pad
    face = padded[int(my - s):int(my + s * (1 + 2 * crop_scale)),
                  int(mx - s * (1 + crop_scale)):int(mx + s * (1 + crop_scale))]
    if face.size == 0:
        raise StatusError(NO_FACE, f"face box of half-size {s:.1f} px at ({x:.1f}, {y:.1f}) gives an empty crop")
    return cv2.resize(face, (CROP, CROP))


def read_av(vid: str, source: str | None, plan: FramePlan, options: SyncOptions) -> tuple[np.ndarray, np.ndarray]:
    """The 25 fps face crops and the 16 kHz audio, decoded again from the source file in one pass."""
    from tetrad.media.decode import decode

    if source is None or not Path(source).is_file():
        raise StatusError(DECODE_ERROR, f"{vid}: SyncNet cuts its crops from the source video, and "
                                        f"{source or 'no path'} is missing")
    x, y, s = smoothed_track(plan.boxes, options.smooth)
    steps: dict[int, list[int]] = {}
    for k, f in enumerate(plan.frame_idx.tolist()):
        steps.setdefault(f, []).append(k)
    crops = np.zeros((len(plan.frame_idx), CROP, CROP, 3), np.uint8)
    filled = np.zeros(len(crops), bool)

    def cut(frame: tuple[int, float, np.ndarray]) -> None:
        for k in steps[frame[0]]:
            crops[k] = sync_crop(frame[2], x[k], y[k], s[k], options.crop_scale)
            filled[k] = True

    decoded = decode(Path(source), SAMPLE_RATE, lambda n: sorted(steps), on_frame=cut)
    for stream in ("audio", "video"):
        if stream in decoded.errors:
            raise StatusError(decoded.errors[stream].status, str(decoded.errors[stream]))
    # a file cut short since extraction (or cut in its audio only) gives fewer steps: keep the decoded prefix
    return crops[:int(np.argmin(filled)) if not filled.all() else len(crops)], decoded.audio


def pcm16(wave: np.ndarray) -> np.ndarray:
    """Float samples as the 16-bit integers upstream's ffmpeg writes (rounded, clipped), the scale its MFCC sees."""
    return np.clip(np.rint(wave.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def mfcc(wave: np.ndarray) -> np.ndarray:
    """(13, T) MFCC at 100 Hz of the 16-bit samples upstream's ffmpeg writes (python_speech_features)."""
    import python_speech_features

    return python_speech_features.mfcc(pcm16(wave), SAMPLE_RATE).T.astype(np.float32)


def av_windows(vid: str, crops: np.ndarray, cc: np.ndarray, n_samples: int, plan: FramePlan,
               vshift: int) -> list[Unit]:
    """Upstream's windows: min(frames, audio frames of 640 samples) - 5 of them, each with the MFCC windows of
    its 2 * vshift + 1 shifts."""
    n = min(len(crops), n_samples // SAMPLES_PER_FRAME) - WINDOW
    if n < 1:
        raise StatusError(TOO_SHORT, f"{vid}: {len(crops)} frames and {cc.shape[1]} MFCC steps, too short for "
                                     f"one {WINDOW}-frame window")
    windows = np.stack([cc[:, MFCC_PER_FRAME * j:MFCC_PER_FRAME * j + MFCC_WINDOW] for j in range(n)])
    pad = np.zeros((vshift, N_MFCC, MFCC_WINDOW), np.float32)
    padded = np.concatenate([pad, windows, pad])
    valid = np.concatenate([np.zeros(vshift, bool), np.ones(n, bool), np.zeros(vshift, bool)])
    span = 2 * vshift + 1
    return [Unit(vid, i, i / FPS, (i + WINDOW) / FPS,
                 AVWindow(crops[i:i + WINDOW], padded[i:i + span], valid[i:i + span], i - vshift),
                 frame_idx=int(plan.frame_idx[i])) for i in range(n)]
