"""Nothing lost on bad media: the bad-media corpus (tetrad.badmedia: 24 kinds of broken, odd and unreadable files)
goes through manifest -> extract -> detect (all five layers, tiny variants, demo weights) -> aggregate in-process,
and every file is a row of every table, with the status its case allows and a one-line error when not ok."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tetrad import schemas
from tetrad.badmedia import LONG_S, locked_paths, make_bad_media
from tetrad.params import compose_params, load_params
from tetrad.paths import Paths
from tetrad.stages import aggregate, detect, extract, manifest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
KIND_OF = {"audio": "audio", "semantic": "frames", "visual": "faces", "lip": "mouths", "sync": "mouths"}


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> tuple[Path, dict, dict]:
    """The corpus, and the pipeline run over it: (project folder, {video_id: case}, metrics)."""
    project = tmp_path_factory.mktemp("badmedia")
    cases = make_bad_media(project / "corpus")
    overrides = ["~dataset@datasets.mini", "+dataset@datasets.corpus=folder", "datasets.corpus.name=corpus",
                 f"datasets.corpus.root={project / 'corpus'}", f"weights.dir={project / 'weights'}",
                 "mlflow.enabled=false", "aggregate.bootstrap=20", "extract.mouths.max_frames=30",
                 f"extract.limits.max_duration_s={LONG_S / 2}", "extract.face.mouth_options.min_face_size=60",
                 *[f"layer.{layer}.variant=tiny" for layer in KIND_OF]]
    params = load_params(compose_params(project / "params.yaml", overrides, ROOT / "conf"))
    locked, access = locked_paths(project / "corpus"), os.access
    mp = pytest.MonkeyPatch()
    mp.setattr(os, "access", lambda p, mode, **kw: str(p) not in locked and access(p, mode, **kw))  # root reads all
    try:
        manifest.run(params, "corpus", project)
    finally:
        mp.undo()
    extract.run(params, "corpus", project)
    for layer in params.layer:
        detect.run(params, "corpus", layer, project)
    metrics = aggregate.run(params, "corpus", project)
    yield project, cases, metrics
    for path in locked:
        os.chmod(path, 0o644)  # so that pytest can clean up as a user too
    shutil.rmtree(project / "weights", ignore_errors=True)


def _check_rows(table: pd.DataFrame, ids: set[str], where: str) -> None:
    assert set(table["video_id"]) == ids, f"{where}: rows lost or added: {ids ^ set(table['video_id'])}"
    assert set(table["status"]) <= set(schemas.STATUSES), where
    bad = table[table["status"] != schemas.OK]
    assert bad["error"].notna().all() and not bad["error"].str.contains("\n").any(), where


def test_every_file_is_a_row_of_every_table(corpus_run):
    project, cases, _ = corpus_run
    paths, ids = Paths("corpus", project), set(cases)
    assert len(cases) >= 20
    _check_rows(pd.read_parquet(paths.manifest), ids, "manifest")
    for kind in KIND_OF.values():
        shards = sorted(paths.cache(kind).glob("part-*.parquet"))
        table = pd.concat([pd.read_parquet(s, columns=["video_id", "status", "error"]) for s in shards])
        _check_rows(table, ids, f"cache {kind}")
    for layer in KIND_OF:
        _check_rows(pd.read_parquet(paths.scores(layer)), ids, f"scores {layer}")
    videos = pd.read_parquet(paths.reports / "videos.parquet")
    assert set(videos["video_id"]) == ids and len(videos) == len(ids)


def test_each_file_gets_the_status_its_case_allows(corpus_run):
    project, cases, metrics = corpus_run
    videos = pd.read_parquet(Paths("corpus", project).reports / "videos.parquet").set_index("video_id")
    wrong = {(vid, layer, videos.loc[vid, f"{layer}_status"]): sorted(allowed)
             for vid, case in cases.items() for layer, allowed in case.expected().items()
             if videos.loc[vid, f"{layer}_status"] not in allowed}
    assert not wrong, wrong
    assert "symbolic link loop" in videos.loc["fake/loop", "audio_error"]
    assert "over extract.limits.max_duration_s" in videos.loc["fake/long_tiny", "visual_error"]
    assert metrics["n_videos"] == len(cases)
