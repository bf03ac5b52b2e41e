"""Face crops of a `faces` cache stored as boxes (extract.faces.store=boxes), cut again from the source video.

Decoding is deterministic, so the frames, and the crops cut from them with the same function, are the very bytes
extract would have stored (tests/test_recut.py holds them equal). The frames stream: one frame is held at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tetrad.media.crops import sbi_crop
from tetrad.media.decode import read_frames
from tetrad.media.pixels import BOX
from tetrad.schemas import DECODE_ERROR, StatusError


def needs_video(rows: pd.DataFrame) -> bool:
    return "encoding" in rows and bool(rows["encoding"].eq(BOX).any())


def recut_faces(rows: pd.DataFrame, path: str | Path | None, vid: str) -> pd.DataFrame:
    """One video's rows with their box-only entries given raw crops (encoding `raw`); other rows unchanged."""
    if path is None or not Path(path).is_file():
        raise StatusError(DECODE_ERROR, f"{vid}: its faces cache stores boxes (extract.faces.store=boxes), so the "
                                        f"crops are cut from the source video, and {path or 'no path'} is missing")
    todo = rows.index[rows["encoding"].eq(BOX)]
    by_frame: dict[int, list] = {}
    for i in todo:
        by_frame.setdefault(int(rows.at[i, "frame_idx"]), []).append(i)
    out = rows.copy()
    done = 0
    for idx, pts, rgb in read_frames(Path(path), set(by_frame)):
        for i in by_frame[idx]:
            _check_pts(out, i, pts, path)
            size = int(out.at[i, "height"])
            out.at[i, "image"] = np.ascontiguousarray(sbi_crop(rgb, out.at[i, "box"], size)).tobytes()
            out.at[i, "encoding"] = "raw"
            done += 1
    if done != len(todo):
        raise StatusError(DECODE_ERROR, f"{path}: {len(todo) - done} of {len(todo)} face crops could not be cut "
                                        "again: the video has fewer frames than when it was extracted")
    return out


def _check_pts(rows: pd.DataFrame, i: int, pts: float, path: Path) -> None:
    """The same frame as extract saw: a video replaced after extraction fails loudly, never gives other pixels."""
    cached = rows.at[i, "pts_s"]
    if cached is not None and not np.isclose(float(cached), pts, atol=1e-6):
        raise StatusError(DECODE_ERROR, f"{path}: frame {rows.at[i, 'frame_idx']} is at {pts:.6f} s, the cache "
                                        f"says {float(cached):.6f} s: the video changed since it was extracted")
