"""MLflow: one run per dataset evaluation, laid out for MLflow 3's UI.

- Names say what ran: `mini · demo · aasist+sbi_effb4+...`, with the DVC experiment's name after the experiment's
  under `dvc exp run` (the runs table cuts long names: what tells runs apart comes first).
- The description (MLflow's run note) holds the headline table, so a run page opens on the numbers.
- Headline metrics (`<score>.auc`, `.ap`, `.eer`, `.acc`, each with `_ci_low`/`_ci_high`, per layer, fusion and
  cascade) stand apart from the counters, which go under `detail/` (MLflow's charts make that a section).
- Report files sit at the artifact root: MLflow's Compare view shows only root files common to the runs.
- Runs are not nested under the summary run: nested runs fold away in the runs table. `tetrad.summary_run` links
  them instead, and `tags.dataset` / the Dataset column filter them.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.io import file_sha256
from tetrad.params import MlflowParams
from tetrad.report import score_blocks, score_paths, with_ci
from tetrad.schemas import LAYERS

log = logging.getLogger(__name__)

HEADLINE_STATS = ("auc", "ap", "eer", "acc")
_CI = ("", "_ci_low", "_ci_high")
# MLflow 3.x before the sidebar's GenAI / Model training switch reads the experiment's kind from this tag
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development",
                   "mlflow.note.content": "Tetrad evaluations: one run per dataset and pipeline run, named "
                                          "`<dataset> · <experiment>[ · <DVC experiment>] · <detectors>`, plus one "
                                          "`summary` run per pipeline run. Filter with `tags.dataset = 'mini'`; "
                                          "headline metrics are `<score>.auc|ap|eer|acc`, counters `detail/...`."}


@dataclass(frozen=True)
class RunRecord:
    """Everything one MLflow run gets. Folders in `artifacts` are logged by content, at the artifact root."""
    name: str
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    description: str
    artifacts: Sequence[Path] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    dataset: pd.DataFrame | None = None  # the manifest, logged as the run's input dataset (`tags["dataset"]`)


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


def _headline_paths(metrics: Mapping[str, Any]) -> dict[str, str]:
    """metrics.json's flattened path -> headline metric name, for every headline number."""
    paths = {f"{'.'.join(path)}.{stat}{ci}": f"{name}.{stat}{ci}" for name, path in score_paths(metrics).items()
             for stat in HEADLINE_STATS for ci in _CI}
    paths |= {f"layers.{n}.coverage": f"{n}.coverage" for n in metrics["layers"]}
    return paths | {f"cascade.{k}": f"cascade.{k}" for k in ("trigger_rate", "gpu_time_saved_frac")}


def split_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """metrics.json as MLflow metrics: the headline numbers under their short names, the rest under `detail/`."""
    paths = _headline_paths(metrics)
    return {paths[k] if k in paths else f"detail/{k}": v for k, v in numeric_metrics(metrics).items()}


def dvc_experiment() -> str | None:
    """The DVC experiment being run (`dvc exp run` names it in the stages' environment), if any."""
    return os.environ.get("DVC_EXP_NAME") or None


def run_name(*parts: str | None) -> str:
    return " · ".join(p for p in parts if p)


