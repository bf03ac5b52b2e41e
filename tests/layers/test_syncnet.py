"""The sync layer (SyncNet v2): upstream's state-dict keys and file format, strict loading, upstream's crop,
windows and MFCC, the batch's shared audio embeddings, the video rule, the offset search on the mini benchmark's
shifted clips, and parity with upstream's own code when a checkout is beside the repository."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from tetrad import mini
from tetrad.aggregate.reduce import av_sync, reduce_units
from tetrad.layers import CheckpointError, create_detector
from tetrad.layers.syncnet import (ARCHS, SyncNet, SyncNetDetector, av_windows, frame_plan, mfcc, pack, sync_crop,
                                   unpack)

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = Path(os.environ.get("TETRAD_UPSTREAM_SYNCNET") or REPO.parent / "upstream" / "syncnet_python")
# Upstream's S(): the first and last layer of each stream (shapes from SyncNetModel.py), 88 tensors without the
# BatchNorm batch counters.
GOLDEN = {"netcnnaud.0.weight": (64, 1, 3, 3), "netcnnaud.18.weight": (512, 256, 5, 4),
          "netcnnlip.0.weight": (96, 3, 5, 7, 7), "netcnnlip.18.weight": (512, 256, 1, 6, 6),
          "netfcaud.0.weight": (512, 512), "netfcaud.3.weight": (1024, 512), "netfclip.1.running_var": (512,),
          "netfclip.3.bias": (1024,)}


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    SyncNetDetector.write_demo_weights("model", path, "tiny", 0)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_file) -> SyncNetDetector:
    return create_detector("syncnet_v2", {"model": tiny_file}, "tiny")


def test_state_dict_keys_are_upstreams():
    state = {k: tuple(v.shape) for k, v in SyncNet(ARCHS["full"]).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    assert len(state) == 88 and {k: state[k] for k in GOLDEN} == GOLDEN
    assert {k.split(".")[0] for k in state} == {"netcnnaud", "netfcaud", "netcnnlip", "netfclip"}


def test_keys_and_shapes_equal_the_upstream_checkout():
    if not (UPSTREAM / "SyncNetModel.py").is_file():
        pytest.skip(f"no syncnet_python checkout at {UPSTREAM} (set TETRAD_UPSTREAM_SYNCNET)")
    from tetrad.parity.common import load_file_module

    theirs = load_file_module(UPSTREAM / "SyncNetModel.py", "upstream_syncnet_model").S().state_dict()
    ours = SyncNet(ARCHS["full"]).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_demo_file_is_a_legacy_plain_state_dict(tiny_file):
    """As the release: PyTorch's pre-zip format, no batch counters, loadable with weights_only=True."""
    assert not tiny_file.read_bytes().startswith(b"PK")
    state = torch.load(tiny_file, weights_only=True)
    assert isinstance(state, dict) and not any(k.endswith("num_batches_tracked") for k in state)


def test_loads_files_with_and_without_batch_counters(tiny, tmp_path):
    full_state = tiny.net.state_dict()
    path = tmp_path / "with_counters.model"
    torch.save(full_state, path)
    other = create_detector("syncnet_v2", {"model": path}, "tiny")
    assert all(torch.equal(a, b) for a, b in zip(other.net.state_dict().values(), full_state.values()))


@pytest.mark.parametrize("damage", ["missing", "partial_counters", "module"])
def test_bad_files_are_refused_naming_the_file(tiny, tmp_path, damage):
    state = dict(tiny.net.state_dict())
    path = tmp_path / f"{damage}.model"
    if damage == "missing":
        state.pop("netfclip.3.bias")
        torch.save(state, path)
        expected = "missing keys \\[netfclip.3.bias\\]"
    elif damage == "partial_counters":
        state.pop("netcnnaud.1.num_batches_tracked")
        torch.save(state, path)
        expected = "num_batches_tracked for 13 of 14"
    else:
        torch.save(tiny.net, path)  # a pickled module: loading it would run code
        expected = "refused"
    with pytest.raises(CheckpointError, match=expected) as err:
        create_detector("syncnet_v2", {"model": path}, "tiny")
    assert str(path) in str(err.value)


def test_crop_is_upstreams_lower_face_box():
    """Half-size s = 20 at (60, 50), crop scale 0.4: pad int(36) px of grey 110, rows y-s .. y+1.8s, columns
    x-1.4s .. x+1.4s of the padded frame, i.e. rows 30..86 and columns 32..88 of the frame."""
    frame = np.zeros((100, 120, 3), np.uint8)
    frame[..., 0] = np.arange(100)[:, None]
    frame[..., 1] = np.arange(120)[None, :]
    crop = sync_crop(frame, 60.0, 50.0, 20.0, 0.4)
    expected = cv2.resize(frame[30:86, 32:88], (224, 224))
    assert crop.shape == (224, 224, 3) and np.array_equal(crop, expected)
    edge = sync_crop(frame, 5.0, 5.0, 20.0, 0.4)  # mostly outside the frame: grey padding
    assert edge[0, 0, 2] == 110


