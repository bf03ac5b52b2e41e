"""One registry of dataset adapters: each turns a dataset tree into the manifest table (DESIGN.md §5)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad import schemas
from tetrad.params import DatasetParams

Adapter = Callable[[Path, Mapping[str, Any]], pd.DataFrame]
_ADAPTERS: dict[str, Adapter] = {}


def register_dataset(name: str) -> Callable[[Adapter], Adapter]:
    def add(fn: Adapter) -> Adapter:
        if name in _ADAPTERS:
            raise ValueError(f"dataset adapter {name!r} is already registered")
        _ADAPTERS[name] = fn
        return fn
    return add


def list_datasets() -> list[str]:
    return sorted(_ADAPTERS)


def build_manifest(params: DatasetParams) -> pd.DataFrame:
    """Run the adapter, mark files that are missing, apply split/limit, and check the ids are unique."""
    if params.adapter not in _ADAPTERS:
        raise KeyError(f"unknown dataset adapter {params.adapter!r}; registered: {list_datasets()}")
    root = Path(params.root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist (dataset.root in params.yaml)")
    table = _ADAPTERS[params.adapter](root, params.options)
    if params.split is not None:
        table = table[table["split"] == params.split]
    if params.limit is not None:
        table = table.iloc[: params.limit]
    dupes = table["video_id"][table["video_id"].duplicated()].tolist()
    if dupes:
        raise ValueError(f"{root}: duplicate video ids {dupes[:5]}")
    return mark_missing(table.reset_index(drop=True))


def mark_missing(table: pd.DataFrame) -> pd.DataFrame:
    """A listed file that is not on disk keeps its row, with a status instead of a crash later."""
    table = table.copy()
    absent = ~table["path"].map(lambda p: Path(p).is_file())
    table.loc[absent, "status"] = schemas.ERROR
    table.loc[absent, "error"] = table.loc[absent, "path"].map(lambda p: f"{p}: file not found")
    return table
