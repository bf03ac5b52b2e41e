"""A real two-node Ray cluster on 127.0.0.1 for the tests: a head and a second node started with `ray start`, as
docs/scale-out.md starts them on real machines, torn down with `ray stop`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
# Ray's processes, by the names they run under (gcs_server, raylet) and the titles of its workers (ray::...)
RAY_NAMES = ("gcs_server", "raylet", "ray::")


def ray_env() -> dict[str, str]:
    """Token authentication on every node and driver (Ray's own default for a `ray.init` cluster; `ray start`
    nodes must be told), and no usage reporting."""
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
            "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str) -> None:
    proc = subprocess.run([str(BIN / "ray"), *args], env=ray_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"ray {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def ray_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        text = " ".join([proc.info["name"] or "", *(proc.info["cmdline"] or [])])
        if any(name in text for name in RAY_NAMES) and proc.pid != os.getpid():
            found.append(proc)
    return found


@contextmanager
def two_nodes(cpus: int) -> Iterator[str]:
    """A head and a second node of `cpus` logical CPUs each (more than the machine's cores is fine: they are
    counts Ray schedules by); yields the head's address and stops both however the block ends."""
    port = _free_port()
    common = ["--node-ip-address", "127.0.0.1", f"--num-cpus={cpus}", "--num-gpus=0",
              "--object-store-memory=300000000", "--disable-usage-stats"]
    try:
        _ray("start", "--head", f"--port={port}", "--include-dashboard=false", *common)
        _ray("start", f"--address=127.0.0.1:{port}", *common)
        yield f"127.0.0.1:{port}"
    finally:
        _ray("stop", "--force")
        deadline = time.monotonic() + 30
        while ray_processes() and time.monotonic() < deadline:
            time.sleep(0.5)


def kill_one(name: str, killed: list[str]) -> None:
    """SIGKILL the first Ray worker whose title names `name`, once per name (noted in `killed`)."""
    if any(k.startswith(name) for k in killed):
        return
    for proc in ray_processes():
        try:
            title = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if name in title:
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(f"{name}: {title[:80]}")
            return


def run_killing(cmd: list[str], cwd: Path, env: dict[str, str], names: tuple[str, ...],
                timeout: float = 900) -> tuple[int, str, list[str]]:
    """Run `cmd`, killing one Ray worker per name in `names` as soon as one runs; returns its exit code,
    output and what was killed."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed: list[str] = []
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        for name in names:
            kill_one(name, killed)
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    out = proc.communicate()[0]
    return proc.returncode, out, killed
