"""engine=ray gives the local engine's bytes, on a one-machine Ray cluster started the way `engine.address=local`
starts it: the extract shards of the audio and frames caches and the audio layer's scores (variable shapes,
batches across shards), and a killed run resumes. Every cache kind and layer on a two-node cluster, with
workers killed: tests/test_pipeline.py."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from tetrad import cluster, schemas
from tetrad.datasets import build_manifest
from tetrad.io import read_table, write_table
from tetrad.params import DatasetParams, EngineParams, Params, load_params
from tetrad.paths import Paths
from tetrad.stages import detect, extract

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
# a few of the mini clips, the faulty ones among them, in three shards of two (batches of three cross them)
VIDEOS = ["clips/s0_A", "clips/s1_B", "faulty/truncated", "faulty/no_audio", "faulty/no_face", "faulty/short"]
# CPU results depend in their last bits on torch's thread count (RetinaFace's landmarks by 0.01 px between 1 and
# 2 threads), so each Ray task and actor gets the threads of the local engine's process it stands for: an extract
# worker (cores / extract.workers, with workers=1 here) and detect's main process. A local cluster's CPUs are
# logical: it may hold more than the machine has.
THREADS = torch.get_num_threads()
KINDS = ["audio", "frames"]
RAY = EngineParams(name="ray", num_cpus=3 * THREADS, extract_cpus=os.cpu_count() or 1, cutters=2,
                   actor_cpus=THREADS)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Params:
    """The demo's params with tiny models, demo weights of the test's own, 2-video shards and 30 mouth frames."""
    params = load_params(ROOT / "params.yaml")
    weights = replace(params.weights, dir=str(tmp_path_factory.mktemp("weights")), allow_demo=True)
    layer = {n: replace(cfg, variant="tiny", device="cpu", batch_size=3) for n, cfg in params.layer.items()}
    ex = replace(params.extract, kinds=KINDS, shard_size=2, workers=1,
                 mouths=replace(params.extract.mouths, max_frames=30))
    return replace(params, weights=weights, layer=layer, extract=ex)


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray cluster for the module, started as `engine.address=local` starts it."""
    with cluster.connected(RAY):
        yield


@pytest.fixture(scope="module")
def roots(tiny, mini_root, tmp_path_factory, ray_local) -> dict[str, Path]:
    """The same manifest in two project folders, extracted and scored by each engine."""
    manifest = build_manifest(DatasetParams(root=str(mini_root)))
    manifest = manifest[manifest["video_id"].isin(VIDEOS)].reset_index(drop=True)
    assert len(manifest) == len(VIDEOS)
    out = {}
    for name, engine in (("local", EngineParams()), ("ray", RAY)):
        root = tmp_path_factory.mktemp(name)
        write_table(manifest, Paths("mini", root).manifest, schemas.MANIFEST)
        params = replace(tiny, engine=engine)
        extract.run(params, "mini", root)
        detect.run(params, "mini", "audio", root)
        out[name] = root
    return out


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("part-*.parquet"))


@pytest.mark.parametrize("kind", KINDS)
def test_ray_extract_writes_the_same_shards(roots, kind):
    local, ray = Paths("mini", roots["local"]).cache(kind), Paths("mini", roots["ray"]).cache(kind)
    assert _files(local) == _files(ray) and len(_files(local)) == 3
    schema = schemas.AUDIO if kind == "audio" else schemas.FRAMES
    for name in _files(local):
        pd.testing.assert_frame_equal(read_table(local / name, schema), read_table(ray / name, schema),
                                      check_exact=True)


def test_ray_detect_gives_the_same_scores(roots, layer="audio"):
    tables = [read_table(Paths("mini", roots[n]).scores(layer), schemas.SCORES).drop(columns="compute_s")
              for n in ("local", "ray")]
    assert schemas.scored(tables[0]["status"]).sum() > 0
    pd.testing.assert_frame_equal(*tables, check_exact=True)  # every logit to the last bit
    assert set(tables[1]["video_id"]) == set(VIDEOS)


def test_run_info_says_which_engine_ran(roots):
    import json

    info = {n: json.loads(Paths("mini", roots[n]).score_info("audio").read_text()) for n in ("local", "ray")}
    assert info["local"]["engine"]["name"] == "local" and info["ray"]["engine"]["name"] == "ray"
    assert "1 node(s)" in info["ray"]["timing"]["cluster"]


def test_a_killed_ray_extract_resumes_from_finished_shards(roots, tiny, tmp_path, caplog):
    """The resume contract of the local engine: finished shards are kept, only the missing one is written."""
    root = tmp_path / "resume"
    shutil.copytree(roots["ray"] / "data", root / "data")
    audio = Paths("mini", root).cache("audio")
    lost = _files(audio)[1]
    (audio / lost).unlink()
    (audio / f".{lost}.123.tmp").write_bytes(b"half")  # what a task killed while writing leaves
    caplog.set_level("INFO")
    counts = extract.run(replace(tiny, engine=RAY, extract=replace(tiny.extract, kinds=["audio"])), "mini", root)
    assert "1 shards to write, 2 already done (resumed)" in caplog.text
    assert sum(counts["audio"].values()) == 2
    assert _files(audio) == _files(Paths("mini", roots["local"]).cache("audio"))
    assert not list(audio.glob(".*.tmp"))
