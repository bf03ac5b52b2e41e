"""Stage `mini_fakeavceleb`: the mini benchmark's clips re-laid out as FakeAVCeleb v1.2 (folders and meta_data.csv),
a second dataset that the real FakeAVCeleb adapter reads."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tetrad.env import setup
from tetrad.mini_layouts import export_fakeavceleb

log = logging.getLogger(__name__)


def run(source: Path = Path("data/mini/raw"), out: Path = Path("data/mini_fakeavceleb/raw")) -> Path:
    root = export_fakeavceleb(Path(source), Path(out))
    log.info("mini benchmark in FakeAVCeleb v1.2 layout written to %s", root)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=Path("data/mini/raw"), help="the mini benchmark to re-lay out")
    parser.add_argument("--out", type=Path, default=Path("data/mini_fakeavceleb/raw"))
    args = parser.parse_args(argv)
    setup()
    run(args.source, args.out)
    return 0
