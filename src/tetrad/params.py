"""Typed, frozen configuration: one dataclass per conf group.

`params.yaml` (composed from `conf/` by Hydra) is read with OmegaConf and turned into these dataclasses by
`load_params`, which rejects unknown keys and wrong types with the full key name. Library code only ever
sees the dataclasses, never a DictConfig.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from tetrad.errors import UserError
from tetrad.schemas import KINDS, LAYERS


class ConfigError(UserError, ValueError):
    """A config key is unknown, missing or has a bad value; the message names the key."""

    hint = "the value comes from conf/ (params.yaml is composed from it with `tetrad params`) or a `-S` override"


PRECISIONS = ("fp32", "bf16", "fp16")  # layer.<layer>.precision


@dataclass(frozen=True)
class DatasetParams:
    name: str = "mini"  # names the data/<name>/ and reports/<name>/ folders; equals its key in `datasets`
    adapter: str = "mini"  # registered dataset adapter (tetrad.datasets)
    root: str = "data/mini/raw"
    split: str | None = None  # keep only this split when the dataset defines splits
    limit: int | None = None  # keep the first N rows (after split and sample), for quick runs
    sample: int | None = None  # keep N rows drawn at random, stratified by label (after split, before limit)
    seed: int = 0  # seed of `sample` (and of the files `tetrad doctor` probes)
    options: dict[str, Any] = field(default_factory=dict)  # adapter-specific options


@dataclass(frozen=True)
class AudioExtractParams:
    sample_rate: int = 16000


@dataclass(frozen=True)
class FramesExtractParams:
    n_frames: int = 16  # uniformly spaced: linspace(0, N-1, n_frames)
    size: int = 224
    mode: str = "resize_crop"  # resize_crop (short side to `resize`, centre crop) | center_crop (upstream eval)
    resize: int = 256


@dataclass(frozen=True)
class FaceParams:
    """conf/face/: which face detector and landmarker the `faces` and `mouths` caches are built with."""

    detector: str = "retinaface"  # registered face detector (tetrad.faces) of the SBI face crops
    options: dict[str, Any] = field(default_factory=dict)  # passed to its constructor
    min_score: float = 0.7  # faces below this detector confidence are dropped (RetinaFace's SBI threshold)
    # The mouth track's boxes (they seed the 68-point landmarker on every frame of a video): its own detector,
    # or "" for the SBI detector. See docs/architecture.md, "Face detectors".
    mouth_detector: str = "mtcnn"
    mouth_options: dict[str, Any] = field(default_factory=dict)
    landmarks: str = "dlib68"  # registered 68-point landmarker (mouth alignment)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # exact: the detector on every frame a kind needs, at full resolution (upstream's protocol, parity-tested).
    # fast: the detector on every `fast_stride`-th mouth frame and on the SBI frames, at `fast_height` rows;
    # landmarks interpolated between those frames; mouths warped with OpenCV. `make bench` reports the agreement.
    mode: str = "exact"
    fast_stride: int = 5
    fast_height: int = 360
    batch_megapixels: float = 2.0  # frames are detected in batches of at most this many pixels (memory bound)


@dataclass(frozen=True)
class FacesExtractParams:
    """SBI's inputs: face crops of uniformly spaced frames."""

    n_frames: int = 32  # linspace(0, N-1, n_frames), SBI's default
    size: int = 380  # EfficientNet-B4 input
    min_area_ratio: float = 0.5  # keep faces with box area >= ratio x the largest in the frame
    # crops: the crops in the cache (extract.encoding) | boxes: boxes only, the detect stage cuts the crops from
    # the source video again (bit-identical; ~45x fewer bytes for this kind, the video must stay readable)
    store: str = "boxes"


@dataclass(frozen=True)
class MouthsExtractParams:
    """LipForensics' inputs: aligned greyscale mouth crops of every frame."""

    mean_face: str = "lipforensics_mean_face"  # weights-registry name or path of the (68, 2) LRW mean face
    window: int = 12  # forward landmark-smoothing window (frames i .. i+window-1)
    aligned_size: int = 256
    crop_size: int = 96
    missing: str = "interpolate"  # interpolate | abort: frames without a face (see README, "Mouth crops")
    max_missing: float = 0.5  # with `interpolate`: a video with a larger share of faceless frames is no_face
    max_frames: int | None = None  # only the first N frames (a time cap for quick runs; the protocol is all)


