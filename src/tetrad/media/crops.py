"""Face and mouth crops, faithful to the upstream protocols (the two repositories below), as pure functions.

SBI (mapooon/SelfBlendedImages@9fe4efe, `src/inference/preprocess.py`): every face whose box area is at least half
the largest in its frame; test-phase margin of 1/8 of the box size on each side, truncated toward zero, the far
edge +1, clipped to the frame; resized to 380x380 with bilinear interpolation (cv2.INTER_LINEAR).

LipForensics (ahaliassos/LipForensics@d0bf555, `preprocessing/crop_mouths.py`): 68 landmarks per frame, averaged
over a forward window of 12 frames (frame i and the next 11); a similarity transform maps the smoothed points
33/36/39/42/45 onto the same points of the LRW mean face; the frame is warped into 256x256 (bilinear, zero fill,
scaled to [0, 255] and truncated to uint8); the mouth crop is 96x96 around the mean of the frame's own (raw)
points 48-67 after the transform, its centre clamped into the image; the last 11 frames reuse the last transform.
Greyscale is PIL's `convert("L")` (ITU-R 601-2 luma), as upstream's clip loader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image
from skimage.transform import SimilarityTransform, warp

if TYPE_CHECKING:  # a type only: the detect stage re-cuts face crops without loading the face detectors
    from tetrad.faces.base import Face

STABLE_POINTS = [33, 36, 39, 42, 45]  # nose tip and eye corners
MOUTH = slice(48, 68)


def select_faces(faces: Sequence[Face], min_area_ratio: float = 0.5) -> list[Face]:
    """SBI's rule: keep every face with (unclipped) box area >= ratio x the largest area in the frame."""
    if not faces:
        return []
    largest = max(f.area for f in faces)
    return [f for f in faces if f.area >= largest * min_area_ratio]


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class FaceTrack:
    """One face per frame for the mouth track, fed frame by frame: the largest face where the track starts (or
    is lost), then the face overlapping the previous pick most, so two similar faces swapping size never mix
    their landmarks."""

    def __init__(self, min_iou: float = 0.3) -> None:
        self.min_iou = min_iou
        self.last: Face | None = None

    def step(self, faces: Sequence[Face]) -> Face | None:
        if not faces:
            return None
        last = self.last
        best = max(faces, key=lambda f: box_iou(f.box, last.box)) if last is not None else None
        if best is None or box_iou(best.box, last.box) < self.min_iou:
            best = max(faces, key=lambda f: f.area)
        self.last = best
        return best


def track_face(faces_per_frame: Sequence[Sequence[Face]], min_iou: float = 0.3) -> list[Face | None]:
    """FaceTrack over a whole list of frames."""
    track = FaceTrack(min_iou)
    return [track.step(faces) for faces in faces_per_frame]


def sbi_crop_window(box: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of SBI's test-phase crop: margin w/8, h/8; int() truncates; +1 on the far edges."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    return (max(0, int(x0 - w / 8)), max(0, int(y0 - h / 8)),
            min(width, int(x1 + w / 8) + 1), min(height, int(y1 + h / 8) + 1))


def sbi_crop(frame: np.ndarray, box: Sequence[float], size: int = 380) -> np.ndarray:
    """The SBI input of one face: RGB uint8 (size, size, 3)."""
    x0, y0, x1, y1 = sbi_crop_window(box, frame.shape[0], frame.shape[1])
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {list(box)} lies outside the {frame.shape[1]}x{frame.shape[0]} frame")
    return cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_LINEAR)


