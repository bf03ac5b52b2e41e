"""Stage `extract@<dataset>`: decode every manifest file once into data/<dataset>/cache/<kind>/ (sharded Parquet,
resumable): audio, whole frames, SBI face crops and LipForensics mouth crops, in a pool of worker processes."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing
import multiprocessing.queues
import os
import pickle
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from tetrad import schemas
from tetrad.env import die_with, setup
from tetrad.io import read_table, stable_hash, write_json, write_table
from tetrad.media.decode import RESAMPLER, Decoded, decode, frame_indices
from tetrad.media.limits import header_limits, time_limit
from tetrad import weights as wm
from tetrad.faces import face_detector_class
from tetrad.media.faces import FaceTools, face_tools
from tetrad.media.meanface import (
    load_mean_face,
    resolve_mean_face,
    write_demo_mean_face,
)
from tetrad.media.pictures import PicturePass, mouth_rows_streamed
from tetrad.params import EngineParams, ExtractParams, Params, load_params
from tetrad.paths import PROVENANCE, Paths
from tetrad.schemas import FACE_KINDS, KINDS, StatusError
from tetrad.stages import stage_arguments

log = logging.getLogger(__name__)
# Shards queued on the pool beyond the one being written: enough to keep every worker busy while a shard is
# written, few enough that the parent holds a handful of shards' results whatever the dataset's size.
SHARDS_AHEAD = 2
RELAY_JOIN_S = 10.0  # at most this long to write the workers' last log records once the pool has shut down
KIND_SCHEMAS: dict[str, pa.Schema] = {k: schemas.AUDIO if k == "audio" else schemas.FRAMES for k in KINDS}


@dataclass(frozen=True)
class Assets:
    """Files the extractors need besides the media: the mean face of mouth alignment (and its sha256) and the
    checkpoints of face detectors whose weights do not ship with their pip package (by detector name)."""

    mean_face: np.ndarray | None = None
    mean_face_sha256: str | None = None
    face_weights: dict[str, wm.Resolved] = field(default_factory=dict)

    def weight_files(self) -> dict[str, Path]:
        return {name: r.path for name, r in self.face_weights.items()}


def provenance(kind: str, params: ExtractParams, mean_face_source: str | None,
               assets: Assets = Assets()) -> dict[str, Any]:
    """What a face kind's crops were made with, for the detect run info, the report and MLflow tags; a face
    detector's checkpoint is "real" or "demo-random", flagged like every layer's weights."""
    name, options = kind_detector(kind, params)
    out: dict[str, Any] = {"face_detector": name, "face_options": dict(options), "min_score": params.face.min_score}
    if name in assets.face_weights:
        out["face_weights"] = assets.face_weights[name].source
    if kind == "mouths":
        out.update(landmarker=params.face.landmarks, mean_face=mean_face_source or "none",
                   missing=params.mouths.missing)
    return out


def kind_detector(kind: str, params: ExtractParams) -> tuple[str, dict[str, Any]]:
    """The face detector (and its options) a face kind is made with: the mouths' own one, when set."""
    face = params.face
    if kind == "mouths" and face.mouth_detector:
        return face.mouth_detector, dict(face.mouth_options)
    return face.detector, dict(face.options)


def kind_key(kind: str, params: ExtractParams, assets: Assets = Assets()) -> dict[str, Any]:
    """The parameters a kind's cache depends on: a change makes a different cache, never a stale reuse."""
    key = {"kind": kind, "schema_version": 3, **asdict(getattr(params, kind))}
    if kind == "audio":
        key["resampler"] = RESAMPLER  # the samples depend on it
    else:
        key["encoding"] = params.encoding
    if kind in FACE_KINDS:
        key["face"] = asdict(params.face)
    key["limits"] = asdict(params.limits)  # a file's row (`too_long`, `timeout`) depends on them
    if kind == "mouths":
        key["mean_face_sha256"] = assets.mean_face_sha256
    if kind in FACE_KINDS and (used := assets.face_weights.get(kind_detector(kind, params)[0])):
        key["face_weights_sha256"] = used.sha256
    return key


