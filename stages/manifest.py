"""DVC stage `manifest`: the dataset adapter's manifest table -> data/<dataset>/manifest.parquet."""

import logging

from tetrad import schemas
from tetrad.datasets import build_manifest
from tetrad.io import write_table
from tetrad.params import load_params
from tetrad.pipeline import Paths, setup


def counts(column):
    return {str(k): int(v) for k, v in column.value_counts().items()}


log = logging.getLogger("stages.manifest")

if __name__ == "__main__":
    setup()
    params = load_params()
    manifest = build_manifest(params.dataset)
    out = write_table(manifest, Paths(params.dataset.name).manifest, schemas.MANIFEST)
    log.info("read %s (adapter %s): %d rows, status %s, labels %s -> wrote %s", params.dataset.root,
             params.dataset.adapter, len(manifest), counts(manifest["status"]), counts(manifest["label"]), out)
    for row in manifest[manifest["status"] != schemas.OK].itertuples():
        log.warning("%s: %s", row.video_id, row.error)