def detectors_of(metrics: Mapping[str, Any]) -> str:
    """`aasist+sbi_effb4+...`: the detector of each layer, in the canonical layer order (audio, visual, lip,
    semantic; then any other), whatever order the metrics hold them in."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    names = sorted(metrics["layers"], key=lambda n: (rank.get(n, len(rank)), n))
    return "+".join(str(metrics["layers"][n].get("detector")) for n in names)


def run_description(metrics: Mapping[str, Any], dvc_exp: str | None) -> str:
    """Markdown for the run page: the verdict's numbers first (the page shows the first lines until *Show more*),
    then what ran on what and the headline table."""
    blocks = score_blocks(metrics)
    fused, cascade = blocks.get("fused", {}), blocks["cascade"]
    verdict = (f"**{metrics['dataset']}**: fused AUC {with_ci(fused, 'auc')}, ACC {with_ci(fused, 'acc')} at "
               f"threshold {metrics['threshold']}; cascade AUC {with_ci(cascade, 'auc')}.")
    head = (f"{metrics['n_videos']} videos, experiment `{metrics['experiment']}`"
            + (f", DVC experiment `{dvc_exp}`" if dvc_exp else "") + ".")
    layers = ", ".join(f"{n} `{b.get('detector')}` ({'DEMO-RANDOM' if b.get('weights') == 'demo-random' else 'real'}"
                       f" weights)" for n, b in metrics["layers"].items())
    rows = [f"| {name} | {with_ci(b, 'auc')} | {with_ci(b, 'ap')} | {with_ci(b, 'eer')} | {with_ci(b, 'acc')} |"
            for name, b in blocks.items()]
    return "\n".join([verdict, "", f"{head} Detectors: {layers}.", "", "| score | AUC | AP | EER | ACC |",
                      "|---|---|---|---|---|", *rows, "",
                      "Intervals: grouped bootstrap. Every number: `metrics.json`; figures and the worst cases: "
                      "`report.html` (artifacts)."])


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


def _open_experiment(cfg: MlflowParams) -> Any:
    import mlflow  # heavy import: only the stages that log pay for it

    mlflow.set_tracking_uri(cfg.tracking_uri)
    experiment = mlflow.set_experiment(cfg.experiment)
    client = mlflow.MlflowClient()
    for key, value in EXPERIMENT_TAGS.items():
        if experiment.tags.get(key) != value:
            client.set_experiment_tag(experiment.experiment_id, key, value)
    return mlflow


def log_run(cfg: MlflowParams, record: RunRecord) -> str | None:
    """Log one run; returns its id (None when tracking is disabled)."""
    if not cfg.enabled:
        log.info("MLflow tracking disabled (mlflow.enabled=false)")
        return None
    mlflow = _open_experiment(cfg)
    with mlflow.start_run(run_name=record.name, description=record.description) as run:
        if record.params:
            mlflow.log_params({k: str(v)[:6000] for k, v in flatten(record.params).items()})
        mlflow.log_metrics(dict(record.metrics))
        mlflow.set_tags(dict(record.tags))
        if record.dataset is not None:
            mlflow.log_input(_dataset_input(record), context="evaluation")
        for path in record.artifacts:
            if path.is_dir():
                mlflow.log_artifacts(str(path))
            elif path.is_file():
                mlflow.log_artifact(str(path))
    log.info("MLflow run %r (%s) logged to %s, experiment %r", record.name, run.info.run_id, cfg.tracking_uri,
             cfg.experiment)
    return run.info.run_id


def _dataset_input(record: RunRecord) -> Any:
    """The manifest as MLflow's run input: the runs table's Dataset column and filter then name the dataset."""
    from mlflow.data.pandas_dataset import from_pandas

    frame = record.dataset.astype(str)  # MLflow infers a schema; plain strings keep that cheap and exact
    return from_pandas(frame, name=record.tags["dataset"], digest=record.tags.get("manifest_sha256", "")[:8] or None)


def link_runs(cfg: MlflowParams, summary_id: str | None, children: Mapping[str, str | None]) -> None:
    """Tag each per-dataset run with the summary run over it (a link, not MLflow's nesting)."""
    if not cfg.enabled or not summary_id:
        return
    import mlflow

    client = mlflow.MlflowClient(cfg.tracking_uri)
    for run_id in filter(None, children.values()):
        client.set_tag(run_id, "tetrad.summary_run", summary_id)


def experiment_id(tracking_uri: str, name: str) -> str | None:
    """The id of experiment `name` in the store, None when it does not exist (nothing logged yet)."""
    import mlflow

    found = mlflow.MlflowClient(tracking_uri).get_experiment_by_name(name)
    return found.experiment_id if found else None


def runs_url(base: str, experiment_id: str, search: str | None = None) -> str:
    """The runs table of an experiment in MLflow 3's UI. `workflowType` picks the *Model training* view: without
    it the UI opens an experiment on the GenAI overview (it remembers the last switch in the browser)."""
    from urllib.parse import quote

    query = "workflowType=machine_learning" + (f"&searchFilter={quote(search)}" if search else "")
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"