def shard_bounds(manifest: pd.DataFrame, params: ExtractParams) -> list[tuple[int, int]]:
    """[start, stop) row ranges of the shards: consecutive videos up to `shard_mb` of source media (a proxy for
    the cache bytes, known before anything is decoded) and at most `shard_size` videos. A video larger than
    the limit is a shard of its own."""
    limit = params.shard_mb * 2**20
    bounds, start, total = [], 0, 0
    for i, size in enumerate(manifest["bytes"]):
        if i > start and (total + size > limit or i - start >= params.shard_size):
            bounds.append((start, i))
            start, total = i, 0
        total += size
    return bounds + ([(start, len(manifest))] if start < len(manifest) else [])


def shard_name(kind: str, params: ExtractParams, index: int, rows: pd.DataFrame, assets: Assets = Assets()) -> str:
    """Named by the kind's parameters and the shard's videos, paths and file sizes: a re-encoded file (another
    size) at the same path makes a new shard, never a stale reuse."""
    ident = [kind_key(kind, params, assets), rows[["video_id", "path", "bytes"]].to_numpy().tolist()]
    return f"part-{index:05d}-{stable_hash(ident)}.parquet"


def with_sizes(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest with each file's size in bytes (0 when it cannot be read: extract then reports why)."""
    def size(path: str) -> int:
        try:
            return os.stat(path).st_size
        except OSError:
            return 0
    return manifest.assign(bytes=[size(p) for p in manifest["path"]])


def plan_shards(manifest: pd.DataFrame, kinds: list[str], params: ExtractParams, out_dirs: dict[str, Path],
                assets: Assets = Assets()) -> list[tuple[pd.DataFrame, dict[str, Path]]]:
    """Each shard with the kinds whose file is not written yet; finished shards are skipped (resume)."""
    plan = []
    for index, (start, stop) in enumerate(shard_bounds(manifest, params)):
        rows = manifest.iloc[start:stop]
        todo = {k: out_dirs[k] / shard_name(k, params, index, rows, assets) for k in kinds}
        todo = {k: p for k, p in todo.items() if not p.exists()}
        plan.append((rows, todo))
    return plan


def remove_stale(kinds: list[str], params: ExtractParams, manifest: pd.DataFrame, out_dirs: dict[str, Path],
                 assets: Assets = Assets()) -> None:
    """Delete shards of an older manifest or parameter set, and temp files of a killed run."""
    for kind in kinds:
        keep = {shard_name(kind, params, i, manifest.iloc[start:stop], assets)
                for i, (start, stop) in enumerate(shard_bounds(manifest, params))}
        for path in out_dirs[kind].iterdir():
            if path.name not in keep and path.name != PROVENANCE:
                log.info("removing stale cache file %s", path)
                path.unlink()


def extract(manifest: pd.DataFrame, kinds: list[str], params: ExtractParams, out_dirs: dict[str, Path],
            assets: Assets = Assets(), seconds: dict[str, float] | None = None,
            engine: EngineParams = EngineParams()) -> dict[str, dict[str, int]]:
    """Write every kind's shards; returns per-kind status counts of the rows written in this run, and fills
    `seconds` (when given) with each video's decode-and-crop time in its worker. With engine.name=ray the
    shards are written on a Ray cluster (`extract_on_ray`), the same files."""
    for kind in kinds:
        out_dirs[kind].mkdir(parents=True, exist_ok=True)
    if "mouths" in kinds and assets.mean_face is None:
        raise ValueError("extract kind 'mouths' needs the mean face (extract.mouths.mean_face)")
    manifest = with_sizes(manifest)
    remove_stale(kinds, params, manifest, out_dirs, assets)
    every = plan_shards(manifest, kinds, params, out_dirs, assets)
    plan = [(rows, todo) for rows, todo in every if todo]
    log.info("extract %s: %d shards to write, %d already done (resumed)", kinds, len(plan), len(every) - len(plan))
    counts: dict[str, dict[str, int]] = {k: {} for k in kinds}
    # the total is known before the first video: the videos of the shards still to write
    with logging_redirect_tqdm(), tqdm(total=sum(len(rows) for rows, _ in plan), desc="extract",
                                       unit="video") as bar:
        if engine.name == "ray":
            extract_on_ray(plan, params, assets, engine, bar, counts, seconds)
        else:
            _extract_local(plan, params, assets, bar, counts, seconds)
    return counts


def _extract_local(plan: list[tuple[pd.DataFrame, dict[str, Path]]], params: ExtractParams, assets: Assets,
                   bar: tqdm, counts: dict[str, dict[str, int]], seconds: dict[str, float] | None) -> None:
    """The local engine: each shard is written (atomically) as soon as its own videos are done, so a killed run
    keeps every finished shard; only a few shards are queued ahead on the pool, so the parent's memory does not
    grow with the dataset."""
    workers, context = max(1, params.workers), _worker_context()
    with worker_logs(context) as logs, \
            ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                                initargs=(workers, logs, logging.getLogger().getEffectiveLevel(), os.getpid())) as pool:
        pending: deque[tuple[dict[str, Path], list[Future]]] = deque()
        for rows, todo in plan:
            pending.append((todo, [pool.submit(_timed_video, row, list(todo), params, assets)
                                   for row in rows.to_dict("records")]))
            if len(pending) > SHARDS_AHEAD:
                _finish_shard(*pending.popleft(), bar, counts, seconds)
        while pending:
            _finish_shard(*pending.popleft(), bar, counts, seconds)


