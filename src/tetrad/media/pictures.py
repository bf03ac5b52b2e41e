"""The picture kinds of one video (`frames`, `faces`, `mouths`) in two streaming passes, so a worker never holds
more than one detector batch of full frames, whatever the video's length or size.

Pass 1 (with the audio, in decode()): whole-frame crops of the sampled frames; face detection in batches of at
most `extract.face.batch_megapixels`; SBI crops of the sampled frames and landmarks of the tracked face as each
batch is detected, its frames then dropped. Between the passes: the missing-face policy and the alignment of every
mouth frame (its transform needs the landmarks of the next 11 frames). Pass 2 (`mouth_rows_streamed`): the video
decoded again, each frame warped and cut as it arrives. Decoding is the cheap part: a second decode of a 10-s
1080p clip costs ~1 s, a stored 1080p frame 6 MB.

Fast mode (`extract.face.mode: fast`) runs the detector on every `fast_stride`-th mouth frame and on the SBI
frames only, downscaled to `fast_height` rows, interpolates the landmarks of the frames between, and warps with
OpenCV; `make bench` measures how far its crops and scores move from the exact mode's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tetrad import schemas
from tetrad.faces import Face
from tetrad.media import pixels
from tetrad.media.crops import FaceTrack, mouth_crop, mouth_transforms
from tetrad.media.decode import Frame, read_frames
from tetrad.media.faces import (FaceTools, detect_faces, filled_landmarks, frame_face_rows, mouth_row,
                                require_a_face, require_window)
from tetrad.media.frames import semantic_crop
from tetrad.params import ExtractParams
from tetrad.schemas import StatusError


class PicturePass:
    """Pass 1: a frame sink for decode(). `picks` maps each requested picture kind to the frame indices it needs
    (the mouths' are consecutive from 0); `tools` is None when no face kind is requested."""

    def __init__(self, vid: str, picks: dict[str, list[int]], params: ExtractParams,
                 tools: FaceTools | None) -> None:
        self.vid, self.params, self.tools = vid, params, tools
        self.fast = params.face.mode == "fast"
        self.frame_picks = set(picks.get("frames", ()))
        self.face_picks = set(picks.get("faces", ()))
        self.mouth_frames = list(picks.get("mouths", ()))
        self.mouth_detect = set(_grid(self.mouth_frames, params.face.fast_stride) if self.fast else self.mouth_frames)
        self.to_detect = self.face_picks | self.mouth_detect
        self.rows: dict[str, list[dict[str, Any]]] = {k: [] for k in picks}
        self.track, self.tracked = FaceTrack(), {}  # mouth frame index -> tracked face (None: no face)
        self.landmarks: dict[int, np.ndarray | None] = {}
        self._batch: list[Frame] = []
        self._pixels = 0
        self.failed: dict[str, str] = {}  # kind -> why its model or crop failed (that kind's row says so)

    def __call__(self, frame: Frame) -> None:
        idx, _, rgb = frame
        if idx in self.frame_picks and "frames" not in self.failed:
            fp = self.params.frames
            try:
                crop = semantic_crop(rgb, fp.size, fp.mode, fp.resize)
            except (ValueError, RuntimeError) as exc:
                self.failed["frames"] = f"frames failed at frame {idx} ({exc})"
                return
            self.rows["frames"].append(frame_row(self.vid, frame, crop, self.params.encoding))
        if idx in self.to_detect and "faces" not in self.failed:
            size = rgb.shape[0] * rgb.shape[1]
            if self._batch and self._pixels + size > self.params.face.batch_megapixels * 1e6:
                self.flush()  # a batch never exceeds the budget, and holds at least one frame
            self._batch.append(frame)
            self._pixels += size

    def cut_at(self, n_decoded: int) -> None:
        """The video ended after `n_decoded` frames (a cut file): frames past it never came, so no kind waits for
        them (the mouths' consecutive run and the face count end there too)."""
        self.frame_picks = {i for i in self.frame_picks if i < n_decoded}
        self.face_picks = {i for i in self.face_picks if i < n_decoded}
        self.mouth_frames = [i for i in self.mouth_frames if i < n_decoded]
        self.mouth_detect = {i for i in self.mouth_detect if i < n_decoded}
        self.to_detect = self.face_picks | self.mouth_detect

    def rows_of(self, kind: str) -> list[dict[str, Any]]:
        """The finished rows of a picture kind (the mouths take their own pass: mouth_rows_streamed)."""
        self.flush()
        if kind in self.failed:
            raise StatusError(schemas.ERROR, f"{self.vid}: {self.failed[kind]}")
        if kind == "faces":
            require_a_face(self.vid, self.rows["faces"], len(self.face_picks))
        return self.rows[kind]

    def flush(self) -> None:
        """Detect the batch's faces, cut what needs its pixels, drop the frames. A detector or crop failure
        fails both face kinds of this video, never the worker."""
        try:
            self._detect_batch()
        except (ValueError, RuntimeError) as exc:
            self.failed["faces"] = self.failed["mouths"] = f"face detection failed ({type(exc).__name__}: {exc})"
        self._batch, self._pixels = [], 0

    def _detect_batch(self) -> None:
        if not self._batch:
            return
        height = self.params.face.fast_height if self.fast else None
        sbi, mouths = self.tools.detector, self.tools.for_mouths
        sbi_frames = [f for f in self._batch if f[0] in self.face_picks]
        mouth_frames = [f for f in self._batch if f[0] in self.mouth_detect]
        found = detect_faces(sbi_frames, self.tools, height, sbi)  # {} when the batch has no SBI frame
        if mouths is sbi:  # one detector: each frame detected once, whichever kinds need it
            found.update(detect_faces([f for f in mouth_frames if f[0] not in found], self.tools, height, sbi))
            mouth_found = found
        else:
            mouth_found = detect_faces(mouth_frames, self.tools, height, mouths)
        for frame in sbi_frames:
            self.rows["faces"] += frame_face_rows(self.vid, frame, found[frame[0]], self.params, sbi.name)
        for frame in mouth_frames:
            face = self.tracked[frame[0]] = self.track.step(mouth_found[frame[0]])
            self.landmarks[frame[0]] = None if face is None else self._landmarks(frame[2], face)

    def _landmarks(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return self.tools.landmarker.landmarks(rgb, face.box).astype(np.float64)

    def mouth_landmarks(self) -> list[np.ndarray | None]:
        """Every mouth frame's landmarks; fast mode interpolates between the detected frames, and a frame next
        to a detected frame without a face counts as faceless (the missing-face policy then decides)."""
        if not self.fast:
            return [self.landmarks.get(i) for i in self.mouth_frames]
        grid = sorted(self.mouth_detect)
        out: list[np.ndarray | None] = []
        for i in self.mouth_frames:
            before = max(g for g in grid if g <= i)
            after = min((g for g in grid if g >= i), default=before)
            a, b = self.landmarks.get(before), self.landmarks.get(after)
            if a is None or b is None:
                out.append(None)
            else:
                t = 0.0 if after == before else (i - before) / (after - before)
                out.append(a + t * (b - a))
        return out


def frame_row(vid: str, frame: Frame, image: np.ndarray, encoding: str = "png") -> dict:
    """A whole-frame (semantic) cache row of decoded `frame` with its crop `image`."""
    idx, pts, _ = frame
    h, w, c = image.shape
    return {"video_id": vid, "frame_idx": idx, "face_idx": -1, "pts_s": pts, "box": None, "landmarks": None,
            "face_score": None, "face_detector": None, "image": pixels.encode(image, encoding),
            "encoding": encoding, "height": h, "width": w, "channels": c, "status": schemas.OK, "error": None}


def _grid(frames: list[int], stride: int) -> list[int]:
    """Every stride-th frame and the last one, so every frame lies between two detected frames."""
    grid = frames[::max(1, stride)]
    return grid + frames[-1:] if frames and grid[-1] != frames[-1] else grid


def mouth_rows_streamed(path: Path, first: PicturePass, mean_face: np.ndarray) -> list[dict[str, Any]]:
    """Pass 2: every mouth frame decoded again, warped with its transform and cut as it arrives."""
    vid, params = first.vid, first.params
    first.flush()
    if "mouths" in first.failed:
        raise StatusError(schemas.ERROR, f"{vid}: {first.failed['mouths']}")
    mp = params.mouths
    frames = first.mouth_frames
    require_window(vid, len(frames), mp.window)
    landmarks = filled_landmarks(vid, frames, first.mouth_landmarks(), mp)
    tforms = mouth_transforms(landmarks, mean_face, mp.window)
    label = first.tools.label
    rows = []
    for k, frame in enumerate(read_frames(path, set(frames))):
        crop = mouth_crop(frame[2], tforms[k], landmarks[k], mp.aligned_size, mp.crop_size, first.fast)
        rows.append(mouth_row(vid, frame, crop, first.tracked.get(frame[0]), landmarks[k], label, params.encoding))
    if len(rows) != len(frames):
        raise StatusError(schemas.DECODE_ERROR, f"{path}: the second pass decoded {len(rows)} of {len(frames)} "
                                                "frames")
    return rows
