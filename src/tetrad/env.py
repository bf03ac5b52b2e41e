"""The process environment every entry point sets first: offline, no telemetry, and one logging format."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Nothing Tetrad runs may reach for the network on its own: model hubs stay offline and telemetry stays off.
# MLflow 3 looks up its telemetry host on first use unless told not to; DO_NOT_TRACK is the cross-tool convention.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
_NOISY = ("urllib3", "filelock", "alembic", "matplotlib", "PIL", "numba")


def offline() -> None:
    """OFFLINE_ENV into this process's environment; a user's own setting of a variable wins. Importing `tetrad`
    calls it, so code that uses the package without a stage or the CLI is offline too."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def setup(verbose: bool = False) -> None:
    """Environment and logging for the stages and the CLI."""
    offline()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def resolve_device(device: str) -> torch.device:
    """`auto` is the GPU when there is one; anything else is torch's own device name (cpu, cuda:1, ...)."""
    import torch  # here, not at the top: the CLI and the light stages must not pay for torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


STAGE_ENV = "TETRAD_STAGE"  # set by `tetrad run` for the stages it starts, as DVC sets DVC_STAGE
WATCH_S = 0.5


def die_with(pid: int | None = None, reason: str = "its parent process died") -> None:
    """Exit as soon as process `pid` (default: this process's parent) is gone, kill -9 included, where nothing
    else would tell us. A daemon thread polls twice a second. The stages watch their parent when DVC or
    `tetrad run` started them (a user's own detached `nohup` run is left alone): a parent's death re-parents
    us, so `os.getppid()` changes. Extract workers watch their stage by pid: their parent is the fork server,
    which lives as long as any worker does. No orphan keeps running, holding memory and writing outputs
    nobody records; a half-written file is a temp file, which the next run removes."""
    parent = os.getppid()
    gone = (lambda: os.getppid() != parent) if pid is None else (lambda: process_gone(pid))

    def watch() -> None:
        while not gone():
            time.sleep(WATCH_S)
        logging.getLogger(__name__).error("process %d exits: %s", os.getpid(), reason)
        os._exit(3)

    threading.Thread(target=watch, name="die-with", daemon=True).start()


def process_gone(pid: int) -> bool:
    """Process `pid` has exited (a zombie, dead but not yet reaped by its parent, counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False  # no /proc (macOS): a zombie waits for its parent's reap, which follows soon


def stage_main(main: Callable[[], int | None]) -> int:
    """A stage's entry point (the top-level `stages/`): `guarded`; when DVC or `tetrad run` started the stage, an
    exit as soon as that pipeline dies (`die_with`) and a refusal to start when params.yaml changed since the
    run's earlier stages read it (tetrad.runguard)."""
    by_dvc, by_tetrad = os.environ.get("DVC_STAGE"), os.environ.get(STAGE_ENV)
    if not (by_dvc or by_tetrad):
        return guarded(main)  # started by hand or by a test: no pipeline to follow
    die_with(reason="the pipeline that started this stage died")
    return guarded(lambda: _params_checked(main, by_dvc or by_tetrad, bool(by_dvc)))


def _params_checked(main: Callable[[], int | None], stage: str, by_dvc: bool) -> int | None:
    from tetrad.runguard import check_params  # psutil, only for stages

    check_params(stage, by_dvc)
    code = main()
    check_params(stage, by_dvc, done=True)
    return code


def guarded(main: Callable[[], int | None], verbose: bool = False) -> int:
    """Run an entry point (a stage's or the CLI's). An error the user can fix (tetrad.errors.UserError: config,
    checkpoint, dataset, weights, command line) prints one line naming the file or key, and a hint, then exits 2;
    with `verbose` or TETRAD_DEBUG=1 it raises, traceback included. Anything else is a bug and keeps its traceback."""
    from tetrad.errors import UserError

    try:
        return int(main() or 0)
    except UserError as exc:
        if verbose or os.environ.get("TETRAD_DEBUG", "") not in ("", "0"):
            raise
        said = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)  # str() of a KeyError is repr
        message = " ".join(str(said).split())
        hint = f"hint: {exc.hint}; " if exc.hint else ""
        print(f"error: {message}\n{hint}TETRAD_DEBUG=1 shows the traceback", file=sys.stderr)
        return 2
