"""How crops are stored in the cache's `image` column: raw uint8 HWC bytes, or lossless PNG (the default).

PNG at zlib level 1: about 2.5x smaller than raw on face crops and 1.7x on grey mouths, ~10 ms per 380x380 crop to
write and ~3 ms to read; higher levels cost 15x the time for 15 % fewer bytes. Lossless, so a detector reads the
very pixels extract cut (a test holds the round trip to equality).
"""

from __future__ import annotations

import cv2
import numpy as np

ENCODINGS = ("raw", "png")
BOX = "box"  # a row that stores only the face box: tetrad.media.recut cuts its crop from the video when read


def encode(image: np.ndarray, encoding: str) -> bytes:
    """uint8 (H, W, C) -> bytes; cv2 writes channel order as given and reads it back the same."""
    if encoding == "raw":
        return np.ascontiguousarray(image).tobytes()
    if encoding != "png":
        raise ValueError(f"unknown image encoding {encoding!r} (known: {ENCODINGS})")
    plane = image[..., 0] if image.shape[2] == 1 else image
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(plane), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"cannot PNG-encode an image of shape {image.shape}")
    return buf.tobytes()


def decode(data: bytes, shape: tuple[int, int, int], encoding: str | None) -> np.ndarray:
    """bytes -> uint8 (H, W, C), checked against the shape the row declares."""
    if encoding == BOX:
        raise ValueError("this cache row stores a face box, not pixels: its crop is cut from the video by "
                         "tetrad.media.recut before it is read (extract.faces.store=boxes)")
    if encoding in (None, "raw"):
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)
    if encoding != "png":
        raise ValueError(f"unknown image encoding {encoding!r} (known: {ENCODINGS})")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("cannot decode a PNG image from the cache")
    image = image.reshape(image.shape[0], image.shape[1], -1)
    if image.shape != tuple(shape):
        raise ValueError(f"cached image is {image.shape}, the row says {tuple(shape)}")
    return image
