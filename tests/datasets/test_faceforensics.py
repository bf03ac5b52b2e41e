"""FaceForensics++: split pairs -> reals a, b and fakes a_b, b_a per method, grouped by the pair."""

from __future__ import annotations

import json

import pytest

from tests.datasets.conftest import by_id, labels, manifest, place, real_copy, write
from tetrad.datasets.common import DatasetError

PAIRS = {"train": [["000", "003"]], "val": [["002", "001"]], "test": [["953", "974"]]}


def _splits(folder, pairs=PAIRS):
    for split, pair_list in pairs.items():
        write(folder / f"{split}.json", json.dumps(pair_list, indent=2))  # as upstream: no trailing newline


@pytest.fixture()
def tree(tmp_path, media):
    _splits(tmp_path / "splits")
    place(tmp_path, "original_sequences/youtube/c23/videos/953.mp4", media["video"])
    place(tmp_path, "manipulated_sequences/Deepfakes/c23/videos/953_974.mp4", media["video"])
    return tmp_path


def test_pairs_expand_to_reals_and_fakes(tree):
    rows = by_id(manifest("faceforensics", tree, methods=["Deepfakes", "FaceShifter"]))
    assert len(rows) == 3 * (2 + 2 * 2)
    test = {vid: r for vid, r in rows.items() if r["split"] == "test"}
    assert sorted(test) == sorted([
        "original_sequences/youtube/c23/videos/953", "original_sequences/youtube/c23/videos/974",
        "manipulated_sequences/Deepfakes/c23/videos/953_974", "manipulated_sequences/Deepfakes/c23/videos/974_953",
        "manipulated_sequences/FaceShifter/c23/videos/953_974",
        "manipulated_sequences/FaceShifter/c23/videos/974_953"])
    assert all(r["group"] == "953_974" for r in test.values())
    real, fake = rows["original_sequences/youtube/c23/videos/974"], rows[
        "manipulated_sequences/FaceShifter/c23/videos/974_953"]
    assert (labels(real), real["method"]) == ((0, None, 0), "real")
    assert (labels(fake), fake["method"]) == ((1, None, 1), "FaceShifter")
    val = rows["manipulated_sequences/Deepfakes/c23/videos/001_002"]
    assert (val["split"], val["group"]) == ("val", "001_002")  # group ids sorted, whatever the pair order
    assert rows["original_sequences/youtube/c23/videos/003"]["split"] == "train"


def test_compression_and_splits_dir_options(tree):
    _splits(tree / "elsewhere", {"train": [["010", "011"]], "val": [], "test": []})
    table = manifest("faceforensics", tree, compression="c40", methods=["NeuralTextures"], splits_dir="elsewhere")
    assert sorted(table["video_id"]) == [
        "manipulated_sequences/NeuralTextures/c40/videos/010_011",
        "manipulated_sequences/NeuralTextures/c40/videos/011_010",
        "original_sequences/youtube/c40/videos/010", "original_sequences/youtube/c40/videos/011"]


def test_deepfakedetection_has_no_split(tree, media):
    place(tree, "original_sequences/actors/c23/videos/01__exit_phone_room.mp4", media["video"])
    place(tree, "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__exit_phone_room__YVGY8LOK.mp4",
          media["video"])
    rows = by_id(manifest("faceforensics", tree, methods=["DeepFakeDetection"]))
    assert len(rows) == 3 * 2 + 2
    real = rows["original_sequences/actors/c23/videos/01__exit_phone_room"]
    fake = rows["manipulated_sequences/DeepFakeDetection/c23/videos/01_02__exit_phone_room__YVGY8LOK"]
    assert (labels(real), real["split"], real["group"]) == ((0, None, 0), None, "actor01")
    assert (labels(fake), fake["split"], fake["group"], fake["method"]) == \
        ((1, None, 1), None, "actor01", "DeepFakeDetection")


@pytest.mark.parametrize("pairs, message", [
    ({"train": [["000", "001"]], "val": [["001", "002"]], "test": []}, "val.json: id 001 is also listed in train.json"),
    ({"train": [["000"]], "val": [], "test": []}, r"train.json: item 0 is \['000'\]"),
    ({"train": {"000": "001"}, "val": [], "test": []}, "train.json: expected a list"),
])
def test_bad_split_files(tmp_path, pairs, message):
    _splits(tmp_path / "splits", pairs)
    with pytest.raises(DatasetError, match=message):
        manifest("faceforensics", tmp_path)


def test_missing_split_file_and_bad_options(tmp_path):
    with pytest.raises(FileNotFoundError, match="splits/train.json not found"):
        manifest("faceforensics", tmp_path)
    _splits(tmp_path / "splits")
    with pytest.raises(ValueError, match="compression"):
        manifest("faceforensics", tmp_path, compression="c99")
    with pytest.raises(ValueError, match="unknown"):
        manifest("faceforensics", tmp_path, methods=["DeepFaceLab"])


def test_real_official_splits(tmp_path):
    for split in ("train", "val", "test"):
        real_copy(f"FaceForensics++/{split}.json", tmp_path / "splits" / f"{split}.json")
    table = manifest("faceforensics", tmp_path)
    reals = table[table["method"] == "real"]
    assert reals.groupby("split").size().to_dict() == {"train": 720, "val": 140, "test": 140}
    assert sorted(reals["video_id"].str[-3:]) == [f"{i:03d}" for i in range(1000)]  # every id once
    assert table.groupby("split")["group"].nunique().to_dict() == {"train": 360, "val": 70, "test": 70}
    assert table.groupby("group")["split"].nunique().eq(1).all()
    fakes = table[table["label"] == 1]
    assert fakes.groupby(["method", "split"]).size().unstack().to_dict("list") == \
        {"test": [140] * 5, "train": [720] * 5, "val": [140] * 5}
    first = table[table["split"] == "test"].iloc[0]
    assert first["video_id"] == "original_sequences/youtube/c23/videos/953" and first["group"] == "953_974"
