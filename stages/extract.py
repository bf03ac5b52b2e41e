"""DVC stage `extract`: decode each manifest file once into data/<dataset>/cache/<kind>/ (sharded, resumable)."""

import logging

from tetrad import schemas
from tetrad.extract import FACE_KINDS, KIND_SCHEMAS, PROVENANCE, Assets, extract, provenance
from tetrad.io import read_table, write_json
from tetrad.media.meanface import load_mean_face
from tetrad.params import load_params
from tetrad.pipeline import Paths, dataset_argument, resolve_mean_face, setup, write_demo_mean_face

log = logging.getLogger("stages.extract")

if __name__ == "__main__":
    args = dataset_argument(__doc__)
    setup()
    params = load_params()
    paths = Paths(args.dataset)
    manifest = read_table(paths.manifest, schemas.MANIFEST)
    kinds = params.extract.kinds
    for kind in set(KIND_SCHEMAS) - set(kinds):
        paths.cache(kind).mkdir(parents=True, exist_ok=True)  # declared DVC output, intentionally empty
        log.info("cache %s not requested (extract.kinds=%s): left empty", kind, kinds)
    assets, mean_face_source = Assets(), None
    if "mouths" in kinds:
        write_demo_mean_face(params)
        resolved = resolve_mean_face(params)
        assets = Assets(*load_mean_face(resolved.path))
        mean_face_source = "real" if resolved.source == "real" else "demo-stand-in"
        log.info("mouth alignment: %s mean face %s (sha256 %s)", resolved.source, resolved.path,
                 assets.mean_face_sha256)
    counts = extract(manifest, kinds, params.extract, {k: paths.cache(k) for k in kinds}, assets)
    for kind in set(kinds) & set(FACE_KINDS):
        write_json(provenance(kind, params.extract, mean_face_source), paths.cache(kind) / PROVENANCE)
    log.info("read %s (%d videos); wrote %s; per-kind status of newly written rows: %s", paths.manifest,
             len(manifest), [str(paths.cache(k)) for k in kinds], counts)