@dataclass(frozen=True)
class LimitsParams:
    """Per file, so that one pathological file cannot take a run's time (tetrad.media.limits)."""

    max_duration_s: float = 600.0  # longer media is `too_long` (read from the container header, nothing decoded)
    timeout_s: float = 1800.0  # wall time of one file's decode and crops in its worker; beyond it: `timeout`
    max_megapixels: float = 36.0  # larger frames (8K and up) are `too_large`: a worker holds several at once


@dataclass(frozen=True)
class ExtractParams:
    kinds: list[str] = field(default_factory=lambda: ["audio", "frames"])
    audio: AudioExtractParams = field(default_factory=AudioExtractParams)
    frames: FramesExtractParams = field(default_factory=FramesExtractParams)
    faces: FacesExtractParams = field(default_factory=FacesExtractParams)
    mouths: MouthsExtractParams = field(default_factory=MouthsExtractParams)
    face: FaceParams = field(default_factory=FaceParams)  # conf/face/, shared by `faces` and `mouths`
    encoding: str = "png"  # png (lossless, ~2.5x smaller) | raw: how crops are stored in the cache
    shard_mb: float = 256.0  # a Parquet shard (the unit of resume) holds videos of at most this many MB...
    shard_size: int = 64  # ...and at most this many videos
    workers: int = 2  # decoding processes
    limits: LimitsParams = field(default_factory=LimitsParams)


@dataclass(frozen=True)
class LayerParams:
    detector: str = ""  # registered detector name (tetrad.layers)
    input: str = ""  # extract cache kind it reads: audio | frames | faces | mouths (one of extract.kinds)
    weights: dict[str, str] = field(default_factory=dict)  # slot -> weights-registry name or file path
    variant: str = "full"  # "tiny" only in tests
    batch_size: int = 8
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    options: dict[str, Any] = field(default_factory=dict)  # detector-specific, checked by its Options class
    # The detect engine (docs/architecture.md, "Detect engine"); the defaults give upstream's exact fp32 scores.
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast on the forward; fp16 needs CUDA)
    tf32: bool = False  # TF32 matmuls and convolutions on CUDA: faster, no longer exact fp32
    channels_last: bool = False  # NHWC model and 4-D inputs: faster convolutions on GPU (CNNs only)
    compile: bool = False  # torch.compile the forward: pays a compile at start, for long runs
    prefetch: int = 2  # batches the loader thread prepares ahead of the forward


@dataclass(frozen=True)
class AggregateParams:
    threshold: float = 0.5  # decision threshold on P(fake) for ACC / balanced ACC
    fail_fast: float = 0.9  # cascade stops after the first layer when its P(fake) >= this
    cascade_first: str = "audio"  # the layer the cascade runs first
    missing: str = "abstain"  # abstain | impute | drop (how fusion treats a layer without a score)
    seed_weights: dict[str, float] = field(
        default_factory=lambda: {"audio": 0.30, "visual": 0.25, "lip": 0.25, "semantic": 0.20, "sync": 0.20}
    )
    folds: int = 3  # grouped k-fold for tuned fusions (out-of-fold scores are reported)
    weight_grid_step: float = 0.1  # simplex grid step of the tuned_weights search
    bootstrap: int = 1000  # grouped bootstrap resamples for confidence intervals
    ci: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class EngineParams:
    """Where extract and detect run (conf/engine/, docs/scale-out.md): `local` is this machine's processes (the
    extract pool, detect's loader thread and forward); `ray` runs the same functions on a Ray cluster. Both give
    the same bytes: the batch plan (`window_shards`) is shared, the rest only places work."""

    name: str = "local"  # local | ray
    window_shards: int = 64  # detect pools units into batches across this many shards, then flushes (both engines)
    address: str = "local"  # ray: local (a one-machine cluster for the stage) | auto (RAY_ADDRESS's) | host:port
    host: str = "127.0.0.1"  # ray, local cluster: the address its node, ports and dashboard bind to
    dashboard: bool = False  # ray, local cluster: serve the dashboard on `host`
    num_cpus: int | None = None  # ray, local cluster: its CPUs (None: all of this machine's)
    num_gpus: int | None = None  # ray, local cluster: its GPUs (None: all)
    extract_cpus: float = 1.0  # ray: CPUs per extract task (one shard's decode and crops)
    cutters: int = 1  # ray: detect actors that read shards and cut units (CPU)
    cutter_cpus: float = 1.0  # ray: CPUs per cutter
    actors: int = 1  # ray: detect actors holding the model, each loaded once
    actor_gpus: float = 0.0  # ray: GPUs per model actor (fractional shares a GPU: 0.5 puts two on one)
    actor_cpus: float = 1.0  # ray: CPUs per model actor