def _finish_shard(todo: dict[str, Path], futures: list[Future], bar: tqdm, counts: dict[str, dict[str, int]],
                  seconds: dict[str, float] | None) -> None:
    """Wait for one shard's videos, in order, and write each of its kinds."""
    results = []
    for fut in futures:
        result, (vid, took) = fut.result()
        results.append(result)
        if seconds is not None:
            seconds[vid] = took
        bar.update()
    write_shard(todo, results, counts)


def write_shard(todo: dict[str, Path], results: list[dict[str, list[dict]]],
                counts: dict[str, dict[str, int]]) -> None:
    """Write each kind's file of one shard from its videos' results, in manifest order."""
    for kind, path in todo.items():
        _write_kind(pd.DataFrame([r for res in results for r in res[kind]]), kind, path, counts)


def extract_on_ray(plan: list[tuple[pd.DataFrame, dict[str, Path]]], params: ExtractParams, assets: Assets,
                   engine: EngineParams, bar: tqdm, counts: dict[str, dict[str, int]],
                   seconds: dict[str, float] | None) -> None:
    """The Ray engine: one Ray Data task per shard still to write (`engine.extract_cpus` each) decodes its
    videos and writes its files where the local engine would (a path every node sees: docs/scale-out.md). A
    task lost with its worker runs again (Ray Data retries system failures) and rewrites its shard whole; a
    killed run resumes from the finished shards, as the local one does."""
    import ray.data

    from tetrad import cluster

    items = [{"rows": pickle.dumps(rows.to_dict("records")), "todo": pickle.dumps(todo)} for rows, todo in plan]
    if not items:
        return
    with cluster.connected(engine):
        shards = ray.data.from_items(items).map_batches(
            _ray_shards, fn_args=(params, assets, engine.extract_cpus, os.getcwd()), batch_size=1,
            batch_format="pandas", num_cpus=engine.extract_cpus)
        for done in shards.iter_rows():
            for kind, by_status in pickle.loads(done["counts"]).items():
                for status, n in by_status.items():
                    counts[kind][status] = counts[kind].get(status, 0) + n
            took = pickle.loads(done["seconds"])
            if seconds is not None:
                seconds.update(took)
            bar.update(len(took))


