"""The generated mini benchmark (tetrad.mini): labels.csv next to the clips."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad import schemas
from tetrad.datasets.registry import register_dataset

COLUMNS = ["video_id", "file", "label", "audio_label", "video_label", "category", "method", "group"]


@register_dataset("mini")
def mini_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    if options:
        raise ValueError(f"dataset.options: the mini adapter takes no options, got {sorted(options)}")
    labels = root / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"{labels} not found: build the mini benchmark with `tetrad make-mini --out {root}`")
    table = pd.read_csv(labels, dtype={"group": str, "category": str, "method": str})
    if list(table.columns) != COLUMNS:
        raise ValueError(f"{labels}: header {list(table.columns)} differs from {COLUMNS}")
    for col in ("label", "audio_label", "video_label"):
        table[col] = table[col].astype("Int8")
    table["path"] = [str((root / f).resolve()) for f in table["file"]]
    table["split"] = "test"
    table["sha256"] = None
    table["status"] = schemas.OK
    table["error"] = None
    return table[schemas.MANIFEST.names]
