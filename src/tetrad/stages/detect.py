"""Stage `detect@<dataset>-<layer>`: one detector over a dataset's cache -> data/<dataset>/scores/<layer>.parquet
(every cached unit scored batch by batch, every manifest video kept) and <layer>.json (what ran: detector,
weights provenance, device, which crops it read, the engine's settings and timings).

The engine (docs/architecture.md, "Detect engine"): a loader thread reads the shards in order, cuts units, pools
them by shape across shards and videos, preprocesses each full batch on the CPU (pinned when the device is CUDA)
and queues up to `layer.<layer>.prefetch` of them; the main thread moves each batch to the device and runs the
forward with the layer's precision, TF32, channels_last and compile options."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pickle
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from tetrad import protocol, schemas
from tetrad.env import setup
from tetrad.io import read_table, remove_stale_temps, write_json, write_table
from tetrad.layers import create_detector, get_spec
from tetrad.layers.base import Detector, Unit
from tetrad.layers.checkpoints import (
    LayerWeights,
    resolve_layer_weights,
    write_demo_weights,
)
from tetrad.media.recut import needs_video, recut_faces
from tetrad.params import ConfigError, EngineParams, LayerParams, Params, load_params
from tetrad.paths import Paths
from tetrad.schemas import StatusError
from tetrad.stages import stage_arguments

log = logging.getLogger(__name__)

AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # layer.<layer>.precision -> dtype
# Units of rare shapes (audio clips shorter than one window: each its own length) wait in the pool for a full
# batch; past this many batches' worth of pending units the oldest shape goes out as a partial batch, so memory
# stays bounded however many one-off shapes a dataset has.
MAX_PENDING_BATCHES = 4
WINDOW = EngineParams().window_shards  # engine.window_shards: shards whose units pool into batches


def status_score(video_id: str, detector: str, status: str, error: str | None) -> dict:
    return {"video_id": video_id, "unit_idx": -1, "frame_idx": None, "detector": detector, "logit": None,
            "p_fake": None, "upstream_score": None, "vector": None, "t_start_s": None, "t_end_s": None,
            "compute_s": None, "status": status, "error": error}


def cut_units(detector: Detector, cache: pd.DataFrame,
              sources: Mapping[str, str] | None = None) -> tuple[list[Unit], list[dict]]:
    """Units of every video in a cache shard, and status rows for the videos that have none. Face rows stored
    as boxes (extract.faces.store=boxes) get their crops cut again from the video at `sources[video_id]`."""
    name = detector.spec.name
    units: list[Unit] = []
    failed: list[dict] = []
    for vid, rows in cache.groupby("video_id", sort=True):
        if all_failed(rows):
            first = rows.iloc[0]
            failed.append(status_score(str(vid), name, first["status"], first["error"]))
            continue
        try:
            if needs_video(rows):
                rows = recut_faces(rows, (sources or {}).get(str(vid)), str(vid))
            rows.attrs["source"] = (sources or {}).get(str(vid))  # for a detector that reads the media again
            made = detector.make_units(rows)
        except StatusError as exc:
            log.info("%s", exc)
            failed.append(status_score(str(vid), name, exc.status, str(exc)))
            continue
        units.extend(mark_cut(made, rows))
        failed.extend(skipped_frames(str(vid), name, rows, len(made)))
    return units, failed


def all_failed(rows: pd.DataFrame) -> bool:
    """A video with no ok (or partial) row: one status row in the scores, no units."""
    return not bool(schemas.scored(rows["status"]).any())


def mark_cut(units: list[Unit], rows: pd.DataFrame) -> list[Unit]:
    """Units of a file that was cut short carry its `partial` error to their score rows."""
    cut = rows.loc[rows["status"] == schemas.PARTIAL, "error"]
    return [dataclasses.replace(u, cut=str(cut.iloc[0])) for u in units] if len(cut) else units


def count_cache(detector: Detector, shards: list[Path]) -> list[int]:
    """The units `cut_units` will cut from each shard, counted from the detector's light `count_columns` only
    (no pixel or sample is read or decoded), so the progress bar knows its total before the first batch."""
    columns = list(dict.fromkeys(["video_id", *detector.count_columns]))
    schema = schema_for(detector.spec.input_kind)
    return [count_shard(detector, read_table(shard, schema, columns)) for shard in shards]


def count_shard(detector: Detector, cache: pd.DataFrame) -> int:
    """`cut_units`' count for one shard, by its rules: a video whose rows all failed, or whose units the detector
    refuses (StatusError), has none. Face crops stored as boxes count as cut: they are cut again one for one."""
    total = 0
    for _, rows in cache.groupby("video_id", sort=False):
        if all_failed(rows):
            continue
        try:
            total += detector.count_units(rows)
        except StatusError:
            continue
    return total


def skipped_frames(video_id: str, detector: str, rows: pd.DataFrame, first_idx: int) -> list[dict]:
    """Frames that failed inside a video that still has units (e.g. SBI frames without a face): rows with
    status ok and no score, so the reducers skip them while the scores table still counts and explains them."""
    bad = rows[~schemas.scored(rows["status"]) & (rows["frame_idx"] >= 0)] if "frame_idx" in rows else rows[:0]
    return [{**status_score(video_id, detector, schemas.OK, f"skipped: {r.error}"), "unit_idx": first_idx + i,
             "frame_idx": int(r.frame_idx)} for i, r in enumerate(bad.itertuples(index=False))]


# ------------------------------------------------------------------------------------------ loader (its thread)


@dataclass
class Loaded:
    """What the loader hands the main thread: a preprocessed batch, or a shard's report (its status rows and the
    number of units it cut, before any of its batches)."""

    units: list[Unit] = field(default_factory=list)
    x: torch.Tensor | None = None  # the batch's model input, on the CPU (pinned when the device is CUDA)
    prep_s: float = 0.0  # its preprocess time: part of its units' compute_s, as when detect was synchronous
    error: str | None = None  # why preprocess failed: its units become error rows
    rows: list[dict] = field(default_factory=list)  # a shard's status rows (failed videos, skipped frames)
    shard: int | None = None  # on a shard's report: the shard's position in the list
    cut: int = 0  # on a shard's report: units cut from it, checked against the count (`UnitTotal.cut`)


def prepare(detector: Detector, units: list[Unit], pin: bool) -> Loaded:
    """Preprocess one batch; a RuntimeError / ValueError fails its units only, as a failed forward does."""
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            x = detector.preprocess(units)
            x = x.pin_memory() if pin else x  # page-locked, so the main thread's copy is asynchronous
    except (RuntimeError, ValueError) as exc:
        return Loaded(units=units, error=f"{type(exc).__name__}: {exc}")
    return Loaded(units=units, x=x, prep_s=time.perf_counter() - start)


def load_batches(detector: Detector, shards: list[Path], batch_size: int, pin: bool,
                 sources: Mapping[str, str] | None = None, window: int = WINDOW) -> Iterator[Loaded]:
    """Shards in order -> each shard's status rows, then batches of equal-shape units (so no input is padded).
    Units are pooled across the shards of a window of `window` shards and their videos, so batches stay full;
    what is left goes out at the window's end."""
    schema = schema_for(detector.spec.input_kind)
    pool = ShapePool(batch_size)
    for i, shard in enumerate(shards):
        units, failed = cut_units(detector, read_table(shard, schema), sources)
        yield Loaded(rows=failed, shard=i, cut=len(units))
        for unit in units:
            for group in pool.add(unit.data.shape, unit):
                yield prepare(detector, group, pin)
        if (i + 1) % window == 0 or i + 1 == len(shards):
            for group in pool.flush():
                yield prepare(detector, group, pin)