def _ray_shards(batch: pd.DataFrame, params: ExtractParams, assets: Assets, cpus: float,
                project: str) -> pd.DataFrame:
    """A Ray task: extract and write the shards of `batch` (one per call), in the driver's project folder;
    returns their counts and times."""
    from tetrad import cluster

    cluster.worker_setup(project, cpus)
    out = []
    for rows, todo in zip(batch["rows"], batch["todo"]):
        todo, results, took = pickle.loads(todo), [], {}
        for row in pickle.loads(rows):
            result, (vid, took[vid]) = _timed_video(row, list(todo), params, assets)
            results.append(result)
        counts: dict[str, dict[str, int]] = {k: {} for k in todo}
        write_shard(todo, results, counts)
        out.append({"counts": pickle.dumps(counts), "seconds": pickle.dumps(took)})
    return pd.DataFrame(out)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers are forked from a fork server, never from this process: a process that already ran a
    multi-threaded torch op (e.g. face detection for the stand-in mean face, or an earlier stage run in-process)
    hands a forked child OpenMP's thread pool in a broken state, and the child hangs at its first parallel op.
    The server imports this module once (so each worker starts with the libraries loaded) but runs no torch op."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


@contextlib.contextmanager
def worker_logs(context: multiprocessing.context.BaseContext) -> Iterator[multiprocessing.queues.Queue]:
    """A queue on which the workers send their log records here, where this process's handlers write them
    (through tqdm.write while the bar runs). A worker has no handler of its own: Python's last resort would
    write its warnings straight to stderr, tearing the bar, and drop its info records. Leave the block after
    the pool has shut down, so the records of its last videos are written too."""
    logs, done = context.Queue(), threading.Event()
    relay = threading.Thread(target=_relay_logs, args=(logs, done), name="extract-worker-logs", daemon=True)
    relay.start()
    try:
        yield logs
    finally:
        done.set()
        # bounded: a worker killed in the middle of a record leaves a partial one that would block the read
        relay.join(timeout=RELAY_JOIN_S)
        logs.close()


def _relay_logs(logs: multiprocessing.queues.Queue, done: threading.Event) -> None:
    """Hand each worker record to the logger of the same name here (so this process's levels and handlers apply,
    as if it had been logged here) until the pool is done and the queue empty. No sentinel is queued to stop
    it: a worker killed while sending holds the queue's write lock, and that put would wait for ever."""
    while True:
        try:
            record = logs.get(timeout=0.1)
        except queue.Empty:
            if done.is_set():
                return
            continue
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def _start_worker(workers: int, logs: multiprocessing.queues.Queue, level: int, stage: int) -> None:
    """A worker's set-up: its share of the cores, its log records (at the parent's level and above) sent to the
    parent (`worker_logs`), and its exit when the stage process `stage` dies (env.die_with)."""
    _share_cores(workers)
    die_with(stage, "its extract stage died")
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(logs)]
    root.setLevel(level)


