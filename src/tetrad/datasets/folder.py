"""A generic dataset: `real/` and `fake/` folders, or a CSV that lists the files.

Folder mode lists every media file under `<root>/real/` (label 0) and `<root>/fake/` (label 1), recursively.
A real file is real throughout (audio_label 0, video_label 0, or null for an audio-only file); for a fake the
modality is unknown (null). CSV mode (option `csv: labels.csv`, relative to the root) reads the columns
`path,label` and optionally `audio_label,video_label,group,split,category,method`; paths are relative to the root.
The group defaults to the file stem, so `real/x.mp4` and `fake/x.mp4` form one group.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from tetrad.datasets.common import DatasetError, check_options, manifest_table, normalize_split, parse_label
from tetrad.datasets.registry import register_dataset

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
AUDIO_SUFFIXES = (".wav", ".flac")
REQUIRED = ("path", "label")
OPTIONAL = ("audio_label", "video_label", "group", "split", "category", "method")
_LABELS = {"0": 0, "1": 1}
_MODALITY = {"": None, "0": 0, "1": 1}
DEFAULTS: dict[str, Any] = {"csv": None, "extensions": [*VIDEO_SUFFIXES, *AUDIO_SUFFIXES]}


@register_dataset("folder")
def folder_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    opts = check_options(options, DEFAULTS, "folder")
    if opts["csv"]:
        rows = read_csv(root / opts["csv"], root)
    else:
        rows = _scan(root, {s.lower() for s in opts["extensions"]})
    return manifest_table(rows, root)


def _scan(root: Path, suffixes: set[str]) -> list[dict[str, Any]]:
    if not (root / "real").is_dir() and not (root / "fake").is_dir():
        raise FileNotFoundError(f"{root} has neither real/ nor fake/ (or set dataset.options.csv)")
    rows = []
    for label, folder in ((0, "real"), (1, "fake")):
        # links too, dangling or looping ones included: they become rows with their problem (manifest.mark_missing)
        files = sorted(p for p in (root / folder).rglob("*")
                       if p.suffix.lower() in suffixes and (p.is_symlink() or p.is_file()))
        rows += [_default_row(p.relative_to(root).as_posix(), label) for p in files]
    return rows


def _default_row(rel: str, label: int) -> dict[str, Any]:
    audio_only = PurePosixPath(rel).suffix.lower() in AUDIO_SUFFIXES
    real = 0 if label == 0 else None
    return {"rel": rel, "label": label, "audio_label": real, "video_label": None if audio_only else real,
            "category": None, "method": "real" if label == 0 else None, "group": PurePosixPath(rel).stem,
            "split": None}


def read_csv(path: Path, root: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (dataset.options.csv)")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        bad = [c for c in header if c not in (*REQUIRED, *OPTIONAL)]
        if bad or any(c not in header for c in REQUIRED):
            raise DatasetError(f"{path}: header {header}: needs {list(REQUIRED)}, may add {list(OPTIONAL)}")
        return [_csv_row(record, f"{path}:{n}", root) for n, record in enumerate(reader, start=2)]


def _csv_row(record: dict[str, Any], where: str, root: Path) -> dict[str, Any]:
    if None in record or any(v is None for v in record.values()):
        raise DatasetError(f"{where}: wrong number of values for the header")
    rel = _relative(record["path"].strip(), root, where)
    row = _default_row(rel, parse_label(record["label"].strip(), where, _LABELS))
    for col in ("audio_label", "video_label"):
        if col in record:
            row[col] = parse_label(record[col].strip(), f"{where} ({col})", _MODALITY)
    for col in ("group", "category", "method"):
        if record.get(col, "").strip():
            row[col] = record[col].strip()
    if record.get("split", "").strip():
        row["split"] = normalize_split(record["split"], where)
    return row


def _relative(value: str, root: Path, where: str) -> str:
    path = Path(value)
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(root.resolve())
        except ValueError:
            raise DatasetError(f"{where}: {value} is outside the dataset root {root}") from None
    if not value or ".." in path.parts:
        raise DatasetError(f"{where}: path {value!r} must name a file under the dataset root")
    return path.as_posix()
