"""The whole DVC pipeline on the mini benchmark, in a throw-away copy of the repo, with tiny demo weights."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from tetrad.params import EngineParams
from tetrad.schemas import LAYERS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    env = {**(env or os.environ), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    generated = ("data/", "reports/", "dvc.lock", "mlflow.db", "dvc_plots/")  # a fresh clone has none of these
    return [f for f in out if (ROOT / f).is_file() and not f.startswith(generated)]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the repo whose layers use the tiny variants, after one `dvc repro`."""
    proj = tmp_path_factory.mktemp("proj")
    for rel in tracked_files():
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, proj / rel)
    config = proj / "conf/config.yaml"  # a second dataset: the mini clips in FakeAVCeleb's layout and adapter
    config.write_text(config.read_text().replace(
        "  - dataset@datasets.mini: mini\n",
        "  - dataset@datasets.mini: mini\n  - dataset@datasets.mini_fakeavceleb: mini_fakeavceleb\n"))
    for conf in (proj / "conf/layer").rglob("*.yaml"):
        conf.write_text(conf.read_text().replace("variant: full", "variant: tiny"))
    exp = proj / "conf/experiment/demo.yaml"
    exp.write_text(exp.read_text() + "aggregate:\n  bootstrap: 50\n")
    # CPU time: mouths of the first 30 frames only, and MTCNN without its smallest pyramid scales
    _edit(proj / "conf/extract/default.yaml", "max_frames: null", "max_frames: 30")
    _edit(proj / "conf/face/retinaface.yaml", "min_face_size: 20", "min_face_size: 60")
    tetrad = str(Path(sys.executable).parent / "tetrad")
    run([tetrad, "params"], proj)
    run(["git", "init", "-q"], proj)
    run(["git", "add", "-A"], proj)
    run(["git", "commit", "-qm", "test project"], proj)
    run([tetrad, "demo-weights"], proj)
    for layer in (*LAYERS, "face"):
        (proj / "weights" / layer).mkdir(parents=True, exist_ok=True)
    run(["dvc", "repro"], proj)
    return proj


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new))


def test_metrics_hold_layers_fusions_and_cascade(project):
    metrics = json.loads((project / "reports/mini/metrics.json").read_text())
    assert metrics["dataset"] == "mini" and metrics["n_videos"] == 30
    assert set(metrics["layers"]) == {"audio", "visual", "lip", "semantic", "sync"}
    assert metrics["layers"]["audio"]["label"] == "audio_label" and metrics["layers"]["sync"]["label"] == "label"
    assert {metrics["layers"][k]["label"] for k in ("visual", "lip", "semantic")} == {"video_label"}
    assert set(metrics["fused"]) == {"seed_weights", "tuned_weights", "logistic"}
    assert {"trigger_rate", "auc", "gpu_time_saved_frac"} <= set(metrics["cascade"])
    for block in metrics["layers"].values():
        assert block["weights"] == "demo-random" and 0.0 < block["coverage"] <= 1.0
        assert block["auc"] is not None
        assert block["statuses"]["partial"] == 1  # faulty/truncated, scored on what decoded
    assert metrics["layers"]["audio"]["coverage"] == 29 / 30  # all but faulty/no_audio
    report = (project / "reports/mini/report.md").read_text()
    assert "DEMO-RANDOM" in report and "Protocol: **tetrad**" in report
    assert "crops from retinaface on **DEMO-RANDOM retinaface weights**" in report
    assert metrics["protocol"]["name"] == "tetrad"
    assert "layer.audio.options.windows: 'all' (upstream: 'first')" in metrics["protocol"]["departures"]
    summary = (project / "reports/summary.csv").read_text().splitlines()
    assert summary[0].startswith("dataset,n_videos") and summary[1].startswith("mini,30")
    assert summary[2].startswith("mini_fakeavceleb,24") and len(summary) == 3


def test_second_dataset_is_read_by_the_fakeavceleb_adapter(project):
    metrics = json.loads((project / "reports/mini_fakeavceleb/metrics.json").read_text())
    assert metrics["n_videos"] == 24 and metrics["layers"]["audio"]["coverage"] == 1.0
    assert set(metrics["per_category"]) == {"A", "B", "C", "D"}
    videos = pd.read_parquet(project / "reports/mini_fakeavceleb/videos.parquet")
    assert set(videos["split"]) == {"train", "val", "test"}  # FakeAVCeleb has no official split: grouped


