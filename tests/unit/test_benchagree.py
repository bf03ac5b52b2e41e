"""The bench's agreement maths (tetrad.benchagree) on small hand-made caches and score tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tetrad import schemas
from tetrad.benchagree import (
    GpuBusy,
    auc_delta,
    face_agreement,
    layer_auc,
    logit_delta,
    mouth_agreement,
    p_fake_delta,
    raw_equivalent_bytes,
    with_precision,
)
from tetrad.media import pixels
from tetrad.params import LayerParams, Params


def _row(frame: int, face: int = 0, image: np.ndarray | None = None, encoding: str | None = None,
         box: list[float] | None = None, status: str = schemas.OK, vid: str = "v") -> dict:
    h, w, c = image.shape if image is not None else (380, 380, 3) if box is not None else (None, None, None)
    return {"video_id": vid, "frame_idx": frame, "face_idx": face, "pts_s": frame / 25, "box": box,
            "landmarks": None, "face_score": None, "face_detector": None,
            "image": None if image is None else pixels.encode(image, encoding), "encoding": encoding,
            "height": h, "width": w, "channels": c, "status": status, "error": None}


def _cache(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=schemas.FRAMES.names)


def _grey(values: np.ndarray) -> np.ndarray:
    return values.astype(np.uint8).reshape(4, 4, 1)


def test_mouth_agreement_counts_every_pixel_of_the_frames_ok_in_both():
    base = np.full(16, 100)
    plus_two = base + 2  # every pixel 2 grey levels away: not equal, still within ±2
    one_off = base.copy()
    one_off[5], one_off[6] = 90, 103  # one pixel 10 levels away, one 3 (just outside ±2)
    # exact stored as PNG, fast as raw: each row is decoded with its own encoding
    exact = _cache([_row(0, image=_grey(base), encoding="png"), _row(1, image=_grey(base), encoding="png"),
                    _row(2, image=_grey(base), encoding="png"), _row(3, image=_grey(base), encoding="png")])
    fast = _cache([_row(0, image=_grey(base), encoding="raw"), _row(1, image=_grey(plus_two), encoding="raw"),
                   _row(2, image=_grey(one_off), encoding="raw"), _row(3, face=-1, status=schemas.NO_FACE)])
    out = mouth_agreement(exact, fast)
    assert out["frames"] == 3 and out["frames_exact_only"] == 1 and out["frames_fast_only"] == 0
    assert out["mean_abs_diff"] == pytest.approx((16 * 2 + 10 + 3) / 48)
    assert out["share_equal"] == pytest.approx(30 / 48)  # frame 0, and 14 pixels of frame 2
    assert out["share_within_2"] == pytest.approx(46 / 48)  # all but the pixels 10 and 3 levels away
    assert out["max_abs_diff"] == 10


def test_mouth_agreement_of_caches_with_nothing_in_common_is_empty_not_zero():
    exact = _cache([_row(0, image=_grey(np.zeros(16)), encoding="raw")])
    fast = _cache([_row(0, face=-1, status=schemas.NO_FACE)])
    out = mouth_agreement(exact, fast)
    assert out["frames"] == 0 and out["mean_abs_diff"] is None and out["frames_exact_only"] == 1


def test_face_agreement_ious_and_frames_whose_face_count_differs():
    exact = _cache([_row(0, 0, box=[0, 0, 10, 10]), _row(0, 1, box=[20, 20, 30, 30]),
                    _row(1, 0, box=[0, 0, 10, 10]), _row(2, -1, status=schemas.NO_FACE),
                    _row(4, 0, box=[0, 0, 10, 10], vid="w")])
    fast = _cache([_row(0, 0, box=[0, 0, 10, 5]),  # half the exact box: IoU 0.5
                   _row(1, 0, box=[0, 0, 10, 10]), _row(2, 0, box=[5, 5, 15, 15]),
                   _row(-1, -1, status=schemas.DECODE_ERROR, vid="w")])  # a whole video failed: no frame
    out = face_agreement(exact, fast)
    assert out["faces"] == 2  # (0, 0) and (1, 0): face (0, 1) is in exact only, frame 2 has no exact face
    assert out["iou_mean"] == pytest.approx(0.75) and out["iou_min"] == pytest.approx(0.5)
    # frames v/0 (2 faces vs 1), v/2 (0 vs 1) and w/4 (1 vs none: its video failed) differ; v/1 does not
    assert out["frames"] == 4 and out["frames_face_count_differs"] == 3


def test_raw_equivalent_counts_ok_rows_at_their_declared_size():
    faces = _cache([_row(0, 0, box=[0, 0, 10, 10], encoding=pixels.BOX), _row(0, 1, box=[20, 20, 30, 30],
                    encoding=pixels.BOX), _row(1, -1, status=schemas.NO_FACE)])
    assert raw_equivalent_bytes(faces, "faces") == 2 * 380 * 380 * 3
    mouths = _cache([_row(0, image=np.zeros((96, 96, 1), np.uint8), encoding="png")])
    assert raw_equivalent_bytes(mouths, "mouths") == 96 * 96
    audio = pd.DataFrame([{"video_id": "a", "sample_rate": 16000, "num_samples": 100, "waveform": np.zeros(100),
                           "status": schemas.OK, "error": None},
                          {"video_id": "b", "sample_rate": 0, "num_samples": 0, "waveform": None,
                           "status": schemas.NO_AUDIO, "error": "no audio"}])
    assert raw_equivalent_bytes(audio, "audio") == 400


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _scores(rows: list[tuple[str, int, float | None]]) -> pd.DataFrame:
    """(video_id, unit_idx, logit) rows; a None logit is a failed video's status row."""
    out = []
    for vid, unit, logit in rows:
        ok = logit is not None
        out.append({"video_id": vid, "unit_idx": unit if ok else -1, "frame_idx": unit if ok else None,
                    "detector": "d", "logit": logit, "p_fake": 1 / (1 + np.exp(-logit)) if ok else None,
                    "upstream_score": None, "t_start_s": None, "t_end_s": None, "compute_s": 0.1 if ok else None,
                    "status": schemas.OK if ok else schemas.NO_FACE, "error": None if ok else "no face"})
    return pd.DataFrame(out, columns=schemas.SCORES.names)


