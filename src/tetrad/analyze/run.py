"""`tetrad analyze`: a list of the user's own files through the layers and the fail-fast cascade, with the batch
stages' own code: the extract stage's decode and crops (`extract`), the detect stage's loader and engine
(`load_layer`, `score_cache`), the aggregate stage's reduce rules, fusion and cascade rule.

The list is treated as a small dataset. Phase 1 decodes only what the cascade's first layer reads (the audio
stream) and scores it; the videos whose P(fake) reaches `aggregate.fail_fast` stop there. Phase 2 decodes the
pictures of the other videos only and runs the other layers on them. Each model is loaded once for the whole
list and freed before the next (one layer at a time on the GPU, as the detect stages run). Without the cascade
there is one phase and each file is decoded once for every kind.
"""

from __future__ import annotations

import gc
import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad import protocol
from tetrad.aggregate.cascade import cascade_stops, simulate_cascade
from tetrad.aggregate.evaluate import build_video_table, verdicts
from tetrad.aggregate.fuse import fuse_weighted
from tetrad.aggregate.reduce import reduce_units
from tetrad.analyze.inputs import UsageError, manifest_of
from tetrad.params import Params, validate
from tetrad.schemas import FACE_KINDS, KINDS
from tetrad.stages.detect import load_layer, run_info, score_cache
from tetrad.stages.extract import Assets, extract, extract_assets, provenance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyzeOptions:
    layers: tuple[str, ...] = ()  # empty: every layer params.yaml enables
    cascade: bool = True
    device: str | None = None  # overrides layer.<layer>.device and extract.face.device


@dataclass
class LayerRun:
    """One layer over the files it was run on: its unit scores, their reduction to videos, and its run info."""

    info: dict[str, Any]
    scores: pd.DataFrame
    reduced: pd.DataFrame


@dataclass
class Analysis:
    params: Params  # as scoped to the run (its layers, their kinds, the device)
    manifest: pd.DataFrame
    layers: dict[str, LayerRun]
    videos: pd.DataFrame  # one row per file: per-layer columns (evaluate's video table), fused, final, verdict
    first: str | None  # the cascade's first layer, None when the cascade is off
    stopped: set[str]  # files the cascade stopped after the first layer
    decode_s: dict[str, dict[str, float]] = field(default_factory=dict)  # file -> phase -> decode time
    wall_s: float = 0.0


def scoped(params: Params, options: AnalyzeOptions) -> Params:
    """params.yaml restricted to the requested layers, the cache kinds they read, and the requested device."""
    names = list(options.layers or params.layer_names)
    unknown = [n for n in names if n not in params.layer]
    if unknown:
        raise UsageError(f"--layers: {unknown} not enabled (enabled: {params.layer_names})")
    if options.device:
        _check_device(options.device)
    layer = {n: replace(params.layer[n], device=options.device or params.layer[n].device) for n in names}
    face = replace(params.extract.face, device=options.device or params.extract.face.device)
    kinds = [k for k in KINDS if any(cfg.input == k for cfg in layer.values())]
    extract_params = replace(params.extract, kinds=kinds, face=face)
    return validate(replace(params, layer=layer, layer_names=names, extract=extract_params))


