"""The Ray connection of `engine=ray` (docs/scale-out.md): join or start a cluster for one stage, quietly, with
Ray Data set up as the stages need it, and leave nothing running behind. Ray is imported only here and only
when a stage runs on it, so the local engine never pays its import."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from tetrad.params import ConfigError, EngineParams

log = logging.getLogger(__name__)
REAP_POLL_S = 1.0  # how often a local cluster's reaper notes its processes


def init_kwargs(engine: EngineParams) -> dict[str, Any]:
    """ray.init's arguments: `local` starts a one-machine cluster whose node, ports and dashboard bind to
    `engine.host` (127.0.0.1 unless configured); `auto` joins RAY_ADDRESS's cluster; anything else is an address."""
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    if engine.address != "local":
        if engine.address == "auto" and not os.environ.get("RAY_ADDRESS"):
            raise ConfigError("engine.address=auto joins the cluster named by RAY_ADDRESS, which is not set "
                              "(export RAY_ADDRESS=<head>:6379, or set engine.address)")
        return {"address": engine.address, **common}
    return {"address": "local", "num_cpus": engine.num_cpus, "num_gpus": engine.num_gpus,
            "include_dashboard": engine.dashboard, "dashboard_host": engine.host,
            "_node_ip_address": engine.host, **common}


@contextlib.contextmanager
def connected(engine: EngineParams) -> Iterator[None]:
    """Ray, connected for the block: joined (or a local cluster started) on entry, disconnected on exit however
    the block ends, which also stops a local cluster and the job's workers. A connection already made in this
    process (a caller's own ray.init) is used as is and left open."""
    try:
        import ray
    except ImportError:
        raise ConfigError("engine=ray needs Ray on this machine: pip install 'ray[data]' (make install pins it)") \
            from None
    if ray.is_initialized():
        _configure_data()
        yield
        return
    reaper = _start_reaper() if engine.address == "local" else None
    ray.init(**init_kwargs(engine))
    try:
        _configure_data()
        log.info("ray: %s", describe())
        yield
    finally:
        ray.shutdown()
        if reaper is not None:
            reaper.terminate()
            reaper.wait()


def _start_reaper() -> subprocess.Popen:
    """A watcher for a local cluster, in a session of its own: when this process dies without shutting Ray down
    (kill -9), it kills what is left. Ray 2.60's GCS and raylet follow their driver, but its dashboard and
    runtime-env agents were measured to outlive it for minutes, adopted by init."""
    return subprocess.Popen([sys.executable, "-c", f"from tetrad.cluster import reap; reap({os.getpid()})"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)


def reap(parent: int) -> None:
    """The reaper's body: note the Ray processes under `parent` every REAP_POLL_S while it lives, then kill those
    still running (the same process: pid and start time)."""
    import psutil

    seen: dict[int, float] = {}
    try:
        stage = psutil.Process(parent)
        while stage.is_running() and stage.status() != psutil.STATUS_ZOMBIE:
            for child in stage.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.pid != os.getpid() and _is_ray(child):
                        seen[child.pid] = child.create_time()
            time.sleep(REAP_POLL_S)
    except psutil.Error:
        pass
    for pid, created in seen.items():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.create_time() == created:
                proc.kill()


def _is_ray(proc: Any) -> bool:
    text = " ".join([proc.name(), *proc.cmdline()[:2]])
    return any(mark in text for mark in ("ray::", "raylet", "gcs_server", "/ray/", "ray."))


def _configure_data() -> None:
    """Ray Data as the stages need it: rows in input order (the batch plan and the shard files depend on order),
    and no progress bars of its own (the stage shows one bar with a true total)."""
    from ray.data import DataContext
    from ray.data.context import ShuffleStrategy

    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True
    # detect's groupby(batch) as a sort of tasks: the default hash shuffle starts aggregator actors, which took
    # 26 s of a 40-s tiny detect on 2 cores (14 s with the sort); a window's few thousand batches sort quickly
    ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def describe() -> str:
    """One line on the connected cluster: address, nodes, CPUs and GPUs."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    address = ray.get_runtime_context().gcs_address
    return (f"cluster {address}: {len(nodes)} node(s), {total.get('CPU', 0):g} CPUs, "
            f"{total.get('GPU', 0):g} GPUs")


def worker_setup(project: str, cpus: float) -> None:
    """On a Ray worker, before Tetrad's code runs there: log as the stages do (Ray relays the worker's stderr to
    the driver) and stay offline; work in the driver's project folder, so its relative paths (weights, caches,
    the manifest's media) name the same files (every node mounts it at the same path, docs/scale-out.md); and
    run torch on as many threads as the task or actor holds CPUs: CPU results depend in their last bits on the
    thread count, so the local engine's bytes come back when it equals the local process's."""
    import torch

    from tetrad.env import setup

    setup()
    try:
        os.chdir(project)
    except OSError as exc:
        raise ConfigError(f"engine=ray: the project folder {project} is not on this node ({exc.strerror}); every "
                          "node must see it at the same path (shared storage, docs/scale-out.md)") from None
    torch.set_num_threads(max(1, int(cpus)))