def _rows(pts: list[float], boxes: list) -> pd.DataFrame:
    return pd.DataFrame({"video_id": "v", "frame_idx": range(len(pts)), "pts_s": pts, "box": boxes, "status": "ok"})


def test_frame_plan_resamples_to_25_fps_and_fills_the_track():
    same = frame_plan("v", _rows([i / 25 for i in range(10)], [[0, 0, 10, 10]] * 10), None)
    assert same.frame_idx.tolist() == list(range(10))
    boxes = [[0, 0, 10, 10], None, None, [30, 0, 40, 10]] + [[30, 0, 40, 10]] * 26
    thirty = frame_plan("v", _rows([i / 30 for i in range(30)], boxes), None)
    assert len(thirty.frame_idx) == 25  # 29/30 s of frames: steps 0..24
    assert thirty.frame_idx[:5].tolist() == [0, 1, 2, 4, 5]  # nearest in time to k/25
    assert thirty.boxes[1].tolist() == [10, 0, 20, 10]  # frame 1 interpolated between frames 0 and 3


def test_windows_are_upstreams_count_with_their_shifts():
    crops = np.zeros((40, 224, 224, 3), np.uint8)
    plan = frame_plan("v", _rows([i / 25 for i in range(40)], [[0, 0, 10, 10]] * 40), None)
    wave = np.random.default_rng(0).standard_normal(30 * 640 + 100).astype(np.float32) * 0.1
    units = av_windows("v", crops, mfcc(wave), len(wave), plan, 15)
    assert len(units) == 30 - 5  # min(40 frames, 30 audio frames) - 5, as upstream's lastframe
    first, last = units[0].data, units[-1].data
    assert first.valid.tolist() == [False] * 15 + [True] * 16 and first.first == -15
    assert last.valid.sum() == 15 + 1 and units[-1].t_start_s == pytest.approx(24 / 25)
    assert np.array_equal(units[3].data.mfcc[15], mfcc(wave)[:, 12:32])  # window 3: MFCC steps 4*3 .. 4*3+19


def test_mfcc_is_python_speech_features_on_16_bit_samples():
    import python_speech_features

    wave = np.random.default_rng(1).uniform(-0.5, 0.5, 16000).astype(np.float32)
    pcm = np.round(wave.astype(np.float64) * 32768).astype(np.int16)
    assert np.allclose(mfcc(wave), python_speech_features.mfcc(pcm, 16000).T, atol=1e-5)
    assert mfcc(wave).shape == (13, 99)


def test_shared_audio_embeddings_equal_one_window_at_a_time(tiny):
    """A batch embeds each distinct (video, audio window) once: the distances equal those of single windows."""
    rng = np.random.default_rng(2)
    crops = rng.integers(0, 255, (14, 224, 224, 3), dtype=np.uint8)
    plan = frame_plan("v", _rows([i / 25 for i in range(14)], [[0, 0, 10, 10]] * 14), None)
    wave = rng.standard_normal(14 * 640).astype(np.float32) * 0.1
    units = av_windows("v", crops, mfcc(wave), len(wave), plan, 15)
    x = pack(units)
    frames, audio, index = unpack(x)
    assert len(audio) == len(units) and frames.shape == (len(units), 3, 5, 224, 224)
    with torch.inference_mode():
        together = tiny.score(x)[2]
        alone = torch.cat([tiny.score(pack([u]))[2] for u in units])
    assert torch.allclose(together, alone, atol=1e-5)
    assert torch.equal(frames[0, :, 0], torch.from_numpy(crops[0][..., ::-1].copy()).permute(2, 0, 1).float())


def test_window_and_video_scores_share_one_definition():
    from tetrad.aggregate.reduce import SYNC_TOLERANCE_FRAMES
    from tetrad.layers.syncnet import SYNC_TOLERANCE, sync_logit

    assert SYNC_TOLERANCE == SYNC_TOLERANCE_FRAMES
    d = np.random.default_rng(3).uniform(5, 15, (4, 31))
    for row in d:
        assert float(sync_logit(torch.from_numpy(row))) == pytest.approx(av_sync(row)["logit"])


def test_video_rule_is_upstreams_offset_and_confidence():
    mean = np.full(31, 10.0)
    mean[15 + 4] = 6.0  # best match 4 shifts later: audio window i+4 against video window i -> offset -4
    out = av_sync(mean)
    assert out == {"av_offset": -4, "av_min_dist": 6.0, "av_conf": 4.0, "logit": 0.0}
    mean[15 - 1] = 7.0  # within one frame of sync: the delivered alignment matches well
    assert av_sync(mean)["logit"] == -3.0 and av_sync(mean)["av_offset"] == -4
    units = pd.DataFrame({"video_id": ["a", "a", "b"], "p_fake": 0.5, "logit": 0.0, "compute_s": 0.1,
                          "vector": [mean, mean + 2, None], "status": ["ok", "ok", "no_face"],
                          "error": [None, None, "b: no face"]})
    red = reduce_units(units, "av_offset").set_index("video_id")
    assert red.loc["a", "av_offset"] == -4 and red.loc["a", "n_units"] == 2
    assert red.loc["a", "av_conf"] == pytest.approx(4.0) and red.loc["a", "av_min_dist"] == pytest.approx(7.0)
    assert red.loc["b", "status"] == "no_face"
    assert pd.isna(red.loc["b", "av_offset"]) and np.isnan(red.loc["b", "p_fake"])
    assert str(red["av_offset"].dtype) == "Int64"  # whole frames, and NA where there is no score


