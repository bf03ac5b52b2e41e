"""engine.address=local: the one-machine cluster a stage starts dies with the stage, however the stage dies.
(A real two-node cluster, with Ray workers killed mid-stage: tests/test_pipeline.py.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.ray_cluster import ray_env, ray_processes

pytestmark = pytest.mark.slow


HOLDS_A_LOCAL_CLUSTER = """
import time
import ray
from tetrad import cluster
from tetrad.params import EngineParams
with cluster.connected(EngineParams(name="ray", num_cpus=1)):
    ray.get(ray.remote(lambda: 1).remote())  # a worker is up
    print("running", flush=True)
    time.sleep(300)
"""


def test_a_killed_driver_takes_its_local_cluster_with_it(sig=signal.SIGKILL):
    """engine.address=local: a stage killed with SIGKILL (no `finally` runs) leaves no Ray process; a stage
    that ends otherwise shuts Ray down in `cluster.connected`."""
    assert not ray_processes(), "a Ray cluster is already running"
    proc = subprocess.Popen([sys.executable, "-c", HOLDS_A_LOCAL_CLUSTER], env=ray_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == "running" or pytest.fail(proc.stdout.read())
    assert ray_processes()
    proc.send_signal(sig)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while ray_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ray_processes(), [" ".join(p.cmdline())[:80] for p in ray_processes()]
