"""DFDC preview (DFDCP): `dataset.json` = {"<path>.mp4": {"label": "real"|"fake", "set": "train"|"test"}}.

Paths look like `original_videos/<id>/<id>_<scene>/<clip>.mp4` and `method_A/<id>/<id>_<scene>/<clip>.mp4`;
the `<id>` folder (the filmed person) is the group, the top folder (`method_A`, `method_B`) the method. The preview
has face swaps only: video_label = label and audio_label is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.datasets.common import (DatasetError, check_options, manifest_table, normalize_split, parse_label,
                                    read_json)
from tetrad.datasets.registry import register_dataset

META = "dataset.json"
_LABELS = {"real": 0, "fake": 1}


@register_dataset("dfdcp")
def dfdcp_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    check_options(options, {}, "dfdcp")
    return manifest_table([_row(rel, entry, root / META) for rel, entry in read_dataset_json(root / META).items()],
                          root)


def read_dataset_json(path: Path) -> dict[str, dict[str, Any]]:
    data = read_json(path, f"the DFDC preview ships {META} at its root")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DatasetError(f"{path}: expected an object {{path: {{label, set}}}}")
    return data


def _row(rel: str, entry: dict[str, Any], path: Path) -> dict[str, Any]:
    where = f"{path}: {rel}"
    missing = {"label", "set"} - set(entry)
    if missing:
        raise DatasetError(f"{where}: entry lacks {sorted(missing)}")
    label = parse_label(entry["label"], where, _LABELS)
    parts = rel.split("/")
    group = parts[1] if len(parts) >= 3 else Path(rel).stem  # the person's id folder
    return {"rel": rel, "label": label, "audio_label": None, "video_label": label, "category": None,
            "method": parts[0] if label else "real", "group": group, "split": normalize_split(entry["set"], where)}
