"""`make bench`: time decoding and each configured detector on the mini benchmark's caches -> reports/bench.md.

Performance numbers live here, not in tests. Run after `make demo` (it reads data/<dataset>/ caches).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import resource
import time
from pathlib import Path

import torch

from tetrad import schemas
from tetrad.env import setup
from tetrad.io import read_table, write_text
from tetrad.layers import create_detector
from tetrad.layers.checkpoints import resolve_layer_weights
from tetrad.media.decode import decode, frame_indices
from tetrad.media.meanface import standin_mean_face
from tetrad.params import Params, load_params
from tetrad.paths import Paths
from tetrad.stages.detect import batches, cut_units, schema_for
from tetrad.stages.extract import Assets, extract_video

log = logging.getLogger(__name__)


def bench_decode(manifest_path: Path, n_frames: int, limit: int = 8) -> str:
    manifest = read_table(manifest_path, schemas.MANIFEST)
    paths = [Path(p) for p, s in zip(manifest["path"], manifest["status"]) if s == "ok"][:limit]
    start = time.perf_counter()
    for path in paths:
        try:
            decode(path, 16000, lambda n: frame_indices(n, n_frames))
        except Exception:  # faulty files are part of the mini set; their cost still counts
            pass
    per = (time.perf_counter() - start) / max(1, len(paths))
    return f"| decode (audio 16 kHz + {n_frames} frames) | {len(paths)} files | {per:.3f} s/file |"


def bench_faces(manifest_path: Path, params: Params, limit: int = 3) -> str:
    """Face detection + landmarks + SBI and mouth crops (the extract kinds faces and mouths) per video frame."""
    manifest = read_table(manifest_path, schemas.MANIFEST)
    rows = [r for r in manifest.to_dict("records") if r["status"] == "ok"][:limit]
    extract_params = dataclasses.replace(params.extract, kinds=["faces", "mouths"])
    mean_face = standin_mean_face()
    extract_video(rows[0], ["faces"], extract_params, Assets(mean_face, "bench"))  # warm-up: model loading
    start, frames = time.perf_counter(), 0
    for row in rows:
        out = extract_video(row, extract_params.kinds, extract_params, Assets(mean_face, "bench"))
        frames += sum(1 for r in out["mouths"] if r["status"] == schemas.OK)
    per = (time.perf_counter() - start) / max(1, frames)
    return (f"| faces + mouths ({params.extract.face.detector}+{params.extract.face.landmarks}, "
            f"{params.extract.face.device}) | {frames} frames of {len(rows)} files | {per:.3f} s/frame |")


def bench_layer(name: str, params: Params, dataset: str, units_max: int = 16) -> str:
    cfg = params.layer[name]
    paths = Paths(dataset)
    detector = create_detector(cfg.detector, resolve_layer_weights(cfg, params).paths, cfg.variant, cfg.options,
                               cfg.device)
    shard = sorted(paths.cache(cfg.input).glob("part-*.parquet"))[0]
    units, _ = cut_units(detector, read_table(shard, schema_for(cfg.input)))
    units = units[:units_max]
    device = next(detector.parameters()).device
    with torch.inference_mode():  # warm-up: first call pays for allocation and kernel selection
        detector(detector.preprocess(units[:1]).to(device))
        start = time.perf_counter()
        for batch in batches(units, cfg.batch_size):
            detector(detector.preprocess(batch).to(device))
        if device.type == "cuda":
            torch.cuda.synchronize()
    per = (time.perf_counter() - start) / len(units)
    return f"| {name}: {cfg.detector} ({cfg.variant}, batch {cfg.batch_size}, {device}) | {len(units)} units | " \
           f"{per:.3f} s/unit |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="reports/bench.md")
    parser.add_argument("--dataset", default="mini", help="a dataset whose caches exist (run dvc repro first)")
    args = parser.parse_args(argv)
    setup()
    params = load_params(args.params)
    rows = [bench_decode(Paths(args.dataset).manifest, params.extract.frames.n_frames)]
    if {"faces", "mouths"} & set(params.extract.kinds):
        rows.append(bench_faces(Paths(args.dataset).manifest, params))
    rows += [bench_layer(name, params, args.dataset) for name in params.layer]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    header = [f"# Tetrad benchmark ({args.dataset})", "",
              f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
              f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}; "
              f"peak RSS {peak_mb:.0f} MB.", "", "| step | sample | time |", "|---|---|---|"]
    write_text("\n".join(header + rows) + "\n", Path(args.out))
    print("\n".join(header + rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
