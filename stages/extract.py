"""DVC stage `extract`: decode each manifest file once into data/<dataset>/cache/<kind>/ (sharded, resumable)."""

import logging

from tetrad import schemas
from tetrad.extract import extract
from tetrad.io import read_table
from tetrad.params import load_params
from tetrad.pipeline import Paths, dataset_argument, setup

log = logging.getLogger("stages.extract")

if __name__ == "__main__":
    args = dataset_argument(__doc__)
    setup()
    params = load_params()
    paths = Paths(args.dataset)
    manifest = read_table(paths.manifest, schemas.MANIFEST)
    kinds = params.extract.kinds
    for kind in set(("audio", "frames")) - set(kinds):
        paths.cache(kind).mkdir(parents=True, exist_ok=True)  # declared DVC output, intentionally empty
        log.info("cache %s not requested (extract.kinds=%s): left empty", kind, kinds)
    counts = extract(manifest, kinds, params.extract, {k: paths.cache(k) for k in kinds})
    log.info("read %s (%d videos); wrote %s; per-kind status of newly written rows: %s", paths.manifest,
             len(manifest), [str(paths.cache(k)) for k in kinds], counts)
