"""A layer's weight slots resolved through the weights manager, and the demo-random checkpoints written where
no real file exists (in each detector's exact upstream format, so the real loading code is what runs)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tetrad import weights as wm
from tetrad.io import write_atomically
from tetrad.layers.registry import detector_class
from tetrad.params import LayerParams, Params

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerWeights:
    paths: dict[str, Path]  # slot -> file or directory
    sources: dict[str, str]  # slot -> "real" | "demo-random"
    sha256: dict[str, str | None]

    @property
    def provenance(self) -> str:
        return "demo-random" if "demo-random" in self.sources.values() else "real"


def resolve_layer_weights(layer: LayerParams, params: Params) -> LayerWeights:
    """Each weight slot from the weights manager (an entry name) or a user's own path."""
    resolved = {slot: wm.resolve(value, Path(params.weights.dir), allow_demo=params.weights.allow_demo)
                for slot, value in layer.weights.items()}
    for slot, r in resolved.items():
        log.info("%s/%s: %s weights %s", layer.detector, slot, r.source, r.path)
    return LayerWeights({s: r.path for s, r in resolved.items()}, {s: r.source for s, r in resolved.items()},
                        {s: r.sha256 for s, r in resolved.items()})


def write_demo_weights(params: Params, seed: int = 0, layers: list[str] | None = None) -> list[Path]:
    """Random checkpoints in the exact upstream format for every configured slot that has no real file."""
    written = []
    for layer_name, layer in params.layer.items():
        if layers is not None and layer_name not in layers:
            continue
        cls = detector_class(layer.detector)
        for slot, name in layer.weights.items():
            target = wm.demo_target(name, params.weights.dir)
            if target is None:
                continue
            log.info("writing demo-random %s/%s (%s variant) to %s", layer.detector, slot, layer.variant, target)
            write_atomically(target, lambda tmp: cls.write_demo_weights(slot, tmp, layer.variant, seed))
            written.append(target)
    return written