def test_no_manifest_row_is_lost(project):
    videos = pd.read_parquet(project / "reports/mini/videos.parquet").set_index("video_id")
    assert len(videos) == 30
    # the cut file is scored on what decoded (44 of 131 frames, 1.76 of 5.24 s), each layer saying so
    assert set(videos.loc["faulty/truncated", [f"{n}_status" for n in LAYERS]]) == {"partial"}
    assert "cut short" in videos.loc["faulty/truncated", "lip_error"]
    assert videos.loc["faulty/truncated", "visual_n_units"] == 2  # the SBI frames 0 and 43 of [0, 43, 86, 130]
    assert videos.loc["faulty/no_audio", "audio_status"] == "no_audio"
    assert videos.loc["faulty/short", "audio_status"] == "ok"  # 0.6 s: AASIST tiles it, as upstream does
    assert videos.loc["faulty/no_audio", "semantic_status"] == "ok"
    # the demo-random RetinaFace finds its pinned top-left "face" in every frame (faulty/no_face included, and
    # the report says its weights are random); the mouth track's MTCNN is real and finds none there
    assert videos.loc["faulty/no_face", "visual_status"] == "ok"
    assert videos.loc["faulty/no_face", "lip_status"] == "no_face"
    assert videos.loc["faulty/short", "lip_status"] == "too_short"  # 15 frames: no 25-frame clip
    assert videos.loc["faulty/no_face", "visual_n_units"] == 4 and videos.loc["clips/s0_A", "visual_n_units"] == 4
    assert videos.loc["clips/s0_A", "lip_n_units"] == 1 and videos.loc["clips/s0_A", "visual_n_skipped"] == 0
    assert videos.loc["faulty/no_face", "semantic_status"] == "ok"
    assert videos.loc["faulty/truncated", "fused_seed_weights"] >= 0
    # the sync layer: pictures and sound at once, so either missing stops it; 25 windows of the 30 frames
    assert videos.loc["faulty/no_audio", "sync_status"] == "no_audio"
    assert videos.loc["faulty/no_face", "sync_status"] == "no_face"
    assert videos.loc["clips/s0_A", "sync_n_units"] == 25 and videos.loc["faulty/short", "sync_n_units"] == 10
    assert videos["sync_av_offset"].dropna().between(-15, 15).all() and videos["sync_av_conf"].notna().sum() == 28


def test_second_repro_does_nothing(project):
    out = run(["dvc", "repro"], project)
    assert "Running stage" not in out


def test_threshold_sweep_reruns_only_aggregate(project):
    out = run(["dvc", "exp", "run", "-S", "aggregate.threshold=0.7"], project)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"aggregate@mini", "aggregate@mini_fakeavceleb", "summary"}, out
    metrics = json.loads((project / "reports/mini/metrics.json").read_text())
    assert metrics["threshold"] == 0.7
    # reports/ is git-ignored (a run's outputs are never the repo's), so the metrics reach `dvc exp show` through
    # DVC's cache: the experiment itself, not only the workspace, must carry them.
    out = run(["dvc", "exp", "show", "--json"], project)
    shown = json.loads(out[min(i for i in (out.find("["), out.find("{")) if i >= 0):])
    # The baseline commit has no dvc.lock (the repo ships none), so its entry holds an error instead of data.
    thresholds = [(m.get("data") or {}).get("threshold") for rev in _exp_revs(shown) if rev.get("rev") != "workspace"
                  for path, m in ((rev.get("data") or {}).get("metrics") or {}).items()
                  if path.endswith("mini/headline.json")]
    assert 0.7 in thresholds, shown


# The README's filter for `dvc exp show`: the experiment, the threshold, the AUCs
EXP_SHOW_FILTER = ["--drop", ".*", "--keep", r"Experiment|aggregate\.threshold|reports/mini/headline\.json:(auc|acc)\.fused"]


def _exp_revs(node):
    """Every revision entry (workspace, baseline, experiments) of `dvc exp show --json`, however nested."""
    if isinstance(node, dict):
        if "rev" in node and "data" in node:
            yield node
        for value in node.values():
            yield from _exp_revs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _exp_revs(value)


def test_dvc_metrics_and_plots_show_fit_a_terminal_and_render_offline(project, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # a terminal's width (without one, rich assumes 80)
    shown = run(["dvc", "metrics", "show"], project)
    assert "auc.audio" in shown and max(map(len, shown.splitlines())) <= 200, shown  # headline.json only
    out = run(["dvc", "exp", "show", "--no-pager", *EXP_SHOW_FILTER], project)
    assert "auc.fused" in out and "aggregate.threshold" in out and "…" not in out, out
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], project)
    page = tmp_path / "plots/index.html"
    assert "<script" not in page.read_text()  # images only: nothing to fetch from a CDN
    from tests.browser import loaded_images, screenshot

    images = loaded_images(page)
    assert len(images) >= 5 and all(width > 0 for _, width in images), images  # the figures of each dataset
    screenshot(page.as_uri(), tmp_path / "plots.png")


