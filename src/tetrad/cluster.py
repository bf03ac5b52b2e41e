"""The Ray connection of `engine=ray` (docs/scale-out.md): join or start a cluster for one stage, quietly, with
Ray Data set up as the stages need it, and leave nothing running behind. Ray is imported only here and only
when a stage runs on it, so the local engine never pays its import."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from tetrad.params import ConfigError, EngineParams

log = logging.getLogger(__name__)


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
    ray.init(**init_kwargs(engine))
    try:
        _configure_data()
        log.info("ray: %s", describe())
        yield
    finally:
        ray.shutdown()


def _configure_data() -> None:
    """Ray Data as the stages need it: rows in input order (the batch plan and the shard files depend on order),
    and no progress bars of its own (the stage shows one bar with a true total)."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True
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


def enter_project(folder: str) -> None:
    """On a Ray worker: work in the driver's project folder, so its relative paths (weights, caches, the
    manifest's media) name the same files there; every node mounts it at the same path (docs/scale-out.md)."""
    try:
        os.chdir(folder)
    except OSError as exc:
        raise ConfigError(f"engine=ray: the project folder {folder} is not on this node ({exc.strerror}); every "
                          "node must see it at the same path (shared storage, docs/scale-out.md)") from None
