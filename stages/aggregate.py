"""DVC stage `aggregate`: reduce, fuse, cascade, metrics -> reports/<dataset>/ and one MLflow run."""

import json
import logging
from dataclasses import asdict

from tetrad import schemas
from tetrad.aggregate import evaluate, reduce_units
from tetrad.io import file_sha256, read_table, write_frame, write_json, write_text
from tetrad.params import load_params
from tetrad.pipeline import Paths, dataset_argument, modality_label, run_tags, setup
from tetrad.report import console_summary, demo_layers, render_markdown, summary_row
from tetrad.tracking import log_run

log = logging.getLogger("stages.aggregate")

if __name__ == "__main__":
    args = dataset_argument(__doc__)
    setup()
    params = load_params()
    paths = Paths(args.dataset)
    manifest = read_table(paths.manifest, schemas.MANIFEST)
    infos = {name: json.loads(paths.scores(name).with_suffix(".json").read_text()) for name in params.layer}
    reduced = {name: reduce_units(read_table(paths.scores(name), schemas.SCORES), info["reduce"])
               for name, info in infos.items()}
    result = evaluate(manifest, reduced, {n: modality_label(n) for n in infos},
                      {n: i["detector"] for n, i in infos.items()}, params.aggregate, args.dataset)
    metrics = {**result.metrics, "experiment": params.experiment}
    for name, info in infos.items():
        metrics["layers"][name]["weights"] = info["weights"]
        metrics["layers"][name]["input"] = info.get("input", {})
    write_json(metrics, paths.reports / "metrics.json")
    write_frame(result.videos, paths.reports / "videos.parquet")
    for name, curve in result.curves.items():
        write_text(curve.to_csv(index=False), paths.reports / "roc" / f"{name}.csv")
    write_text(render_markdown(metrics), paths.reports / "report.md")
    tags = run_tags(infos, file_sha256(paths.manifest), params.experiment)
    run_id = log_run(params.mlflow, f"{args.dataset}-{params.experiment}", asdict(params), metrics, tags,
                     [paths.reports])
    write_json(summary_row(metrics, run_id), paths.summary_row)
    log.info("wrote %s (metrics.json, report.md, videos.parquet, roc/)\n%s", paths.reports,
             "\n".join(console_summary(metrics)))
    if demo := demo_layers(metrics):
        log.warning("layers %s ran DEMO-RANDOM weights: their scores mean nothing", demo)
