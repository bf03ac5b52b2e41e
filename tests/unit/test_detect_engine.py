"""The detect engine: a loader thread batches units across shards and videos, the main thread runs the forward
with the layer's precision / channels_last options; scores equal a synchronous computation, errors surface."""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
import yaml
from torch import nn
from tqdm import tqdm

from tests.layers.test_registry import sample_units, tiny_weights
from tetrad import schemas
from tetrad.io import read_table, write_table
from tetrad.layers.base import Detector, DetectorSpec, Unit
from tetrad.layers.checkpoints import LayerWeights
from tetrad.layers.units import AUDIO_COUNT_COLUMNS, audio_windows, window_starts
from tetrad.params import ConfigError, LayerParams, params_from_dict
from tetrad.stages import detect
from tetrad.stages.detect import (
    count_cache,
    cut_units,
    finalise,
    make_engine,
    prefetched,
    prepare,
    run_info,
    score_batch,
    score_cache,
    score_units,
    tf32_policy,
)

ROOT = Path(__file__).resolve().parents[2]
RATE = 1000  # samples per second: 0.25-s windows are 250 samples, so the toy model runs in milliseconds
# Shard by shard: (video_id, seconds of audio or a status). 0.25-s windows: a 4, b 1 (100 samples: its own shape),
# d 3 (the last one end-aligned), e too short, f 1 (100 samples), g 2; c has no audio, h is not in the cache.
SHARDS = [[("a", 1.0), ("b", 0.1), ("c", "no_audio")], [("d", 0.6), ("e", 0.02)], [("f", 0.1), ("g", 0.5)]]
MANIFEST = pd.DataFrame({"video_id": list("abcdefgh")})


