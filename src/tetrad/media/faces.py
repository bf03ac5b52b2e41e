"""The `faces` (SBI) and `mouths` (LipForensics) cache rows of one decoded video.

Face detection runs once per frame and is shared by both kinds; every row records the box, the detector's score
and the landmarks it was cut from, so a crop can be recomputed and audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from tetrad import schemas
from tetrad.env import resolve_device
from tetrad.faces import Face, create_face_detector, create_landmarker
from tetrad.faces.base import FaceDetector, Landmarker
from tetrad.media.crops import fill_missing, mouth_crops, sbi_crop, sbi_crop_window, select_faces, to_gray
from tetrad.media.crops import track_face
from tetrad.params import ExtractParams, FaceParams
from tetrad.schemas import StatusError

log = logging.getLogger(__name__)

Frame = tuple[int, float, np.ndarray]  # (index, pts_s, RGB uint8 HWC)


@dataclass(frozen=True)
class FaceTools:
    detector: FaceDetector
    landmarker: Landmarker | None
    params: FaceParams

    @property
    def label(self) -> str:
        return self.detector.name + (f"+{self.landmarker.name}" if self.landmarker else "")


_TOOLS: dict[str, FaceTools] = {}


def face_tools(params: FaceParams, landmarks: bool) -> FaceTools:
    """One detector (and landmarker) per worker process, built on first use (weights load once)."""
    key = repr((params, landmarks))
    if key not in _TOOLS:
        device = str(resolve_device(params.device))
        detector = create_face_detector(params.detector, params.options, device)
        _TOOLS[key] = FaceTools(detector, create_landmarker(params.landmarks) if landmarks else None, params)
    return _TOOLS[key]


def detect_faces(frames: list[Frame], tools: FaceTools) -> dict[int, list[Face]]:
    """Faces per frame index, above the confidence threshold, highest score first."""
    found = tools.detector.detect([rgb for _, _, rgb in frames])
    return {idx: [f for f in faces if f.score >= tools.params.min_score]
            for (idx, _, _), faces in zip(frames, found)}


def face_rows(vid: str, frames: list[Frame], faces: dict[int, list[Face]], params: ExtractParams,
              detector: str) -> list[dict[str, Any]]:
    """SBI crops of every kept face; a frame without a face is one `no_face` row (excluded, and counted)."""
    rows = []
    for idx, pts, rgb in frames:
        kept = [f for f in select_faces(faces[idx], params.faces.min_area_ratio) if _inside(f, rgb, vid, idx)]
        if not kept:
            rows.append(_row(vid, idx, -1, pts, None, schemas.NO_FACE, f"{vid}: no face in frame {idx}"))
        for j, face in enumerate(kept):
            crop = sbi_crop(rgb, face.box, params.faces.size)
            rows.append(_row(vid, idx, j, pts, crop, box=face.box, landmarks=face.points, score=face.score,
                             detector=detector))
    if all(r["status"] != schemas.OK for r in rows):
        raise StatusError(schemas.NO_FACE, f"{vid}: no face in any of {len(frames)} sampled frames")
    return rows


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
    """Aligned greyscale mouth crops of every frame, or a StatusError (documented in README, "Mouth crops")."""
    mp = params.mouths
    if len(frames) < mp.window:
        raise StatusError(schemas.TOO_SHORT, f"{vid}: {len(frames)} frames, fewer than the {mp.window}-frame "
                                              "landmark smoothing window")
    track = track_face([faces[idx] for idx, _, _ in frames])
    raw = mouth_landmarks(frames, track, tools)
    missing = [frames[i][0] for i, lm in enumerate(raw) if lm is None]
    _check_missing(vid, missing, len(frames), mp.missing, mp.max_missing)
    landmarks = fill_missing(raw)
    crops = mouth_crops([rgb for _, _, rgb in frames], landmarks, mean_face, mp.window, mp.aligned_size,
                        mp.crop_size)
    rows = []
    for i, ((idx, pts, _), crop, face) in enumerate(zip(frames, crops, track)):
        rows.append(_row(vid, idx, 0, pts, to_gray(crop)[..., None], box=None if face is None else face.box,
                         landmarks=landmarks[i], score=None if face is None else face.score, detector=tools.label))
    if missing:
        log.info("%s: landmarks interpolated in %d of %d frames (first: frame %d)", vid, len(missing), len(frames),
                 missing[0])
    return rows


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
         score: float | None = None, detector: str | None = None) -> dict[str, Any]:
    h, w, c = image.shape if image is not None else (None, None, None)
    return {"video_id": vid, "frame_idx": idx, "face_idx": face_idx, "pts_s": pts,
            "box": None if box is None else np.asarray(box, np.float32).tolist(),
            "landmarks": None if landmarks is None else np.asarray(landmarks, np.float32).reshape(-1).tolist(),
            "face_score": score, "face_detector": detector,
            "image": None if image is None else np.ascontiguousarray(image).tobytes(),
            "height": h, "width": w, "channels": c, "status": status, "error": error}