class ShapePool:
    """The batch plan both engines follow (the Ray engine replays it on unit shapes), so their batches, and so
    their fp32 logits, are the same: a shape's batch leaves as soon as `batch_size` of its items wait, and the
    oldest shape leaves early while more than MAX_PENDING_BATCHES batches' worth wait."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.groups: dict[tuple, list] = {}

    def add(self, shape: tuple, item: Any) -> list[list]:
        """Pool one item; returns the groups to batch now."""
        self.groups.setdefault(shape, []).append(item)
        ready = [self.groups.pop(shape)] if len(self.groups[shape]) >= self.batch_size else []
        while sum(map(len, self.groups.values())) > MAX_PENDING_BATCHES * self.batch_size:
            ready.append(self.groups.pop(next(iter(self.groups))))
        return ready

    def flush(self) -> list[list]:
        """Every waiting group (a window's end)."""
        out, self.groups = list(self.groups.values()), {}
        return out


_DONE = object()  # the loader's last item after a clean run


@contextlib.contextmanager
def prefetched(detector: Detector, shards: list[Path], batch_size: int, prefetch: int, pin: bool,
               sources: Mapping[str, str] | None = None, window: int = WINDOW) -> Iterator[Iterator[Loaded]]:
    """`load_batches` run ahead in a loader thread, at most `prefetch` items queued. The thread's exception is
    re-raised in the caller's thread; the thread has ended when the block exits, however it exits (a clean
    run, an exception in either thread, KeyboardInterrupt)."""
    out: queue.Queue = queue.Queue(maxsize=prefetch)
    stop = threading.Event()
    items = load_batches(detector, shards, batch_size, pin, sources, window)
    thread = threading.Thread(target=_load, args=(items, out, stop), name=f"detect-loader-{detector.spec.name}",
                              daemon=True)
    thread.start()
    try:
        yield _drain(out)
    finally:
        stop.set()  # a loader blocked on the full queue gives up within its put timeout
        thread.join()


def _load(items: Iterator[Loaded], out: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in items:
            if not _put(out, item, stop):
                return
        _put(out, _DONE, stop)
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the main thread, which re-raises it
        _put(out, exc, stop)


def _put(out: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Queue `item` unless the consumer has stopped; False when it has."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _drain(out: queue.Queue) -> Iterator[Loaded]:
    while (item := out.get()) is not _DONE:
        if isinstance(item, BaseException):
            raise item  # the loader's own exception: its type, message and traceback
        yield item


# ------------------------------------------------------------------------------------- forward (main thread)


@dataclass(frozen=True)
class Engine:
    """How a layer's forward runs (LayerParams' engine keys), on the detector's device."""

    device: torch.device
    autocast: torch.dtype | None  # None: plain fp32, exact
    channels_last: bool
    score: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]  # detector.score, maybe compiled

    @property
    def pin(self) -> bool:
        return self.device.type == "cuda"


def make_engine(detector: Detector, cfg: LayerParams) -> Engine:
    """Apply a layer's engine options to its detector (memory format, compile) and say how to run it."""
    device = next(detector.parameters()).device
    if cfg.precision == "fp16" and device.type != "cuda":
        # CPU fp16 kernels are mostly slow emulation; a silent fallback would record a precision that never ran
        raise ConfigError(f"layer.{detector.spec.layer}.precision: fp16 needs a CUDA device, the detector runs on "
                          f"{device}; use bf16 (or fp32) on the CPU")
    if cfg.channels_last:
        detector.to(memory_format=torch.channels_last)  # only 4-D weights (convolutions) change layout
    score = torch.compile(detector.score) if cfg.compile else detector.score
    return Engine(device, AUTOCAST[cfg.precision], cfg.channels_last, score)


@contextlib.contextmanager
def tf32_policy(enabled: bool) -> Iterator[None]:
    """TF32 for matmuls and convolutions, set explicitly for the run (torch's own defaults differ: cuDNN on,
    matmul off), then restored, since tests and tools score in-process."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def score_batch(detector: str, engine: Engine, batch: Loaded) -> tuple[list[dict], float]:
    """Rows of one prepared batch, and its forward time (transfer, forward, read-back)."""
    if batch.error is not None:
        return _failed(detector, batch.units, batch.error), 0.0
    start = time.perf_counter()
    try:
        with torch.inference_mode(), _autocast(engine):
            logits, upstream, *vector = engine.score(_to_device(engine, batch.x))
        logits = logits.float().cpu()
        upstream = upstream.float().cpu().tolist() if upstream is not None else [None] * len(batch.units)
        vectors = vector[0].float().cpu().tolist() if vector else [None] * len(batch.units)
    except (RuntimeError, ValueError) as exc:
        return _failed(detector, batch.units, f"{type(exc).__name__}: {exc}"), time.perf_counter() - start
    forward_s = time.perf_counter() - start
    per_unit = (batch.prep_s + forward_s) / len(batch.units)
    return [_unit_row(detector, u, float(lg), up, per_unit, vec)
            for u, lg, up, vec in zip(batch.units, logits, upstream, vectors)], forward_s


def _to_device(engine: Engine, x: torch.Tensor) -> torch.Tensor:
    fmt = torch.channels_last if engine.channels_last and x.dim() == 4 else torch.preserve_format
    return x.to(engine.device, non_blocking=True, memory_format=fmt)


def _autocast(engine: Engine) -> contextlib.AbstractContextManager:
    if engine.autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=engine.device.type, dtype=engine.autocast)


def _failed(detector: str, units: list[Unit], error: str) -> list[dict]:
    log.error("%s: batch of %d units failed: %s", detector, len(units), error)
    return [status_score(u.video_id, detector, schemas.ERROR, f"{u.video_id}: model failed ({error})")
            for u in units]


def _unit_row(detector: str, unit: Unit, logit: float, upstream: float | None, compute_s: float,
              vector: list[float] | None = None) -> dict:
    return {"video_id": unit.video_id, "unit_idx": unit.unit_idx, "frame_idx": unit.frame_idx, "detector": detector,
            "logit": logit, "p_fake": float(torch.sigmoid(torch.tensor(logit))), "upstream_score": upstream,
            "vector": vector,
            "t_start_s": unit.t_start_s, "t_end_s": unit.t_end_s, "compute_s": compute_s,
            "status": schemas.OK if unit.cut is None else schemas.PARTIAL, "error": unit.cut}


def batches(units: list[Unit], batch_size: int) -> Iterable[list[Unit]]:
    """Batches of equal-shape units, so no input is ever padded."""
    by_shape: dict[tuple, list[Unit]] = defaultdict(list)
    for unit in units:
        by_shape[unit.data.shape].append(unit)
    for group in by_shape.values():
        for i in range(0, len(group), batch_size):
            yield group[i:i + batch_size]


def score_units(detector: Detector, units: list[Unit], batch_size: int, bar: tqdm) -> list[dict]:
    """Score units in the caller's thread, fp32 (tests and tools; the stage runs `score_cache`)."""
    engine = make_engine(detector, LayerParams())
    rows: list[dict] = []
    for batch in batches(units, batch_size):
        rows += score_batch(detector.spec.name, engine, prepare(detector, batch, engine.pin))[0]
        bar.update(len(batch))
    return rows


# ---------------------------------------------------------------------------------------------------- stage


def finalise(rows: list[dict], manifest_ids: Iterable[str], detector: str) -> pd.DataFrame:
    """Every manifest video appears: a failed batch keeps only its status rows; absent videos get one."""
    table = pd.DataFrame(rows, columns=schemas.SCORES.names)
    # a video with a failed batch keeps only its failure rows (skipped-frame rows are ok rows without a score)
    bad = set(table.loc[~schemas.scored(table["status"]), "video_id"])
    table = table[~schemas.scored(table["status"]) | ~table["video_id"].isin(bad)]
    table = table.drop_duplicates(["video_id", "unit_idx"])
    absent = sorted(set(manifest_ids) - set(table["video_id"]))
    extra = [status_score(v, detector, schemas.ERROR, f"{v}: not found in the extract cache") for v in absent]
    table = pd.concat([table, pd.DataFrame(extra, columns=schemas.SCORES.names)], ignore_index=True)
    return table.sort_values(["video_id", "unit_idx"], ignore_index=True)


def score_cache(detector: Detector, manifest: pd.DataFrame, shards: list[Path], cfg: LayerParams,
                window: int = WINDOW) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score a whole cache with the prefetching engine; returns the scores and the run's timings. Memory stays
    bounded: one shard being cut, `prefetch` queued batches and the pool of pending units. Log records go
    through tqdm.write meanwhile (the loader thread's too), so no log line tears the bar."""
    name = detector.spec.name
    engine = make_engine(detector, cfg)
    if engine.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(engine.device)
    start = time.perf_counter()
    # face crops stored as boxes are cut again from these files
    sources = video_sources(manifest)
    with logging_redirect_tqdm(), tf32_policy(cfg.tf32), prefetched(detector, shards, cfg.batch_size, cfg.prefetch,
                                                                    engine.pin, sources, window) as items:
        counted = count_cache(detector, shards)  # while the loader cuts the first shard
        with tqdm(desc=f"detect {name}", unit="unit", total=sum(counted)) as bar:
            rows, timing = _consume(items, engine, name, UnitTotal(bar, counted, name))
    timing["wall_s"] = time.perf_counter() - start
    log.info("%s: read %d cache shards for %d manifest videos", name, len(shards), len(manifest))
    return finalise(rows, manifest["video_id"], name), {**timing, **_throughput(timing, engine.device)}


def video_sources(manifest: pd.DataFrame) -> dict[str, str]:
    """Each video's file, from which face crops stored as boxes are cut again."""
    return dict(zip(manifest["video_id"], manifest["path"])) if "path" in manifest else {}


@dataclass
class UnitTotal:
    """Keeps the bar's total true. It is counted before the first batch (`count_cache`), so the bar shows a
    rate and an ETA and reaches 100 % once. A shard's report comes before any of its batches; when the shard
    cut another number of units than counted, the total is corrected then, so the bar never runs past it.
    Fewer is a video that failed as it was cut (crops stored as boxes whose video is gone: logged where it
    fails); more is a `count_units` that drifted from `make_units`, a bug: warned once."""

    bar: tqdm
    counted: list[int]
    detector: str
    warned: bool = False

    def cut(self, shard: int, units: int) -> None:
        extra = units - self.counted[shard]
        if extra == 0:
            return
        if extra > 0 and not self.warned:
            log.warning("%s: shard %d cut %d units, %d more than its count_units counted; the progress total "
                        "grows (count_units must equal len(make_units))", self.detector, shard, units, extra)
            self.warned = True
        self.bar.total += extra
        self.bar.refresh()


def _consume(items: Iterator[Loaded], engine: Engine, name: str,
             total: UnitTotal) -> tuple[list[dict], dict[str, Any]]:
    """The main thread's loop: score each batch as it comes, keep each shard's status rows."""
    rows: list[dict] = []
    timing: dict[str, Any] = {"wall_s": 0.0, "forward_s": 0.0, "units": 0}
    for item in items:
        rows += item.rows
        if item.shard is not None:
            total.cut(item.shard, item.cut)
        if item.units:
            scored, forward_s = score_batch(name, engine, item)
            rows += scored
            timing["forward_s"] += forward_s
            timing["units"] += len(item.units)
            total.bar.update(len(item.units))
    return rows, timing


def _throughput(timing: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {"units_per_s": timing["units"] / timing["wall_s"] if timing["wall_s"] > 0 else None}
    if device.type == "cuda":
        out["gpu_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


# ------------------------------------------------------------------------------------ Ray engine (engine=ray)


def score_cache_ray(detector: Detector, manifest: pd.DataFrame, shards: list[Path], params: Params,
                    layer: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`score_cache` on a Ray cluster, window by window of `engine.window_shards` shards: cutter actors read
    the window's shards and cut units (CPU), the driver replays `ShapePool` on the units' shapes, and model
    actors (`engine.actors`, `engine.actor_gpus` each) score exactly the batches the local engine forms, so
    the scores are the same bytes. Units wait in Ray's object store between the two, a window at a time."""
    from tetrad import cluster

    name, engine = detector.spec.name, params.engine
    counted = count_cache(detector, shards)
    rows: list[dict] = []
    timing: dict[str, Any] = {"wall_s": 0.0, "forward_s": 0.0, "units": 0}
    start = time.perf_counter()
    with cluster.connected(engine), logging_redirect_tqdm(), \
            tqdm(desc=f"detect {name} (ray)", unit="unit", total=sum(counted)) as bar:
        timing["cluster"] = cluster.describe()
        total = UnitTotal(bar, counted, name)
        for first in range(0, len(shards), engine.window_shards):
            window = shards[first:first + engine.window_shards]
            rows += _ray_window(params, layer, first, window, video_sources(manifest), total, timing)
    timing["wall_s"] = time.perf_counter() - start
    log.info("%s: read %d cache shards for %d manifest videos on Ray", name, len(shards), len(manifest))
    return finalise(rows, manifest["video_id"], name), {**timing, **_throughput(timing, torch.device("cpu"))}


def _ray_window(params: Params, layer: str, first: int, window: list[Path], sources: dict[str, str],
                total: UnitTotal, timing: dict[str, Any]) -> list[dict]:
    """One window: cut, plan, score; returns its score and status rows."""
    import ray.data

    engine = params.engine
    items = [{"shard": first + i, "path": str(p)} for i, p in enumerate(window)]
    cut = ray.data.from_items(items).map_batches(
        RayCutter, fn_constructor_args=(params, layer, sources, os.getcwd()), batch_size=1, batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=min(engine.cutters, len(window))),
        num_cpus=engine.cutter_cpus).materialize()
    meta = cut.drop_columns(["unit"]).to_pandas().sort_values(["shard", "pos"], kind="stable")
    rows: list[dict] = []
    for report in meta[meta["pos"] < 0].itertuples():
        rows += pickle.loads(report.report)
        total.cut(int(report.shard), int(report.n_cut))
    plan = plan_batches(meta[meta["pos"] >= 0], params.layer[layer].batch_size)
    return rows + (_score_planned(cut, plan, params, layer, total, timing) if plan else [])


def _score_planned(cut: Any, plan: dict[tuple[int, int], int], params: Params, layer: str, total: UnitTotal,
                   timing: dict[str, Any]) -> list[dict]:
    """Hand each planned batch whole to a model actor (groupby batch) and gather the score rows."""
    import ray.data

    engine = params.engine
    # the shuffle's partitions: Ray's default (200) is hundreds of tasks for a small window; a few per actor
    partitions = min(max(plan.values()) + 1, 4 * engine.actors)
    grouped = cut.map_batches(_tag_batches, fn_kwargs={"plan": plan}, batch_format="pandas").groupby(
        "batch", num_partitions=partitions)
    scored = grouped.map_groups(RayScorer, fn_constructor_args=(params, layer, os.getcwd()), batch_format="pandas",
                                compute=ray.data.ActorPoolStrategy(size=engine.actors), num_gpus=engine.actor_gpus,
                                num_cpus=engine.actor_cpus)
    rows: list[dict] = []
    for out in scored.iter_rows():
        rows += pickle.loads(out["rows"])
        timing["forward_s"] += out["forward_s"]
        timing["units"] += out["n"]
        timing["device"] = out["device"]
        total.bar.update(out["n"])
    return rows


def plan_batches(units: pd.DataFrame, batch_size: int) -> dict[tuple[int, int], int]:
    """(shard, pos) of each unit -> its batch number, by the local engine's rule (`ShapePool`) over the
    window's units in shard order."""
    pool, plan, groups = ShapePool(batch_size), {}, []
    for unit in units.itertuples():
        groups += pool.add(tuple(unit.shape), (int(unit.shard), int(unit.pos)))
    for batch, group in enumerate(groups + pool.flush()):
        plan.update({key: batch for key in group})
    return plan


def _tag_batches(units: pd.DataFrame, plan: dict[tuple[int, int], int]) -> pd.DataFrame:
    units = units[units["pos"] >= 0]
    return units.assign(batch=[plan[(int(s), int(p))] for s, p in zip(units["shard"], units["pos"])])


class RayCutter:
    """A Ray actor that reads cache shards and cuts their units (`cut_units`), on the CPU: one row per unit
    (pickled, exact) with its shard, position and shape, and one report row per shard (its status rows and how
    many units it cut)."""

    def __init__(self, params: Params, layer: str, sources: dict[str, str], project: str) -> None:
        from tetrad import cluster

        cluster.worker_setup(project, params.engine.cutter_cpus)
        cpu = dataclasses.replace(params.layer[layer], device="cpu")
        params = dataclasses.replace(params, layer={**params.layer, layer: cpu})
        self.detector = load_layer(params, layer, write_demo=False)[0]
        self.schema = schema_for(self.detector.spec.input_kind)
        self.sources = sources

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        out = []
        for shard, path in zip(batch["shard"], batch["path"]):
            units, failed = cut_units(self.detector, read_table(Path(path), self.schema), self.sources)
            out.append({"shard": shard, "pos": -1, "shape": [], "unit": None, "report": pickle.dumps(failed),
                        "n_cut": len(units)})
            out += [{"shard": shard, "pos": i, "shape": list(u.data.shape), "unit": pickle.dumps(u),
                     "report": None, "n_cut": 0} for i, u in enumerate(units)]
        return pd.DataFrame(out)


class RayScorer:
    """A Ray actor holding the layer's model (loaded once, on its GPU share when it has one) that scores one
    planned batch per call, with the layer's engine options, exactly as `score_cache` scores it."""

    def __init__(self, params: Params, layer: str, project: str) -> None:
        from tetrad import cluster

        cluster.worker_setup(project, params.engine.actor_cpus)
        self.cfg = params.layer[layer]
        self.detector = load_layer(params, layer, write_demo=False)[0]
        self.engine = make_engine(self.detector, self.cfg)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch = batch.sort_values(["shard", "pos"], kind="stable")  # the order the local engine pooled them in
        units = [pickle.loads(u) for u in batch["unit"]]
        with tf32_policy(self.cfg.tf32):
            rows, forward_s = score_batch(self.detector.spec.name, self.engine,
                                          prepare(self.detector, units, self.engine.pin))
        return pd.DataFrame({"rows": [pickle.dumps(rows)], "n": [len(units)], "forward_s": [forward_s],
                             "device": [str(self.engine.device)]})


def schema_for(kind: str) -> pa.Schema:
    return {"audio": schemas.AUDIO}.get(kind, schemas.FRAMES)


def load_layer(params: Params, layer: str, write_demo: bool = True) -> tuple[Detector, LayerWeights, float]:
    """A layer's detector with its weights (demo ones written first where allowed, unless `write_demo` is False:
    Ray actors load what the driver wrote), and the load time: what the detect stage and `tetrad analyze` both
    score with."""
    cfg = params.layer[layer]
    # e.g. `dvc exp run -S layer/audio=...` to a detector with no weights yet
    if params.weights.allow_demo and write_demo:
        write_demo_weights(params, layers=[layer])
    inputs = get_spec(cfg.detector).inputs
    if cfg.input not in inputs:
        raise ConfigError(f"layer.{layer}.input: {cfg.detector} reads {inputs}, not {cfg.input!r}")
    weights = resolve_layer_weights(cfg, params)
    start = time.perf_counter()
    detector = create_detector(cfg.detector, weights.paths, cfg.variant, cfg.options, cfg.device)
    if weights.provenance == "demo-random":
        log.warning("layer %s runs DEMO-RANDOM weights: its scores mean nothing", layer)
    return detector, weights, time.perf_counter() - start


def run(params: Params, dataset: str, layer: str, root: Path = Path(".")) -> pd.DataFrame:
    """Score one layer of one dataset; writes the scores table and its run info, returns the scores."""
    protocol.check(params)  # a run labelled upstream must be upstream's, before any model runs
    cfg = params.layer[layer]
    paths = Paths(dataset, root)
    detector, weights, load_s = load_layer(params, layer)
    manifest = read_table(paths.manifest, schemas.MANIFEST)
    shards = sorted(paths.cache(cfg.input).glob("part-*.parquet"))
    if params.engine.name == "ray":
        scores, timing = score_cache_ray(detector, manifest, shards, params, layer)
    else:
        scores, timing = score_cache(detector, manifest, shards, cfg, params.engine.window_shards)
    remove_stale_temps(paths.scores(layer).parent)  # a killed run's half-written table
    out = write_table(scores, paths.scores(layer), schemas.SCORES)
    info = run_info(detector, weights, cfg, {"load_s": load_s, **timing})
    info["engine"]["name"] = params.engine.name
    made_by = paths.provenance(cfg.input)  # face kinds: which detector / mean face cut the crops
    info["input"] = {"kind": cfg.input, **(json.loads(made_by.read_text()) if made_by.is_file() else {})}
    info["protocol"] = {"name": params.protocol, "departures": protocol.layer_departures(params, layer)}
    write_json(info, paths.score_info(layer))
    per_video = scores.groupby("video_id")["status"].first().value_counts().to_dict()
    log.info("wrote %s: %d units, per-video status %s", out, int(schemas.scored(scores["status"]).sum()), per_video)
    return scores


def run_info(detector: Detector, weights: LayerWeights, cfg: LayerParams, timing: dict[str, Any]) -> dict[str, Any]:
    """What the aggregate stage needs to know about a detect run (detector, weights provenance, device), and how
    it ran: the engine's settings and its timings (load_s, wall_s, forward_s, units, units_per_s, gpu_peak_mib)."""
    spec = detector.spec
    engine = {"precision": cfg.precision, "tf32": cfg.tf32, "channels_last": cfg.channels_last,
              "compile": cfg.compile, "batch_size": cfg.batch_size, "prefetch": cfg.prefetch}
    return {"detector": spec.name, "layer": spec.layer, "reduce": spec.reduce, "label": spec.label,
            "upstream": spec.upstream, "weights": weights.provenance,
            "weights_sources": weights.sources, "weights_sha256": weights.sha256,
            "weights_paths": {k: str(v) for k, v in weights.paths.items()},
            "device": str(next(detector.parameters()).device), "device_requested": cfg.device,
            "engine": engine, "timing": timing}


def main(argv: list[str] | None = None) -> int:
    args = stage_arguments(__doc__, "dataset", "layer", argv=argv)
    setup()
    run(load_params(), args.dataset, args.layer)
    return 0
