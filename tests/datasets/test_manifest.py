"""Shared adapter machinery and the run's selection: table shape, split names, grouped split, sample, limit."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from tetrad import schemas
from tetrad.datasets.common import DatasetError, check_options, grouped_split, manifest_table, normalize_split
from tetrad.datasets.manifest import build_manifest, select_rows, stratified_sample
from tetrad.params import DatasetParams


def _rows(n_real: int, n_fake: int) -> list[dict]:
    return [{"rel": f"{'fake' if i >= n_real else 'real'}/v{i:03d}.mp4", "label": int(i >= n_real),
             "audio_label": None, "video_label": int(i >= n_real), "category": None, "method": None,
             "group": f"g{i // 2}", "split": "test" if i % 3 == 0 else "train"} for i in range(n_real + n_fake)]


def test_manifest_table_matches_the_schema(tmp_path):
    table = manifest_table(_rows(2, 3), tmp_path)
    assert list(table.columns) == schemas.MANIFEST.names
    pa.Table.from_pandas(table, schema=schemas.MANIFEST, preserve_index=False)  # types and nullability fit
    assert table.loc[0, "video_id"] == "real/v000"
    assert table.loc[0, "path"] == str(tmp_path.resolve() / "real" / "v000.mp4")
    assert table["audio_label"].isna().all() and table["status"].eq(schemas.OK).all()


def test_split_names_are_normalised():
    assert [normalize_split(s, "x") for s in ("train", "dev", "eval", "TEST", "val")] == \
        ["train", "val", "test", "test", "val"]
    with pytest.raises(DatasetError, match="x: unknown split 'holdout'"):
        normalize_split("holdout", "x")


def test_grouped_split_keeps_groups_whole_and_is_seeded():
    groups = [f"id{i % 200:05d}" for i in range(1000)]
    splits = grouped_split(groups, 0, [0.7, 0.15, 0.15])
    per_group = pd.DataFrame({"g": groups, "s": splits}).groupby("g")["s"].nunique()
    assert per_group.eq(1).all()
    shares = pd.Series(splits).value_counts(normalize=True)
    assert 0.55 < shares["train"] < 0.85 and set(shares.index) == {"train", "val", "test"}
    assert grouped_split(groups, 0, [0.7, 0.15, 0.15]) == splits
    assert grouped_split(groups, 1, [0.7, 0.15, 0.15]) != splits
    # a group's split does not depend on which other groups are present
    assert grouped_split(groups[:7], 0, [0.7, 0.15, 0.15]) == splits[:7]
    with pytest.raises(ValueError, match="sum"):
        grouped_split(groups, 0, [0.5, 0.2, 0.2])


def test_stratified_sample_keeps_label_shares_and_is_seeded(tmp_path):
    table = manifest_table(_rows(20, 80), tmp_path)
    picked = stratified_sample(table, 10, seed=3)
    assert len(picked) == 10 and picked["label"].value_counts().to_dict() == {1: 8, 0: 2}
    assert picked.index.is_monotonic_increasing  # the adapter's order is kept
    assert picked.equals(stratified_sample(table, 10, seed=3))
    assert not picked.equals(stratified_sample(table, 10, seed=4))
    rare = manifest_table(_rows(1, 99), tmp_path)
    assert set(stratified_sample(rare, 5, seed=0)["label"]) == {0, 1}  # every label present when n allows
    assert len(stratified_sample(table, 500, seed=0)) == 100


def test_select_rows_applies_split_then_sample_then_limit(tmp_path):
    table = manifest_table(_rows(30, 60), tmp_path)
    params = DatasetParams(adapter="x", root=str(tmp_path), split="train", sample=20, seed=0, limit=5)
    chosen = select_rows(table, params)
    assert len(chosen) == 5 and chosen["split"].eq("train").all()
    assert chosen["video_id"].tolist() == select_rows(table, params)["video_id"].tolist()


def test_build_manifest_samples_and_marks_missing(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    lines = ["path,label"]
    for i in range(6):
        rel = f"{'real' if i < 2 else 'fake'}/f{i}.wav"
        (tmp_path / rel).write_bytes(b"")
        lines.append(f"{rel},{int(i >= 2)}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    params = DatasetParams(adapter="folder", root=str(tmp_path), sample=3, seed=0, options={"csv": "labels.csv"})
    table = build_manifest(params)
    assert len(table) == 3 and set(table["label"]) == {0, 1}
    (tmp_path / table.loc[0, "video_id"]).with_suffix(".wav").unlink()
    again = build_manifest(params)
    assert again.loc[0, "status"] == schemas.ERROR and "file not found" in again.loc[0, "error"]


def test_unknown_option_names_the_known_ones():
    with pytest.raises(ValueError, match=r"dataset.options.colour: unknown option .*\['csv'\]"):
        check_options({"colour": 1}, {"csv": None}, "folder")