class ToyWave(Detector):
    """A tiny 1-D CNN on variable-length audio windows (not registered: the engine needs no registry)."""

    spec = DetectorSpec(name="toy_wave", layer="audio", input_kind="audio", reduce="mean_prob", label="toy",
                        weights={}, checkpoint_format="none", upstream="none", licence="MIT", paper="none")

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.conv = nn.Conv1d(1, 8, 9)
            self.head = nn.Linear(8, 1)

    count_columns = AUDIO_COUNT_COLUMNS

    def make_units(self, rows: pd.DataFrame) -> list[Unit]:
        row = rows.iloc[0]
        return audio_windows(str(row["video_id"]), np.asarray(row["waveform"], np.float32), RATE, 0.25, 0.05)

    def count_units(self, rows: pd.DataFrame) -> int:
        row = rows.iloc[0]
        return len(window_starts(str(row["video_id"]), int(row["num_samples"]), RATE, 0.25, 0.05)[0])

    def preprocess(self, units: list[Unit]) -> torch.Tensor:
        return torch.from_numpy(np.stack([u.data for u in units]))[:, None, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 4.0 * self.head(torch.tanh(self.conv(x)).mean(-1))[:, 0]


def _audio_row(video_id: str, what: float | str, rng: np.random.Generator) -> dict:
    if isinstance(what, str):
        return {"video_id": video_id, "sample_rate": RATE, "num_samples": 0, "waveform": None, "status": what,
                "error": f"{video_id}: {what}"}
    wave = (rng.standard_normal(round(what * RATE)) * 0.5).astype(np.float32)
    return {"video_id": video_id, "sample_rate": RATE, "num_samples": len(wave), "waveform": wave,
            "status": schemas.OK, "error": None}


def write_shards(folder: Path, shards: list[list[tuple[str, float | str]]]) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i, videos in enumerate(shards):
        rows = pd.DataFrame([_audio_row(vid, what, rng) for vid, what in videos])
        paths.append(write_table(rows, folder / f"part-{i:05d}.parquet", schemas.AUDIO))
    return paths


@pytest.fixture()
def shards(tmp_path) -> list[Path]:
    return write_shards(tmp_path, SHARDS)


def test_batches_span_shards_and_videos_and_the_rest_is_flushed_at_the_end(shards):
    with prefetched(ToyWave(), shards, batch_size=4, prefetch=2, pin=False) as items:
        batches = [[u.video_id for u in item.units] for item in items if item.units]
    assert batches == [["a"] * 4, ["d", "d", "d", "g"], ["b", "f"], ["g"]]


def test_engine_scores_equal_a_synchronous_computation(shards):
    detector = ToyWave()
    table, timing = score_cache(detector, MANIFEST, shards, LayerParams(batch_size=4, prefetch=1))

    # the synchronous stage of before: shard by shard, batches within a shard
    rows = []
    for shard in shards:
        units, failed = cut_units(detector, read_table(shard, schemas.AUDIO))
        rows += failed + score_units(detector, units, 4, tqdm(disable=True))
    sync = finalise(rows, MANIFEST["video_id"], detector.spec.name)
    floats = ["logit", "p_fake"]
    pd.testing.assert_frame_equal(table.drop(columns=["compute_s", *floats]), sync.drop(columns=["compute_s", *floats]))
    np.testing.assert_allclose(table[floats].astype(float), sync[floats].astype(float), rtol=1e-5, atol=1e-6)

    # and each unit on its own, batch of one, plain module call
    units = [u for s in shards for u in cut_units(detector, read_table(s, schemas.AUDIO))[0]]
    with torch.inference_mode():
        alone = {(u.video_id, u.unit_idx): float(detector(detector.preprocess([u]))[0]) for u in units}
    scored = table[table["logit"].notna()]
    assert list(zip(scored["video_id"], scored["unit_idx"])) == sorted(alone)
    np.testing.assert_allclose(scored["logit"].astype(float), [alone[k] for k in sorted(alone)], rtol=1e-5, atol=1e-6)
    statuses = table[table["logit"].isna()].set_index("video_id")["status"].to_dict()
    assert statuses == {"c": "no_audio", "e": "too_short", "h": "error"}
    assert timing["units"] == 11 and (scored["compute_s"] > 0).all()


def test_bf16_on_cpu_is_close_to_fp32_but_not_equal(shards):
    fp32, _ = score_cache(ToyWave(), MANIFEST, shards, LayerParams(batch_size=4))
    bf16, _ = score_cache(ToyWave(), MANIFEST, shards, LayerParams(batch_size=4, precision="bf16"))
    assert fp32["logit"].notna().tolist() == bf16["logit"].notna().tolist()
    logits = bf16["logit"].dropna().astype(float)
    assert logits.map(type).eq(float).all() and np.isfinite(logits).all()
    delta = (bf16["logit"] - fp32["logit"]).abs().dropna()
    assert 0 < delta.max() < 0.02, delta.max()  # nonzero: autocast really ran in bf16 (about 2e-3 here)


def test_fp16_on_cpu_is_a_config_error():
    with pytest.raises(ConfigError, match="layer.audio.precision: fp16 needs a CUDA device"):
        make_engine(ToyWave(), LayerParams(precision="fp16"))


def test_channels_last_converts_the_cnn_and_keeps_its_scores(tmp_path):
    from tetrad.layers import create_detector

    detector = create_detector("sbi_effb4", tiny_weights("sbi_effb4", tmp_path), "tiny")
    units = sample_units("faces", 2)
    ref = score_batch("sbi", make_engine(detector, LayerParams()), prepare(detector, units, False))[0]
    engine = make_engine(detector, LayerParams(channels_last=True))
    nhwc = [p for p in detector.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1]
    assert nhwc and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in nhwc)
    rows = score_batch("sbi", engine, prepare(detector, units, False))[0]
    np.testing.assert_allclose([r["logit"] for r in rows], [r["logit"] for r in ref], rtol=1e-4, atol=1e-5)


def _loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("detect-loader")]


def test_an_exception_in_preprocess_surfaces_and_leaves_no_loader_thread(shards, monkeypatch):
    detector = ToyWave()

    def boom(units: list[Unit]) -> torch.Tensor:
        raise ZeroDivisionError(f"boom in preprocess of {units[0].video_id}")

    monkeypatch.setattr(detector, "preprocess", boom)
    with pytest.raises(ZeroDivisionError, match="boom in preprocess of a"):
        score_cache(detector, MANIFEST, shards, LayerParams(batch_size=4))
    assert not _loader_threads()


