"""The dataset adapters, by name: each turns a dataset tree into the manifest table.

An adapter module registers its builder with `@register_dataset(name, expected=...)`; `dataset.adapter` in the
parameters picks it. What adapters share is in `common`; the selection a run applies is in `manifest`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tetrad.datasets.common import Expectation
from tetrad.params import DatasetParams
from tetrad.registry import Registry

Builder = Callable[[Path, Mapping[str, Any]], pd.DataFrame]
ExpectedCounts = Callable[[pd.DataFrame], list[Expectation]]


@dataclass(frozen=True)
class DatasetAdapter:
    """A dataset's builder (root, options -> its full table) and, when known, its expected counts."""

    name: str
    build: Builder
    expected: ExpectedCounts | None = None  # the counts `tetrad doctor` compares; None: none are known


ADAPTERS = Registry[DatasetAdapter]("dataset adapter")


def register_dataset(name: str, expected: ExpectedCounts | None = None) -> Callable[[Builder], Builder]:
    """Decorator: register the builder as adapter `name`; the builder itself is returned unchanged."""
    def add(build: Builder) -> Builder:
        ADAPTERS.add(name, DatasetAdapter(name, build, expected))
        return build
    return add


def list_datasets() -> list[str]:
    return ADAPTERS.names()


def get_adapter(name: str) -> DatasetAdapter:
    """The adapter registered as `name`; KeyError naming the registered ones otherwise."""
    return ADAPTERS.get(name)


def run_adapter(params: DatasetParams) -> pd.DataFrame:
    """The adapter's full table (no split/sample/limit, missing files not yet marked)."""
    adapter = get_adapter(params.adapter)
    root = Path(params.root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist")
    return adapter.build(root, params.options)
