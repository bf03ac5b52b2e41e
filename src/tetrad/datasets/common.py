"""What the dataset adapters share: reading label files and turning their rows into the manifest table.

The error a malformed label file raises, the builder of the manifest table from plain rows, split-name
normalisation, the seeded grouped split for datasets without an official one, option and label checks, and the
`Expectation` an adapter's count check returns (here, so an adapter need not import the doctor that prints it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from tetrad import schemas
from tetrad.errors import UserError

# Every adapter writes these split names, whatever the dataset calls them, so `dataset.split: test` means the
# same thing everywhere (LAV-DF/ASVspoof "dev" -> val, ASVspoof "eval" -> test).
SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "val": "val", "dev": "val", "valid": "val", "validation": "val",
                  "test": "test", "eval": "test"}
LABEL_COLUMNS = ("label", "audio_label", "video_label")


class DatasetError(UserError, ValueError):
    """A label or metadata file is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Expectation:
    """One count a dataset is known to have, against the count the adapter found; a mismatch is a warning."""

    what: str
    expected: int
    found: int

    @property
    def ok(self) -> bool:
        return self.expected == self.found


def count(mask: pd.Series) -> int:
    """The rows a boolean mask selects, as a plain int for an `Expectation`."""
    return int(mask.sum())


def manifest_table(rows: Iterable[Mapping[str, Any]], root: Path) -> pd.DataFrame:
    """MANIFEST-shaped table from rows of {rel, label, audio_label, video_label, category, method, group, split}.

    `rel` is the file's path relative to the dataset root with '/' separators; video_id is `rel` without its
    extension and path is the absolute path (root resolved once, not per file: a million stat calls is slow).
    """
    base = str(root.resolve())
    rows = list(rows)
    rels = [r["rel"] for r in rows]
    table = pd.DataFrame({
        "video_id": video_ids(rels),
        "path": [os.path.join(base, *rel.split("/")) for rel in rels],
        **{col: pd.array([r[col] for r in rows], dtype="Int8") for col in LABEL_COLUMNS},
        **{col: pd.Series([r.get(col) for r in rows], dtype=object) for col in ("category", "method")},
        "group": pd.Series([str(r["group"]) for r in rows], dtype=object),
        "split": pd.Series([r.get("split") for r in rows], dtype=object),
    })
    table["sha256"] = None
    table["status"] = schemas.OK
    table["error"] = None
    return table[schemas.MANIFEST.names]


def video_ids(rels: Sequence[str]) -> list[str]:
    """Each file's id: its relative path without the extension, or with it where two files differ only by their
    extension (`a.mp4` and `a.wav` are `a.mp4` and `a.wav`), so that ids stay unique."""
    stems = [_strip_suffix(rel) for rel in rels]
    counts = Counter(stems)
    return [rel if counts[stem] > 1 and stem != rel else stem for stem, rel in zip(stems, rels)]


def _strip_suffix(rel: str) -> str:
    suffix = PurePosixPath(rel).suffix
    return rel[: -len(suffix)] if suffix else rel


def normalize_split(value: Any, where: str) -> str:
    """train/val/test from the dataset's own name for it; anything else is a label-file error."""
    split = _SPLIT_ALIASES.get(str(value).strip().lower())
    if split is None:
        raise DatasetError(f"{where}: unknown split {value!r} (expected one of {sorted(_SPLIT_ALIASES)})")
    return split


def grouped_split(groups: Sequence[str], seed: int, fractions: Sequence[float]) -> list[str]:
    """train/val/test per row from a seeded hash of its group: a group never straddles two splits.

    The hash (not a shuffle) makes a group's split independent of which other groups are present, so adding
    or losing files never moves a group to another split.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be 3 non-negative numbers summing to 1, got {list(fractions)}")
    edges = np.cumsum(fractions)
    memo: dict[str, str] = {}
    for group in set(groups):
        digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        memo[group] = SPLITS[min(int(np.searchsorted(edges, u, side="right")), 2)]
    return [memo[g] for g in groups]


def check_options(options: Mapping[str, Any], defaults: Mapping[str, Any], adapter: str) -> dict[str, Any]:
    """The adapter's options with defaults filled in; an unknown key is an error naming the known ones."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"dataset.options.{unknown[0]}: unknown option of the {adapter} adapter "
                         f"(known: {sorted(defaults)})")
    return {**defaults, **options}


def parse_label(value: Any, where: str, allowed: Mapping[Any, int]) -> int:
    """Map a label cell through `allowed`; an unknown value is a label-file error naming it."""
    if value not in allowed:
        raise DatasetError(f"{where}: unknown label value {value!r} (expected one of {list(allowed)})")
    return allowed[value]


def read_json(path: Path, hint: str = "") -> Any:
    """A JSON label file, or one clear error naming it (missing: FileNotFoundError, malformed: DatasetError)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found{': ' + hint if hint else ''}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None


def read_json_list(path: Path, required: Iterable[str]) -> list[dict[str, Any]]:
    """A metadata file that is a JSON list of objects (AV-Deepfake1M, LAV-DF), or one clear error naming it."""
    data = read_json(path)
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise DatasetError(f"{path}: expected a list of objects with {list(required)}")
    return data