def _haar_rows(path: Path) -> pd.DataFrame:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    pts, boxes = [], []
    with av.open(str(path)) as box, contextlib.suppress(av.error.InvalidDataError):  # a cut file: what decodes
        for frame in box.decode(video=0):
            faces = cascade.detectMultiScale(cv2.cvtColor(frame.to_ndarray(format="rgb24"), cv2.COLOR_RGB2GRAY),
                                             1.1, 5, minSize=(40, 40))
            big = max(faces, key=lambda b: b[2] * b[3]) if len(faces) else None
            pts.append(float(frame.time))
            boxes.append(None if big is None else [big[0], big[1], big[0] + big[2], big[1] + big[3]])
    rows = _rows(pts, boxes).assign(video_id=path.stem)
    rows.attrs["source"] = str(path)
    return rows


def _unit_vectors(x: torch.Tensor) -> torch.Tensor:
    x = x - x.mean(dim=1, keepdim=True)
    return x / (x.norm(dim=1, keepdim=True) + 1e-6)


@pytest.mark.parametrize("vid", ["clips/s1_C", *sorted(mini.AUDIO_SHIFTS)])
def test_offset_search_finds_the_known_shift(tiny, mini_root, vid, monkeypatch):
    """The whole path (face track -> 25 fps crops -> MFCC windows -> shifts -> video rule) with an oracle in place
    of SyncNet's learnt embeddings: the darkness of the mouth band of upstream's crop over the 5 frames (the
    mini's mouth opens dark with the speech) and the MFCC energy over the same 0.2 s. The offset found is the
    one the clip was made with: -shift for the shifted clips, and the mouth_retime lag (mouth late = sound
    early = positive offset) for the C clip."""
    mouth = (slice(None), slice(None), slice(None), slice(100, 150), slice(80, 144))
    monkeypatch.setattr(tiny.net, "embed_video", lambda f: _unit_vectors(-f[mouth].mean(dim=(1, 3, 4))))
    monkeypatch.setattr(tiny.net, "embed_audio", lambda a: _unit_vectors(a[:, 0, 0, :].reshape(-1, 5, 4).mean(-1)))
    units = tiny.make_units(_haar_rows(mini_root / f"{vid}.mp4"))
    with torch.inference_mode():
        logit, _, d = tiny.score(tiny.preprocess(units))
    scores = pd.DataFrame({"video_id": vid, "p_fake": torch.sigmoid(logit).numpy(), "logit": logit.numpy(),
                           "vector": list(d.numpy()), "compute_s": 0.0, "status": "ok", "error": None})
    found = int(reduce_units(scores, "av_offset")["av_offset"].iloc[0])
    lag = mini.plan_sources(0)[mini.SHIFT_SOURCE].lag_frames
    expected = -mini.AUDIO_SHIFTS[vid] if vid in mini.AUDIO_SHIFTS else lag
    assert found == expected


@pytest.mark.parametrize("vid", ["clips/s1_C", "faulty/short", "faulty/truncated"])
def test_count_units_counts_what_make_units_cuts(tiny, mini_root, vid):
    """Counted from the frames alone; cut where the sound covers them too (AAC's padding may end the sound a
    frame early: one unit fewer, which the engine's progress total absorbs)."""
    rows = _haar_rows(mini_root / f"{vid}.mp4")
    counted = tiny.count_units(rows[["video_id", *tiny.count_columns]])
    made = len(tiny.make_units(rows))
    assert made > 0 and 0 <= counted - made <= 1, (counted, made)


def test_parity_with_upstream_code(tmp_path):
    if not (UPSTREAM / "SyncNetInstance.py").is_file():
        pytest.skip(f"no syncnet_python checkout at {UPSTREAM} (set TETRAD_UPSTREAM_SYNCNET)")
    from tetrad.parity import syncnet as parity
    from tetrad.parity.common import isolated_import

    weights = tmp_path / "syncnet_v2.model"
    SyncNetDetector.write_demo_weights("model", weights, "full", 0)
    clip = mini.write_smoke_clip(tmp_path / "tone.mp4", 1.2)
    with isolated_import([UPSTREAM], ["SyncNetModel", "SyncNetInstance"]):
        import SyncNetInstance as up

        row, calls = parity.compare(up, "random", weights, "full", clip, tmp_path)
    assert row.ok and row.windows == 25 and len(calls) == 2, row
