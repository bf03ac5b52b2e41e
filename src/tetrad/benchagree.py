"""What `make bench` measures besides wall time (tetrad.bench runs it and writes the report).

- Agreement of two runs on the same clips: fast vs exact face mode (mouth-crop pixels, face boxes, P(fake) per
  video) and bf16 vs fp32 detect (logits per unit, P(fake) per video).
- AUC per layer on the mini benchmark, for the same two comparisons: the change must not move the metric.
- Fixed vs per-clip cost of extract: a probe process pays a worker's start-up (imports, face models) alone.
- Cache bytes against the raw-pixel equivalent of the same rows (the cache's previous format).
- On a GPU, how busy it was while a stage ran (NVML's utilisation, sampled; needs `pip install nvidia-ml-py`).

Development tool: no stage imports it.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tetrad import schemas
from tetrad.aggregate.reduce import reduce_units
from tetrad.io import read_table
from tetrad.media import pixels
from tetrad.media.crops import box_iou
from tetrad.params import FaceParams, Params
from tetrad.paths import Paths

FRAME_KEY = ["video_id", "frame_idx"]  # a mouth crop: one per frame
FACE_KEY = ["video_id", "frame_idx", "face_idx"]  # an SBI face: several per frame
UNIT_KEY = ["video_id", "unit_idx"]
NEAR_GREY_LEVELS = 2  # "within ±2 grey levels": below what a CNN on 8-bit input is expected to notice


# ------------------------------------------------------------------------------------------------ caches


def read_cache(root: Path, dataset: str, kind: str) -> pd.DataFrame:
    """Every shard of one kind's cache as one table."""
    shards = sorted(Paths(dataset, root).cache(kind).glob("part-*.parquet"))
    return read_table(shards, schemas.AUDIO if kind == "audio" else schemas.FRAMES)


def _ok(cache: pd.DataFrame) -> pd.DataFrame:
    return cache[cache["status"] == schemas.OK]


