"""One home per DVC stage: `mini`, `manifest`, `extract`, `detect`, `aggregate`, `summary`.

Each module has a typed `run(...)` (what tests call in-process, and what `tetrad run` chains in one process)
and a `main()` for the command line that DVC calls through the entry points in the top-level `stages/`.
"""

from __future__ import annotations

import argparse


def stage_arguments(doc: str | None, *names: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The required `--dataset NAME` (a key of `datasets` in params.yaml) and `--layer NAME` a stage takes."""
    parser = argparse.ArgumentParser(description=doc)
    for name in names:
        parser.add_argument(f"--{name}", required=True)
    return parser.parse_args(argv)
