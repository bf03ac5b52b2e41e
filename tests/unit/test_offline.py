"""Offline is true: with the network cut at the socket, logging an MLflow run (what the aggregate and summary stages
do) and the CLI's light commands look up and connect to nothing but 127.0.0.1. MLflow 3 looks up its telemetry
host on first use unless the environment says not to; `import tetrad` says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter (MLflow's telemetry starts once per process): every lookup and connection to a host
# other than this one is recorded and refused; the record is printed last.
GUARD = r"""
import json, socket, sys, time
seen = []
LOCAL = ("127.0.0.1", "localhost", "::1")
_lookup, _connect = socket.getaddrinfo, socket.socket.connect
def lookup(host, *a, **k):
    if host not in LOCAL:
        seen.append(["lookup", str(host)])
        raise OSError(f"network guard: lookup of {host}")
    return _lookup(host, *a, **k)
def connect(self, address):
    if isinstance(address, tuple) and address[0] not in LOCAL:
        seen.append(["connect", str(address[0])])
        raise OSError("network guard")
    return _connect(self, address)
socket.getaddrinfo, socket.socket.connect = lookup, connect
from tetrad import cli
from tetrad.params import MlflowParams
from tetrad.tracking import RunRecord, log_run
log_run(MlflowParams(tracking_uri=sys.argv[1], experiment="offline"),
        RunRecord(name="offline", metrics={"fused.auc": 0.5}, tags={"dataset": "x"}, description="d"))
for argv in (["detectors"], ["weights", "list"], ["where"]):
    try:
        cli.main(argv)
    except SystemExit:
        pass
time.sleep(3)  # MLflow's telemetry runs in a background thread
print(json.dumps(seen))
"""


def test_tracking_and_cli_reach_for_no_network(tmp_path):
    # a user's plain shell: MLflow also keeps quiet under pytest and CI (PYTEST_CURRENT_TEST, CI, ...), which would
    # hide the lookup this test is about
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    proc = subprocess.run([sys.executable, "-c", GUARD, f"sqlite:///{tmp_path / 'mlflow.db'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
