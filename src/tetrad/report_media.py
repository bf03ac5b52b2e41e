"""What the report shows of a few videos (its error analysis): face-crop thumbnails, a strip of mouth crops and
the audio's spectrogram, read from the extract caches (face crops stored as boxes are cut from the video again,
as the detect stage does). Only the named videos' rows are read (a Parquet filter), never a whole cache."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tetrad import figures
from tetrad.media.pixels import decode as decode_pixels
from tetrad.media.recut import needs_video, recut_faces
from tetrad.paths import Paths
from tetrad.schemas import StatusError, scored

log = logging.getLogger(__name__)
THUMB = 96  # px: a face thumbnail's side
N_FACES = 4
N_MOUTHS = 8


@dataclass
class Media:
    """Data-URI PNGs of one video; empty where its cache has nothing usable (the reason says why)."""

    faces: list[str] = field(default_factory=list)
    mouths: str | None = None
    spectrogram: str | None = None
    notes: list[str] = field(default_factory=list)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def video_media(paths: Paths, sources: dict[str, str], vids: set[str]) -> dict[str, Media]:
    """Thumbnails of `vids` from whichever caches exist (sources: video_id -> media path, for re-cut faces)."""
    out = {v: Media() for v in vids}
    faces, mouths, audio = (_rows(paths.cache(k), vids) for k in ("faces", "mouths", "audio"))
    for vid, media in out.items():
        try:
            media.faces = _faces(faces.get(vid), sources.get(vid), vid)
            media.mouths = _mouths(mouths.get(vid))
            media.spectrogram = _spectrogram(audio.get(vid))
        except (StatusError, ValueError, OSError) as exc:  # a thumbnail is never worth failing the report for
            media.notes.append(f"thumbnails unavailable: {exc}")
            log.warning("%s: thumbnails unavailable: %s", vid, exc)
    return out


def _rows(folder: Path, vids: set[str]) -> dict[str, pd.DataFrame]:
    shards = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    if not shards or not vids:
        return {}
    table = pd.concat([pq.read_table(s, filters=[("video_id", "in", sorted(vids))]).to_pandas() for s in shards])
    table = table[scored(table["status"])]
    return {str(v): rows for v, rows in table.groupby("video_id")}


def _image(row: pd.Series) -> np.ndarray:
    shape = (int(row["height"]), int(row["width"]), int(row["channels"]))
    return decode_pixels(row["image"], shape, row["encoding"])


def _faces(rows: pd.DataFrame | None, source: str | None, vid: str) -> list[str]:
    if rows is None or rows.empty:
        return []
    rows = rows[rows["frame_idx"] >= 0].sort_values(["frame_idx", "face_idx"]).head(N_FACES)
    if needs_video(rows):
        rows = recut_faces(rows.reset_index(drop=True), source, vid)
    return [data_uri(_png(cv2.resize(_image(r), (THUMB, THUMB), interpolation=cv2.INTER_AREA)))
            for _, r in rows.iterrows()]


def _mouths(rows: pd.DataFrame | None) -> str | None:
    if rows is None or rows.empty:
        return None
    rows = rows.sort_values("frame_idx")
    picked = rows.iloc[np.linspace(0, len(rows) - 1, min(N_MOUTHS, len(rows))).astype(int)]
    return data_uri(_png(np.hstack([_image(r) for _, r in picked.iterrows()])))


def _spectrogram(rows: pd.DataFrame | None) -> str | None:
    if rows is None or rows.empty or rows.iloc[0]["waveform"] is None:
        return None
    row = rows.iloc[0]
    return data_uri(figures.png(figures.spectrogram(np.asarray(row["waveform"], np.float32), int(row["sample_rate"]))))


def _png(image: np.ndarray) -> bytes:
    """RGB (or grey) uint8 -> PNG bytes (OpenCV writes BGR: the channels are swapped back first)."""
    plane = image[..., 0] if image.shape[-1] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", plane)
    if not ok:
        raise ValueError(f"cannot PNG-encode a thumbnail of shape {image.shape}")
    return buf.tobytes()
