"""Extract stage library: decode every manifest file once into sharded, resumable Parquet caches per kind."""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from tetrad import schemas
from tetrad.io import stable_hash, write_table
from tetrad.media.decode import Decoded, MediaError, decode, frame_indices
from tetrad.media.frames import semantic_crop
from tetrad.params import ExtractParams

log = logging.getLogger(__name__)
KIND_SCHEMAS: dict[str, pa.Schema] = {"audio": schemas.AUDIO, "frames": schemas.FRAMES}


def kind_key(kind: str, params: ExtractParams) -> dict[str, Any]:
    """The parameters a kind's cache depends on: a change makes a different cache, never a stale reuse."""
    return {"kind": kind, "schema_version": 1, **asdict(getattr(params, kind))}


def shard_name(kind: str, params: ExtractParams, index: int, rows: pd.DataFrame) -> str:
    ident = [kind_key(kind, params), rows[["video_id", "path"]].to_numpy().tolist()]
    return f"part-{index:05d}-{stable_hash(ident)}.parquet"


def plan_shards(manifest: pd.DataFrame, kinds: list[str], params: ExtractParams,
                out_dirs: dict[str, Path]) -> list[tuple[pd.DataFrame, dict[str, Path]]]:
    """Each shard with the kinds whose file is not written yet; finished shards are skipped (resume)."""
    plan = []
    for index, start in enumerate(range(0, len(manifest), params.shard_size)):
        rows = manifest.iloc[start:start + params.shard_size]
        todo = {k: out_dirs[k] / shard_name(k, params, index, rows) for k in kinds}
        todo = {k: p for k, p in todo.items() if not p.exists()}
        plan.append((rows, todo))
    return plan


def remove_stale(kinds: list[str], params: ExtractParams, manifest: pd.DataFrame,
                 out_dirs: dict[str, Path]) -> None:
    """Delete shards of an older manifest or parameter set, and temp files of a killed run."""
    for kind in kinds:
        keep = {shard_name(kind, params, i, manifest.iloc[s:s + params.shard_size])
                for i, s in enumerate(range(0, len(manifest), params.shard_size))}
        for path in out_dirs[kind].iterdir():
            if path.name not in keep:
                log.info("removing stale cache file %s", path)
                path.unlink()


def extract(manifest: pd.DataFrame, kinds: list[str], params: ExtractParams,
            out_dirs: dict[str, Path]) -> dict[str, dict[str, int]]:
    """Write every kind's shards; returns per-kind status counts of the rows written in this run.

    All videos are queued at once on the worker pool, but each shard is written (atomically) as soon as
    its own videos are done, so a killed run keeps every finished shard.
    """
    for kind in kinds:
        out_dirs[kind].mkdir(parents=True, exist_ok=True)
    remove_stale(kinds, params, manifest, out_dirs)
    plan = [(rows, todo) for rows, todo in plan_shards(manifest, kinds, params, out_dirs) if todo]
    done = -(-len(manifest) // params.shard_size) - len(plan)
    log.info("extract %s: %d shards to write, %d already done (resumed)", kinds, len(plan), done)
    counts: dict[str, dict[str, int]] = {k: {} for k in kinds}
    bar = tqdm(total=sum(len(rows) for rows, _ in plan), desc="extract", unit="video")
    with ProcessPoolExecutor(max_workers=max(1, params.workers)) as pool:
        queued = [[pool.submit(extract_video, row, list(todo), params) for row in rows.to_dict("records")]
                  for rows, todo in plan]
        for (rows, todo), futures in zip(plan, queued):
            results = []
            for fut in futures:
                results.append(fut.result())
                bar.update()
            for kind, path in todo.items():
                _write_kind(pd.DataFrame([r for res in results for r in res[kind]]), kind, path, counts)
    bar.close()
    return counts


def _write_kind(table: pd.DataFrame, kind: str, path: Path, counts: dict[str, dict[str, int]]) -> None:
    write_table(table, path, KIND_SCHEMAS[kind])
    for status, n in table.groupby("video_id")["status"].first().value_counts().items():
        counts[kind][str(status)] = counts[kind].get(str(status), 0) + int(n)


def extract_video(row: dict, kinds: list[str], params: ExtractParams) -> dict[str, list[dict]]:
    """All requested kinds of one manifest row; failures become status rows, never exceptions."""
    vid = row["video_id"]
    if row["status"] != schemas.OK:
        return {k: [status_row(k, vid, row["status"], row["error"])] for k in kinds}
    n_pick = params.frames.n_frames
    try:
        decoded = decode(Path(row["path"]),
                         params.audio.sample_rate if "audio" in kinds else None,
                         (lambda n: frame_indices(n, n_pick)) if "frames" in kinds else None)
    except MediaError as exc:
        log.warning("%s", exc)
        return {k: [status_row(k, vid, exc.status, str(exc))] for k in kinds}
    return {k: _kind_rows(k, vid, decoded, params) for k in kinds}


def _kind_rows(kind: str, vid: str, decoded: Decoded, params: ExtractParams) -> list[dict]:
    stream = "audio" if kind == "audio" else "video"
    if stream in decoded.errors:
        err = decoded.errors[stream]
        return [status_row(kind, vid, err.status, str(err))]
    if kind == "audio":
        return [audio_row(vid, decoded.audio, params.audio.sample_rate)]
    fp = params.frames
    return [frame_row(vid, idx, pts, semantic_crop(rgb, fp.size, fp.mode, fp.resize))
            for idx, pts, rgb in decoded.frames]


def audio_row(vid: str, wave: np.ndarray, sample_rate: int) -> dict:
    return {"video_id": vid, "sample_rate": sample_rate, "num_samples": int(wave.size),
            "waveform": wave.astype(np.float32), "status": schemas.OK, "error": None}


def frame_row(vid: str, idx: int, pts: float, image: np.ndarray, face_idx: int = -1) -> dict:
    h, w, c = image.shape
    return {"video_id": vid, "frame_idx": idx, "face_idx": face_idx, "pts_s": pts, "box": None,
            "landmarks": None, "image": np.ascontiguousarray(image).tobytes(), "height": h, "width": w,
            "channels": c, "status": schemas.OK, "error": None}


def status_row(kind: str, vid: str, status: str, error: str | None) -> dict:
    if kind == "audio":
        return {"video_id": vid, "sample_rate": 0, "num_samples": 0, "waveform": None, "status": status,
                "error": error}
    return {"video_id": vid, "frame_idx": -1, "face_idx": -1, "pts_s": None, "box": None, "landmarks": None,
            "image": None, "height": None, "width": None, "channels": None, "status": status, "error": error}