def _share_cores(workers: int) -> None:
    """Each worker gets its share of the cores: torch's default (all cores per process) oversubscribes the CPU
    when several workers run face detection at once."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def _write_kind(table: pd.DataFrame, kind: str, path: Path, counts: dict[str, dict[str, int]]) -> None:
    write_table(table, path, KIND_SCHEMAS[kind])
    # a video's status: its first scored row's (a faceless frame does not fail a video), else its first row's
    first = table.assign(rank=~schemas.scored(table["status"])).sort_values("rank", kind="stable")
    per_video = first.groupby("video_id")["status"].first()
    for status, n in per_video.value_counts().items():
        counts[kind][str(status)] = counts[kind].get(str(status), 0) + int(n)


def _timed_video(row: dict, kinds: list[str], params: ExtractParams,
                 assets: Assets) -> tuple[dict[str, list[dict]], tuple[str, float]]:
    """extract_video and its time, measured in the worker (the parent only sees when a shard completes)."""
    start = time.perf_counter()
    result = extract_video(row, kinds, params, assets)
    return result, (row["video_id"], time.perf_counter() - start)


def extract_video(row: dict, kinds: list[str], params: ExtractParams,
                  assets: Assets = Assets()) -> dict[str, list[dict]]:
    """All requested kinds of one manifest row; failures become status rows, never exceptions.

    One decode streams the audio and every picked frame through a PicturePass; the mouths, when requested, take
    a second streaming pass (tetrad.media.pictures)."""
    vid = row["video_id"]
    if row["status"] != schemas.OK:
        return {k: [status_row(k, vid, row["status"], row["error"])] for k in kinds}
    try:
        with time_limit(params.limits.timeout_s, Path(row["path"])):
            return _video_rows(row, kinds, params, assets)
    except StatusError as exc:  # over the time limit (tetrad.media.limits)
        log.warning("%s", exc)
        return {k: [status_row(k, vid, exc.status, str(exc))] for k in kinds}


def _video_rows(row: dict, kinds: list[str], params: ExtractParams, assets: Assets) -> dict[str, list[dict]]:
    """extract_video's work: one decode (which first checks the header against extract.limits), then each kind's
    rows."""
    vid = row["video_id"]
    picks = frame_picks(kinds, params)
    tools = None  # built before the decode, so a model that cannot load fails the stage, not each file's decode
    if set(picks) & set(FACE_KINDS):
        tools = face_tools(params.face, "mouths" in picks, assets.weight_files(), faces="faces" in picks)
    sink: list[PicturePass] = []  # filled once decode() knows the frame count
    try:
        decoded = decode(Path(row["path"]), params.audio.sample_rate if "audio" in kinds else None,
                         _union(picks, vid, params, tools, sink) if picks else None,
                         on_frame=lambda frame: sink[0](frame),
                         check=header_limits(params.limits.max_duration_s, params.limits.max_megapixels))
    except StatusError as exc:
        log.warning("%s", exc)
        return {k: [status_row(k, vid, exc.status, str(exc))] for k in kinds}
    for why in decoded.cut.values():
        log.warning("%s (kept as partial)", why)
    if sink and "video" in decoded.cut:
        sink[0].cut_at(decoded.n_decoded)
    return {kind: _cut_marked(_kind_rows(kind, row, decoded, sink[0] if sink else None, assets),
                              decoded.cut.get("audio" if kind == "audio" else "video")) for kind in kinds}


def _cut_marked(rows: list[dict], cut: str | None) -> list[dict]:
    """A cut stream's rows keep their data and say so: `partial`, with how much was lost as the error."""
    if cut is not None:
        for r in rows:
            if r["status"] == schemas.OK:
                r["status"], r["error"] = schemas.PARTIAL, cut
    return rows


def _union(picks: dict[str, Callable[[int], list[int]]], vid: str, params: ExtractParams, tools: FaceTools | None,
           sink: list[PicturePass]) -> Callable[[int], list[int]]:
    """decode()'s frame picker: builds the video's PicturePass from its frame count, returns every kind's frames."""
    def pick(n: int) -> list[int]:
        chosen = {kind: p(n) for kind, p in picks.items()}
        sink.append(PicturePass(vid, chosen, params, tools))
        return sorted(set().union(*chosen.values()))
    return pick


def _kind_rows(kind: str, row: dict, decoded: Decoded, pictures: PicturePass | None, assets: Assets) -> list[dict]:
    vid = row["video_id"]
    stream = "audio" if kind == "audio" else "video"
    try:
        if stream in decoded.errors:
            raise decoded.errors[stream]
        if kind == "audio":
            return [audio_row(vid, decoded.audio, decoded.sample_rate)]
        if kind == "mouths":
            return mouth_rows_streamed(Path(row["path"]), pictures, assets.mean_face)
        return pictures.rows_of(kind)
    except StatusError as exc:
        log.info("%s: %s", kind, exc)
        return [status_row(kind, vid, exc.status, str(exc))]
    except (ValueError, RuntimeError) as exc:  # a model or crop failure stays with this video
        log.error("%s: %s failed: %s", vid, kind, exc)
        return [status_row(kind, vid, schemas.ERROR, f"{row['path']}: {kind} failed ({exc})")]


def frame_picks(kinds: list[str], params: ExtractParams) -> dict[str, Callable[[int], list[int]]]:
    """Which frames each picture kind needs, as a function of the video's frame count."""
    picks: dict[str, Callable[[int], list[int]]] = {}
    if "frames" in kinds:
        picks["frames"] = lambda n: frame_indices(n, params.frames.n_frames)
    if "faces" in kinds:
        picks["faces"] = lambda n: frame_indices(n, params.faces.n_frames)
    if "mouths" in kinds:
        cap = params.mouths.max_frames
        picks["mouths"] = lambda n: list(range(min(n, cap) if cap else n))
    return picks


