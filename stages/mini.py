"""DVC stage `mini`: generate the mini benchmark (deterministic) into data/mini/raw."""

import argparse
import logging
from pathlib import Path

from tetrad.mini import make_mini
from tetrad.pipeline import setup

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("data/mini/raw"))
    args = parser.parse_args()
    setup()
    make_mini(args.out)
    logging.getLogger("stages.mini").info("mini benchmark written to %s (see its README.md)", args.out)
