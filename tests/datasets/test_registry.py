"""The adapter registry: every adapter is registered, the known datasets carry their counts, names are unique."""

from __future__ import annotations

import pandas as pd
import pytest

from tetrad.datasets import list_datasets, register_dataset
from tetrad.datasets.common import Expectation, manifest_table
from tetrad.datasets.registry import ADAPTERS, DatasetAdapter, get_adapter, run_adapter
from tetrad.params import DatasetParams

WITH_COUNTS = {"celebdf", "faceforensics", "fakeavceleb", "dfdc", "lavdf", "asvspoof2019la"}
OTHERS = {"mini", "folder", "dfdcp", "av1m"}


def test_every_adapter_is_registered_and_the_known_datasets_have_counts(tmp_path):
    assert set(list_datasets()) == WITH_COUNTS | OTHERS
    one_row = manifest_table([{"rel": "test/a.mp4", "label": 0, "audio_label": 0, "video_label": 0,
                               "category": "A", "method": "real", "group": "a", "split": "test"}], tmp_path)
    for name in list_datasets():
        adapter = get_adapter(name)
        assert isinstance(adapter, DatasetAdapter) and adapter.name == name and callable(adapter.build)
        if name in WITH_COUNTS:
            assert adapter.expected is not None, name
        if adapter.expected is not None:  # a table far from the dataset's counts is a warning, not a crash
            found = adapter.expected(one_row)
            assert all(isinstance(e, Expectation) for e in found) and not all(e.ok for e in found), name


def test_a_name_registered_twice_raises():
    def build(root, options):
        return pd.DataFrame()

    try:
        assert register_dataset("throwaway")(build) is build  # the decorator returns the builder unchanged
        assert get_adapter("throwaway").expected is None
        with pytest.raises(ValueError, match="'throwaway' is already registered"):
            register_dataset("throwaway", expected=lambda t: [])(build)
        with pytest.raises(ValueError, match="'celebdf' is already registered"):
            register_dataset("celebdf")(build)
    finally:
        ADAPTERS.remove("throwaway")
    assert "throwaway" not in list_datasets()


def test_unknown_adapter_and_missing_root_are_named(tmp_path):
    with pytest.raises(KeyError, match="unknown dataset adapter 'nosuch'; registered: .*celebdf"):
        run_adapter(DatasetParams(adapter="nosuch", root=str(tmp_path)))
    gone = tmp_path / "gone"
    with pytest.raises(FileNotFoundError) as info:
        run_adapter(DatasetParams(adapter="folder", root=str(gone)))
    assert str(info.value) == f"dataset root {gone} does not exist"
