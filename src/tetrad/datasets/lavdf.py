"""LAV-DF: `metadata.json` (or `metadata.min.json`) at the root, a list of entries with files in train/ dev/ test/.

Each entry has `file` (`test/000001.mp4`), `n_fakes`, `fake_periods`, `original`, `modify_video`, `modify_audio`
and `split` (train/dev/test; dev becomes `val`). Label: fake iff n_fakes > 0 (the dataset's own rule); the
modify flags give the modality labels. Where they disagree the label follows n_fakes: n_fakes = 0 with a flag set
is real (0/0), n_fakes > 0 with no flag is fake with unknown modalities (null/null); both are counted and logged.
A fake is grouped with its `original`, a real with itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.datasets.common import (
    DatasetError,
    Expectation,
    check_options,
    count,
    manifest_table,
    normalize_split,
    read_json_list,
)
from tetrad.datasets.registry import register_dataset

log = logging.getLogger(__name__)

REQUIRED = ("file", "n_fakes", "modify_video", "modify_audio", "split")
METADATA_FILES = ("metadata.json", "metadata.min.json")
DEFAULTS: dict[str, Any] = {"metadata": None}  # None: metadata.json, else metadata.min.json


def expected_counts(t: pd.DataFrame) -> list[Expectation]:
    """Counts of the full LAV-DF release (36431 real and 99873 fake videos in metadata.json)."""
    return [Expectation("videos", 136304, len(t)), Expectation("real videos", 36431, count(t["label"] == 0)),
            Expectation("fake videos", 99873, count(t["label"] == 1))]


@register_dataset("lavdf", expected=expected_counts)
def lavdf_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    opts = check_options(options, DEFAULTS, "lavdf")
    names = [opts["metadata"]] if opts["metadata"] else list(METADATA_FILES)
    path = next((root / n for n in names if (root / n).is_file()), None)
    if path is None:
        raise FileNotFoundError(f"none of {names} found in {root}")
    entries = read_json_list(path, REQUIRED)
    rows = [_row(entry, f"{path}: entry {i}") for i, entry in enumerate(entries)]
    _log_disagreements(rows, path)
    return manifest_table(rows, root)


def _row(entry: dict[str, Any], where: str) -> dict[str, Any]:
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise DatasetError(f"{where}: missing {missing}")
    if not isinstance(entry["file"], str) or not entry["file"].endswith(".mp4"):
        raise DatasetError(f"{where}: file is {entry['file']!r}, expected a path like test/000001.mp4")
    n_fakes, audio, video = entry["n_fakes"], entry["modify_audio"], entry["modify_video"]
    if type(n_fakes) is not int or n_fakes < 0 or type(audio) is not bool or type(video) is not bool:
        raise DatasetError(f"{where}: n_fakes must be an int >= 0 and modify_audio/modify_video booleans, got "
                           f"{n_fakes!r}, {audio!r}, {video!r}")
    label = int(n_fakes > 0)
    a, v, note = int(audio), int(video), None
    if label == 0 and (audio or video):
        a, v, note = 0, 0, "flags_without_fakes"
    elif label == 1 and not (audio or video):
        a, v, note = None, None, "fakes_without_flags"
    file = entry["file"]
    group = entry.get("original") or file
    return {"rel": file, "label": label, "audio_label": a, "video_label": v, "category": None,
            "method": _method(a, v) if label else "real", "group": group.removesuffix(".mp4"),
            "split": normalize_split(entry["split"], where), "note": note}


def _method(audio: int | None, video: int | None) -> str | None:
    """The same names as AV-Deepfake1M's modify types, so both datasets report alike."""
    return {(1, 1): "both_modified", (1, 0): "audio_modified", (0, 1): "visual_modified"}.get((audio, video))


def _log_disagreements(rows: list[dict[str, Any]], path: Path) -> None:
    for note, text in (("flags_without_fakes", "n_fakes = 0 but a modify flag is set: real"),
                       ("fakes_without_flags", "n_fakes > 0 but no modify flag: fake, modalities unknown")):
        hits = [r["rel"] for r in rows if r["note"] == note]
        if hits:
            log.warning("%s: %d entries where %s (e.g. %s)", path.name, len(hits), text, hits[0])
