"""The `faces` (SBI) and `mouths` (LipForensics) cache rows of one decoded video.

Face detection runs once per frame and is shared by both kinds; every row records the box, the detector's score
and the landmarks it was cut from, so a crop can be recomputed and audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tetrad import schemas
from tetrad.env import resolve_device
from tetrad.faces import Face, create_face_detector, create_landmarker
from tetrad.faces.base import FaceDetector, Landmarker
from tetrad.media import pixels
from tetrad.media.pixels import BOX
from tetrad.media.crops import (fill_missing, mouth_crop, mouth_transforms, sbi_crop, sbi_crop_window,
                                select_faces, to_gray, track_face)
from tetrad.media.decode import Frame
from tetrad.params import ExtractParams, FaceParams, MouthsExtractParams
from tetrad.schemas import StatusError

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class FaceTools:
    detector: FaceDetector  # the SBI face crops'
    landmarker: Landmarker | None
    params: FaceParams
    mouth_detector: FaceDetector | None = None  # the mouth track's boxes; None: `detector`

    @property
    def for_mouths(self) -> FaceDetector:
        return self.mouth_detector or self.detector

    @property
    def label(self) -> str:
        """How the mouth rows were made: the track's detector + the landmarker."""
        return self.for_mouths.name + (f"+{self.landmarker.name}" if self.landmarker else "")


_TOOLS: dict[str, FaceTools] = {}


def face_tools(params: FaceParams, landmarks: bool, weights: Mapping[str, Path] | None = None,
               faces: bool = True) -> FaceTools:
    """The detectors (and landmarker) of one worker process, built on first use (weights load once).

    `faces`: the SBI crops are extracted (`detector`); `landmarks`: the mouths are, their track found by
    `mouth_detector` when one is set. `weights` maps a detector name to its checkpoint file, for detectors that
    need one (tetrad.stages.extract resolves them with the weights manager)."""
    key = repr((params, landmarks, weights, faces))
    if key not in _TOOLS:
        device, weights = str(resolve_device(params.device)), weights or {}
        sbi = (params.detector, params.options)
        track = (params.mouth_detector, params.mouth_options) if params.mouth_detector else sbi
        first = sbi if faces else track
        detector = create_face_detector(*first, device, weights.get(first[0]))
        mouths = None
        if landmarks and track != first:
            mouths = create_face_detector(*track, device, weights.get(track[0]))
        _TOOLS[key] = FaceTools(detector, create_landmarker(params.landmarks) if landmarks else None, params, mouths)
    return _TOOLS[key]


def detect_faces(frames: list[Frame], tools: FaceTools, height: int | None = None,
                 detector: FaceDetector | None = None) -> dict[int, list[Face]]:
    """Faces per frame index found by `detector` (default: the SBI detector), above the confidence threshold,
    highest score first. With `height`, the detector sees the frames downscaled to that many rows (fast mode)
    and the boxes and points are scaled back."""
    if not frames:
        return {}
    images = [rgb for _, _, rgb in frames]
    scale = 1.0
    if height and images and images[0].shape[0] > height:
        scale = height / images[0].shape[0]
        size = (max(1, round(images[0].shape[1] * scale)), height)
        images = [cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) for rgb in images]
    found = (detector or tools.detector).detect(images)
    return {idx: [_scaled(f, 1.0 / scale) for f in faces if f.score >= tools.params.min_score]
            for (idx, _, _), faces in zip(frames, found)}


def _scaled(face: Face, factor: float) -> Face:
    if factor == 1.0:
        return face
    points = None if face.points is None else (face.points * factor).astype(np.float32)
    return Face((face.box * factor).astype(np.float32), face.score, points)


def face_rows(vid: str, frames: list[Frame], faces: dict[int, list[Face]], params: ExtractParams,
              detector: str) -> list[dict[str, Any]]:
    """SBI crops of every kept face; a frame without a face is one `no_face` row (excluded, and counted)."""
    rows = [r for frame in frames for r in frame_face_rows(vid, frame, faces[frame[0]], params, detector)]
    require_a_face(vid, rows, len(frames))
    return rows


def frame_face_rows(vid: str, frame: Frame, faces: list[Face], params: ExtractParams,
                    detector: str) -> list[dict[str, Any]]:
    """One frame's SBI rows: a crop per kept face, or one `no_face` row."""
    idx, pts, rgb = frame
    kept = [f for f in select_faces(faces, params.faces.min_area_ratio) if _inside(f, rgb, vid, idx)]
    if not kept:
        return [_row(vid, idx, -1, pts, None, schemas.NO_FACE, f"{vid}: no face in frame {idx}")]
    fp = params.faces
    if fp.store == "boxes":  # the detect stage cuts the crop again from the video (tetrad.media.recut)
        return [_row(vid, idx, j, pts, None, box=face.box, landmarks=face.points, score=face.score,
                     detector=detector, encoding=BOX, shape=(fp.size, fp.size, 3)) for j, face in enumerate(kept)]
    return [_row(vid, idx, j, pts, sbi_crop(rgb, face.box, fp.size), box=face.box, landmarks=face.points,
                 score=face.score, detector=detector, encoding=params.encoding) for j, face in enumerate(kept)]


