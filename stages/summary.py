"""DVC stage `summary`: the dataset x layer table (reports/summary.md, .csv) and an MLflow parent run."""

import json
import logging
from pathlib import Path

import pandas as pd

from tetrad.io import write_text
from tetrad.params import load_params
from tetrad.pipeline import Paths, setup
from tetrad.report import summary_columns, summary_markdown
from tetrad.tracking import log_parent

log = logging.getLogger("stages.summary")

if __name__ == "__main__":
    setup()
    params = load_params()
    rows = [json.loads(Paths(name).summary_row.read_text()) for name in params.dataset_names]
    table = pd.DataFrame(rows, columns=summary_columns(rows))
    md = write_text(summary_markdown(rows), Path("reports/summary.md"))
    csv = write_text(table.to_csv(index=False), Path("reports/summary.csv"))
    metrics = {r["dataset"]: {k: v for k, v in r.items() if k not in ("dataset", "mlflow_run_id")} for r in rows}
    log_parent(params.mlflow, f"summary-{params.experiment}", {r["dataset"]: r["mlflow_run_id"] for r in rows},
               metrics, [md, csv])
    log.info("read %d dataset summaries; wrote %s and %s", len(rows), md, csv)
