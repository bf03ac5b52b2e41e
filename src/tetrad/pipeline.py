"""Glue shared by the DVC stages: where each table lives, logging, and resolving a layer's weights."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tetrad import weights as wm
from tetrad.io import file_sha256
from tetrad.layers import detector_class
from tetrad.params import LayerParams, Params
from tetrad.tracking import git_sha

log = logging.getLogger(__name__)
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def setup(verbose: bool = False) -> None:
    """Logging for stage scripts and the CLI; nothing here may reach for the network."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("urllib3", "filelock", "alembic", "matplotlib", "PIL", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Paths:
    """Every file of one dataset's run (DESIGN.md §2)."""

    dataset: str
    root: Path = Path(".")

    @property
    def data(self) -> Path:
        return self.root / "data" / self.dataset

    @property
    def manifest(self) -> Path:
        return self.data / "manifest.parquet"

    def cache(self, kind: str) -> Path:
        return self.data / "cache" / kind

    def scores(self, layer: str) -> Path:
        return self.data / "scores" / f"{layer}.parquet"

    @property
    def reports(self) -> Path:
        return self.root / "reports" / self.dataset

    @property
    def summary_row(self) -> Path:
        """This dataset's line of the cross-dataset summary (the summary stage's input)."""
        return self.root / "data" / "summary" / f"{self.dataset}.json"


@dataclass(frozen=True)
class LayerWeights:
    paths: dict[str, Path]  # slot -> file or directory
    sources: dict[str, str]  # slot -> "real" | "demo-random"
    sha256: dict[str, str | None]

    @property
    def provenance(self) -> str:
        return "demo-random" if "demo-random" in self.sources.values() else "real"


def resolve_layer_weights(layer: LayerParams, params: Params) -> LayerWeights:
    """Each weight slot from the weights manager (registry name) or a user's own path."""
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
            entry = wm.REGISTRY.get(name)
            if entry is None or wm.verify_entry(entry, Path(params.weights.dir)).status != "missing":
                continue
            target = wm.path_for(entry, Path(params.weights.dir), demo=True)
            if target.exists():
                continue
            log.info("writing demo-random %s/%s (%s variant) to %s", layer.detector, slot, layer.variant, target)
            write_atomically(target, lambda tmp: cls.write_demo_weights(slot, tmp, layer.variant, seed))
            written.append(target)
    return written


def write_demo_mean_face(params: Params) -> Path | None:
    """The labelled mean-face stand-in, when mouths are extracted, demo weights are allowed and no real file is."""
    name = params.extract.mouths.mean_face
    entry = wm.REGISTRY.get(name)
    if "mouths" not in params.extract.kinds or entry is None or not params.weights.allow_demo:
        return None
    if wm.verify_entry(entry, Path(params.weights.dir)).status != "missing":
        return None
    target = wm.path_for(entry, Path(params.weights.dir), demo=True)
    if target.exists():
        return None
    from tetrad.media.meanface import write_standin_mean_face

    log.warning("no real %s: writing a DEMO STAND-IN mean face to %s (mouth crops will differ from upstream's)",
                entry.filename, target)
    write_atomically(target, write_standin_mean_face)
    return target


def write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """`write` a file or folder under a temp name, then rename: a killed write never leaves a half checkpoint
    under the real name (a temp left by an earlier killed run is removed first)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    write(tmp)
    os.replace(tmp, target)


def resolve_mean_face(params: Params) -> wm.Resolved:
    return wm.resolve(params.extract.mouths.mean_face, Path(params.weights.dir), allow_demo=params.weights.allow_demo)


def run_info(detector: Any, weights: LayerWeights, device: str) -> dict[str, Any]:
    """What the aggregate stage needs to know about a detect run: detector, weights provenance, device."""
    spec = detector.spec
    return {"detector": spec.name, "layer": spec.layer, "reduce": spec.reduce, "label": spec.label,
            "upstream": spec.upstream, "weights": weights.provenance,
            "weights_sources": weights.sources, "weights_sha256": weights.sha256,
            "weights_paths": {k: str(v) for k, v in weights.paths.items()},
            "device": str(next(detector.parameters()).device), "device_requested": device}


def modality_label(layer: str) -> str:
    """Audio is scored against the audio track's own label, picture layers against the video's."""
    return "audio_label" if layer == "audio" else "video_label"


def run_tags(infos: dict[str, dict[str, Any]], manifest_sha: str, experiment: str) -> dict[str, str]:
    """MLflow tags: code, pipeline, data and weights provenance."""
    lock = Path("dvc.lock")
    tags = {"git_sha": git_sha(), "dvc_lock_sha256": file_sha256(lock) if lock.is_file() else "none",
            "manifest_sha256": manifest_sha, "experiment": experiment,
            "weights": "demo-random" if any(i["weights"] == "demo-random" for i in infos.values()) else "real"}
    for layer, info in infos.items():
        tags[f"weights.{layer}"] = info["weights"]
        tags[f"detector.{layer}"] = info["detector"]
        for slot, sha in info["weights_sha256"].items():
            tags[f"sha256.{layer}.{slot}"] = sha or "unknown"
        for key, value in info.get("input", {}).items():
            tags[f"input.{layer}.{key}"] = str(value)
    return tags


def dataset_argument(doc: str | None) -> Any:
    """The `--dataset NAME` every per-dataset stage takes (a key of `datasets` in params.yaml)."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--dataset", required=True)
    return parser.parse_args()
