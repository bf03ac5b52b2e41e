"""Which evaluation protocol a run follows, and where it departs from the upstream detectors' own evaluation.

`protocol: tetrad` (the default) is this project's video protocol: every audio window scored, frames resized
before the centre crop. `protocol: upstream` (conf/protocol/upstream.yaml plus the per-detector files in
conf/protocol_layer/) sets every layer as its upstream evaluates, and a run whose settings still depart from
that (an override) is refused by the detect and aggregate stages before any model runs. The protocol
and its departures go to metrics.json, the report and the MLflow run's tags.

What no setting can change is documented in docs/architecture.md ("Protocols"): the mouths' landmarks are dlib's
68 points (LipForensics used FAN), and face crops of whole videos follow SBI's video path.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tetrad.faces import face_detector_class
from tetrad.layers import detector_class, get_spec
from tetrad.params import ConfigError, Params

PROTOCOLS = ("tetrad", "upstream")
FACE_DETECTOR = "retinaface"  # SBI's own detector (ternaus/retinaface, resnet50_2020-07-20)
SBI_FRAMES = 32  # frames SBI's video inference samples (inference_video.py, n_frames=32)


def departures(params: Params) -> list[str]:
    """Each setting of this run that differs from upstream's evaluation, as `key: ours (upstream: theirs)`."""
    return sorted({d for name in params.layer for d in layer_departures(params, name)})


def layer_departures(params: Params, name: str) -> list[str]:
    """Where layer `name` (its detector's options, its engine, the cache it reads) departs from its upstream;
    the detect stage records them in the layer's run info, and aggregate gathers them from there."""
    layer, out = params.layer[name], []
    for option, theirs in get_spec(layer.detector).upstream_options.items():
        ours = layer.options.get(option, _default_option(layer.detector, option))
        if ours != theirs:
            out.append(f"layer.{name}.options.{option}: {ours!r} (upstream: {theirs!r})")
    if layer.precision != "fp32" or layer.tf32:
        out.append(f"layer.{name}: precision {layer.precision}, tf32 {layer.tf32} (upstream: fp32, no TF32)")
    return sorted(out + _input_departures(params, layer.input))


def _input_departures(params: Params, kind: str) -> list[str]:
    ex = params.extract
    out = []
    if kind == "frames" and ex.frames.mode != "center_crop":
        out.append(f"extract.frames.mode: {ex.frames.mode!r} (upstream: 'center_crop')")
    if kind in ("faces", "mouths") and ex.face.mode != "exact":
        out.append(f"extract.face.mode: {ex.face.mode!r} (upstream: 'exact')")
    if kind == "faces" and ex.faces.n_frames != SBI_FRAMES:
        out.append(f"extract.faces.n_frames: {ex.faces.n_frames} (upstream: {SBI_FRAMES})")
    if kind == "faces" and ex.face.detector != FACE_DETECTOR:
        out.append(f"extract.face.detector: {ex.face.detector!r} (upstream: {FACE_DETECTOR!r})")
    elif kind == "faces":
        for option, theirs in face_detector_class(FACE_DETECTOR).upstream_options.items():
            if (ours := ex.face.options.get(option, theirs)) != theirs:
                out.append(f"extract.face.options.{option}: {ours!r} (upstream: {theirs!r})")
    if kind == "mouths" and ex.mouths.max_frames is not None:
        out.append(f"extract.mouths.max_frames: {ex.mouths.max_frames} (upstream: every frame)")
    return out


def _default_option(detector: str, option: str) -> Any:
    """The value a detector uses when the conf file leaves `option` out: its options dataclass's default."""
    options_type = detector_class(detector).options_type
    fields = {f.name: f for f in dataclasses.fields(options_type)} if options_type else {}
    return fields[option].default if option in fields else None


def summary(params: Params) -> dict[str, Any]:
    """What metrics.json, the report and MLflow record (aggregate builds the same from the layers' run info)."""
    return {"name": params.protocol, "departures": departures(params)}


def check(params: Params) -> None:
    """A run that says `protocol: upstream` must be upstream's: refuse it otherwise, naming each setting."""
    if params.protocol not in PROTOCOLS:
        raise ConfigError(f"protocol: expected one of {PROTOCOLS}, got {params.protocol!r}")
    found = departures(params) if params.protocol == "upstream" else []
    if found:
        raise ConfigError("protocol=upstream, but these settings depart from upstream's evaluation (set them "
                          "to upstream's, e.g. experiment=benchmark instead of the demo's CPU shortcuts, or use "
                          "protocol=tetrad):\n  " + "\n  ".join(found))
