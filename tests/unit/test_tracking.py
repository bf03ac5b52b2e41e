"""What an MLflow run of one evaluation carries: its name, description, headline metrics apart from the counters,
the report's files at the artifact root, the manifest as its dataset; and the runs link of MLflow 3's UI."""

from __future__ import annotations

import pandas as pd
import pytest

from tetrad.params import MlflowParams
from tetrad.tracking import (RunRecord, detectors_of, link_runs, log_run, run_description, run_name, runs_url,
                             split_metrics)


def metrics() -> dict:
    block = {"auc": 0.9, "auc_ci_low": 0.8, "auc_ci_high": 0.95, "ap": 0.88, "eer": 0.1, "acc": 0.85, "n": 10,
             "reason": None}
    return {"dataset": "mini", "experiment": "demo", "threshold": 0.5, "n_videos": 12,
            "layers": {"audio": {**block, "detector": "aasist", "weights": "real", "coverage": 0.9,
                                 "statuses": {"ok": 11, "no_audio": 1}},
                       "visual": {**block, "auc": None, "detector": "sbi", "weights": "demo-random"}},
            "fused": {"seed_weights": {**block, "weights": {"audio": 0.5}}, "logistic": {**block, "auc": 0.7}},
            "cascade": {**block, "trigger_rate": 0.4, "n_triggered": 4}}


def test_headline_metrics_stand_apart_from_the_counters():
    out = split_metrics(metrics())
    assert out["audio.auc"] == 0.9 and out["audio.auc_ci_low"] == 0.8 and out["fused.ap"] == 0.88
    assert out["logistic.auc"] == 0.7 and out["cascade.acc"] == 0.85 and out["cascade.trigger_rate"] == 0.4
    assert out["audio.coverage"] == 0.9
    assert "visual.auc" not in out  # undefined is left out, never logged as 0
    assert out["detail/layers.audio.statuses.ok"] == 11 and out["detail/cascade.n_triggered"] == 4
    assert out["detail/fused.seed_weights.weights.audio"] == 0.5
    assert not any(k.startswith("detail/") and k.endswith((".auc", ".ap", ".eer", ".acc")) for k in out)
    headline = [k for k in out if not k.startswith("detail/")]
    assert len(headline) == 31 and all(k.split(".")[0] in {"audio", "visual", "fused", "logistic", "cascade"}
                                      for k in headline)


def test_names_and_descriptions_say_what_ran():
    m = metrics()
    assert detectors_of(m) == "aasist+sbi"
    assert detectors_of({"layers": dict(reversed(m["layers"].items()))}) == "aasist+sbi"  # json.dump sorts keys
    assert run_name("mini", "demo", "aasist+sbi", None) == "mini · demo · aasist+sbi"
    assert run_name("mini", "demo", "swept-bass", "aasist+sbi") == "mini · demo · swept-bass · aasist+sbi"
    text = run_description(m, "swept-bass")
    assert text.startswith("**mini**: fused AUC 0.900 [0.800, 0.950], ACC 0.850 at threshold 0.5; cascade AUC 0.900")
    assert "12 videos, experiment `demo`, DVC experiment `swept-bass`. Detectors:" in text
    assert "visual `sbi` (DEMO-RANDOM weights)" in text and "audio `aasist` (real weights)" in text
    assert "| audio | 0.900 [0.800, 0.950] | 0.880 | 0.100 | 0.850 |" in text
    assert "| visual | n/a |" in text and "| cascade |" in text


def test_runs_link_opens_the_model_training_view():
    url = runs_url("http://127.0.0.1:5000/", "3", "tags.dataset = 'mini'")
    assert url.startswith("http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&searchFilter=")
    assert "tags.dataset%20%3D%20%27mini%27" in url


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> MlflowParams:
    root = tmp_path_factory.mktemp("mlflow")
    return MlflowParams(tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="tetrad-test")


def test_a_logged_run_carries_name_description_dataset_and_root_artifacts(store, tmp_path):
    import mlflow

    reports = tmp_path / "mini"
    (reports / "figures").mkdir(parents=True)
    (reports / "report.html").write_text("<html></html>")
    (reports / "figures" / "roc.png").write_bytes(b"png")
    manifest = pd.DataFrame({"video_id": ["a", "b"], "label": [0, 1], "path": ["a.mp4", "b.mp4"]})
    record = RunRecord(name="mini · demo · aasist+sbi", metrics=split_metrics(metrics()),
                       tags={"dataset": "mini", "manifest_sha256": "ab" * 32}, description="**mini** headline",
                       artifacts=[reports, reports / "figures" / "roc.png"], params={"a": {"b": 1}}, dataset=manifest)
    run_id = log_run(store, record)
    link_runs(store, "summary-id", {"mini": run_id})
    client = mlflow.MlflowClient(store.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.run_name == "mini · demo · aasist+sbi" and run.data.params == {"a.b": "1"}
    assert run.data.tags["mlflow.note.content"] == "**mini** headline"
    assert run.data.tags["tetrad.summary_run"] == "summary-id" and "mlflow.parentRunId" not in run.data.tags
    assert run.data.metrics["fused.auc"] == 0.9
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["mini"]
    assert {a.path for a in client.list_artifacts(run_id)} == {"report.html", "roc.png", "figures"}
    experiment = client.get_experiment_by_name("tetrad-test")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert log_run(MlflowParams(enabled=False), record) is None
