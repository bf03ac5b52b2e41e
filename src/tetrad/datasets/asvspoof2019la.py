"""ASVspoof 2019 LA (audio only): the CM protocols `ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt`.

Each protocol line has 5 space-separated fields, `SPEAKER FILE - SYSTEM KEY`, e.g.
`LA_0079 LA_T_1271820 - A01 spoof`; bonafide = real (0), spoof = fake (1); SYSTEM is `-` for bona fide (method
`bonafide`), A01-A19 for spoof. The media are `LA/ASVspoof2019_LA_<part>/flac/<FILE>.flac`; the speaker is the
group; train/dev/eval become the splits train/val/test. The ASVspoof 2021 key files (8 fields) and the 4-field
protocols some repositories derive are rejected with a message saying so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.datasets.common import (DatasetError, Expectation, check_options, count, manifest_table, normalize_split,
                                    parse_label)
from tetrad.datasets.registry import register_dataset

PROTOCOL_DIR = "ASVspoof2019_LA_cm_protocols"
PARTS = {"train": ("train.trn", "T"), "dev": ("dev.trl", "D"), "eval": ("eval.trl", "E")}  # file suffix, id letter
_KEYS = {"bonafide": 0, "spoof": 1}
_SYSTEM = re.compile(r"^A\d\d$")
DEFAULTS: dict[str, Any] = {"parts": ["train", "dev", "eval"]}


def expected_counts(t: pd.DataFrame) -> list[Expectation]:
    """Line and bona fide counts of the official ASVspoof 2019 LA CM protocols, per part."""
    out = []
    for split, part, lines, bonafide in (("train", "train", 25380, 2580), ("val", "dev", 24844, 2548),
                                         ("test", "eval", 71237, 7355)):
        rows = t[t["split"] == split]
        if len(rows):
            out += [Expectation(f"{part} protocol lines", lines, len(rows)),
                    Expectation(f"{part} bona fide", bonafide, count(rows["label"] == 0))]
    return out


@register_dataset("asvspoof2019la", expected=expected_counts)
def asvspoof2019la_manifest(root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    opts = check_options(options, DEFAULTS, "asvspoof2019la")
    la = "LA/" if (root / "LA" / PROTOCOL_DIR).is_dir() else ""  # root may be the LA/ folder itself
    rows = []
    for part in opts["parts"]:
        if part not in PARTS:
            raise ValueError(f"dataset.options.parts: {part!r} is not one of {list(PARTS)}")
        path = root / f"{la}{PROTOCOL_DIR}/ASVspoof2019.LA.cm.{PARTS[part][0]}.txt"
        rows += [_row(fields, part, la) for fields in read_protocol(path, part)]
    return manifest_table(rows, root)


def read_protocol(path: Path, part: str) -> list[list[str]]:
    """The protocol's lines as 5 checked fields each."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (dataset.options.parts names {part!r})")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise DatasetError(f"{path}: the file is empty")
    return [_check_line(line.split(), f"{path}:{n}", part) for n, line in enumerate(lines, start=1)]


def _check_line(fields: list[str], where: str, part: str) -> list[str]:
    if len(fields) == 8:
        raise DatasetError(f"{where}: 8 fields: this is an ASVspoof 2021 key file (e.g. `LA_0009 LA_E_9332881 "
                           f"alaw ita_tx A07 spoof notrim eval`), not a 2019 LA CM protocol")
    if len(fields) == 4:
        raise DatasetError(f"{where}: 4 fields: a derived protocol without the speaker column; use the official "
                           f"5-field file `SPEAKER FILE - SYSTEM KEY`")
    if len(fields) != 5:
        raise DatasetError(f"{where}: {len(fields)} fields, expected 5 (`SPEAKER FILE - SYSTEM KEY`)")
    speaker, file, dash, system, key = fields
    label = parse_label(key, where, _KEYS)
    prefix = f"LA_{PARTS[part][1]}_"
    if not file.startswith(prefix) or dash != "-":
        raise DatasetError(f"{where}: expected `SPEAKER {prefix}<digits> - SYSTEM KEY` in the {part} protocol, "
                           f"got {' '.join(fields)!r}")
    if (label == 0) != (system == "-") or (label == 1 and not _SYSTEM.match(system)):
        raise DatasetError(f"{where}: system {system!r} does not fit key {key!r} (bonafide has `-`, spoof A01-A19)")
    return [speaker, file, system, str(label)]


def _row(fields: list[str], part: str, la: str) -> dict[str, Any]:
    speaker, file, system, label = fields[0], fields[1], fields[2], int(fields[3])
    return {"rel": f"{la}ASVspoof2019_LA_{part}/flac/{file}.flac", "label": label, "audio_label": label,
            "video_label": None, "category": None, "method": "bonafide" if system == "-" else system,
            "group": speaker, "split": normalize_split(part, part)}
