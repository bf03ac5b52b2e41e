"""MTCNN (Zhang et al. 2016) from facenet-pytorch 2.5.3: weights ship inside the pip package, so it runs offline.

Batched over the frames of one video (they share a size), on the GPU when one is given. Differences from SBI's
own detector (RetinaFace resnet50, ternaus/retinaface): see README "Face crops and fidelity".
"""

from __future__ import annotations

import numpy as np
import torch

from tetrad.faces.base import Face, FaceDetector, register_face_detector


@register_face_detector("mtcnn")
class MTCNNDetector(FaceDetector):
    def __init__(self, device: str = "cpu", min_face_size: int = 20, thresholds: tuple | list = (0.6, 0.7, 0.7),
                 factor: float = 0.709, batch_size: int = 16) -> None:
        from facenet_pytorch import MTCNN  # imported here: only extract needs it

        self.batch_size = batch_size
        self.model = MTCNN(keep_all=True, min_face_size=min_face_size, thresholds=list(thresholds),
                           factor=factor, post_process=False, select_largest=False, device=torch.device(device))

    def detect(self, frames: list[np.ndarray]) -> list[list[Face]]:
        out: list[list[Face]] = []
        for start in range(0, len(frames), self.batch_size):
            batch = np.stack(frames[start:start + self.batch_size])
            with torch.inference_mode():
                boxes, scores, points = self.model.detect(batch, landmarks=True)
            out.extend(_faces(b, s, p) for b, s, p in zip(boxes, scores, points))
        return out


def _faces(boxes: np.ndarray | None, scores: np.ndarray | None, points: np.ndarray | None) -> list[Face]:
    if boxes is None:
        return []
    faces = [Face(np.asarray(b, np.float32), float(s), np.asarray(p, np.float32))
             for b, s, p in zip(boxes, scores, points)]
    return sorted(faces, key=lambda f: -f.score)
