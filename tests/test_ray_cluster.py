"""engine=ray on a real two-node cluster (tests/ray_cluster.py), with Ray worker processes killed mid-stage: the
stages complete through Ray's retries with the local engine's outputs, and nothing is left running afterwards.
(The pipeline itself on two nodes: tests/test_pipeline.py.)"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
import yaml

from tests.ray_cluster import ray_env, ray_processes, two_nodes
from tetrad import schemas
from tetrad.datasets import build_manifest
from tetrad.envcheck import engine_check
from tetrad.io import read_table, write_table
from tetrad.params import DatasetParams, EngineParams, Params, load_params
from tetrad.paths import Paths
from tetrad.stages import detect, extract

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
VIDEOS = ["clips/s0_A", "clips/s1_B", "clips/s2_C", "clips/s3_D", "faulty/truncated", "faulty/no_face"]
LAYER = "visual"  # SBI on face crops stored as boxes: the cutters cut them again from the videos
OURS = ("_ray_shards", "RayCutter", "RayScorer")  # in the titles of the Ray workers running Tetrad's code


def _tiny(weights: Path, mini_root: Path) -> Params:
    """Faces only, the visual layer only (tiny), two-video shards; threads as in tests/test_ray_engine.py."""
    params = load_params(ROOT / "params.yaml")
    datasets = {"mini": replace(params.datasets["mini"], root=str(mini_root))}
    return replace(params, datasets=datasets, weights=replace(params.weights, dir=str(weights), allow_demo=True),
                   layer={LAYER: replace(params.layer[LAYER], variant="tiny", device="cpu", batch_size=3)},
                   layer_names=[LAYER], extract=replace(params.extract, kinds=["faces"], shard_size=2, workers=1))


def _project(root: Path, params: Params, manifest: pd.DataFrame) -> Path:
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(dataclasses.asdict(params), sort_keys=False))
    write_table(manifest, Paths("mini", root).manifest, schemas.MANIFEST)
    return root


def _kill_one(name: str, killed: list[str]) -> None:
    """SIGKILL the first Ray worker whose title names `name` (once per name)."""
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


def _run_killing(cmd: str, cwd: Path, names: tuple[str, ...], timeout: float = 600) -> tuple[int, str, list[str]]:
    proc = subprocess.Popen(["bash", "-c", cmd], cwd=cwd, env=ray_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed: list[str] = []
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        for name in names:
            _kill_one(name, killed)
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    return proc.wait(), proc.stdout.read(), killed


@pytest.fixture(scope="module")
def reference(mini_root, tmp_path_factory) -> tuple[Params, pd.DataFrame, Path]:
    """The local engine's caches and scores of VIDEOS."""
    manifest = build_manifest(DatasetParams(root=str(mini_root)))
    manifest = manifest[manifest["video_id"].isin(VIDEOS)].reset_index(drop=True)
    params = _tiny(tmp_path_factory.mktemp("weights"), mini_root)
    root = _project(tmp_path_factory.mktemp("ref") / "proj", params, manifest)
    extract.run(params, "mini", root)
    detect.run(params, "mini", LAYER, root)
    return params, manifest, root


def test_killed_ray_workers_are_retried_and_the_outputs_are_the_local_engines(reference, tmp_path):
    params, manifest, ref = reference
    threads = torch.get_num_threads()
    engine = EngineParams(name="ray", extract_cpus=os.cpu_count() or 1, actor_cpus=threads)
    with two_nodes(cpus=max(engine.extract_cpus, threads)) as address:
        check = engine_check(replace(params, engine=replace(engine, address=address)))  # tetrad doctor --env's line
        assert check.state == "ok" and "2 node(s)" in check.detail, check
        root = _project(tmp_path / "proj", replace(params, engine=replace(engine, address=address)), manifest)
        py = sys.executable
        cmd = (f"{py} {ROOT}/stages/extract.py --dataset mini && "
               f"{py} {ROOT}/stages/detect.py --dataset mini --layer {LAYER}")
        rc, out, killed = _run_killing(cmd, root, OURS)
        assert rc == 0, out[-5000:]
        assert "2 node(s)" in out
        # an extract task and a model actor were killed while they worked (a cutter too, when it was seen)
        assert any(k.startswith("_ray_shards") for k in killed) and any(k.startswith("RayScorer") for k in killed), \
            (killed, out[-3000:])
        time.sleep(2)
        assert not [p for p in ray_processes() if any(n in " ".join(p.cmdline()) for n in OURS)], \
            "a worker of the finished stages is still running"
    assert not ray_processes(), "Ray processes outlived `ray stop`"
    for kind, schema, files in (("faces", schemas.FRAMES, "cache/faces"), (LAYER, schemas.SCORES, "scores")):
        ours = sorted((root / "data/mini" / files).glob("*.parquet"))
        theirs = sorted((ref / "data/mini" / files).glob("*.parquet"))
        assert [p.name for p in ours] == [p.name for p in theirs] and ours, kind
        for a, b in zip(ours, theirs):
            drop = ["compute_s"] if kind == LAYER else []
            pd.testing.assert_frame_equal(read_table(a, schema).drop(columns=drop),
                                          read_table(b, schema).drop(columns=drop), check_exact=True)


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


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_driver_takes_its_local_cluster_with_it(sig):
    """engine.address=local: a stage killed however (SIGKILL leaves no `finally`) leaves no Ray process."""
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
