"""FakeAVCeleb v1.2: `meta_data.csv` at the dataset root (the `FakeAVCeleb_v1.2/` folder).

The official header ends in a comma (`...,gender,path,`), so every row carries 10 values: `path` holds the file
name and the unnamed 10th column the folder, e.g. `FakeAVCeleb/RealVideo-RealAudio/African/men/id00076`, whose
`FakeAVCeleb/` prefix stands for the dataset root. A widely copied edited variant (`...,gender,filename,path`,
folders under `FakeAVCeleb_v1.2/`, CRLF) is read too. race and gender are not kept (the manifest has no column).
There is no official split: a seeded hash of the source identity assigns train/val/test.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.datasets.common import DatasetError, Expectation, check_options, count, grouped_split, manifest_table
from tetrad.datasets.registry import register_dataset

log = logging.getLogger(__name__)

META = "meta_data.csv"
_BASE = ["source", "target1", "target2", "method", "category", "type", "race", "gender"]
HEADERS = (_BASE + ["path", ""], _BASE + ["filename", "path"])  # official, edited variant
# category -> (type folder, audio label, video label)
CATEGORIES = {
    "A": ("RealVideo-RealAudio", 0, 0),
    "B": ("RealVideo-FakeAudio", 1, 0),
    "C": ("FakeVideo-RealAudio", 0, 1),
    "D": ("FakeVideo-FakeAudio", 1, 1),
}
_ROOT_PREFIXES = ("FakeAVCeleb", "FakeAVCeleb_v1.2")
DEFAULTS: dict[str, Any] = {"split_seed": 0, "split_fractions": [0.7, 0.15, 0.15]}


def expected_counts(t: pd.DataFrame) -> list[Expectation]:
    """Counts of the official FakeAVCeleb v1.2 meta_data.csv (21566 rows, 500 source identities)."""
    out = [Expectation("files (21566 rows less 22 listed twice)", 21544, len(t)),
           Expectation("source identities", 500, t["group"].nunique())]
    return out + [Expectation(f"category {c} files", n, count(t["category"] == c))
                  for c, n in (("A", 500), ("B", 500), ("C", 9709), ("D", 10835))]


@register_dataset("fakeavceleb", expected=expected_counts)
def fakeavceleb_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    opts = check_options(options, DEFAULTS, "fakeavceleb")
    rows = _dedupe(read_meta(root / META))
    splits = grouped_split([r["group"] for r in rows], int(opts["split_seed"]), opts["split_fractions"])
    for row, split in zip(rows, splits):
        row["split"] = split
    counts = pd.Series(splits).value_counts().to_dict()
    log.info("%s: no official split; grouped split by source identity (seed %s, fractions %s): %s",
             META, opts["split_seed"], opts["split_fractions"], counts)
    return manifest_table(rows, root)


def read_meta(path: Path) -> list[dict[str, Any]]:
    """Rows of meta_data.csv as manifest rows (split not yet set); any format problem raises DatasetError."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: FakeAVCeleb's root is the FakeAVCeleb_v1.2/ folder "
                                f"that holds {META}")
    with path.open(newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    if not lines or lines[0] not in HEADERS:
        got = lines[0] if lines else "an empty file"
        raise DatasetError(f"{path}: header {got} is neither the official {','.join(HEADERS[0])} "
                           f"nor the variant {','.join(HEADERS[1])}")
    return [_parse_row(values, f"{path}:{n}") for n, values in enumerate(lines[1:], start=2)]


def _parse_row(values: list[str], where: str) -> dict[str, Any]:
    if len(values) != 10:
        raise DatasetError(f"{where}: {len(values)} values, expected 10 (file name in `path`, folder last)")
    source, _, _, method, category, kind, _, _, name, folder = values
    if category not in CATEGORIES:
        raise DatasetError(f"{where}: unknown category {category!r} (expected one of {sorted(CATEGORIES)})")
    expected_kind, audio, video = CATEGORIES[category]
    if kind != expected_kind:
        raise DatasetError(f"{where}: category {category} has type {kind!r}, expected {expected_kind!r}")
    parts = folder.split("/")
    if parts[0] in _ROOT_PREFIXES:
        parts = parts[1:]  # the prefix stands for the dataset root
    if not parts or parts[0] != kind or not name.endswith(".mp4"):
        raise DatasetError(f"{where}: folder {folder!r} / file {name!r} is not <root>/{kind}/.../<file>.mp4")
    return {"rel": "/".join([*parts, name]), "label": int(audio or video), "audio_label": audio,
            "video_label": video, "category": category, "method": method, "group": source}


def _dedupe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per file: 22 files of v1.2 are listed twice (methods faceswap-wav2lip and wav2lip); keep the first."""
    seen: dict[str, dict[str, Any]] = {}
    conflicts: list[str] = []
    for row in rows:
        first = seen.setdefault(row["rel"], row)
        if first is not row and first["category"] != row["category"]:
            raise DatasetError(f"{META}: {row['rel']} is listed as category {first['category']} and "
                               f"{row['category']}")
        if first is not row:
            conflicts.append(f"{row['rel']} ({first['method']} kept, {row['method']} dropped)")
    if conflicts:
        log.info("%s: %d duplicated rows dropped (same file listed twice), e.g. %s",
                 META, len(conflicts), conflicts[0])
    return list(seen.values())
