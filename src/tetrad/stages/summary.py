"""Stage `summary`: the dataset x layer table (reports/summary.md, .csv) and an MLflow parent run over the
per-dataset runs."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from tetrad import figures
from tetrad.env import setup
from tetrad.io import write_bytes, write_text
from tetrad.params import Params, load_params
from tetrad.paths import Paths
from tetrad.report import summary_columns, summary_markdown
from tetrad.tracking import RunRecord, dvc_experiment, git_sha, link_runs, log_run, numeric_metrics, run_name

log = logging.getLogger(__name__)
HEATMAP = "summary_auc.png"


def run(params: Params, root: Path = Path(".")) -> pd.DataFrame:
    """Collect each dataset's summary row; writes the summary files and returns the table."""
    rows = [json.loads(Paths(name, root).summary_row.read_text()) for name in params.dataset_names]
    table = pd.DataFrame(rows, columns=summary_columns(rows))
    heat = write_bytes(figures.png(figures.heatmap(auc_matrix(table))), root / "reports" / HEATMAP)
    md = write_text(summary_markdown(rows) + f"\n![AUC by score and dataset]({HEATMAP})\n",
                    root / "reports" / "summary.md")
    csv = write_text(table.to_csv(index=False), root / "reports" / "summary.csv")
    children = {r["dataset"]: r["mlflow_run_id"] for r in rows}
    run_id = log_run(params.mlflow, mlflow_record(params, rows, [md, csv, heat]))
    link_runs(params.mlflow, run_id, children)
    log.info("read %d dataset summaries; wrote %s, %s and %s", len(rows), md, csv, heat)
    return table


def mlflow_record(params: Params, rows: list[dict], artifacts: list[Path]) -> RunRecord:
    """The summary's MLflow run: `<dataset>.<column>` metrics, the summary table as its description."""
    metrics = numeric_metrics({r["dataset"]: {k: v for k, v in r.items() if k not in ("dataset", "mlflow_run_id")}
                               for r in rows})
    datasets = "+".join(r["dataset"] for r in rows)
    dvc_exp = dvc_experiment()
    tags = {"tetrad.run_kind": "summary", "datasets": datasets, "experiment": params.experiment,
            "git_sha": git_sha()} | ({"dvc_experiment": dvc_exp} if dvc_exp else {})
    return RunRecord(name=run_name("summary", params.experiment, dvc_exp, datasets), metrics=metrics, tags=tags,
                     description=summary_markdown(rows), artifacts=artifacts)


def auc_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """AUC with one row per score (layers, fusions, cascade: the summary's `*_auc` columns) and one column per
    dataset."""
    cols = [c for c in table.columns if c.endswith("_auc")]
    return table.set_index("dataset")[cols].T.rename(index=lambda c: c.removesuffix("_auc")).astype(float)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    setup()
    run(load_params())
    return 0