def audio_row(vid: str, wave: np.ndarray, sample_rate: int) -> dict:
    return {"video_id": vid, "sample_rate": sample_rate, "num_samples": int(wave.size),
            "waveform": wave.astype(np.float32), "status": schemas.OK, "error": None}


def status_row(kind: str, vid: str, status: str, error: str | None) -> dict:
    if kind == "audio":
        return {"video_id": vid, "sample_rate": 0, "num_samples": 0, "waveform": None, "status": status,
                "error": error}
    return {"video_id": vid, "frame_idx": -1, "face_idx": -1, "pts_s": None, "box": None, "landmarks": None,
            "face_score": None, "face_detector": None, "image": None, "encoding": None, "height": None, "width": None,
            "channels": None, "status": status, "error": error}


def run(params: Params, dataset: str, root: Path = Path(".")) -> dict[str, dict[str, int]]:
    """Extract every requested kind of one dataset; returns per-kind status counts of the rows written."""
    paths = Paths(dataset, root)
    manifest = read_table(paths.manifest, schemas.MANIFEST)
    kinds = params.extract.kinds
    for kind in set(KINDS) - set(kinds):
        paths.cache(kind).mkdir(parents=True, exist_ok=True)  # declared DVC output, intentionally empty
        log.info("cache %s not requested (extract.kinds=%s): left empty", kind, kinds)
    assets, mean_face_source = extract_assets(params)
    counts = extract(manifest, kinds, params.extract, {k: paths.cache(k) for k in kinds}, assets,
                     engine=params.engine)
    for kind in set(kinds) & set(FACE_KINDS):
        write_json(provenance(kind, params.extract, mean_face_source, assets), paths.provenance(kind))
    log.info("read %s (%d videos); wrote %s; per-kind status of newly written rows: %s", paths.manifest,
             len(manifest), [str(paths.cache(k)) for k in kinds], counts)
    return counts


def extract_assets(params: Params) -> tuple[Assets, str | None]:
    """Everything the requested kinds need besides the media (mean face, face detector checkpoints), and the
    mean face's source ("real" / "demo-stand-in" / None), as the extract stage and `tetrad analyze` use them."""
    assets, mean_face_source = mouth_assets(params)
    return replace(assets, face_weights=face_assets(params)), mean_face_source


def mouth_assets(params: Params) -> tuple[Assets, str | None]:
    """The mean face when mouths are extracted (the stand-in written first where allowed), and its source."""
    if "mouths" not in params.extract.kinds:
        return Assets(), None
    write_demo_mean_face(params)
    resolved = resolve_mean_face(params)
    assets = Assets(*load_mean_face(resolved.path))
    log.info("mouth alignment: %s mean face %s (sha256 %s)", resolved.source, resolved.path, assets.mean_face_sha256)
    return assets, "real" if resolved.source == "real" else "demo-stand-in"


def face_assets(params: Params) -> dict[str, wm.Resolved]:
    """The checkpoints of the face detectors the requested kinds use, where their class needs one (RetinaFace),
    resolved once here so every worker loads the same file; the demo is written first where allowed."""
    kinds, out = params.extract.kinds, {}
    for kind in sorted(set(kinds) & set(FACE_KINDS)):
        name, options = kind_detector(kind, params.extract)
        cls = face_detector_class(name)
        if not cls.weights_entry or name in out:
            continue
        wanted = options.get("weights", cls.weights_entry)
        if params.weights.allow_demo:
            cls.write_demo_checkpoint(wanted, params.weights.dir)
        out[name] = wm.resolve(wanted, params.weights.dir, allow_demo=params.weights.allow_demo)
        log.info("face detector %s: %s weights %s", name, out[name].source, out[name].path)
    return out


def main(argv: list[str] | None = None) -> int:
    args = stage_arguments(__doc__, "dataset", argv=argv)
    setup()
    run(load_params(), args.dataset)
    return 0
