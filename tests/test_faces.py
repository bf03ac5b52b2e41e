"""Face and mouth extraction on awkward videos, through to the SBI and LipForensics video scores.

Each case of the issue's "bad input" list gets a documented status or score, never a crash and never a made-up
number: no face anywhere, a face in some frames only, two faces, a face at the frame edge, 10 frames (shorter
than the smoothing window), 24 frames (no full clip), and faceless frames mid-video (landmark failure).
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from unittest import mock

import av
import numpy as np
import pandas as pd
import pytest
import skimage.data
from PIL import Image
from tqdm import tqdm

from tetrad import schemas
from tetrad.aggregate.reduce import reduce_units
from tetrad.stages.detect import cut_units, finalise, score_units
from tetrad.stages.extract import Assets, extract_video
from tetrad.layers import create_detector
from tetrad.media import pixels
from tetrad.media.crops import box_iou, sbi_crop_window
from tetrad.media.decode import decode
from tetrad.media.faces import detect_faces, face_tools, mouth_rows
from tetrad.media.pictures import PicturePass
from tetrad.media.recut import recut_faces
from tetrad.media.meanface import standin_mean_face
from tetrad.params import ExtractParams, FaceParams, FacesExtractParams, MouthsExtractParams
from tetrad.schemas import StatusError
from tests.layers.test_registry import tiny_weights

SIDE = 192
# MTCNN for every box: these tests are about the crops and statuses, and MTCNN needs no checkpoint
PARAMS = ExtractParams(kinds=["faces", "mouths"], faces=FacesExtractParams(n_frames=8),
                       face=FaceParams(detector="mtcnn", mouth_detector=""))


def _face(scale: float = 1.0) -> np.ndarray:
    """The astronaut's head and shoulders, about 100 px of face at scale 1."""
    crop = skimage.data.astronaut()[20:260, 120:330]
    w, h = int(crop.shape[1] * 0.8 * scale), int(crop.shape[0] * 0.8 * scale)
    return np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))


def _canvas(width: int = SIDE) -> np.ndarray:
    return np.full((SIDE, width, 3), 90, np.uint8)


def _paste(frame: np.ndarray, face: np.ndarray, x: int, y: int) -> np.ndarray:
    out = frame.copy()
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + face.shape[1], out.shape[1]), min(y + face.shape[0], out.shape[0])
    out[y0:y1, x0:x1] = face[y0 - y:y1 - y, x0 - x:x1 - x]
    return out


