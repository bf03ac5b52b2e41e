"""Stage `aggregate@<dataset>`: every layer's unit scores -> video scores, fusions, the cascade simulation and
metrics with grouped CIs -> reports/<dataset>/ (metrics.json, report.md, videos.parquet, roc/), one MLflow run,
and this dataset's row of the cross-dataset summary."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from tetrad import schemas
from tetrad.aggregate import evaluate, modality_label, reduce_units
from tetrad.env import setup
from tetrad.io import file_sha256, read_table, remove_stale_temps, write_frame, write_json, write_text
from tetrad.params import Params, load_params
from tetrad.paths import Paths
from tetrad.report import console_summary, demo_layers, headline, render_markdown, summary_row
from tetrad.report_html import write_report
from tetrad.stages import stage_arguments
from tetrad.tracking import (RunRecord, detectors_of, dvc_experiment, log_run, run_description, run_name,
                             run_tags, split_metrics)

log = logging.getLogger(__name__)


def run(params: Params, dataset: str, root: Path = Path(".")) -> dict[str, Any]:
    """Evaluate one dataset from its manifest and scores; writes its reports and returns metrics.json's content."""
    paths = Paths(dataset, root)
    for folder in (paths.reports, paths.summary_row.parent):
        remove_stale_temps(folder)  # a killed run's half-written files
    manifest = read_table(paths.manifest, schemas.MANIFEST)
    infos = {name: json.loads(paths.score_info(name).read_text()) for name in params.layer}
    reduced = {name: reduce_units(read_table(paths.scores(name), schemas.SCORES), info["reduce"])
               for name, info in infos.items()}
    result = evaluate(manifest, reduced, {n: modality_label(n) for n in infos},
                      {n: i["detector"] for n, i in infos.items()}, params.aggregate, dataset)
    metrics = {**result.metrics, "experiment": params.experiment, "protocol": protocol_of(params, infos)}
    for name, info in infos.items():
        metrics["layers"][name]["weights"] = info["weights"]
        metrics["layers"][name]["input"] = info.get("input", {})
    write_json(metrics, paths.reports / "metrics.json")
    write_json(headline(metrics), paths.reports / "headline.json")
    write_frame(result.videos, paths.reports / "videos.parquet")
    for name, curve in result.curves.items():
        write_text(curve.to_csv(index=False), paths.reports / "roc" / f"{name}.csv")
    write_text(render_markdown(metrics), paths.reports / "report.md")
    write_report(result.videos, metrics, paths, dict(zip(manifest["video_id"], manifest["path"])),
                 params.aggregate.threshold)
    run_id = log_run(params.mlflow, mlflow_record(params, metrics, infos, manifest, paths))
    write_json(summary_row(metrics, run_id), paths.summary_row)
    log.info("wrote %s (metrics.json, report.md, videos.parquet, roc/)\n%s", paths.reports,
             "\n".join(console_summary(metrics)))
    if demo := demo_layers(metrics):
        log.warning("layers %s ran DEMO-RANDOM weights: their scores mean nothing", demo)
    return metrics


def mlflow_record(params: Params, metrics: Mapping[str, Any], infos: Mapping[str, Mapping[str, Any]],
                  manifest: Any, paths: Paths) -> RunRecord:
    """This evaluation's MLflow run: named and described by what ran, headline metrics apart from the counters,
    the report folder's files as artifacts, the manifest as its input dataset."""
    dvc_exp = dvc_experiment()
    tags = run_tags(infos, file_sha256(paths.manifest), params.experiment, metrics["protocol"])
    tags |= {"dataset": paths.dataset, "detectors": detectors_of(metrics), "tetrad.run_kind": "dataset"}
    if dvc_exp:
        tags["dvc_experiment"] = dvc_exp
    return RunRecord(name=run_name(paths.dataset, params.experiment, dvc_exp, tags["detectors"]),
                     metrics=split_metrics(metrics), tags=tags, description=run_description(metrics, dvc_exp),
                     # roc.png also at the root: Compare shows root files side by side
                     artifacts=[paths.reports, paths.reports / "figures" / "roc.png"], params=asdict(params),
                     dataset=manifest)


def protocol_of(params: Params, infos: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The protocol in force and the layers' departures from upstream's evaluation, as each detect run recorded
    them (tetrad.protocol; the detect stage refuses an `upstream` run with any)."""
    found = {d for info in infos.values() for d in info.get("protocol", {}).get("departures", [])}
    return {"name": params.protocol, "departures": sorted(found)}


def main(argv: list[str] | None = None) -> int:
    args = stage_arguments(__doc__, "dataset", argv=argv)
    setup()
    run(load_params(), args.dataset)
    return 0
