"""DVC stage `detect@<layer>`: one detector over a dataset's cache -> data/<dataset>/scores/<layer>.parquet."""

import argparse
import json
import logging

from tetrad import schemas
from tetrad.detect import score_cache
from tetrad.extract import PROVENANCE
from tetrad.io import read_table, write_json, write_table
from tetrad.layers import create_detector, get_spec
from tetrad.params import load_params
from tetrad.pipeline import Paths, resolve_layer_weights, run_info, setup, write_demo_weights

log = logging.getLogger("stages.detect")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--layer", required=True)
    args = parser.parse_args()
    setup()
    params = load_params()
    cfg = params.layer[args.layer]
    paths = Paths(args.dataset)
    if params.weights.allow_demo:  # e.g. `dvc exp run -S layer/audio=...` to a detector with no weights yet
        write_demo_weights(params, layers=[args.layer])
    inputs = get_spec(cfg.detector).inputs
    if cfg.input not in inputs:
        raise SystemExit(f"layer.{args.layer}.input: {cfg.detector} reads {inputs}, not {cfg.input!r}")
    weights = resolve_layer_weights(cfg, params)
    detector = create_detector(cfg.detector, weights.paths, cfg.variant, cfg.options, cfg.device)
    if weights.provenance == "demo-random":
        log.warning("layer %s runs DEMO-RANDOM weights: its scores mean nothing", args.layer)
    manifest = read_table(paths.manifest, schemas.MANIFEST)
    shards = sorted(paths.cache(cfg.input).glob("part-*.parquet"))
    scores = score_cache(detector, manifest, shards, cfg.batch_size)
    out = write_table(scores, paths.scores(args.layer), schemas.SCORES)
    info = run_info(detector, weights, cfg.device)
    made_by = paths.cache(cfg.input) / PROVENANCE  # face kinds: which detector / mean face cut the crops
    info["input"] = {"kind": cfg.input, **(json.loads(made_by.read_text()) if made_by.is_file() else {})}
    write_json(info, paths.scores(args.layer).with_suffix(".json"))
    per_video = scores.groupby("video_id")["status"].first().value_counts().to_dict()
    log.info("wrote %s: %d units, per-video status %s", out, int((scores["status"] == "ok").sum()), per_video)