def fill_missing(landmarks: Sequence[np.ndarray | None]) -> np.ndarray:
    """(N, 68, 2) with frames lacking landmarks linearly interpolated between their detected neighbours and
    held constant before the first / after the last detection (as mpc001's lipreading preprocessing does)."""
    found = [i for i, lm in enumerate(landmarks) if lm is not None]
    if not found:
        raise ValueError("no frame has landmarks")
    known = np.stack([landmarks[i] for i in found]).astype(np.float64)
    flat = known.reshape(len(found), -1)
    grid = np.arange(len(landmarks))
    filled = np.stack([np.interp(grid, found, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return filled.reshape(len(landmarks), *known.shape[1:])


def similarity_to(points: np.ndarray, mean_face: np.ndarray) -> SimilarityTransform:
    tform = SimilarityTransform.from_estimate(points[STABLE_POINTS], mean_face[STABLE_POINTS])
    if not isinstance(tform, SimilarityTransform):
        raise ValueError(f"cannot fit a similarity transform to landmarks {points[STABLE_POINTS].tolist()}")
    return tform


def warp_face(frame: np.ndarray, tform: SimilarityTransform, size: int = 256) -> np.ndarray:
    """skimage's bilinear warp into [0, 1], then x255 and truncation to uint8, exactly as upstream."""
    return (warp(frame, inverse_map=tform.inverse, output_shape=(size, size)) * 255).astype(np.uint8)


def cut_patch(image: np.ndarray, centre: np.ndarray, half: int) -> np.ndarray:
    """A (2*half)^2 patch around `centre` (x, y), the centre clamped so the patch stays inside the image.

    Upstream also has "too much bias" checks, but they test the already clamped centre and so never fire.
    """
    cx, cy = (float(v) for v in centre)
    cy = min(max(cy, half), image.shape[0] - half)
    cx = min(max(cx, half), image.shape[1] - half)
    top, left = int(round(cy) - half), int(round(cx) - half)
    return image[top:top + 2 * half, left:left + 2 * half].copy()


def mouth_transforms(landmarks: np.ndarray, mean_face: np.ndarray, window: int = 12) -> list[SimilarityTransform]:
    """Each frame's alignment: the similarity fitted to its forward window's mean landmarks; frames past the last
    full window reuse its transform. Needs len(landmarks) >= window."""
    n = len(landmarks)
    if n < window:
        raise ValueError(f"{n} frames is shorter than the {window}-frame smoothing window")
    fitted = [similarity_to(landmarks[i:i + window].mean(axis=0), mean_face) for i in range(n - window + 1)]
    return fitted + [fitted[-1]] * (window - 1)


def mouth_crop(frame: np.ndarray, tform: SimilarityTransform, points: np.ndarray, aligned_size: int = 256,
               crop_size: int = 96, fast: bool = False) -> np.ndarray:
    """One frame's aligned mouth crop (colour, uint8): the warp, then the patch around the transformed mouth.

    `fast` warps with OpenCV (fixed-point bilinear, rounded) instead of skimage (float64, truncated): the same
    geometry, pixels that differ by about one grey level; the bench reports the difference."""
    aligned = warp_face_fast(frame, tform, aligned_size) if fast else warp_face(frame, tform, aligned_size)
    centre = tform(points)[MOUTH].mean(axis=0)
    return cut_patch(aligned, centre, crop_size // 2)


def warp_face_fast(frame: np.ndarray, tform: SimilarityTransform, size: int = 256) -> np.ndarray:
    """cv2.warpAffine of the same transform: it samples only the output's pixels, never converts the frame."""
    matrix = np.asarray(tform.params[:2], np.float64)
    return cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def mouth_crops(frames: Sequence[np.ndarray], landmarks: np.ndarray, mean_face: np.ndarray, window: int = 12,
                aligned_size: int = 256, crop_size: int = 96) -> list[np.ndarray]:
    """Upstream's aligned mouth crop (colour, uint8) of every frame; needs len(frames) >= window."""
    tforms = mouth_transforms(landmarks, mean_face, window)
    return [mouth_crop(frame, tform, points, aligned_size, crop_size)
            for frame, tform, points in zip(frames, tforms, landmarks)]


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """PIL's L conversion (ITU-R 601-2, integer arithmetic), which differs from OpenCV's on ~0.1 % of pixels."""
    return np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint8)
