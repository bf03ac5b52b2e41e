"""DFDC (Kaggle Deepfake Detection Challenge): the training parts or the released test set.

`part: train` reads `dfdc_train_part_*/metadata.json` (and the Kaggle `train_sample_videos/metadata.json`):
`{"<file>.mp4": {"label": "REAL"|"FAKE", "split": "train", "original": "<src>.mp4"|null}}`; a fake is grouped
with its `original`. `part: test` reads `test/labels.csv` (`filename,label`, 1 = fake) or, when that is absent,
`test/metadata.json` as released with the test set (`{"<file>.mp4": {"is_fake": 0|1, "augmentations": {...}}}`);
the test set names no original, so each test video is its own group. DFDC fakes may have a swapped face, a
swapped voice or both and the labels do not say which: a fake's audio_label and video_label are null, a real's 0.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.datasets.common import (DatasetError, Expectation, check_options, count, manifest_table, normalize_split,
                                    parse_label, read_json)
from tetrad.datasets.registry import register_dataset

log = logging.getLogger(__name__)

TRAIN_FOLDERS = ("dfdc_train_part_*", "train_sample_videos")
TEST_FOLDER = "test"
_TRAIN_LABELS = {"REAL": 0, "FAKE": 1}
_TEST_LABELS = {0: 0, 1: 1}
_CSV_LABELS = {"0": 0, "1": 1}
DEFAULTS: dict[str, Any] = {"part": "test"}


def expected_counts(t: pd.DataFrame) -> list[Expectation]:
    """Counts of the released DFDC test set (5000 videos) and of Kaggle's train_sample_videos (400 videos)."""
    out = []
    test = t[t["split"] == "test"]
    if len(test):
        out += [Expectation("test videos", 5000, len(test)), Expectation("real test videos", 2500,
                count(test["label"] == 0)), Expectation("fake test videos", 2500, count(test["label"] == 1))]
    sample = t[t["video_id"].str.startswith("train_sample_videos/")]
    if len(sample):
        out += [Expectation("train_sample_videos", 400, len(sample)),
                Expectation("train_sample_videos fakes", 323, count(sample["label"] == 1))]
    return out


@register_dataset("dfdc", expected=expected_counts)
def dfdc_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    opts = check_options(options, DEFAULTS, "dfdc")
    if opts["part"] == "train":
        rows = _train_rows(root)
    elif opts["part"] == "test":
        rows = _test_rows(root)
    else:
        raise ValueError(f"dataset.options.part: {opts['part']!r} is not one of ['train', 'test']")
    return manifest_table(rows, root)


def _train_rows(root: Path) -> list[dict[str, Any]]:
    files = sorted(p for pattern in TRAIN_FOLDERS for p in root.glob(f"{pattern}/metadata.json"))
    if not files:
        raise FileNotFoundError(f"no {' or '.join(f'{p}/metadata.json' for p in TRAIN_FOLDERS)} under {root}")
    rows = []
    for path in files:
        for name, (label, original, split) in read_metadata(path).items():
            rows.append(_row(f"{path.parent.name}/{name}", label, original or name, split or "train"))
    log.info("DFDC train: %d videos from %d metadata.json files", len(rows), len(files))
    return rows


def _test_rows(root: Path) -> list[dict[str, Any]]:
    labels_csv, meta = root / TEST_FOLDER / "labels.csv", root / TEST_FOLDER / "metadata.json"
    if labels_csv.is_file():
        entries = {name: (label, None, "test") for name, label in read_labels_csv(labels_csv).items()}
    elif meta.is_file():
        entries = read_metadata(meta)
    else:
        raise FileNotFoundError(f"neither {labels_csv} nor {meta} exists (the DFDC test set's labels)")
    return [_row(f"{TEST_FOLDER}/{name}", label, name, "test") for name, (label, _, _) in entries.items()]


def _row(rel: str, label: int, group_file: str, split: str) -> dict[str, Any]:
    modality = 0 if label == 0 else None  # a real file is real throughout; a fake's modality is not told
    return {"rel": rel, "label": label, "audio_label": modality, "video_label": modality, "category": None,
            "method": "real" if label == 0 else None, "group": Path(group_file).stem, "split": split}


def read_metadata(path: Path) -> dict[str, tuple[int, str | None, str | None]]:
    """{file: (label, original, split)} from either metadata.json format (training parts or test set)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected an object {{file: {{...}}}}, got {type(data).__name__}")
    return {name: _entry(entry, f"{path}: {name}") for name, entry in data.items()}


def _entry(entry: Any, where: str) -> tuple[int, str | None, str | None]:
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected an object, got {entry!r}")
    if "label" in entry:  # training-part format
        label = parse_label(entry["label"], where, _TRAIN_LABELS)
        original = entry.get("original")
        if original is not None and not isinstance(original, str):
            raise DatasetError(f"{where}: `original` is {original!r}, expected a file name or null")
        split = normalize_split(entry["split"], where) if entry.get("split") else None
        return label, original, split
    if "is_fake" in entry:  # test-set format
        value = entry["is_fake"]
        return parse_label(value if type(value) is int else str(value), where, _TEST_LABELS), None, "test"
    raise DatasetError(f"{where}: entry has neither `label` (training parts) nor `is_fake` (test set): "
                       f"keys {sorted(entry)}")


def read_labels_csv(path: Path) -> dict[str, int]:
    """{file: label} from `filename,label` (1 = fake)."""
    with path.open(newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    if not lines or [c.strip() for c in lines[0]] != ["filename", "label"]:
        raise DatasetError(f"{path}: header {lines[0] if lines else 'missing'}, expected filename,label")
    out = {}
    for n, values in enumerate(lines[1:], start=2):
        if len(values) != 2:
            raise DatasetError(f"{path}:{n}: {len(values)} values, expected 2 (filename,label)")
        out[values[0]] = parse_label(values[1].strip(), f"{path}:{n}", _CSV_LABELS)
    return out
