"""DVC stage `manifest`: the dataset adapter's manifest table -> data/<dataset>/manifest.parquet."""

import logging

from tetrad import schemas
from tetrad.datasets.registry import manifest_from
from tetrad.datasets.doctor import doctor
from tetrad.io import write_table
from tetrad.params import load_params
from tetrad.pipeline import Paths, dataset_argument, setup


def counts(column):
    return {str(k): int(v) for k, v in column.value_counts().items()}


log = logging.getLogger("stages.manifest")

if __name__ == "__main__":
    args = dataset_argument(__doc__)
    setup()
    params = load_params()
    dataset = params.datasets[args.dataset]
    report = doctor(dataset, sample=8)  # cheap checks before any GPU time is spent
    log.info("tetrad doctor %s:\n%s", args.dataset, report.render(max_names=20))
    if not report.usable:
        raise SystemExit(f"dataset {args.dataset!r} is unusable: {'; '.join(report.fatal)}")
    manifest = manifest_from(report.table, dataset)  # the adapter ran once, inside the doctor
    out = write_table(manifest, Paths(args.dataset).manifest, schemas.MANIFEST)
    log.info("read %s (adapter %s): %d rows, status %s, labels %s -> wrote %s", dataset.root,
             dataset.adapter, len(manifest), counts(manifest["status"]), counts(manifest["label"]), out)
    for row in manifest[manifest["status"] != schemas.OK].itertuples():
        log.warning("%s: %s", row.video_id, row.error)
