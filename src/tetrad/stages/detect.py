"""Stage `detect@<dataset>-<layer>`: one detector over a dataset's cache -> data/<dataset>/scores/<layer>.parquet
(every cached unit scored batch by batch, every manifest video kept) and <layer>.json (what ran: detector,
weights provenance, device, which crops it read)."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import torch
from tqdm import tqdm

from tetrad import schemas
from tetrad.env import setup
from tetrad.io import read_table, write_json, write_table
from tetrad.layers import create_detector, get_spec
from tetrad.layers.base import Detector, Unit
from tetrad.layers.checkpoints import (
    LayerWeights,
    resolve_layer_weights,
    write_demo_weights,
)
from tetrad.params import Params, load_params
from tetrad.paths import Paths
from tetrad.schemas import StatusError
from tetrad.stages import stage_arguments

log = logging.getLogger(__name__)


def status_score(video_id: str, detector: str, status: str, error: str | None) -> dict:
    return {"video_id": video_id, "unit_idx": -1, "frame_idx": None, "detector": detector, "logit": None,
            "p_fake": None, "upstream_score": None, "t_start_s": None, "t_end_s": None, "compute_s": None,
            "status": status, "error": error}


def cut_units(detector: Detector, cache: pd.DataFrame) -> tuple[list[Unit], list[dict]]:
    """Units of every video in a cache shard, and status rows for the videos that have none."""
    name = detector.spec.name
    units: list[Unit] = []
    failed: list[dict] = []
    for vid, rows in cache.groupby("video_id", sort=True):
        if (rows["status"] != schemas.OK).all():
            first = rows.iloc[0]
            failed.append(status_score(str(vid), name, first["status"], first["error"]))
            continue
        try:
            made = detector.make_units(rows)
        except StatusError as exc:
            log.info("%s", exc)
            failed.append(status_score(str(vid), name, exc.status, str(exc)))
            continue
        units.extend(made)
        failed.extend(skipped_frames(str(vid), name, rows, len(made)))
    return units, failed


def skipped_frames(video_id: str, detector: str, rows: pd.DataFrame, first_idx: int) -> list[dict]:
    """Frames that failed inside a video that still has units (e.g. SBI frames without a face): rows with
    status ok and no score, so the reducers skip them while the scores table still counts and explains them."""
    bad = rows[(rows["status"] != schemas.OK) & (rows["frame_idx"] >= 0)] if "frame_idx" in rows else rows[:0]
    return [{**status_score(video_id, detector, schemas.OK, f"skipped: {r.error}"), "unit_idx": first_idx + i,
             "frame_idx": int(r.frame_idx)} for i, r in enumerate(bad.itertuples(index=False))]


def batches(units: list[Unit], batch_size: int) -> Iterable[list[Unit]]:
    """Batches of equal-shape units, so no input is ever padded."""
    by_shape: dict[tuple, list[Unit]] = defaultdict(list)
    for unit in units:
        by_shape[unit.data.shape].append(unit)
    for group in by_shape.values():
        for i in range(0, len(group), batch_size):
            yield group[i:i + batch_size]


def score_units(detector: Detector, units: list[Unit], batch_size: int, bar: tqdm) -> list[dict]:
    device = next(detector.parameters()).device
    rows: list[dict] = []
    for batch in batches(units, batch_size):
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                logits, upstream = detector.score(detector.preprocess(batch).to(device))
            logits = logits.float().cpu()
            upstream = upstream.float().cpu().tolist() if upstream is not None else [None] * len(batch)
        except (RuntimeError, ValueError) as exc:
            log.error("%s: batch of %d units failed: %s", detector.spec.name, len(batch), exc)
            rows += [status_score(u.video_id, detector.spec.name, schemas.ERROR,
                                  f"{u.video_id}: model failed ({type(exc).__name__}: {exc})") for u in batch]
            continue
        per_unit = (time.perf_counter() - start) / len(batch)
        rows += [_unit_row(detector.spec.name, u, float(l), up, per_unit)
                 for u, l, up in zip(batch, logits, upstream)]
        bar.update(len(batch))
    return rows


def _unit_row(detector: str, unit: Unit, logit: float, upstream: float | None, compute_s: float) -> dict:
    return {"video_id": unit.video_id, "unit_idx": unit.unit_idx, "frame_idx": unit.frame_idx, "detector": detector,
            "logit": logit, "p_fake": float(torch.sigmoid(torch.tensor(logit))), "upstream_score": upstream,
            "t_start_s": unit.t_start_s, "t_end_s": unit.t_end_s, "compute_s": compute_s, "status": schemas.OK,
            "error": None}


def finalise(rows: list[dict], manifest_ids: Iterable[str], detector: str) -> pd.DataFrame:
    """Every manifest video appears: a failed batch keeps only its status rows; absent videos get one."""
    table = pd.DataFrame(rows, columns=schemas.SCORES.names)
    bad = set(table.loc[table["status"] != schemas.OK, "video_id"])
    table = table[(table["status"] != schemas.OK) | ~table["video_id"].isin(bad)]
    table = table.drop_duplicates(["video_id", "unit_idx"])
    absent = sorted(set(manifest_ids) - set(table["video_id"]))
    extra = [status_score(v, detector, schemas.ERROR, f"{v}: not found in the extract cache") for v in absent]
    table = pd.concat([table, pd.DataFrame(extra, columns=schemas.SCORES.names)], ignore_index=True)
    return table.sort_values(["video_id", "unit_idx"], ignore_index=True)


def score_cache(detector: Detector, manifest: pd.DataFrame, shards: list[Path], batch_size: int) -> pd.DataFrame:
    """Score a whole cache shard by shard (memory stays bounded by one shard)."""
    name = detector.spec.name
    rows: list[dict] = []
    bar = tqdm(desc=f"detect {name}", unit="unit")
    for shard in shards:
        cache = read_table(shard, schema_for(detector.spec.input_kind))
        units, failed = cut_units(detector, cache)
        rows += failed
        bar.total = (bar.total or 0) + len(units)
        rows += score_units(detector, units, batch_size, bar)
    bar.close()
    log.info("%s: read %d cache shards for %d manifest videos", name, len(shards), len(manifest))
    return finalise(rows, manifest["video_id"], name)


def schema_for(kind: str) -> pa.Schema:
    return {"audio": schemas.AUDIO}.get(kind, schemas.FRAMES)


def run(params: Params, dataset: str, layer: str, root: Path = Path(".")) -> pd.DataFrame:
    """Score one layer of one dataset; writes the scores table and its run info, returns the scores."""
    cfg = params.layer[layer]
    paths = Paths(dataset, root)
    if params.weights.allow_demo:  # e.g. `dvc exp run -S layer/audio=...` to a detector with no weights yet
        write_demo_weights(params, layers=[layer])
    inputs = get_spec(cfg.detector).inputs
    if cfg.input not in inputs:
        raise SystemExit(f"layer.{layer}.input: {cfg.detector} reads {inputs}, not {cfg.input!r}")
    weights = resolve_layer_weights(cfg, params)
    detector = create_detector(cfg.detector, weights.paths, cfg.variant, cfg.options, cfg.device)
    if weights.provenance == "demo-random":
        log.warning("layer %s runs DEMO-RANDOM weights: its scores mean nothing", layer)
    manifest = read_table(paths.manifest, schemas.MANIFEST)
    shards = sorted(paths.cache(cfg.input).glob("part-*.parquet"))
    scores = score_cache(detector, manifest, shards, cfg.batch_size)
    out = write_table(scores, paths.scores(layer), schemas.SCORES)
    info = run_info(detector, weights, cfg.device)
    made_by = paths.provenance(cfg.input)  # face kinds: which detector / mean face cut the crops
    info["input"] = {"kind": cfg.input, **(json.loads(made_by.read_text()) if made_by.is_file() else {})}
    write_json(info, paths.score_info(layer))
    per_video = scores.groupby("video_id")["status"].first().value_counts().to_dict()
    log.info("wrote %s: %d units, per-video status %s", out, int((scores["status"] == "ok").sum()), per_video)
    return scores


def run_info(detector: Detector, weights: LayerWeights, device: str) -> dict[str, Any]:
    """What the aggregate stage needs to know about a detect run: detector, weights provenance, device."""
    spec = detector.spec
    return {"detector": spec.name, "layer": spec.layer, "reduce": spec.reduce, "label": spec.label,
            "upstream": spec.upstream, "weights": weights.provenance,
            "weights_sources": weights.sources, "weights_sha256": weights.sha256,
            "weights_paths": {k: str(v) for k, v in weights.paths.items()},
            "device": str(next(detector.parameters()).device), "device_requested": device}


def main(argv: list[str] | None = None) -> int:
    args = stage_arguments(__doc__, "dataset", "layer", argv=argv)
    setup()
    run(load_params(), args.dataset, args.layer)
    return 0
