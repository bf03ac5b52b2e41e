"""Every registered detector counts, from its light `count_columns` alone, exactly the units its `make_units` cuts:
the detect engine's progress total (count_cache) equals the units cut_units gives, edge cases included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.layers.test_registry import tiny_weights
from tetrad import schemas
from tetrad.io import read_table, write_table
from tetrad.layers import create_detector, detector_class, get_spec, list_detectors
from tetrad.layers.base import Detector
from tetrad.media import pixels
from tetrad.schemas import StatusError
from tetrad.stages.detect import all_failed, count_cache, cut_units, schema_for

# Options that change how units are cut, on top of each detector's defaults.
OPTIONS = {
    "aasist": [{"windows": "first"}, {"min_s": 1.0}],
    "w2v2_deepfake_v2": [{"window_s": 1.0, "min_s": 0.5}],
    "lipforensics_rn18_mstcn": [{"max_frames": 30}, {"clip_frames": 10}],
}
# A detector that reads the media file again (SyncNet) cuts units only where the file is: its count is checked on
# real clips in its own tests (tests/layers/test_syncnet.py).
CASES = [(name, kind, options) for name in list_detectors() for kind in get_spec(name).inputs
         for options in [{}, *OPTIONS.get(name, [])] if not detector_class(name).reads_source]
# (video_id, samples, sample rate) or (video_id, status): around the tiny AASIST window (16000), wav2vec2's 4 s
# and 1 s windows and the minimum lengths; a clip at another rate; a video without audio.
AUDIO = [("empty", 0, 16000), ("blip", 100, 16000), ("under_1s", 15999, 16000), ("one_s", 16000, 16000),
         ("one_s_plus", 16001, 16000), ("mid", 40000, 16000), ("four_s", 64000, 16000), ("tail", 64001, 16000),
         ("long", 150000, 16000), ("rate_8k", 20000, 8000), ("no_audio", schemas.NO_AUDIO)]
# (video_id, [(frame_idx, face_idx, status)]): skipped faceless frames, two faces in a frame, failed videos
PICTURES = [("three", [(0, -1, "ok"), (1, -1, "ok"), (2, -1, "ok")]),
            ("faceless_frame", [(0, 0, "ok"), (1, -1, schemas.NO_FACE), (2, 0, "ok")]),
            ("two_faces", [(0, 0, "ok"), (0, 1, "ok"), (1, 0, "ok")]),
            ("no_face_at_all", [(0, -1, schemas.NO_FACE), (1, -1, schemas.NO_FACE)]),
            ("failed", [(-1, -1, schemas.DECODE_ERROR)])]
# mouths: clips of consecutive frames, a faceless tail, a gap, a late start, too few frames, a failed video
MOUTHS = [("sixty", [(i, "ok") for i in range(60)]),
          ("faceless_tail", [(i, "ok") for i in range(50)] + [(50, schemas.NO_FACE)]),
          ("gap", [(i, "ok" if i != 10 else schemas.NO_FACE) for i in range(40)]),
          ("late_start", [(i, "ok") for i in range(5, 57)]),
          ("short", [(i, "ok") for i in range(24)]),
          ("failed", [(-1, schemas.DECODE_ERROR)])]


def audio_cache() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for vid, *what in AUDIO:
        if len(what) == 1:
            rows.append({"video_id": vid, "sample_rate": 0, "num_samples": 0, "waveform": None, "status": what[0],
                         "error": f"{vid}: {what[0]}"})
            continue
        n, sr = what
        rows.append({"video_id": vid, "sample_rate": sr, "num_samples": n, "status": schemas.OK, "error": None,
                     "waveform": (rng.standard_normal(n) * 0.1).astype(np.float32)})
    return pd.DataFrame(rows)


def picture_row(vid: str, frame: int, face: int, status: str, shape: tuple[int, int, int], encoding: str) -> dict:
    ok = status == schemas.OK
    image = np.full(shape, (frame * 7 + face) % 256, np.uint8)
    return {"video_id": vid, "frame_idx": frame, "face_idx": face, "pts_s": frame / 25 if frame >= 0 else None,
            "box": None, "landmarks": None, "face_score": None, "face_detector": None,
            "image": pixels.encode(image, encoding) if ok else None, "encoding": encoding if ok else None,
            "height": shape[0] if ok else None, "width": shape[1] if ok else None,
            "channels": shape[2] if ok else None, "status": status, "error": None if ok else f"{vid}: {status}"}


def picture_cache(kind: str) -> pd.DataFrame:
    if kind == "mouths":
        rows = [picture_row(vid, f, -1 if f < 0 else 0, st, (96, 96, 1), "raw") for vid, frames in MOUTHS
                for f, st in frames]
    else:
        shape = (224, 224, 3) if kind == "frames" else (64, 64, 3)
        rows = [picture_row(vid, f, face, st, shape, "png" if i % 2 else "raw") for i, (vid, frames) in
                enumerate(PICTURES) for f, face, st in frames]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> dict[str, Path]:
    """One shard per cache kind, written and read back as the engine reads it."""
    folder = tmp_path_factory.mktemp("count-cache")
    return {kind: write_table(audio_cache() if kind == "audio" else picture_cache(kind),
                              folder / f"{kind}.parquet", schema_for(kind)) for kind in schemas.KINDS}


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    folder, made = tmp_path_factory.mktemp("count-weights"), {}

    def get(name: str, options: dict) -> Detector:
        key = (name, tuple(sorted(options.items())))
        if key not in made:
            made[key] = create_detector(name, tiny_weights(name, folder), "tiny", options)
        return made[key]
    return get


def outcome(cut_or_count: Callable[[pd.DataFrame], list | int], rows: pd.DataFrame) -> int | str:
    """make_units' or count_units' number of units, or the status of the StatusError raised instead (no units)."""
    try:
        out = cut_or_count(rows)
    except StatusError as exc:
        return exc.status
    return out if isinstance(out, int) else len(out)


@pytest.mark.parametrize("name, kind, options", CASES)
def test_count_units_equals_len_make_units(name, kind, options, detectors, shards):
    detector = detectors(name, options)
    cache = read_table(shards[kind], schema_for(kind))
    light = cache[list(dict.fromkeys(["video_id", *detector.count_columns]))]  # all the count may read
    for vid, rows in cache.groupby("video_id"):
        if all_failed(rows):
            continue  # the engine never asks for units there
        made = outcome(detector.make_units, rows)
        counted = outcome(detector.count_units, light[light["video_id"] == vid])
        assert counted == made or (made in schemas.STATUSES and counted == 0), (vid, counted, made)


@pytest.mark.parametrize("name, kind, options", CASES)
def test_the_engine_counts_what_it_cuts(name, kind, options, detectors, shards):
    detector = detectors(name, options)
    units, _ = cut_units(detector, read_table(shards[kind], schema_for(kind)))
    assert count_cache(detector, [shards[kind]]) == [len(units)] and units


def test_the_cases_reach_the_edges(detectors):
    """The shards above hold units and refusals alike, so the equalities above compare statuses too."""
    def made(name: str, cache: pd.DataFrame) -> dict[str, int | str]:
        detector = detectors(name, {})
        return {vid: outcome(detector.make_units, rows) for vid, rows in cache.groupby("video_id")
                if not all_failed(rows)}

    assert made("lipforensics_rn18_mstcn", picture_cache("mouths")) == {
        "sixty": 2, "faceless_tail": 2, "gap": "error", "late_start": 2, "short": "too_short"}
    audio = made("aasist", audio_cache())  # tiny AASIST: 16000-sample windows, any non-empty clip tiled
    assert audio["empty"] == "too_short" and audio["rate_8k"] == "error" and audio["blip"] == 1
    assert (audio["one_s"], audio["one_s_plus"], audio["long"]) == (1, 2, 10)
    assert made("w2v2_deepfake_v2", audio_cache())["under_1s"] == "too_short"
    assert made("sbi_effb4", picture_cache("faces")) == {"three": 3, "faceless_frame": 2, "two_faces": 3}
