"""The manifest a run uses: the adapter's rows, then split, stratified sample and limit, then missing files marked.

`build_manifest` runs the adapter; `manifest_from` starts from rows an adapter already produced (the `manifest`
stage reuses the table `tetrad doctor` read), so both give the same manifest for the same parameters.
"""

from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pandas as pd

from tetrad import schemas
from tetrad.datasets.registry import run_adapter
from tetrad.params import DatasetParams


def build_manifest(params: DatasetParams) -> pd.DataFrame:
    """Run the adapter, apply split/sample/limit, check the ids are unique, and mark files that are missing."""
    return manifest_from(run_adapter(params), params)


def manifest_from(adapter_rows: pd.DataFrame, params: DatasetParams) -> pd.DataFrame:
    """The manifest from rows an adapter already produced (e.g. by `tetrad doctor`)."""
    table = select_rows(adapter_rows, params)
    dupes = table["video_id"][table["video_id"].duplicated()].tolist()
    if dupes:
        raise ValueError(f"{params.root}: duplicate video ids {dupes[:5]}")
    return mark_missing(table)


def select_rows(table: pd.DataFrame, params: DatasetParams) -> pd.DataFrame:
    """split, then the stratified sample, then limit: the rows a run uses, in the adapter's order."""
    if params.split is not None:
        table = table[table["split"] == params.split]
    if params.sample is not None:
        table = stratified_sample(table, params.sample, params.seed)
    if params.limit is not None:
        table = table.iloc[: params.limit]
    return table.reset_index(drop=True)


def stratified_sample(table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """n rows with each label's share kept (largest remainder), every label present when n allows; seeded."""
    if n < 0:
        raise ValueError(f"dataset.sample must be >= 0, got {n}")
    if n >= len(table):
        return table
    counts = table["label"].value_counts().sort_index()
    quota = _allocate(counts.to_numpy(), n)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label, k in zip(counts.index, quota):
        positions = np.flatnonzero((table["label"] == label).to_numpy())
        keep.extend(rng.choice(positions, size=int(k), replace=False).tolist())
    return table.iloc[sorted(keep)]


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Split n over the strata proportionally; at least one per stratum when n >= the number of strata."""
    exact = counts * n / counts.sum()
    quota = np.floor(exact).astype(int)
    if n >= len(counts):
        quota = np.maximum(quota, 1)
    while quota.sum() > n:  # the minimum of one overshot: take back from the largest quota
        quota[np.argmax(quota)] -= 1
    for i in np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]:
        quota[i] += 1
    return np.minimum(quota, counts)


def access_problem(path: str) -> str | None:
    """Why a listed file cannot be read (None when it can): not found, a dangling symbolic link, a link loop,
    not a regular file, or no read permission. One stat and one access check: cheap next to a decode."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"dangling symbolic link (its target {os.readlink(path)} does not exist)"
        return "file not found"
    except OSError as exc:
        return "symbolic link loop" if exc.errno == errno.ELOOP else f"cannot stat ({exc.strerror})"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if not os.access(path, os.R_OK):
        return "unreadable (permission denied)"
    return None


def mark_missing(table: pd.DataFrame) -> pd.DataFrame:
    """A listed file that cannot be read keeps its row, with status `error` and the reason, instead of a crash
    later."""
    table = table.copy()
    problems = table["path"].map(access_problem)
    bad = problems.notna()
    table.loc[bad, "status"] = schemas.ERROR
    table.loc[bad, "error"] = table.loc[bad, "path"] + ": " + problems[bad]
    return table
