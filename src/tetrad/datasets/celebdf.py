"""Celeb-DF v2: `List_of_testing_videos.txt` (the official test list) plus, optionally, every other video.

Each line is `<label> <folder>/<file>.mp4` where **1 = real and 0 = fake**, the inverse of the manifest's
convention; the official file has no trailing newline. The listed videos are split `test`; with option
`all_videos: true` the unlisted videos of Celeb-real/, YouTube-real/ and Celeb-synthesis/ are added as `train`.
Groups are identities: `Celeb-real/idA_NNNN` and every fake `Celeb-synthesis/idA_idB_NNNN` made from it share
`idA`; a YouTube-real video is its own group. Celeb-DF is used as a video benchmark: audio_label is null.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.datasets.common import DatasetError, Expectation, check_options, count, manifest_table
from tetrad.datasets.registry import register_dataset

log = logging.getLogger(__name__)

LIST_FILE = "List_of_testing_videos.txt"
FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}  # folder -> manifest label
_FILE_LABEL = {"1": 0, "0": 1}  # the list's label -> manifest label (the list says 1 = real)
_IDENTITY = re.compile(r"^(id\d+)_")
DEFAULTS: dict[str, Any] = {"all_videos": False, "list_file": LIST_FILE}


def expected_counts(t: pd.DataFrame) -> list[Expectation]:
    """Counts of the official Celeb-DF v2 release: its 518-line test list and, with all_videos, its folders."""
    test = t[t["split"] == "test"]
    out = [Expectation("videos in the test list", 518, len(test)),
           Expectation("real test videos (label 1 in the list)", 178, count(test["label"] == 0)),
           Expectation("Celeb-real test videos", 108, count(test["category"] == "Celeb-real")),
           Expectation("YouTube-real test videos", 70, count(test["category"] == "YouTube-real")),
           Expectation("fake test videos (label 0 in the list)", 340, count(test["label"] == 1))]
    if (t["split"] == "train").any():  # all_videos: the folders' totals
        out += [Expectation(f"{folder} videos in all", n, count(t["category"] == folder))
                for folder, n in (("Celeb-real", 590), ("YouTube-real", 300), ("Celeb-synthesis", 5639))]
    return out


@register_dataset("celebdf", expected=expected_counts)
def celebdf_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    opts = check_options(options, DEFAULTS, "celebdf")
    listed = read_test_list(root / opts["list_file"])
    rows = [_row(rel, "test") for rel in listed]
    if opts["all_videos"]:
        known = set(listed)
        extra = [rel for rel in _all_videos(root) if rel not in known]
        rows += [_row(rel, "train") for rel in extra]
        log.info("%s: %d listed videos (test) + %d unlisted videos (train)", LIST_FILE, len(listed), len(extra))
    return manifest_table(rows, root)


def read_test_list(path: Path) -> list[str]:
    """The listed files, checked line by line: two fields, label 0/1, a known folder, a label matching it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: Celeb-DF v2 ships {LIST_FILE} at its root")
    lines = path.read_text(encoding="utf-8").splitlines()  # the official file has no trailing newline
    if not lines:
        raise DatasetError(f"{path}: the file is empty")
    files, mismatched = [], []
    for n, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) != 2:
            raise DatasetError(f"{path}:{n}: {line!r} has {len(fields)} fields, expected '<label> <folder>/<file>.mp4'")
        value, rel = fields
        folder = rel.split("/")[0]
        if value not in _FILE_LABEL:
            raise DatasetError(f"{path}:{n}: unknown label value {value!r} (expected 1 = real or 0 = fake)")
        if folder not in FOLDERS or rel.count("/") != 1 or not rel.endswith(".mp4"):
            raise DatasetError(f"{path}:{n}: {rel!r} is not <folder>/<file>.mp4 with a folder in {list(FOLDERS)}")
        if _FILE_LABEL[value] != FOLDERS[folder]:
            mismatched.append(n)
        files.append(rel)
    _check_labels(path, mismatched, len(lines))
    if len(set(files)) != len(files):
        raise DatasetError(f"{path}: {len(files) - len(set(files))} files are listed more than once")
    return files


def _check_labels(path: Path, mismatched: list[int], total: int) -> None:
    if mismatched and len(mismatched) == total:
        raise DatasetError(f"{path}: every label contradicts its folder: this copy uses 1 = fake, the official "
                           f"list uses 1 = real (restore the official file)")
    if mismatched:
        raise DatasetError(f"{path}:{mismatched[0]}: label contradicts the folder (1 = real: Celeb-real, "
                           f"YouTube-real; 0 = fake: Celeb-synthesis); {len(mismatched)} such lines")


def _all_videos(root: Path) -> list[str]:
    rels = []
    for folder in FOLDERS:
        if not (root / folder).is_dir():
            raise FileNotFoundError(f"{root / folder} not found (dataset.options.all_videos is true)")
        rels += [f"{folder}/{p.name}" for p in sorted((root / folder).glob("*.mp4"))]
    return rels


def _row(rel: str, split: str) -> dict[str, Any]:
    folder, name = rel.split("/")
    label = FOLDERS[folder]
    match = _IDENTITY.match(name)
    # A fake idA_idB_NNNN is made from Celeb-real/idA_NNNN: the identity idA groups them.
    group = match.group(1) if match and folder != "YouTube-real" else f"{folder}/{Path(name).stem}"
    return {"rel": rel, "label": label, "audio_label": None, "video_label": label, "category": folder,
            "method": "celeb-synthesis" if label else "real", "group": group, "split": split}