def require_a_face(vid: str, rows: list[dict[str, Any]], n_frames: int) -> None:
    if all(r["status"] != schemas.OK for r in rows):
        raise StatusError(schemas.NO_FACE, f"{vid}: no face in any of {n_frames} sampled frames")


def _inside(face: Face, rgb: np.ndarray, vid: str, idx: int) -> bool:
    """A box wholly outside the frame has an empty crop: skip it and keep the frame's other faces (upstream's
    cv2.resize would raise and drop the whole frame)."""
    x0, y0, x1, y1 = sbi_crop_window(face.box, rgb.shape[0], rgb.shape[1])
    if x1 > x0 and y1 > y0:
        return True
    log.info("%s: frame %d: face box %s lies outside the frame; skipped", vid, idx, face.box.tolist())
    return False


def mouth_landmarks(frames: list[Frame], track: list[Face | None], tools: FaceTools) -> list[np.ndarray | None]:
    """68 points of the tracked face of each frame; None where the frame has no face."""
    assert tools.landmarker is not None
    return [None if face is None else tools.landmarker.landmarks(rgb, face.box).astype(np.float64)
            for (_, _, rgb), face in zip(frames, track)]


def mouth_rows(vid: str, frames: list[Frame], faces: dict[int, list[Face]], tools: FaceTools,
               mean_face: np.ndarray, params: ExtractParams) -> list[dict[str, Any]]:
    """Aligned greyscale mouth crops of every frame, or a StatusError (documented in README, "Mouth crops").
    All frames in memory: the plan-style path of `make bench` and the parity check; extract streams instead."""
    mp = params.mouths
    require_window(vid, len(frames), mp.window)
    track = track_face([faces[idx] for idx, _, _ in frames])
    landmarks = filled_landmarks(vid, [f[0] for f in frames], mouth_landmarks(frames, track, tools), mp)
    tforms = mouth_transforms(landmarks, mean_face, mp.window)
    return [mouth_row(vid, frame, mouth_crop(frame[2], tform, points, mp.aligned_size, mp.crop_size), face,
                      points, tools.label, params.encoding)
            for frame, tform, points, face in zip(frames, tforms, landmarks, track)]


def require_window(vid: str, n_frames: int, window: int) -> None:
    if n_frames < window:
        raise StatusError(schemas.TOO_SHORT, f"{vid}: {n_frames} frames, fewer than the {window}-frame "
                                              "landmark smoothing window")


def filled_landmarks(vid: str, frame_ids: list[int], raw: list[np.ndarray | None],
                     mp: MouthsExtractParams) -> np.ndarray:
    """(N, 68, 2): the missing-face policy applied, then gaps interpolated between detected neighbours."""
    missing = [frame_ids[i] for i, lm in enumerate(raw) if lm is None]
    _check_missing(vid, missing, len(raw), mp.missing, mp.max_missing)
    if missing:
        log.info("%s: landmarks interpolated in %d of %d frames (first: frame %d)", vid, len(missing), len(raw),
                 missing[0])
    return fill_missing(raw)


def mouth_row(vid: str, frame: Frame, crop: np.ndarray, face: Face | None, points: np.ndarray, label: str,
              encoding: str) -> dict[str, Any]:
    """A mouths cache row: the greyscale crop, the landmarks it was aligned with, the face box where detected."""
    idx, pts, _ = frame
    return _row(vid, idx, 0, pts, to_gray(crop)[..., None], box=None if face is None else face.box,
                landmarks=points, score=None if face is None else face.score, detector=label, encoding=encoding)


def _check_missing(vid: str, missing: list[int], n: int, policy: str, max_share: float) -> None:
    if not missing:
        return
    if len(missing) == n:
        raise StatusError(schemas.NO_FACE, f"{vid}: no face in any of {n} frames")
    if policy == "abort":  # upstream: one frame without landmarks stops the whole video
        raise StatusError(schemas.NO_FACE, f"{vid}: no face in frame {missing[0]} ({len(missing)} of {n} frames; "
                                            "extract.mouths.missing=abort)")
    if len(missing) > max_share * n:
        raise StatusError(schemas.NO_FACE, f"{vid}: no face in {len(missing)} of {n} frames "
                                            f"(> extract.mouths.max_missing={max_share})")


def _row(vid: str, idx: int, face_idx: int, pts: float, image: np.ndarray | None, status: str = schemas.OK,
         error: str | None = None, box: np.ndarray | None = None, landmarks: np.ndarray | None = None,
         score: float | None = None, detector: str | None = None, encoding: str = "raw",
         shape: tuple[int, int, int] | None = None) -> dict[str, Any]:
    h, w, c = image.shape if image is not None else shape or (None, None, None)
    return {"video_id": vid, "frame_idx": idx, "face_idx": face_idx, "pts_s": pts,
            "box": None if box is None else np.asarray(box, np.float32).tolist(),
            "landmarks": None if landmarks is None else np.asarray(landmarks, np.float32).reshape(-1).tolist(),
            "face_score": score, "face_detector": detector,
            "image": None if image is None else pixels.encode(image, encoding),
            "encoding": None if image is None and shape is None else encoding, "height": h, "width": w, "channels": c, "status": status, "error": error}