def test_an_interrupt_in_the_forward_stops_a_blocked_loader(tmp_path, monkeypatch):
    detector = ToyWave()
    many = write_shards(tmp_path, [[(f"v{i}", 1.0) for i in range(10)]])  # 40 batches of one, 1 queued

    def interrupted(x: torch.Tensor) -> torch.Tensor:
        raise KeyboardInterrupt

    monkeypatch.setattr(detector, "forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        score_cache(detector, MANIFEST, many, LayerParams(batch_size=1, prefetch=1))
    assert not _loader_threads()


def test_a_value_error_in_preprocess_fails_its_batch_only(shards, monkeypatch):
    detector = ToyWave()
    real = detector.preprocess

    def picky(units: list[Unit]) -> torch.Tensor:
        if any(u.video_id == "d" for u in units):
            raise ValueError("bad window")
        return real(units)

    monkeypatch.setattr(detector, "preprocess", picky)
    table, _ = score_cache(detector, MANIFEST, shards, LayerParams(batch_size=4))
    status = table.groupby("video_id")["status"].first()
    assert status[["d", "g"]].tolist() == ["error", "error"]  # the batch [d, d, d, g] spans shards 1 and 2
    assert status[["a", "b", "f"]].tolist() == ["ok"] * 3
    assert "model failed (ValueError: bad window)" in table.set_index("video_id").loc["d", "error"]


def test_one_off_shapes_do_not_wait_for_the_end(tmp_path):
    """Twelve clips shorter than a window: twelve shapes. The pool holds at most 4 batches' worth of units."""
    shards = write_shards(tmp_path, [[(f"s{i}", 0.1 + i / 100) for i in range(12)], [("z", 0.5)]])
    with prefetched(ToyWave(), shards, batch_size=2, prefetch=2, pin=False) as items:
        kinds = ["rows" if item.shard is not None else "batch" for item in items]
    assert kinds.index("batch") < kinds.index("rows", 1)  # a partial batch left before shard 2 was read


def test_run_info_records_the_engine_and_its_timings(shards):
    cfg = LayerParams(batch_size=4, prefetch=3, precision="bf16")
    detector = ToyWave()
    _, timing = score_cache(detector, MANIFEST, shards, cfg)
    info = run_info(detector, LayerWeights({}, {}, {}), cfg, {"load_s": 0.5, **timing})
    assert info["engine"] == {"precision": "bf16", "tf32": False, "channels_last": False, "compile": False,
                              "batch_size": 4, "prefetch": 3}
    assert set(info["timing"]) == {"load_s", "wall_s", "forward_s", "units", "units_per_s"}  # no GPU here
    assert info["timing"]["units"] == 11 and info["timing"]["units_per_s"] > 0
    assert 0 < info["timing"]["forward_s"] <= info["timing"]["wall_s"]
    assert info["device"] == "cpu" and info["detector"] == "toy_wave"


def test_tf32_policy_is_set_for_the_run_and_restored():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    for enabled in (True, False):
        with tf32_policy(enabled):
            assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (enabled, enabled)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


@pytest.mark.parametrize("key, value, message", [
    ("precision", "fp64", "layer.audio.precision: 'fp64' is not one of"),
    ("prefetch", 0, "layer.audio.prefetch: 0 is outside the allowed range"),
    ("tf32", "yes", "layer.audio.tf32: expected bool"),
])
def test_engine_params_are_validated(key, value, message):
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["layer"]["audio"][key] = value
    with pytest.raises(ConfigError, match=message):
        params_from_dict(data)


class RecordingBar(tqdm):
    """The engine's bar, recording its total when it was made and its position against its total at each step."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "file": io.StringIO()})
        self.first_total = kwargs.get("total")
        self.steps: list[tuple[int, int]] = []
        RecordingBar.made.append(self)

    def update(self, n: float | None = 1) -> bool | None:
        out = super().update(n)
        self.steps.append((self.n, self.total))
        return out


@pytest.fixture()
def bars(monkeypatch) -> list[RecordingBar]:
    """The bars score_cache makes, in order."""
    monkeypatch.setattr(RecordingBar, "made", [])
    monkeypatch.setattr(detect, "tqdm", RecordingBar)
    return RecordingBar.made


def test_the_bar_knows_its_total_before_the_first_batch(shards, bars, caplog):
    assert count_cache(ToyWave(), shards) == [5, 3, 3]  # a 4 + b 1 | d 3 (e too short) | f 1 + g 2
    _, timing = score_cache(ToyWave(), MANIFEST, shards, LayerParams(batch_size=4, prefetch=1))
    (made,) = bars
    assert made.first_total == timing["units"] == 11 and made.unit == "unit"
    assert [total for _, total in made.steps] == [11] * len(made.steps) and made.n == 11
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_count_reads_light_columns_only(shards, monkeypatch):
    read, real = [], detect.read_table

    def spy(path: Path, schema: pa.Schema, columns: list[str] | None = None) -> pd.DataFrame:
        read.append(columns)
        return real(path, schema, columns)

    monkeypatch.setattr(detect, "read_table", spy)
    count_cache(ToyWave(), shards)
    assert read == [["video_id", "status", "sample_rate", "num_samples"]] * 3  # never the waveforms


@pytest.mark.parametrize("wrong, warned", [(-1, True), (+1, False)])
def test_a_wrong_count_corrects_the_total_and_never_breaks_the_bar(shards, bars, monkeypatch, caplog, wrong,
                                                                  warned):
    """A count short of the cut (a count_units bug) warns once; one above it (a video failing as it is cut)
    only shrinks the total. Either way the bar never passes its total and ends at 100 %."""
    detector = ToyWave()
    counted = ToyWave.count_units
    monkeypatch.setattr(detector, "count_units", lambda rows: max(0, counted(detector, rows) + wrong))
    _, timing = score_cache(detector, MANIFEST, shards, LayerParams(batch_size=4))
    (made,) = bars
    assert all(n <= total for n, total in made.steps) and made.n == made.total == timing["units"] == 11
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == warned and all("more than its count_units counted" in w for w in warnings)


@pytest.mark.parametrize("window", [1, 2, 64])
def test_the_ray_engines_batch_plan_is_the_local_engines(tmp_path, window):
    """plan_batches (the Ray engine's plan, from unit shapes only) forms exactly load_batches' batches, one-off
    shapes, pooling across shards and the flush at each window's end included."""
    shards = write_shards(tmp_path, [[(f"s{i}", 0.1 + i / 100) for i in range(6)] + [("a", 1.0)],
                                     [("b", 2.0), ("c", 1.0)], [("d", 1.0), ("z", 0.5)]])
    with prefetched(ToyWave(), shards, batch_size=2, prefetch=2, pin=False, window=window) as items:
        local = [[(u.video_id, u.unit_idx) for u in item.units] for item in items if item.units]
    meta, ids = [], {}
    schema = detect.schema_for("audio")
    for i, shard in enumerate(shards):
        units, _ = detect.cut_units(ToyWave(), read_table(shard, schema))
        for pos, u in enumerate(units):
            meta.append({"shard": i, "pos": pos, "shape": list(u.data.shape)})
            ids[(i, pos)] = (u.video_id, u.unit_idx)
    planned: dict[int, list] = {}
    for first in range(0, len(shards), window):  # the Ray engine plans window by window
        part = pd.DataFrame([m for m in meta if first <= m["shard"] < first + window])
        for key, batch in detect.plan_batches(part, 2).items():
            planned.setdefault((first, batch), []).append(ids[key])
    assert sorted(map(sorted, local)) == sorted(map(sorted, planned.values()))
    assert window > 1 or any(len(b) == 1 for b in local)  # a window of one shard flushes partial batches
