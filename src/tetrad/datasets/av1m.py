"""AV-Deepfake1M: `<subset>_metadata.json` lists (train, val; test labels are withheld) with files in `<subset>/`.

Each entry has `file` (relative to `<subset>/`), `original`, `split`, `modify_type`, `fake_segments`, ...
Label rule (the dataset's own detection label): fake iff `fake_segments` is non-empty. `modify_type` gives the
modality labels; its spellings differ between releases and tools (`visual_modified`/`video_modified`,
`both_modified`/`both-modified`), all accepted. Where the two disagree, `fake_segments` wins the label:
- empty fake_segments but a modified type -> real (0/0/0), counted and logged;
- fake segments but modify_type `real` -> fake with unknown modalities (null/null), counted and logged.
A fake is grouped with its `original`, a real with itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.datasets.common import DatasetError, check_options, manifest_table, normalize_split, read_json_list
from tetrad.datasets.registry import register_dataset

log = logging.getLogger(__name__)

# normalised modify_type -> (method, audio fake, video fake)
MODIFY_TYPES = {
    "real": ("real", 0, 0),
    "visual_modified": ("visual_modified", 0, 1),
    "video_modified": ("visual_modified", 0, 1),
    "audio_modified": ("audio_modified", 1, 0),
    "both_modified": ("both_modified", 1, 1),
    "audio_visual_modified": ("both_modified", 1, 1),
}
REQUIRED = ("file", "modify_type", "fake_segments")
DEFAULTS: dict[str, Any] = {"subsets": ["val"]}


@register_dataset("av1m")
def av1m_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    opts = check_options(options, DEFAULTS, "av1m")
    rows: list[dict[str, Any]] = []
    for subset in opts["subsets"]:
        if subset == "test":
            raise ValueError("dataset.options.subsets: AV-Deepfake1M test labels are withheld (scored on Codabench)")
        path = root / f"{subset}_metadata.json"
        rows += [_row(entry, subset, f"{path}: entry {i}") for i, entry in enumerate(read_json_list(path, REQUIRED))]
    _log_disagreements(rows)
    return manifest_table(rows, root)


def normalize_modify_type(value: Any, where: str) -> str:
    key = str(value).strip().lower().replace("-", "_")
    if key not in MODIFY_TYPES:
        raise DatasetError(f"{where}: unknown modify_type {value!r} (expected one of {sorted(MODIFY_TYPES)})")
    return key


def _row(entry: dict[str, Any], subset: str, where: str) -> dict[str, Any]:
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise DatasetError(f"{where}: missing {missing}")
    if not isinstance(entry["file"], str) or not entry["file"].endswith(".mp4"):
        raise DatasetError(f"{where}: file is {entry['file']!r}, expected a path ending in .mp4")
    if not isinstance(entry["fake_segments"], list):
        raise DatasetError(f"{where}: fake_segments is {entry['fake_segments']!r}, expected a list")
    method, audio, video = MODIFY_TYPES[normalize_modify_type(entry["modify_type"], where)]
    label = int(bool(entry["fake_segments"]))
    note = None
    if label == 0 and method != "real":
        note, audio, video = "modified_without_segments", 0, 0
    elif label == 1 and method == "real":
        note, audio, video, method = "segments_but_real", None, None, None
    file = entry["file"]
    rel = file if file.startswith(f"{subset}/") else f"{subset}/{file}"  # `file` is relative to <subset>/
    group = entry.get("original") or file
    split = normalize_split(entry.get("split") or subset, where)
    return {"rel": rel, "label": label, "audio_label": audio, "video_label": video, "category": None,
            "method": method if label else "real", "group": _strip_mp4(group, subset), "split": split, "note": note}


def _strip_mp4(name: str, subset: str) -> str:
    name = name[len(subset) + 1:] if name.startswith(f"{subset}/") else name
    return name[:-4] if name.endswith(".mp4") else name


def _log_disagreements(rows: list[dict[str, Any]]) -> None:
    for note, text in (("modified_without_segments", "modify_type says modified but fake_segments is empty: real"),
                       ("segments_but_real", "modify_type says real but fake_segments is non-empty: fake, "
                                             "modalities unknown")):
        hits = [r["rel"] for r in rows if r["note"] == note]
        if hits:
            log.warning("AV-Deepfake1M: %d entries where %s (e.g. %s)", len(hits), text, hits[0])
