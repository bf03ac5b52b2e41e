"""Stage `mini`: generate the mini benchmark (deterministic, byte-identical across runs) into data/mini/raw."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tetrad.env import setup
from tetrad.mini import make_mini

log = logging.getLogger(__name__)


def run(out: Path = Path("data/mini/raw"), seed: int = 0) -> Path:
    root = make_mini(Path(out), seed=seed)
    log.info("mini benchmark written to %s (labels.csv, README.md)", root)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/mini/raw"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    setup()
    run(args.out, args.seed)
    return 0