def _aligned(exact: pd.DataFrame, fast: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Rows ok in both caches, side by side (suffixes _exact, _fast)."""
    return _ok(exact).merge(_ok(fast), on=key, suffixes=("_exact", "_fast"))


def _only(a: pd.DataFrame, b: pd.DataFrame, key: list[str]) -> int:
    """Ok rows of `a` with no ok row in `b`: what an alignment silently leaves out, so the report counts it."""
    keys = _ok(b)[key].drop_duplicates()
    return int((_ok(a)[key].merge(keys, how="left", indicator=True)["_merge"] == "left_only").sum())


def _pixels(row: dict[str, Any], side: str) -> np.ndarray:
    shape = (int(row[f"height_{side}"]), int(row[f"width_{side}"]), int(row[f"channels_{side}"]))
    return pixels.decode(row[f"image_{side}"], shape, row[f"encoding_{side}"]).astype(np.int16)


def mouth_agreement(exact: pd.DataFrame, fast: pd.DataFrame) -> dict[str, Any]:
    """How far the mouth crops of two runs are apart, pixel by pixel, on the frames ok in both."""
    both = _aligned(exact, fast, FRAME_KEY)
    n = equal = near = worst = 0
    total = 0.0
    for row in both.to_dict("records"):
        a, b = _pixels(row, "exact"), _pixels(row, "fast")
        if a.shape != b.shape:  # same crop_size in both runs: a mismatch is a bug, not a disagreement
            raise ValueError(f"{row['video_id']} frame {row['frame_idx']}: crops {a.shape} vs {b.shape}")
        diff = np.abs(a - b)
        n, total = n + diff.size, total + float(diff.sum())
        equal, near = equal + int((diff == 0).sum()), near + int((diff <= NEAR_GREY_LEVELS).sum())
        worst = max(worst, int(diff.max()))
    return {"frames": len(both), "frames_exact_only": _only(exact, fast, FRAME_KEY),
            "frames_fast_only": _only(fast, exact, FRAME_KEY), "mean_abs_diff": total / n if n else None,
            "share_equal": equal / n if n else None, "share_within_2": near / n if n else None,
            "max_abs_diff": worst if n else None}


def kept_faces(cache: pd.DataFrame) -> pd.Series:
    """Faces kept per sampled frame: its ok rows (a frame with a no_face row keeps none)."""
    frames = cache[cache["frame_idx"] >= 0]  # -1: a status row of a whole failed video, no frame
    return frames["status"].eq(schemas.OK).groupby([frames["video_id"], frames["frame_idx"]]).sum()


def face_agreement(exact: pd.DataFrame, fast: pd.DataFrame) -> dict[str, Any]:
    """Box IoU of the faces ok in both runs, and the frames whose number of kept faces differs. Boxes, not
    pixels: with extract.faces.store=boxes the crops are cut from the video by the same function either way."""
    both = _aligned(exact, fast, FACE_KEY)
    ious = np.array([box_iou(np.asarray(a, np.float64), np.asarray(b, np.float64))
                     for a, b in zip(both["box_exact"], both["box_fast"])])
    counts = pd.concat([kept_faces(exact).rename("exact"), kept_faces(fast).rename("fast")], axis=1).fillna(0)
    return {"faces": len(both), "iou_mean": float(ious.mean()) if ious.size else None,
            "iou_min": float(ious.min()) if ious.size else None, "frames": len(counts),
            "frames_face_count_differs": int((counts["exact"] != counts["fast"]).sum())}


def raw_equivalent_bytes(cache: pd.DataFrame, kind: str) -> int:
    """What the same ok rows took in the previous cache format: h x w x c bytes per image (face rows stored as
    boxes at their declared size, the crop detect cuts again), 4 bytes per audio sample (float32)."""
    ok = _ok(cache)
    if kind == "audio":
        return int(ok["num_samples"].astype("int64").sum()) * 4
    dims = ok[["height", "width", "channels"]].astype("int64")
    return int((dims["height"] * dims["width"] * dims["channels"]).sum())


def cache_bytes(root: Path, dataset: str, kinds: list[str], n_clips: int) -> dict[str, Any]:
    """Per kind and clip: the Parquet bytes on disk and the raw-pixel equivalent of the same rows."""
    paths, n = Paths(dataset, root), max(1, n_clips)
    measured = {k: sum(p.stat().st_size for p in paths.cache(k).glob("part-*.parquet")) / n for k in kinds}
    raw = {k: raw_equivalent_bytes(read_cache(root, dataset, k), k) / n for k in kinds}
    total = sum(measured.values())
    return {"measured_per_clip": measured, "raw_equivalent_per_clip": raw,
            "shrink": sum(raw.values()) / total if total else None}


# ------------------------------------------------------------------------------------------------ scores


def video_p_fake(scores: pd.DataFrame, rule: str) -> pd.Series:
    """P(fake) per video, reduced with the detector's own rule (as the aggregate stage does); NaN when failed."""
    return reduce_units(scores, rule).set_index("video_id")["p_fake"].astype("float64")


def p_fake_delta(a: pd.DataFrame, b: pd.DataFrame, rule: str) -> dict[str, Any]:
    """Largest |dP(fake)| per video over the videos both runs scored, and how many only one of them scored."""
    both = pd.concat([video_p_fake(a, rule).rename("a"), video_p_fake(b, rule).rename("b")], axis=1)
    scored = both.dropna()
    diff = (scored["a"] - scored["b"]).abs()
    return {"max_abs_delta_p_fake": float(diff.max()) if len(diff) else None, "videos": len(scored),
            "videos_scored_once": int(both.notna().sum(axis=1).eq(1).sum())}


def logit_delta(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    """Largest |dlogit| per unit, units aligned on (video_id, unit_idx), over the units both scored."""
    pick = [*UNIT_KEY, "logit"]
    both = a.loc[a["logit"].notna(), pick].merge(b.loc[b["logit"].notna(), pick], on=UNIT_KEY)
    diff = (both["logit_x"].astype("float64") - both["logit_y"].astype("float64")).abs()
    return {"units": len(both), "max_abs_delta_logit": float(diff.max()) if len(diff) else None}


def layer_auc(scores: pd.DataFrame, manifest: pd.DataFrame, layer: str, rule: str) -> dict[str, Any]:
    """ROC AUC of video-level P(fake) against the layer's own label (schemas.LAYER_LABELS), over the ok videos:
    ok in the manifest, labelled, and given a P(fake). None when they hold one class only."""
    from sklearn.metrics import roc_auc_score

    labels = manifest.loc[manifest["status"] == schemas.OK].set_index("video_id")[schemas.LAYER_LABELS[layer]]
    both = pd.concat([video_p_fake(scores, rule).rename("p"), labels.rename("y")], axis=1, join="inner").dropna()
    if both["y"].nunique() < 2:
        return {"auc": None, "n": len(both)}
    return {"auc": float(roc_auc_score(both["y"].astype(int), both["p"])), "n": len(both)}


def auc_delta(manifest: pd.DataFrame, layer: str, rule: str, base: pd.DataFrame,
              other: pd.DataFrame) -> dict[str, Any]:
    """AUC of `base` and `other` scores of one layer, and other - base."""
    a, b = layer_auc(base, manifest, layer, rule), layer_auc(other, manifest, layer, rule)
    delta = b["auc"] - a["auc"] if a["auc"] is not None and b["auc"] is not None else None
    return {"auc_base": a["auc"], "n_base": a["n"], "auc_other": b["auc"], "n_other": b["n"], "delta_auc": delta}


# ------------------------------------------------------------------------------------------------ runs


def detect_timed(params: Params, dataset: str, layer: str, root: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """detect.run, with the wall time around it and the timing and engine its run info records (load_s: the
    detector's construction, which detect.run times on its own)."""
    from tetrad.stages import detect

    start = time.perf_counter()
    scores = detect.run(params, dataset, layer, root)
    total = time.perf_counter() - start
    info = json.loads(Paths(dataset, root).score_info(layer).read_text())
    return scores, {"total_s": total, **info["timing"], "engine": info["engine"]}


def with_precision(params: Params, layer: str, precision: str) -> Params:
    """The same params with one layer's detect precision changed (Params is frozen)."""
    cfg = dataclasses.replace(params.layer[layer], precision=precision)
    return dataclasses.replace(params, layer={**params.layer, layer: cfg})


def face_layers(params: Params, layers: list[str]) -> list[str]:
    """The layers reading a face kind: the only ones extract.face.mode can change."""
    return [layer for layer in layers if params.layer[layer].input in schemas.FACE_KINDS]


def rules(params: Params, layers: list[str]) -> dict[str, str]:
    """Each layer's reduce rule, from its detector's spec."""
    from tetrad.layers import get_spec

    return {layer: get_spec(params.layer[layer].detector).reduce for layer in layers}


def bf16_bound(params: Params, dataset: str, root: Path, fp32: dict[str, pd.DataFrame]
               ) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Every layer of `fp32` scored again on the same caches with precision=bf16: how far its logits and
    P(fake) move, and its times. detect.run overwrites the scores file, so the fp32 scores come in memory."""
    reduce_rule, out, scores = rules(params, list(fp32)), {}, {}
    for layer, base in fp32.items():
        scores[layer], timing = detect_timed(with_precision(params, layer, "bf16"), dataset, layer, root)
        out[layer] = {**logit_delta(base, scores[layer]), **p_fake_delta(base, scores[layer], reduce_rule[layer]),
                      "bf16_total_s": timing["total_s"], "bf16_forward_s": timing["forward_s"]}
    return out, scores


# ------------------------------------------------------------------------------------------------ mini benchmark


MINI = "mini"  # the dataset name of the mini benchmark's runs (datasets.mini in params)


def ensure_mini(raw: Path) -> Path:
    """The mini benchmark in `raw`, generated once with the generator of `make demo` (stage `mini`)."""
    if not (raw / "labels.csv").is_file():
        from tetrad.mini import make_mini

        make_mini(raw)
    return raw


def run_mini(params: Params, root: Path, layers: list[str]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """manifest, extract (only the kinds `layers` read) and detect of the mini benchmark in run folder `root`."""
    from tetrad.stages import detect, extract, manifest

    table = manifest.run(params, MINI, root)
    needed = {params.layer[layer].input for layer in layers}
    kinds = [kind for kind in params.extract.kinds if kind in needed]
    extract.run(dataclasses.replace(params, extract=dataclasses.replace(params.extract, kinds=kinds)), MINI, root)
    return table, {layer: detect.run(params, MINI, layer, root) for layer in layers}


def mini_agreement(exact: tuple[Params, Path], fast: tuple[Params, Path], layers: list[str],
                   bf16: bool) -> dict[str, Any]:
    """AUC per layer on the mini benchmark: exact vs fast face mode (face layers only: the others read caches
    the face mode does not change) and, with `bf16`, fp32 vs bf16 on the exact caches."""
    manifest, base = run_mini(exact[0], exact[1], layers)
    _, fast_scores = run_mini(fast[0], fast[1], face_layers(fast[0], layers))
    reduce_rule = rules(exact[0], layers)
    out: dict[str, Any] = {"videos": len(manifest), "face_layers": list(fast_scores), "fast": {}, "bf16": None}
    for layer, scores in fast_scores.items():
        out["fast"][layer] = auc_delta(manifest, layer, reduce_rule[layer], base[layer], scores)
    if bf16:
        _, half = bf16_bound(exact[0], MINI, exact[1], base)
        out["bf16"] = {layer: auc_delta(manifest, layer, reduce_rule[layer], base[layer], half[layer])
                       for layer in layers}
    return out


# ------------------------------------------------------------------------------------------------ worker probe


def vm_bytes(field: str, pid: int | str = "self", table: str = "status") -> int:
    """One `<field>: N kB` line of /proc/<pid>/<table> (status: Vm*/Rss*; smaps_rollup: Pss), in bytes (0 when
    absent). OSError when the process is gone."""
    for line in Path(f"/proc/{pid}/{table}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def worker_baseline(face: FaceParams, weights: dict[str, Path]) -> dict[str, Any]:
    """In a worker of extract's own pool: build the face detectors and landmarker, as a worker does before its
    first video; its time and its memory then (the baseline a video's work adds to)."""
    from tetrad.media.faces import face_tools

    start = time.perf_counter()
    face_tools(face, True, weights)
    return {"face_tools_s": time.perf_counter() - start, **{k: vm_bytes(k) for k in ("VmRSS", "VmHWM", "RssAnon")}}


def probe_main(params_path: str, started: float) -> None:
    """In the probe process: the extract module's import (what extract's fork server pays before any worker),
    then one worker of extract's own pool context building its face models; one JSON line. The worker, not this
    process, gives the RSS baseline: a worker forked from the server maps fewer library pages than a process
    that imported everything itself, so only it compares with the workers' peaks."""
    rss = {"libs": vm_bytes("VmRSS")}  # the interpreter, numpy, pandas, pyarrow, cv2: this module's imports
    import torch  # noqa: F401 - split out because it is most of the baseline

    rss["torch"] = vm_bytes("VmRSS")
    from tetrad.stages import extract  # the import is what is timed

    imported = time.perf_counter()
    rss["imports"] = vm_bytes("VmRSS")
    from concurrent.futures import ProcessPoolExecutor

    from tetrad.params import load_params

    params = load_params(params_path)  # not a worker's cost: its params come pickled
    ep, workers = params.extract, max(1, params.extract.workers)
    weights = {name: r.path for name, r in extract.face_assets(params).items()}
    with ProcessPoolExecutor(1, mp_context=extract._worker_context(), initializer=extract._share_cores,
                             initargs=(workers,)) as pool:
        worker = pool.submit(worker_baseline, ep.face, weights).result()
    print(json.dumps({"import_s": imported - started, "probe_rss_after": rss, **worker}))


def worker_probe(params_path: Path) -> dict[str, Any]:
    """A worker's fixed start-up and RSS baseline, from a fresh interpreter: the bench process has torch and the
    models loaded already, so neither its timing nor its memory would be a worker's."""
    code = ("import time; started = time.perf_counter()\n"  # before any import: the imports are the cost
            "from tetrad.benchagree import probe_main\n"
            f"probe_main({str(Path(params_path).resolve())!r}, started)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the extract worker probe failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    out = json.loads(lines[-1])
    return {**out, "fixed_s": out["import_s"] + out["face_tools_s"]}


# ------------------------------------------------------------------------------------------------ GPU busy


class GpuBusy:
    """Mean GPU utilisation while the block runs: NVML's share of time a kernel was executing, sampled every
    `interval` s on the CUDA device in use. `percent` is None, and `why` says why, when it cannot be measured
    (no GPU, no pynvml); the bench then prints that instead of a number."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.samples, self.why = interval, [], None
        self._stop, self._thread, self._nvml = threading.Event(), None, None

    def __enter__(self) -> GpuBusy:  # noqa: PYI034 -- typing.Self needs Python 3.11, the project supports 3.10
        import torch

        if not torch.cuda.is_available():
            self.why = "no GPU"
            return self
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        except Exception as exc:  # ImportError or any NVML error: measured as "not measured", never as 0 %
            self.why = f"not measured ({type(exc).__name__}: {exc}; pip install nvidia-ml-py)"
            return self
        self._nvml = pynvml
        self._thread = threading.Thread(target=self._loop, args=(handle,), daemon=True)
        self._thread.start()
        return self

    def _loop(self, handle: Any) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu))

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._nvml.nvmlShutdown()
        if self._nvml is not None and not self.samples:
            self.why = "not measured (the stage ended before the first sample)"

    @property
    def percent(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None