def test_score_deltas_align_units_and_skip_videos_failed_in_both():
    a = _scores([("v1", 0, 0.0), ("v1", 1, 2.0), ("v2", 0, 1.0), ("v3", -1, None), ("v4", 0, 0.5)])
    b = _scores([("v1", 0, 0.5), ("v1", 1, 2.0), ("v2", 0, 1.0), ("v3", -1, None), ("v4", -1, None)])
    logits = logit_delta(a, b)
    assert logits == {"units": 3, "max_abs_delta_logit": pytest.approx(0.5)}
    p = p_fake_delta(a, b, "mean_prob")
    expected = abs((_sigmoid(0.0) + _sigmoid(2.0)) / 2 - (_sigmoid(0.5) + _sigmoid(2.0)) / 2)
    assert p["max_abs_delta_p_fake"] == pytest.approx(expected)
    assert p["videos"] == 2 and p["videos_scored_once"] == 1  # v3 failed in both; v4 scored by a only


def _manifest(rows: list[tuple[str, int | None, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"video_id": v, "audio_label": 0, "video_label": y, "status": s} for v, y, s in rows])


def test_layer_auc_uses_the_layers_label_and_ok_videos_only():
    manifest = _manifest([("a", 0, "ok"), ("b", 0, "ok"), ("c", 1, "ok"), ("d", 1, "ok"),
                          ("e", 1, schemas.DECODE_ERROR), ("f", 0, "ok"), ("g", None, "ok")])
    scores = _scores([("a", 0, _logit(0.1)), ("b", 0, _logit(0.6)), ("c", 0, _logit(0.4)), ("d", 0, _logit(0.9)),
                      ("e", 0, _logit(0.99)), ("f", -1, None), ("g", 0, _logit(0.5))])
    # positives c (0.4), d (0.9) vs negatives a (0.1), b (0.6): 3 of 4 pairs ordered; e is not ok in the
    # manifest, f has no score, g has no label
    assert layer_auc(scores, manifest, "visual", "mean_prob") == {"auc": pytest.approx(0.75), "n": 4}
    assert layer_auc(scores, manifest, "audio", "mean_prob")["auc"] is None  # audio_label: one class only
    better = _scores([("a", 0, _logit(0.1)), ("b", 0, _logit(0.2)), ("c", 0, _logit(0.4)), ("d", 0, _logit(0.9))])
    delta = auc_delta(manifest, "visual", "mean_prob", scores, better)
    assert delta["auc_other"] == pytest.approx(1.0) and delta["delta_auc"] == pytest.approx(0.25)
    assert delta["n_base"] == delta["n_other"] == 4


def test_with_precision_changes_one_layer_only():
    params = Params(layer={"audio": LayerParams(detector="aasist"), "lip": LayerParams(detector="lip")},
                    layer_names=["audio", "lip"])
    out = with_precision(params, "lip", "bf16")
    assert out.layer["lip"].precision == "bf16" and out.layer["audio"].precision == "fp32"
    assert params.layer["lip"].precision == "fp32" and out.layer["lip"].detector == "lip"


def test_gpu_busy_averages_nvml_samples_and_says_why_when_it_cannot(monkeypatch):
    import sys
    import time
    import types

    import torch

    with GpuBusy() as busy:  # this machine: no GPU
        pass
    assert busy.percent is None and busy.why == "no GPU"

    readings = iter([40.0, 60.0, 80.0] + [80.0] * 1000)
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=next(readings)))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    with GpuBusy(interval=0.01) as busy:
        while len(busy.samples) < 3:
            time.sleep(0.005)
    assert busy.samples[:3] == [40.0, 60.0, 80.0] and 60.0 <= busy.percent <= 80.0 and busy.why is None

    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed: an ImportError
    with GpuBusy() as busy:
        pass
    assert busy.percent is None and "nvidia-ml-py" in busy.why