def _write(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), mode="w") as box:
        stream = box.add_stream("libx264", rate=25, width=frames[0].shape[1], height=frames[0].shape[0],
                                pix_fmt="yuv420p")
        stream.options = {"crf": "12"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            box.mux(stream.encode(frame))
        box.mux(stream.encode(None))
    return path


def _moving(n: int, blank: range = range(0)) -> list[np.ndarray]:
    face = _face()
    return [_canvas() if i in blank else _paste(_canvas(), face, 10 + i % 5, 4) for i in range(n)]


CASES = {
    "face": lambda: _moving(30),
    "no_face": lambda: [_canvas() + np.uint8(i) for i in range(30)],
    "some_frames": lambda: _moving(30, blank=range(0, 16)),  # SBI's first 4 sampled frames have no face
    "two_faces": lambda: [_paste(_paste(_canvas(320), _face(), 5, 4), _face(0.8), 175, 20)] * 30,
    "edge": lambda: [_paste(_canvas(), _face(), -40, 4)] * 30,
    "short10": lambda: _moving(10),
    "short24": lambda: _moving(24),
    "gap_mid": lambda: _moving(30, blank=range(12, 15)),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("faces")
    return {name: _write(root / f"{name}.mp4", make()) for name, make in CASES.items()}


@pytest.fixture(scope="module")
def mean_face() -> np.ndarray:
    return standin_mean_face()


def _extract(path: Path, mean_face: np.ndarray, params: ExtractParams = PARAMS) -> dict[str, pd.DataFrame]:
    row = {"video_id": path.stem, "path": str(path), "status": schemas.OK, "error": None}
    out = extract_video(row, params.kinds, params, Assets(mean_face, "test"))
    return {k: pd.DataFrame(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def caches(videos, mean_face) -> dict[str, dict[str, pd.DataFrame]]:
    return {name: _extract(path, mean_face) for name, path in videos.items()}


def _status(table: pd.DataFrame) -> str:
    return "ok" if (table["status"] == "ok").any() else str(table["status"].iloc[0])


@pytest.mark.parametrize("name, faces, mouths", [
    ("face", "ok", "ok"), ("no_face", "no_face", "no_face"), ("some_frames", "ok", "no_face"),
    ("two_faces", "ok", "ok"), ("edge", "ok", "ok"), ("short10", "ok", "too_short"), ("short24", "ok", "ok"),
    ("gap_mid", "ok", "ok"),
])
def test_cache_status(caches, name, faces, mouths):
    assert _status(caches[name]["faces"]) == faces
    assert _status(caches[name]["mouths"]) == mouths
    for table in caches[name].values():
        assert table.loc[table["status"] != "ok", "error"].str.contains(name).all()


def test_faces_rows_record_box_score_and_crop(caches):
    faces = caches["face"]["faces"]
    assert (faces["status"] == "ok").all() and len(faces) == 8
    row = faces.iloc[0]
    assert len(row["box"]) == 4 and len(row["landmarks"]) == 10 and row["face_score"] >= 0.7
    assert (row["height"], row["width"], row["channels"]) == (380, 380, 3) and row["face_detector"] == "mtcnn"


def test_two_faces_are_both_kept_and_edge_crop_is_clipped(caches):
    two = caches["two_faces"]["faces"]
    assert set(two.groupby("frame_idx").size()) == {2}  # the smaller face has more than half the area
    edge = caches["edge"]["faces"].iloc[0]
    x0, y0, x1, y1 = edge["box"]
    assert x0 - (x1 - x0) / 8 < 0  # the margin leaves the frame: the crop window is clipped, still 380x380
    assert sbi_crop_window(edge["box"], SIDE, SIDE)[0] == 0 and edge["height"] == 380


def test_faceless_frames_are_rows_not_gaps(caches):
    faces = caches["some_frames"]["faces"]
    blank = faces[faces["status"] == "no_face"]
    assert len(blank) == 4 and (blank["frame_idx"] < 16).all() and (faces["status"] == "ok").sum() == 4
    mouths = caches["some_frames"]["mouths"]  # 16 of 30 frames faceless > max_missing 0.5
    assert "max_missing" in mouths["error"].iloc[0]


def test_mouth_gap_is_interpolated_or_aborts(videos, caches, mean_face):
    mouths = caches["gap_mid"]["mouths"]
    assert len(mouths) == 30 and mouths["face_score"].isna().sum() == 3
    assert (mouths["height"] == 96).all() and (mouths["channels"] == 1).all()
    strict = ExtractParams(kinds=["mouths"], mouths=MouthsExtractParams(missing="abort"))
    aborted = _extract(videos["gap_mid"], mean_face, strict)["mouths"]
    assert aborted["status"].tolist() == ["no_face"] and "frame 12" in aborted["error"].iloc[0]


@pytest.fixture(scope="module")
def scored(caches, videos, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Video-level SBI and LipForensics results (tiny random models) for every case; the SBI crops are cut
    again from the videos (the faces cache stores boxes by default)."""
    root = tmp_path_factory.mktemp("tiny")
    out = {}
    for name, kind in (("sbi_effb4", "faces"), ("lipforensics_rn18_mstcn", "mouths")):
        detector = create_detector(name, tiny_weights(name, root), "tiny")
        cache = pd.concat([c[kind] for c in caches.values()], ignore_index=True)
        units, failed = cut_units(detector, cache, {name: str(path) for name, path in videos.items()})
        rows = failed + score_units(detector, units, 8, tqdm(disable=True))
        table = finalise(rows, list(caches), name)
        out[name] = reduce_units(table, detector.spec.reduce).set_index("video_id")
    return out


@pytest.mark.parametrize("name, sbi, lip", [
    ("face", "ok", "ok"), ("no_face", "no_face", "no_face"), ("some_frames", "ok", "no_face"),
    ("two_faces", "ok", "ok"), ("edge", "ok", "ok"), ("short10", "ok", "too_short"),
    ("short24", "ok", "too_short"), ("gap_mid", "ok", "ok"),
])
def test_video_status_and_score(scored, name, sbi, lip):
    for detector, expected in (("sbi_effb4", sbi), ("lipforensics_rn18_mstcn", lip)):
        video = scored[detector].loc[name]
        assert video["status"] == expected, (detector, video["error"])
        assert np.isfinite(video["p_fake"]) == (expected == "ok")  # a failure has no score, never 0.5


def test_sbi_counts_excluded_frames_and_lip_counts_clips(scored):
    sbi, lip = scored["sbi_effb4"], scored["lipforensics_rn18_mstcn"]
    assert sbi.loc["some_frames", "n_skipped"] == 4 and sbi.loc["some_frames", "n_units"] == 4
    assert sbi.loc["two_faces", "n_units"] == 16
    assert lip.loc["face", "n_units"] == 1 and lip.loc["gap_mid", "n_units"] == 1


# ------------------------------------------------------------------ streaming, stored boxes, fast mode (issue 11)

RAW_CROPS = dataclasses.replace(PARAMS, faces=FacesExtractParams(n_frames=8, store="crops"), encoding="raw")


def _images(table: pd.DataFrame) -> list[bytes]:
    ok = table[table["status"] == "ok"].sort_values(["frame_idx", "face_idx"])
    return [pixels.decode(b, (h, w, c), e).tobytes()
            for b, h, w, c, e in zip(ok["image"], ok["height"], ok["width"], ok["channels"], ok["encoding"])]


@pytest.mark.parametrize("name", ["face", "two_faces", "edge"])
def test_faces_recut_from_the_video_equal_the_stored_crops(videos, caches, mean_face, name):
    stored = _extract(videos[name], mean_face, RAW_CROPS)["faces"]
    boxes = caches[name]["faces"]
    assert boxes.loc[boxes["status"] == "ok", "image"].isna().all()  # the default cache holds no pixels
    assert _images(recut_faces(boxes, videos[name], name)) == _images(stored)


def test_recut_refuses_a_missing_or_changed_video(videos, caches, tmp_path):
    boxes = caches["face"]["faces"]
    with pytest.raises(StatusError, match="missing"):
        recut_faces(boxes, tmp_path / "gone.mp4", "face")
    with pytest.raises(StatusError, match="fewer frames"):
        recut_faces(boxes, videos["short10"], "face")


def test_streamed_mouths_equal_the_whole_video_path(videos, caches, mean_face):
    """Extract's two streaming passes give the crops of the in-memory path (all frames held, as the bench's plan)."""
    path = videos["gap_mid"]
    frames = decode(path, None, lambda n: list(range(n))).frames
    tools = face_tools(PARAMS.face, True)
    held = mouth_rows("gap_mid", frames, detect_faces(frames, tools), tools, mean_face, PARAMS)
    streamed = caches["gap_mid"]["mouths"]
    assert _images(pd.DataFrame(held)) == _images(streamed)
    assert np.array_equal(np.stack(pd.DataFrame(held)["landmarks"]), np.stack(streamed["landmarks"]))


def test_a_worker_holds_one_detector_batch_of_frames(videos, mean_face):
    small = dataclasses.replace(PARAMS, face=dataclasses.replace(PARAMS.face, batch_megapixels=0.1))
    seen = []

    class Watched(PicturePass):
        def flush(self) -> None:
            seen.append(len(self._batch))
            super().flush()

    row = {"video_id": "face", "path": str(videos["face"]), "status": "ok", "error": None}
    with mock.patch("tetrad.stages.extract.PicturePass", Watched):
        out = extract_video(row, small.kinds, small, Assets(mean_face, "test"))
    assert max(seen) == 2 and len(out["mouths"]) == 30  # 0.1 MP = 2.7 frames of 192x192: batches of 2


def test_fast_mode_detects_a_grid_and_stays_close(videos, caches, mean_face):
    fast = dataclasses.replace(PARAMS, face=dataclasses.replace(PARAMS.face, mode="fast", fast_stride=5,
                                                                 fast_height=128))
    out = _extract(videos["face"], mean_face, fast)
    mouths, exact = out["mouths"], caches["face"]["mouths"]
    assert (mouths["status"] == "ok").all() and len(mouths) == len(exact) == 30
    assert mouths["face_score"].notna().sum() == 7  # frames 0, 5, ..., 25 and the last one
    diff = np.abs(np.stack([np.frombuffer(b, np.uint8) for b in _images(mouths)]).astype(int)
                  - np.stack([np.frombuffer(b, np.uint8) for b in _images(exact)]))
    assert 0 < diff.mean() < 12  # not the exact crops, but the same mouth
    ious = [box_iou(np.array(a), np.array(b)) for a, b in zip(out["faces"]["box"], caches["face"]["faces"]["box"])]
    assert min(ious) > 0.8


def test_a_face_detector_failure_fails_the_face_kinds_of_that_video_only(videos, mean_face):
    params = dataclasses.replace(PARAMS, kinds=["frames", "faces", "mouths"])
    row = {"video_id": "face", "path": str(videos["face"]), "status": "ok", "error": None}
    with mock.patch("tetrad.media.pictures.detect_faces", side_effect=RuntimeError("CUDA out of memory")):
        out = extract_video(row, params.kinds, params, Assets(mean_face, "test"))
    assert [r["status"] for r in out["faces"]] == [r["status"] for r in out["mouths"]] == ["error"]
    assert "out of memory" in out["mouths"][0]["error"] and out["faces"][0]["video_id"] == "face"
    assert {r["status"] for r in out["frames"]} == {"ok"}


def test_sbi_frames_and_the_mouth_track_go_to_their_own_detectors(videos, mean_face):
    """With `mouth_detector` set, the SBI frames go to `detector` only and every mouth frame to the other one."""
    from tetrad.media.faces import FaceTools

    class Seen:
        def __init__(self, name: str, inner) -> None:
            self.name, self.inner, self.frames = name, inner, []

        def detect(self, frames):
            self.frames += [f.shape for f in frames]
            return self.inner.detect(frames)

    base = face_tools(PARAMS.face, True)
    sbi, track = Seen("sbi_stub", base.detector), Seen("track_stub", base.detector)
    tools = FaceTools(sbi, base.landmarker, PARAMS.face, track)
    picks = {"faces": [0, 10, 20], "mouths": list(range(30))}
    first = PicturePass("face", picks, PARAMS, tools)
    for frame in decode(videos["face"], None, lambda n: list(range(n))).frames:
        first(frame)
    faces = first.rows_of("faces")
    assert len(sbi.frames) == 3 and len(track.frames) == 30
    assert {r["face_detector"] for r in faces if r["status"] == "ok"} == {"sbi_stub"}
    assert tools.label == "track_stub+dlib68"
