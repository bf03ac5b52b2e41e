"""`tetrad run`: every stage of dvc.yaml, in dependency order, each through its own `cmd` as DVC runs it, but
without DVC's bookkeeping: no dvc.lock and no run cache are written, so a fresh clone stays clean after
`make demo`. `dvc repro` runs the very same commands and records them (and skips what is up to date)."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tetrad.env import STAGE_ENV

log = logging.getLogger(__name__)


def stage_commands(root: Path = Path(".")) -> list[tuple[str, str]]:
    """(stage name, command) of every stage of dvc.yaml (foreach/matrix expanded), dependencies first."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        order = reversed(list(nx.lexicographical_topological_sort(graph, key=lambda s: s.addressing)))
        return [(stage.addressing, stage.cmd) for stage in order if stage.cmd]


def run(root: Path = Path("."), only: list[str] | None = None) -> int:
    """Run the stages (or those named in `only`, in pipeline order); stops at the first failing one."""
    commands = [(name, cmd) for name, cmd in stage_commands(root) if not only or name in only]
    for i, (name, cmd) in enumerate(commands, 1):
        log.info("stage %d/%d %s: %s", i, len(commands), name, cmd)
        start = time.perf_counter()
        # no shell in between: the stage's parent is this process, so it notices when this one dies (env.py)
        rc = subprocess.run(_python_of_this_env(cmd), cwd=root, env={**os.environ, STAGE_ENV: name}).returncode
        if rc != 0:
            log.error("stage %s failed (exit %d): %s", name, rc, cmd)
            return rc
        log.info("stage %s done in %.1f s", name, time.perf_counter() - start)
    return 0


def _python_of_this_env(cmd: str) -> list[str]:
    """`python ...` with this interpreter, so the stages run in the same environment as `tetrad run`."""
    words = shlex.split(cmd)
    if words and words[0] == "python":
        words[0] = sys.executable
    return words