@dataclass(frozen=True)
class WeightsParams:
    dir: str = "weights"
    allow_demo: bool = False  # fall back to random demo checkpoints when real ones are missing


@dataclass(frozen=True)
class MlflowParams:
    enabled: bool = True
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "tetrad"


@dataclass(frozen=True)
class Params:
    experiment: str = "benchmark"  # name of the conf/experiment preset, recorded in reports
    protocol: str = "tetrad"  # tetrad | upstream (conf/protocol/; tetrad.protocol checks and reports it)
    datasets: dict[str, DatasetParams] = field(default_factory=dict)  # evaluated by `dvc repro`, by name
    dataset_names: list[str] = field(default_factory=list)  # = the keys of `datasets` (drives dvc.yaml's matrix)
    layer: dict[str, LayerParams] = field(default_factory=dict)  # the enabled layers (conf/layer/<layer>/)
    layer_names: list[str] = field(default_factory=list)  # = the keys of `layer`
    extract: ExtractParams = field(default_factory=ExtractParams)
    aggregate: AggregateParams = field(default_factory=AggregateParams)
    engine: EngineParams = field(default_factory=EngineParams)
    weights: WeightsParams = field(default_factory=WeightsParams)
    mlflow: MlflowParams = field(default_factory=MlflowParams)


_CHOICES = {
    "protocol": ("tetrad", "upstream"),
    "extract.frames.mode": ("resize_crop", "center_crop"),
    "aggregate.missing": ("abstain", "impute", "drop"),
    "extract.kinds": KINDS,
    "layer.*.precision": PRECISIONS,  # `*`: any one key segment, here the layer
    "extract.mouths.missing": ("interpolate", "abort"),
    "extract.face.mode": ("exact", "fast"),
    "extract.encoding": ("png", "raw"),
    "extract.faces.store": ("crops", "boxes"),
    "engine.name": ("local", "ray"),
}


# Every count, size and rate has a range (closed; `*` is any one key segment). A value outside fails at load with
# the key and the range: a negative frame count would otherwise turn every file into a decode error and the run
# would "succeed" with nothing scored.
_BIG = 10**9
_RANGES: dict[str, tuple[float, float]] = {
    "datasets.*.limit": (1, _BIG), "datasets.*.sample": (1, _BIG), "datasets.*.seed": (0, 2**32 - 1),
    "extract.audio.sample_rate": (1000, 384000),
    "extract.frames.n_frames": (1, 100000), "extract.frames.size": (8, 8192), "extract.frames.resize": (8, 8192),
    "extract.face.min_score": (0, 1), "extract.face.fast_stride": (1, 1000), "extract.face.fast_height": (32, 8192),
    "extract.face.batch_megapixels": (0.1, 10000),
    "extract.faces.n_frames": (1, 100000), "extract.faces.size": (8, 8192), "extract.faces.min_area_ratio": (0, 1),
    "extract.mouths.window": (1, 1000), "extract.mouths.aligned_size": (8, 8192), "extract.mouths.crop_size": (8, 8192),
    "extract.mouths.max_missing": (0, 1), "extract.mouths.max_frames": (1, _BIG),
    "extract.limits.max_duration_s": (0.1, 10**7), "extract.limits.timeout_s": (0.001, 10**7),
    "extract.limits.max_megapixels": (0.01, 10**4),
    "extract.shard_mb": (1, 10**6), "extract.shard_size": (1, 10**6), "extract.workers": (1, 1024),
    "engine.window_shards": (1, _BIG), "engine.num_cpus": (1, 10**5), "engine.num_gpus": (0, 10**4),
    "engine.extract_cpus": (0.01, 1024), "engine.cutters": (1, 10**5), "engine.cutter_cpus": (0.01, 1024),
    "engine.actors": (1, 10**5), "engine.actor_gpus": (0, 64), "engine.actor_cpus": (0, 1024),
    "layer.*.batch_size": (1, 10**5), "layer.*.prefetch": (1, 1024),
    "aggregate.threshold": (0, 1), "aggregate.fail_fast": (0, 1), "aggregate.seed_weights.*": (0, 1000),
    "aggregate.folds": (2, 1000), "aggregate.weight_grid_step": (0.01, 1), "aggregate.bootstrap": (1, 10**6),
    "aggregate.ci": (0.5, 0.999), "aggregate.seed": (0, 2**32 - 1),
}