def test_mlflow_has_the_runs_with_provenance(project):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tetrad"])
    summaries = runs[runs["tags.tetrad.run_kind"] == "summary"]
    runs = runs[runs["tags.dataset"] == "mini"]
    assert len(runs) >= 2 and len(summaries) >= 2  # dvc repro + dvc exp run
    last = runs.iloc[0]
    assert last["tags.tetrad.summary_run"] in set(summaries["run_id"])
    assert last["tags.weights"] == "demo-random" and last["tags.weights.audio"] == "demo-random"
    assert {"metrics.visual.coverage", "metrics.lip.coverage", "metrics.detail/layers.lip.n_units"} <= set(runs.columns)
    assert last["tags.weights.lip"] == "demo-random" and last["tags.input.lip.mean_face"] == "demo-stand-in"
    assert last["tags.input.visual.face_detector"] == "retinaface" and last["tags.input.visual.kind"] == "faces"
    assert last["tags.input.visual.face_weights"] == "demo-random" and last["tags.input.lip.face_detector"] == "mtcnn"
    assert last["tags.protocol"] == "tetrad"
    assert "extract.face.options.max_size: 320 (upstream: 2048)" in last["tags.protocol.departures"]
    assert len(last["tags.manifest_sha256"]) == 64 and last["tags.git_sha"] != "unknown"
    assert "metrics.audio.auc" in runs.columns and "params.aggregate.threshold" in runs.columns


def _get(url: str, body: dict | None = None) -> dict:
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture()
def mlflow_ui(project):
    """`tetrad ui` on a free port of 127.0.0.1 over the project's runs: (base URL, the runs link it printed)."""
    import signal
    import socket
    import time
    import urllib.error

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "tetrad"), "ui", "--port", str(port)], cwd=project,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        link = re.search(r"open (\S+)", proc.stdout.readline()).group(1)
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                _get(f"{base}/api/2.0/mlflow/experiments/search?max_results=1")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, "mlflow server exited"
                time.sleep(0.5)
        yield base, link
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_mlflow_ui_shows_named_described_runs_with_headline_metrics(project, mlflow_ui, tmp_path):
    base, link = mlflow_ui
    exp = _get(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=tetrad")["experiment"]
    assert link == f"{base}/#/experiments/{exp['experiment_id']}/runs?workflowType=machine_learning"
    runs = _get(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]],
                                                       "max_results": 100})["runs"]
    names = [r["info"]["run_name"] for r in runs]
    expected = json.loads((project / "reports/mini/metrics.json").read_text())  # the sweep's outputs
    detectors = "+".join(expected["layers"][n]["detector"] for n in ("audio", "visual", "lip", "semantic", "sync"))
    assert f"mini · demo · {detectors}" in names and f"mini_fakeavceleb · demo · {detectors}" in names
    swept = [n for n in names if n.startswith("mini · demo · ") and n != f"mini · demo · {detectors}"]
    assert len(swept) == 1 and swept[0].endswith(f" · {detectors}"), names  # `dvc exp run` adds its name
    summaries = [n for n in names if n.startswith("summary · demo · ")]
    assert len(summaries) == 2 and "summary · demo · mini+mini_fakeavceleb" in summaries, names
    latest = next(r for r in runs if r["info"]["run_name"] == swept[0])
    tags = {t["key"]: t["value"] for t in latest["data"]["tags"]}
    metrics = {m["key"]: m["value"] for m in latest["data"]["metrics"]}
    fused = expected["fused"]["seed_weights"]
    assert metrics["fused.auc"] == pytest.approx(fused["auc"]) and metrics["fused.acc"] == pytest.approx(fused["acc"])
    assert {"audio.auc_ci_low", "cascade.eer", "semantic.ap", "logistic.acc_ci_high"} <= set(metrics)
    note = tags["mlflow.note.content"]
    assert note.startswith(f"**mini**: fused AUC {fused['auc']:.3f} [") and f"| fused | {fused['auc']:.3f} [" in note
    assert swept[0] == f"mini · demo · {tags['dvc_experiment']} · {detectors}"
    assert f"DVC experiment `{tags['dvc_experiment']}`" in note
    assert exp["tags"] and {"key": "mlflow.experimentKind", "value": "custom_model_development"} in exp["tags"]
    listed = _get(f"{base}/api/2.0/mlflow/artifacts/list?run_id={latest['info']['run_id']}")["files"]
    files = {f["path"] for f in listed}
    assert {"report.html", "metrics.json", "roc.png", "figures"} <= files  # Compare shows common root files

    from tests.browser import dom, screenshot

    assert swept[0] in dom(link), "the runs table did not list the runs"
    screenshot(link, tmp_path / "mlflow-runs.png", size="1500,900", budget_ms=20000)


