"""Weights manager: every checkpoint the detectors can use, kept in a git-ignored cache and verified.

Tetrad never commits model weights (they belong to their authors). Each detector declares its checkpoints in its
own module (`WEIGHTS = (WeightEntry(...), ...)`), read statically by `catalog`; `store` knows the cache layout,
hashes and verifies, and `resolve`s what a detector loads; `fetch` downloads, `importer` copies from a local
folder, `cli` is `tetrad weights ...`. None of them imports torch or any detector module.
"""

from tetrad.weights.catalog import WeightEntry, add_entries, declared_weights, entries, get_entry
from tetrad.weights.cli import add_cli
from tetrad.weights.errors import (
    ManualDownloadRequired, WeightsError, WeightsMismatch, WeightsNotFound, WeightsUnreachable,
)
from tetrad.weights.fetch import OpenFetch, fetch, fetch_open, mirrored, open_entries
from tetrad.weights.importer import import_dir
from tetrad.weights.store import (
    DEFAULT_DIR, DEMO_SUBDIR, Resolved, Verification, cached_sha256, demo_target, list_status, path_for, resolve,
    verify_entry,
)

__all__ = [
    "DEFAULT_DIR", "DEMO_SUBDIR", "ManualDownloadRequired", "OpenFetch", "Resolved", "Verification", "WeightEntry",
    "WeightsError", "WeightsMismatch", "WeightsNotFound", "WeightsUnreachable", "add_cli", "add_entries",
    "cached_sha256", "declared_weights", "demo_target", "entries", "fetch", "fetch_open", "get_entry", "import_dir",
    "list_status", "mirrored", "open_entries", "path_for", "resolve", "verify_entry",
]