def build(cls: type, data: Any, key: str = "") -> Any:
    """Build dataclass `cls` from plain data, naming the full key of any unknown or badly typed value."""
    if not isinstance(data, dict):
        raise ConfigError(f"{key or '<root>'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key {_join(key, unknown[0])!r} (known: {sorted(names)})")
    values = {name: _coerce(hints[name], data[name], _join(key, name)) for name in data}
    return cls(**values)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(next(a for a in args if a is not type(None)), value, key)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, _join(key, str(k))) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(args[0], v, key) for v in value]
    return _scalar(tp, value, key)


def _scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    choices = _rule(_CHOICES, key)
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {choices}")
    bounds = _rule(_RANGES, key)
    if bounds is not None and isinstance(value, (int, float)) and not bounds[0] <= value <= bounds[1]:
        raise ConfigError(f"{key}: {value!r} is outside the allowed range [{bounds[0]}, {bounds[1]}]")
    return value


def _rule(rules: dict[str, Any], key: str) -> Any:
    """The rule for `key` in `rules` (_CHOICES, _RANGES), matching patterns segment by segment (`*` is any one)."""
    parts = key.split(".")
    for pattern, rule in rules.items():
        segments = pattern.split(".")
        if len(segments) == len(parts) and all(s in ("*", k) for s, k in zip(segments, parts)):
            return rule
    return None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def validate(params: Params) -> Params:
    """Cross-field checks that a type alone cannot express."""
    if params.dataset_names != list(params.datasets) or params.layer_names != list(params.layer):
        raise ConfigError("dataset_names / layer_names must list the keys of datasets / layer "
                          "(conf/config.yaml derives them; regenerate params.yaml with `make params`)")
    for key, dataset in params.datasets.items():
        if dataset.name != key:
            raise ConfigError(f"datasets.{key}.name: is {dataset.name!r}; it must equal its key {key!r}")
    for name, layer in params.layer.items():
        if name not in LAYERS:
            raise ConfigError(f"layer.{name}: unknown layer (known: {LAYERS})")
        if not layer.detector:
            raise ConfigError(f"layer.{name}.detector: layer {name!r} is enabled but names no detector")
        if layer.input not in params.extract.kinds:
            raise ConfigError(f"layer.{name}.input: {layer.input!r} is not extracted (extract.kinds: "
                              f"{params.extract.kinds})")
    return params


def compose_params(out: Path, overrides: list[str], conf_dir: Path = Path("conf")) -> Path:
    """conf/ -> params.yaml with the same composer `dvc exp run -S` uses, so both write the same file."""
    from dvc.utils.hydra import (
        compose_and_dump,  # here: reading params.yaml needs no DVC
    )

    compose_and_dump(out, str(conf_dir.resolve()), None, "config", str(Path.cwd()), overrides)
    return out


def params_from_dict(data: dict[str, Any]) -> Params:
    return validate(build(Params, data))


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read params.yaml (interpolations resolved) into validated frozen dataclasses."""
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    try:
        return params_from_dict(data)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
