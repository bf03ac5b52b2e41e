"""Stage `manifest@<dataset>`: the dataset adapter's table -> data/<dataset>/manifest.parquet, after the doctor's
cheap checks (label files, counts, a probe of a few files) so no GPU time is spent on an unusable dataset."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from tetrad import schemas
from tetrad.datasets.doctor import doctor
from tetrad.datasets.manifest import manifest_from
from tetrad.env import setup
from tetrad.io import write_table
from tetrad.params import Params, load_params
from tetrad.paths import Paths
from tetrad.stages import stage_arguments

log = logging.getLogger(__name__)


def run(params: Params, dataset: str, root: Path = Path(".")) -> pd.DataFrame:
    """Build, check and write one dataset's manifest; raises SystemExit when the dataset is unusable."""
    cfg = params.datasets[dataset]
    report = doctor(cfg, sample=8)
    log.info("tetrad doctor %s:\n%s", dataset, report.render(max_names=20))
    if not report.usable:
        raise SystemExit(f"dataset {dataset!r} is unusable: {'; '.join(report.fatal)}")
    manifest = manifest_from(report.table, cfg)  # the adapter ran once, inside the doctor
    out = write_table(manifest, Paths(dataset, root).manifest, schemas.MANIFEST)
    log.info("read %s (adapter %s): %d rows, status %s, labels %s -> wrote %s", cfg.root, cfg.adapter,
             len(manifest), _counts(manifest["status"]), _counts(manifest["label"]), out)
    for row in manifest[manifest["status"] != schemas.OK].itertuples():
        log.warning("%s: %s", row.video_id, row.error)
    return manifest


def _counts(column: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column.value_counts().items()}


def main(argv: list[str] | None = None) -> int:
    args = stage_arguments(__doc__, "dataset", argv=argv)
    setup()
    run(load_params(), args.dataset)
    return 0
