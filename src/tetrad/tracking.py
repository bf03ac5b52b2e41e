"""MLflow: one run per dataset evaluation (params flattened, metrics, reports as artifacts, provenance tags)."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tetrad.io import file_sha256
from tetrad.params import MlflowParams

log = logging.getLogger(__name__)


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become their string form (MLflow params are strings)."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a metrics.json; None (undefined, e.g. one-class AUC) is left out, not logged as 0."""
    return {k.replace("/", "_"): float(v) for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def git_sha(root: Path = Path(".")) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (out.stdout.strip() or "unknown") + ("-dirty" if dirty else "")


def run_tags(infos: Mapping[str, Mapping[str, Any]], manifest_sha: str, experiment: str,
             protocol: Mapping[str, Any] | None = None) -> dict[str, str]:
    """MLflow tags: code, pipeline, data and weights provenance (`infos`: each layer's detect run info) and the
    evaluation protocol with its departures from upstream's (tetrad.protocol)."""
    lock = Path("dvc.lock")
    protocol = protocol or {"name": "unknown", "departures": []}
    tags = {"git_sha": git_sha(), "dvc_lock_sha256": file_sha256(lock) if lock.is_file() else "none",
            "manifest_sha256": manifest_sha, "experiment": experiment, "protocol": protocol["name"],
            "protocol.departures": "; ".join(protocol["departures"]) or "none",
            "weights": "demo-random" if any(i["weights"] == "demo-random" for i in infos.values()) else "real"}
    for layer, info in infos.items():
        tags[f"weights.{layer}"] = info["weights"]
        tags[f"detector.{layer}"] = info["detector"]
        for slot, sha in info["weights_sha256"].items():
            tags[f"sha256.{layer}.{slot}"] = sha or "unknown"
        for key, value in info.get("input", {}).items():
            tags[f"input.{layer}.{key}"] = str(value)
    return tags


def log_run(cfg: MlflowParams, run_name: str, params: Mapping[str, Any], metrics: Mapping[str, Any],
            tags: Mapping[str, str], artifacts: list[Path]) -> str | None:
    """Log one run; returns its id (None when tracking is disabled)."""
    if not cfg.enabled:
        log.info("MLflow tracking disabled (mlflow.enabled=false)")
        return None
    import mlflow  # heavy import: only the aggregate stage pays for it

    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run(run_name=run_name) as run:
        flat = {k: str(v)[:6000] for k, v in flatten(params).items()}
        mlflow.log_params(flat)
        mlflow.log_metrics(numeric_metrics(metrics))
        mlflow.set_tags(dict(tags))
        for path in artifacts:
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            elif path.is_file():
                mlflow.log_artifact(str(path))
    log.info("MLflow run %s logged to %s (experiment %r)", run.info.run_id, cfg.tracking_uri, cfg.experiment)
    return run.info.run_id


def log_parent(cfg: MlflowParams, run_name: str, children: Mapping[str, str | None],
               metrics: Mapping[str, Any], artifacts: list[Path]) -> str | None:
    """A parent run over the per-dataset runs: MLflow nests runs whose `mlflow.parentRunId` tag names it."""
    if not cfg.enabled:
        return None
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_experiment(cfg.experiment)
    client = mlflow.MlflowClient()
    with mlflow.start_run(run_name=run_name) as parent:
        mlflow.log_metrics(numeric_metrics(metrics))
        mlflow.set_tags({"datasets": ",".join(children), "git_sha": git_sha()})
        for path in artifacts:
            mlflow.log_artifact(str(path))
    for dataset, run_id in children.items():
        if run_id:
            client.set_tag(run_id, "mlflow.parentRunId", parent.info.run_id)
    log.info("MLflow parent run %s over %s", parent.info.run_id, list(children))
    return parent.info.run_id