def _tetrad(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([str(Path(sys.executable).parent / "tetrad"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_analyze_gives_the_pipelines_scores(project, tmp_path):
    """`tetrad analyze` (cascade off) runs the batch stages' code: on a few mini files, each layer's P(fake) and
    status, and the fused score, equal the pipeline's videos.parquet."""
    out = tmp_path / "analyze.jsonl"
    proc = _tetrad(["analyze", "data/mini/raw/clips/s0_A.mp4", "data/mini/raw/clips/s3_C.mp4",
                    "data/mini/raw/faulty", "--no-cascade", "--json", str(out)], project)
    assert proc.returncode == 0, proc.stderr[-3000:]  # every file gets a verdict (faulty/truncated: partial)
    assert "Traceback" not in proc.stderr
    assert "faulty/truncated.mp4" in proc.stdout and "DEMO-RANDOM" in proc.stdout
    videos = pd.read_parquet(project / "reports/mini/videos.parquet").set_index("video_id")
    found = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(found) == 6
    for r in found:
        vid = r["file"].removeprefix("data/mini/raw/").removesuffix(".mp4")
        batch = videos.loc[vid]
        for layer, key in (("audio", "1_audio"), ("visual", "2_visual"), ("lip", "3_lipsync"),
                           ("semantic", "4_semantic"), ("sync", "5_sync")):
            block = r["layer_results"][key]
            assert block["status"] == batch[f"{layer}_status"], (vid, layer)
            if block["status"] == "ok":
                assert abs(block["p_fake"] - batch[f"{layer}_p_fake"]) <= 1e-6, (vid, layer)
        fused = batch["fused_seed_weights"]
        assert (r["fusion"]["p_fake"] is None) == pd.isna(fused), vid
        if not pd.isna(fused):
            assert abs(r["fusion"]["p_fake"] - fused) <= 1e-6 and r["final_verdict"] == batch["verdict"], vid


def test_doctor_env_passes_after_demo_weights_and_fails_without_a_checkpoint(project):
    proc = _tetrad(["doctor", "--env", "--json"], project)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert {"python", "torch", "engine", "ffmpeg / PyAV", "weights aasist", "smoke analysis"} <= set(checks)
    assert checks["engine"]["detail"].startswith("local: extract in 2 worker processes")
    assert checks["smoke analysis"]["state"] == "ok" and "audio" in checks["smoke analysis"]["detail"]
    assert checks["weights aasist"]["state"] == "warn"  # demo-random, accepted by the demo's allow_demo
    demo = project / "weights/audio/demo-random/AASIST.pth"
    aside = demo.with_name("moved-away")
    demo.rename(aside)
    try:
        proc = _tetrad(["doctor", "--env"], project)
    finally:
        aside.rename(demo)
    assert proc.returncode == 1
    assert proc.stdout.rstrip().endswith("1 check FAIL: weights aasist")
    # nothing runs (or writes a demo file) in place of the missing checkpoint
    assert re.search(r"^skipped +smoke analysis +fix the failures above first", proc.stdout, re.M)


def test_the_html_report_shows_every_figure_and_the_worst_cases(project, tmp_path):
    """report.html in a real browser: every embedded image loads, the error analysis has thumbnails, the page
    fetches nothing (a self-contained file) and a screenshot is taken."""
    from tests.browser import loaded_images, screenshot

    report = project / "reports/mini/report.html"
    html = report.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    images = loaded_images(report)
    assert images and all(width > 0 for _, width in images), images
    classes = [c for c, _ in images]
    assert sum(c == "figure" for c in classes) == 4  # curves, distributions, reliability, confusion
    assert "thumb face" in classes and "thumb mouths" in classes and "thumb spectrogram" in classes
    assert (project / "reports/mini/figures/curves.png").is_file()
    screenshot(report.as_uri(), tmp_path / "report.png")


def test_engine_ray_on_a_two_node_cluster_gives_the_same_bytes_through_killed_workers(project, tmp_path,
                                                                                      monkeypatch):
    """`dvc exp run -S engine=ray` on a head and a second node (tests/ray_cluster.py), the caches extracted again
    on the cluster (in shards of 4 videos, so both nodes work; the units, and so the batches, come in the same
    order) and every layer scored there, while an extract task, a cutter and a model actor are
    SIGKILLed mid-stage: Ray retries them, and the caches, the scores and the per-video table equal the local
    engine's (timing columns aside); no worker of the stages is left running. Each Ray task and actor holds
    the threads of the local process it stands for (CPU results depend on torch's thread count in their last
    bits): an extract worker's (cores / extract.workers) and a fresh detect stage's (torch's default)."""
    from tests.ray_cluster import ray_env, ray_processes, run_killing, two_nodes
    from tetrad.envcheck import engine_check
    from tetrad.io import read_table
    from tetrad.params import load_params
    from tetrad.schemas import AUDIO, FRAMES, KINDS, SCORES

    copy = tmp_path / "proj"
    shutil.copytree(project, copy, symlinks=True)
    shutil.rmtree(copy / "data/mini/cache")
    workers = load_params(project / "params.yaml").extract.workers
    extract_cpus = max(1, (os.cpu_count() or 1) // workers)
    actor_cpus = int(subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                                    capture_output=True, text=True, check=True).stdout)
    ours = ("_ray_shards", "RayCutter", "RayScorer")  # in the titles of the Ray workers running Tetrad's code
    with two_nodes(cpus=max(extract_cpus, actor_cpus)) as address:
        monkeypatch.setenv("RAY_AUTH_MODE", "token")
        check = engine_check(replace(load_params(project / "params.yaml"),  # `tetrad doctor --env`'s line
                                     engine=EngineParams(name="ray", address=address)))
        assert check.state == "ok" and "2 node(s)" in check.detail, check
        cmd = ["dvc", "exp", "run", "-S", "engine=ray", "-S", f"engine.address={address}", "-S",
               f"engine.extract_cpus={extract_cpus}", "-S", f"engine.actor_cpus={actor_cpus}", "-S",
               "extract.shard_size=4", "aggregate@mini"]
        env = {**ray_env(), "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
        rc, out, killed = run_killing(cmd, copy, env, ours)
        assert rc == 0, out[-6000:]
        time.sleep(2)
        assert not [p for p in ray_processes() if any(n in " ".join(p.cmdline()) for n in ours)], \
            "a worker of the finished stages is still running"
    assert not ray_processes(), "Ray processes outlived `ray stop`"
    assert "2 node(s)" in out and "shards to write, 0 already done" in out
    assert {k.split(":")[0] for k in killed} >= {"_ray_shards", "RayScorer"}, (killed, out[-3000:])
    info = json.loads((copy / "data/mini/scores/lip.json").read_text())
    assert info["engine"]["name"] == "ray" and "2 node(s)" in info["timing"]["cluster"]
    for kind in KINDS:  # one shard of 30 videos locally, eight of at most four on the cluster: the same rows in order
        local, ray = (read_table(sorted((p / "data/mini/cache" / kind).glob("part-*.parquet")),
                                 AUDIO if kind == "audio" else FRAMES) for p in (project, copy))
        assert len(list((copy / "data/mini/cache" / kind).glob("part-*.parquet"))) == 8
        pd.testing.assert_frame_equal(local, ray, check_exact=True)
    _same_parquet(project / "data/mini/scores", copy / "data/mini/scores", SCORES, ["compute_s"])
    local = pd.read_parquet(project / "reports/mini/videos.parquet")
    ray = pd.read_parquet(copy / "reports/mini/videos.parquet")
    # timing aside, and the verdict: it follows aggregate.threshold, which a test above sweeps in the project
    # (the copy's exp run starts from the committed value); every score and status is compared
    aside = [c for c in local.columns if c.endswith("_compute_s")] + ["verdict"]
    pd.testing.assert_frame_equal(local.drop(columns=aside), ray.drop(columns=aside), check_exact=True)


def _same_parquet(local: Path, ray: Path, schema, drop: list[str]) -> None:
    from tetrad.io import read_table

    names = sorted(p.name for p in local.glob("*.parquet"))
    assert names and names == sorted(p.name for p in ray.glob("*.parquet")), local
    for name in names:
        pd.testing.assert_frame_equal(read_table(local / name, schema).drop(columns=drop),
                                      read_table(ray / name, schema).drop(columns=drop), check_exact=True)
