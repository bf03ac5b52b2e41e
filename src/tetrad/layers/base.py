"""The detector contract (docs/architecture.md, "Detectors"): a spec, a CPU preprocess, and a forward giving one logit
per unit."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from tetrad.errors import UserError
from tetrad.schemas import scored


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is missing, unreadable or does not match the module tree; the message names the file."""

    hint = "`tetrad weights list` shows which checkpoints are present and verified"


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    layer: str  # audio | visual | lip | semantic
    input_kind: str  # cache kind the extract stage must produce: audio | frames | faces | mouths
    reduce: str  # unit -> video rule (tetrad.aggregate.reduce)
    label: str  # what the stored `logit` means and how P(fake) follows from it
    weights: Mapping[str, str]  # slot -> default weights-registry name
    checkpoint_format: str
    upstream: str  # repo@commit
    licence: str
    paper: str
    input_size: tuple[int, ...] = ()
    normalisation: str = ""
    variants: tuple[str, ...] = ("full", "tiny")
    other_inputs: tuple[str, ...] = ()  # further cache kinds it can read (`layer.<name>.input`), e.g. faces
    # option values under which the detector evaluates as its upstream does (`protocol: upstream` sets them
    # through conf/protocol_layer/; tetrad.protocol reports any run that departs from them)
    upstream_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.input_kind, *self.other_inputs)


@dataclass(frozen=True)
class Unit:
    """One scoring unit: an audio window, a frame, a face, a clip."""

    video_id: str
    unit_idx: int
    t_start_s: float
    t_end_s: float
    data: Any = field(repr=False)  # an ndarray, or an object whose `shape` the engine batches by (SyncNet)
    frame_idx: int | None = None  # source frame of an image unit, first frame of a clip; None for audio
    cut: str | None = None  # cut from a file that was cut short: its score row is `partial`, with this error


class Detector(nn.Module):
    """Base class: subclasses set `spec`, build their module tree, and implement the methods below."""

    spec: ClassVar[DetectorSpec]
    options_type: ClassVar[type | None] = None  # the frozen dataclass `layer.<name>.options` is built into
    # The cache columns `count_units` reads besides video_id: light ones only (never pixels or samples), so the
    # detect engine counts a whole cache of millions of rows before its first batch.
    count_columns: ClassVar[tuple[str, ...]] = ("status",)
    # True when make_units reads the media file again (`rows.attrs["source"]`), as SyncNet does for pictures and
    # sound of the same frames; its units then exist only where the file does
    reads_source: ClassVar[bool] = False

    def make_units(self, rows: Any) -> list[Unit]:
        """Cut one video's cache rows (a DataFrame) into scoring units. `rows.attrs["source"]` is the media
        file, for a detector that reads it again (SyncNet decodes its pictures and sound in one pass)."""
        raise NotImplementedError

    def count_units(self, rows: Any) -> int:
        """How many units `make_units` cuts from these rows, read from `count_columns` only (the progress bar's
        total); where make_units raises a StatusError it may raise it too (no units either way). The default,
        one unit per ok row, is exact for image detectors; a detector cutting otherwise overrides it through
        the same helper its make_units cuts with (e.g. `units.window_starts`), so the two cannot drift."""
        return int(scored(rows["status"]).sum())

    def preprocess(self, units: list[Unit]) -> torch.Tensor:
        """CPU, pure, batched: units of equal shape -> model input."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per unit, fake = positive: P(fake) = sigmoid(logit)."""
        raise NotImplementedError

    def score(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(fake-positive logit, upstream's own score or None[, a (B, K) vector per unit]). Override where
        upstream ranks by another number than our logit (e.g. AASIST's bona fide logit), so reports can quote
        both, or where the video rule needs more than one number per unit (SyncNet's distances per shift: the
        scores table's `vector`)."""
        return self(x), None

    @classmethod
    def from_weights(cls, weights: Mapping[str, Path], variant: str, options: Mapping[str, Any]) -> Detector:
        raise NotImplementedError

    @classmethod
    def write_demo_weights(cls, slot: str, path: Path, variant: str, seed: int) -> None:
        """Write a random-initialised checkpoint for `slot` in the exact upstream format."""
        raise NotImplementedError


def is_torchscript_archive(path: Path) -> bool:
    """TorchScript archives (e.g. OpenAI's ViT-L-14.pt) carry compiled code next to the pickled data."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.split("/", 2)[1:2] == ["code"] for n in zf.namelist() if n.count("/") >= 2)


def convert_hint(path: Path) -> str:
    """The command that turns a TorchScript archive the user trusts into a plain state dict (it runs the file's
    code once, on the user's say-so)."""
    out = path.with_suffix(".state_dict.pt")
    return (f"python -c \"import torch; torch.save(torch.jit.load('{path}', map_location='cpu').state_dict(), "
            f"'{out}')\"")


def load_torchscript(path: Path, trusted_sha256: set[str]) -> dict[str, torch.Tensor]:
    """The state dict of a TorchScript archive, only when its sha256 is pinned (e.g. OpenAI's ViT-L-14.pt):
    `torch.jit.load` runs the archive's code (`__setstate__`), which `weights_only` does not cover."""
    from tetrad.io import file_sha256

    digest = file_sha256(path)
    if digest not in trusted_sha256:
        raise CheckpointError(f"{path}: refused: a TorchScript archive (its code runs when loaded) whose sha256 "
                              f"{digest[:16]}... is not a pinned release; convert a file you trust to a plain "
                              f"state dict with: {convert_hint(path)}")
    try:
        return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read TorchScript archive ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    """One line for an exception: torch's weights_only refusal spends six lines to say which global it met."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), lines[0] if lines else "")
    return f"{type(exc).__name__}: {said}"[:400]


def load_checkpoint(path: Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict safely (weights_only=True, CPU), optionally from under `key` ({"model": ...})."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if is_torchscript_archive(path):
        raise CheckpointError(f"{path}: refused: a TorchScript archive (its code runs when loaded), not a state "
                              f"dict; convert a file you trust with: {convert_hint(path)}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: refused: it holds more than tensors, and loading it could run code "
                              f"({_first_line(exc)})") from None
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise CheckpointError(f"{path}: cannot read checkpoint ({_first_line(exc)})") from None
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            found = sorted(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(f"{path}: expected a dict with key {key!r}, found {found}")
        obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return dict(obj)


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Strict load with an error listing missing/unexpected/mis-shaped keys and naming the file."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{path}: does not match {type(module).__name__}: "
            f"{len(missing)} missing keys {_head(missing)}, {len(unexpected)} unexpected keys {_head(unexpected)}"
            + (f", {len(shapes)} shape mismatches {_head(shapes)}" if shapes else "")
        )
    module.load_state_dict(state, strict=True)


def _head(items: list[str], n: int = 5) -> str:
    return "[" + ", ".join(items[:n]) + (", ..." if len(items) > n else "") + "]"
