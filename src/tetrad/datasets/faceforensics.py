"""FaceForensics++: the official `splits/{train,val,test}.json` id pairs, expanded to reals and fakes.

A pair ["a", "b"] gives the real videos a and b (`original_sequences/youtube/<c>/videos/`) and, per method, the
fakes a_b and b_a (`manipulated_sequences/<method>/<c>/videos/`); the pair is the group, so a real video and
every fake made from it stay on the same side of a fold. DeepFakeDetection (with its real `actors/` videos) has
no official split: its files are listed from disk with split null, grouped by the (target) actor.
FF++ videos are used without audio: audio_label is null and video_label = label.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.datasets.common import DatasetError, Expectation, check_options, count, manifest_table, read_json
from tetrad.datasets.registry import register_dataset

log = logging.getLogger(__name__)

COMPRESSIONS = ("raw", "c23", "c40")
PAIRED_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
DFD = "DeepFakeDetection"
SPLIT_FILES = ("train", "val", "test")  # splits/<name>.json; FF++ itself calls them train/val/test
DEFAULTS: dict[str, Any] = {"compression": "c23", "methods": list(PAIRED_METHODS), "splits_dir": None}


def expected_counts(t: pd.DataFrame) -> list[Expectation]:
    """Counts of the official FF++ splits (360/70/70 id pairs) and of the DeepFakeDetection release (363 actors)."""
    out = []
    fakes = sorted(set(t["method"]) - {"real", DFD})
    for split, pairs in (("train", 360), ("val", 70), ("test", 70)):
        part = t[t["split"] == split]
        out.append(Expectation(f"{split} real videos ({pairs} pairs x 2)", 2 * pairs, count(part["method"] == "real")))
        out += [Expectation(f"{split} {m} fakes", 2 * pairs, count(part["method"] == m)) for m in fakes]
    if (t["method"] == DFD).any():
        out.append(Expectation("DeepFakeDetection actors (real)", 363, count(t["split"].isna() & (t["label"] == 0))))
    return out


@register_dataset("faceforensics", expected=expected_counts)
def faceforensics_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    opts = check_options(options, DEFAULTS, "faceforensics")
    comp, methods = opts["compression"], opts["methods"]
    if not isinstance(methods, list):
        raise ValueError(f"dataset.options.methods: expected a list of method names, got {methods!r}")
    if comp not in COMPRESSIONS:
        raise ValueError(f"dataset.options.compression: {comp!r} is not one of {COMPRESSIONS}")
    unknown = sorted(set(methods) - {*PAIRED_METHODS, DFD})
    if unknown:
        raise ValueError(f"dataset.options.methods: unknown {unknown} (known: {[*PAIRED_METHODS, DFD]})")
    splits_dir = root / opts["splits_dir"] if opts["splits_dir"] else root / "splits"
    pairs = read_splits(splits_dir)
    rows = [row for split, pair_list in pairs.items() for pair in pair_list
            for row in _pair_rows(pair, split, comp, [m for m in methods if m != DFD])]
    if DFD in methods:
        rows += _dfd_rows(root, comp)
    return manifest_table(rows, root)


def read_splits(splits_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """{split: [(a, b), ...]} from the three official files; an id in two pairs is an error."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    owner: dict[str, str] = {}
    for split in SPLIT_FILES:
        path = splits_dir / f"{split}.json"
        pairs[split] = _read_pairs(path)
        for vid in (v for pair in pairs[split] for v in pair):
            if vid in owner:
                raise DatasetError(f"{path}: id {vid} is also listed in {owner[vid]}")
            owner[vid] = path.name
    return pairs


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    data = read_json(path, "copy dataset/splits/*.json of the FaceForensics repository there, or set "
                           "dataset.options.splits_dir")
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a list of [\"a\", \"b\"] id pairs, got {type(data).__name__}")
    for i, pair in enumerate(data):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) and v.isdigit() for v in pair)):
            raise DatasetError(f"{path}: item {i} is {pair!r}, expected a pair of id strings like [\"953\", \"974\"]")
    return [(a, b) for a, b in data]


def _pair_rows(pair: tuple[str, str], split: str, comp: str, methods: list[str]) -> list[dict[str, Any]]:
    a, b = pair
    common = {"audio_label": None, "category": None, "group": "_".join(sorted(pair)), "split": split}
    rows = [{**common, "rel": f"original_sequences/youtube/{comp}/videos/{v}.mp4", "label": 0, "video_label": 0,
             "method": "real"} for v in pair]
    rows += [{**common, "rel": f"manipulated_sequences/{m}/{comp}/videos/{t}_{s}.mp4", "label": 1, "video_label": 1,
              "method": m} for m in methods for t, s in ((a, b), (b, a))]
    return rows


def _dfd_rows(root: Path, comp: str) -> list[dict[str, Any]]:
    """DeepFakeDetection from disk: reals `<actor>__<scene>.mp4`, fakes `<target>_<source>__<scene>__<id>.mp4`."""
    folders = {0: f"original_sequences/actors/{comp}/videos", 1: f"manipulated_sequences/{DFD}/{comp}/videos"}
    rows = []
    for label, folder in folders.items():
        if not (root / folder).is_dir():
            raise FileNotFoundError(f"{root / folder} not found (dataset.options.methods includes {DFD})")
        for path in sorted((root / folder).glob("*.mp4")):
            actor = path.stem.split("_")[0]  # the actor filmed (the target of a fake)
            rows.append({"rel": f"{folder}/{path.name}", "label": label, "audio_label": None, "video_label": label,
                         "category": None, "method": DFD if label else "real", "group": f"actor{actor}",
                         "split": None})
    log.info("%s: %d files listed from disk with split null (no official split)", DFD, len(rows))
    return rows