def _check_device(device: str) -> None:
    import torch

    try:
        wanted = torch.device(device)
    except RuntimeError as exc:
        raise UsageError(f"--device {device}: {exc}") from None
    if wanted.type == "cuda" and (not torch.cuda.is_available() or (wanted.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA devices")


def analyze(files: list[Path], params: Params, options: AnalyzeOptions = AnalyzeOptions(),
            workdir: Path | None = None) -> Analysis:
    """Score `files` (see the module doc); the caches live in `workdir` (a temporary folder when None)."""
    params = scoped(params, options)
    protocol.check(params)
    with tempfile.TemporaryDirectory(prefix="tetrad-analyze-") as tmp:
        return _analyze(files, params, options.cascade, Path(workdir or tmp))


def _analyze(files: list[Path], params: Params, cascade: bool, workdir: Path) -> Analysis:
    start = time.perf_counter()
    manifest = manifest_of(files)
    # a cascade needs a layer to stop before: with one layer (--layers audio) there is nothing to skip
    first = params.aggregate.cascade_first if cascade and params.aggregate.cascade_first in params.layer else None
    first = first if len(params.layer) > 1 else None
    rest = [n for n in params.layer_names if n != first]
    assets, mean_face = extract_assets(params)
    runs: dict[str, LayerRun] = {}
    decode_s: dict[str, dict[str, float]] = {}
    stopped: set[str] = set()
    if first:
        runs |= _phase(params, [first], manifest, workdir / "first", (assets, mean_face), decode_s)
        reduced = runs[first].reduced
        stops = cascade_stops(reduced["p_fake"].to_numpy(), params.aggregate.fail_fast, reduced["status"])
        stopped = set(reduced.loc[stops, "video_id"])
        log.info("cascade: %d of %d files stop after %s (P(fake) >= %s)", len(stopped), len(manifest), first,
                 params.aggregate.fail_fast)
    todo = manifest[~manifest["video_id"].isin(stopped)]
    if rest and len(todo):
        runs |= _phase(params, rest, todo, workdir / "rest", (assets, mean_face), decode_s)
    videos = final_scores(manifest, runs, params, first)
    return Analysis(params, manifest, runs, videos, first, stopped, decode_s, time.perf_counter() - start)


def _phase(params: Params, layers: list[str], manifest: pd.DataFrame, cache: Path,
           assets: tuple[Assets, str | None], decode_s: dict[str, dict[str, float]]) -> dict[str, LayerRun]:
    """Extract the kinds `layers` read for the files of `manifest`, then score each layer, one model at a time."""
    kinds = [k for k in KINDS if any(params.layer[n].input == k for n in layers)]
    seconds: dict[str, float] = {}
    extract(manifest, kinds, params.extract, {k: cache / k for k in kinds}, assets[0], seconds)
    phase = "+".join(kinds)
    for vid, took in seconds.items():
        decode_s.setdefault(vid, {})[phase] = took
    return {name: _score_layer(params, name, manifest, cache, assets) for name in layers}


def _score_layer(params: Params, name: str, manifest: pd.DataFrame, cache: Path,
                 assets: tuple[Assets, str | None]) -> LayerRun:
    cfg = params.layer[name]
    detector, weights, load_s = load_layer(params, name)
    device = next(detector.parameters()).device
    try:
        scores, timing = score_cache(detector, manifest, sorted((cache / cfg.input).glob("part-*.parquet")), cfg,
                                     params.engine.window_shards)
        info = run_info(detector, weights, cfg, {"load_s": load_s, **timing})
    finally:
        del detector  # the only reference: the model is freed before the next layer loads
        _release(device)
    made_by = provenance(cfg.input, params.extract, assets[1], assets[0]) if cfg.input in FACE_KINDS else {}
    info["input"] = {"kind": cfg.input, **made_by}
    info["protocol"] = {"name": params.protocol, "departures": protocol.layer_departures(params, name)}
    return LayerRun(info, scores, reduce_units(scores, info["reduce"]))


def _release(device: Any) -> None:
    """After a layer's model is dropped: collect it now and, on a GPU, give its cached blocks back, so the next
    layer has the whole card (the detect stages get this from running in separate processes)."""
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def final_scores(manifest: pd.DataFrame, runs: dict[str, LayerRun], params: Params, first: str | None) -> pd.DataFrame:
    """evaluate's video table, the seed-weight fusion of the layers that ran, and the final score: the cascade's
    (the first layer's P(fake) for a stopped file, the fusion otherwise) or, without the cascade, the fusion."""
    agg = params.aggregate
    videos = build_video_table(manifest, {n: r.reduced for n, r in runs.items()})
    p = pd.DataFrame({n: videos[f"{n}_p_fake"] for n in runs}, index=videos.index)
    videos["fused"] = fuse_weighted(p, agg.seed_weights, agg.missing).to_numpy()
    videos["final"] = videos["fused"]
    if first:
        table, _ = simulate_cascade(videos, first, [n for n in runs if n != first], agg.fail_fast,
                                    agg.seed_weights, agg.missing)
        videos["final"] = table["cascade_p_fake"].to_numpy()
    videos["verdict"] = verdicts(videos["final"], agg.threshold)
    return videos
