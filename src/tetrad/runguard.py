"""One pipeline run, one set of parameters: a guard against `params.yaml` changing under a running pipeline.

`dvc exp run -S ...` rewrites params.yaml even while a `dvc repro` runs in the same checkout (DVC releases its
lock while a stage's command runs); the stages of that repro which start afterwards would read the new values,
DVC would record them beside outputs made with the old ones, and the run would mix parameters without a word.
So each stage that DVC (or `tetrad run`) starts records the sha256 of the params.yaml it reads, under the id of
the process running the pipeline (`.dvc/tmp/tetrad-params-<pid>-<start>.json`); the first stage of a run
writes the record, every later stage of the same run compares with it and refuses to start when the file
changed. A `dvc exp run -S` in the workspace is one run that rewrites params.yaml before its first stage starts,
so it passes; queued experiments (`dvc exp run --queue`) run in their own copies of the project.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import psutil

from tetrad.errors import UserError

log = logging.getLogger(__name__)


class ParamsChanged(UserError):
    """params.yaml is not the one the running pipeline's earlier stages read."""

    hint = ("finish or stop the running pipeline and run it again; queue experiments instead of starting them "
            "beside it: `dvc exp run --queue -S ...`, then `dvc exp run --run-all`")


def check_params(stage: str, by_dvc: bool, params: Path = Path("params.yaml"), done: bool = False) -> None:
    """Refuse to start a stage whose params.yaml differs from the one its pipeline run's earlier stages read;
    with `done`, fail a stage whose params.yaml changed while it ran (DVC records the params it finds after a
    stage, which would no longer be those its outputs were made with). `stage` names the stage; `by_dvc` says
    whether DVC started it (else `tetrad run`)."""
    folder = params.parent / ".dvc" / "tmp"
    if not params.is_file() or not folder.is_dir():
        return  # not a DVC project: no pipeline run to compare with
    owner = pipeline_process(by_dvc)
    digest = hashlib.sha256(params.read_bytes()).hexdigest()
    record = folder / f"tetrad-params-{owner.pid}-{int(owner.create_time())}.json"
    if _claim(record, {"sha256": digest, "stage": stage, "time": time.time()}):
        _forget_dead(folder)
        return
    seen = json.loads(record.read_text())
    if seen["sha256"] != digest:
        raise ParamsChanged(f"{params}: changed while this pipeline run (pid {owner.pid}) was going: stage "
                            f"{seen['stage']} read sha256 {seen['sha256'][:12]}, stage {stage} would read "
                            f"{digest[:12]} (another `dvc exp run` rewrote it?); " + (
                                f"the outputs of stage {stage} were made with the earlier file and are not recorded"
                                if done else f"stage {stage} did not start"))


def pipeline_process(by_dvc: bool) -> psutil.Process:
    """The process running this stage's pipeline: the `dvc` process above DVC's shell, or `tetrad run` (the
    parent, which starts stages without a shell)."""
    if not by_dvc:
        return psutil.Process(os.getppid())
    for parent in psutil.Process().parents():
        with contextlib.suppress(psutil.Error):
            if any(Path(word).name == "dvc" or word == "dvc" for word in parent.cmdline()[:3]):
                return parent
    return psutil.Process(os.getppid())


def _claim(record: Path, content: dict) -> bool:
    """Write the run's record unless one exists: written whole to a temp file, then linked to its name, which
    fails if the name exists, so exactly one stage of a run writes it and no reader sees half of it."""
    temp = record.with_name(f".{record.name}.{os.getpid()}")
    temp.write_text(json.dumps(content))
    try:
        os.link(temp, record)
    except FileExistsError:
        return False
    finally:
        temp.unlink()
    log.info("pipeline run %s: params.yaml sha256 %s recorded", record.stem, content["sha256"][:12])
    return True


def _forget_dead(folder: Path) -> None:
    """Records of pipeline runs whose process is gone, and temp files of stages killed while writing one."""
    for old in folder.glob("tetrad-params-*.json"):
        pid, start = (int(x) for x in old.stem.split("-")[2:4])
        if not _alive(pid, start):
            old.unlink(missing_ok=True)
    for temp in folder.glob(".tetrad-params-*.json.*"):
        if not psutil.pid_exists(int(temp.suffix[1:])):
            temp.unlink(missing_ok=True)


def _alive(pid: int, start: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return psutil.pid_exists(pid) and int(psutil.Process(pid).create_time()) == start
    return False
