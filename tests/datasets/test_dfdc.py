"""DFDC training parts (grouped by `original`), the test set (labels.csv or metadata.json), and DFDC preview."""

from __future__ import annotations

import json

import pytest

from tests.datasets.conftest import by_id, labels, manifest, place, real_copy, write
from tetrad.datasets.common import DatasetError

TRAIN = {  # one line, no trailing newline, as Kaggle's metadata.json
    "aagfhgtpmv.mp4": {"label": "FAKE", "split": "train", "original": "vudstovrck.mp4"},
    "vudstovrck.mp4": {"label": "REAL", "split": "train", "original": None},
    "abofeumbvv.mp4": {"label": "FAKE", "split": "train", "original": "atvmxvwyns.mp4"},
}
TEST = {
    "aalscayrfi.mp4": {"augmentations": {"augmenter": {"framerate_change": {"fps": 20}}}, "is_fake": 0},
    "aaqkmjtoby.mp4": {"augmentations": {}, "is_fake": 1},
}


def _test_json(data) -> str:
    return json.dumps(data, indent=2, separators=(", ", ": ")) + "\n"  # the released file's Python 2 style


@pytest.fixture()
def tree(tmp_path, media):
    write(tmp_path / "dfdc_train_part_0" / "metadata.json", json.dumps(TRAIN, separators=(",", ":")))
    write(tmp_path / "test" / "metadata.json", _test_json(TEST))
    for name in TRAIN:
        place(tmp_path, f"dfdc_train_part_0/{name}", media["av"])
    return tmp_path


def test_train_parts_group_fakes_with_their_original(tree):
    rows = by_id(manifest("dfdc", tree, part="train"))
    assert {vid: (labels(r), r["method"], r["group"], r["split"]) for vid, r in rows.items()} == {
        "dfdc_train_part_0/aagfhgtpmv": ((1, None, None), None, "vudstovrck", "train"),
        "dfdc_train_part_0/vudstovrck": ((0, 0, 0), "real", "vudstovrck", "train"),
        "dfdc_train_part_0/abofeumbvv": ((1, None, None), None, "atvmxvwyns", "train"),
    }


def test_test_set_from_metadata_json_or_labels_csv(tree):
    rows = by_id(manifest("dfdc", tree, part="test"))
    assert {vid: (labels(r), r["group"], r["split"]) for vid, r in rows.items()} == {
        "test/aalscayrfi": ((0, 0, 0), "aalscayrfi", "test"),
        "test/aaqkmjtoby": ((1, None, None), "aaqkmjtoby", "test"),
    }
    write(tree / "test" / "labels.csv", "filename,label\naalscayrfi.mp4,1\nzzz.mp4,0\n")  # preferred when present
    assert {vid: r["label"] for vid, r in by_id(manifest("dfdc", tree)).items()} == \
        {"test/aalscayrfi": 1, "test/zzz": 0}


@pytest.mark.parametrize("where, text, message", [
    ("dfdc_train_part_0/metadata.json", '{"a.mp4": {"label": "MAYBE", "split": "train"}}',
     r"metadata.json: a.mp4: unknown label value 'MAYBE'"),
    ("dfdc_train_part_0/metadata.json", '{"a.mp4": {"score": 1}}', "neither `label`"),
    ("dfdc_train_part_0/metadata.json", '["a.mp4"]', "expected an object"),
    ("dfdc_train_part_0/metadata.json", '{"a.mp4": ', "not valid JSON"),
    ("test/labels.csv", "file,label\na.mp4,1\n", "header"),
    ("test/labels.csv", "filename,label\na.mp4,FAKE\n", r"labels.csv:2: unknown label value 'FAKE'"),
    ("test/labels.csv", "filename,label\na.mp4,1,x\n", r"labels.csv:2: 3 values"),
])
def test_bad_label_files(tmp_path, where, text, message):
    write(tmp_path / where, text)
    with pytest.raises(DatasetError, match=message):
        manifest("dfdc", tmp_path, part="train" if "train" in where else "test")


def test_real_dfdc_test_metadata(tmp_path):
    real_copy("DFDC/test/metadata.json", tmp_path / "test" / "metadata.json")
    table = manifest("dfdc", tmp_path)
    assert len(table) == 5000 and table["label"].value_counts().to_dict() == {0: 2500, 1: 2500}
    assert table["group"].is_unique and table["split"].eq("test").all()


def test_real_kaggle_train_sample(tmp_path):
    real_copy("DFDC/train_sample_videos/metadata.json", tmp_path / "train_sample_videos" / "metadata.json")
    table = manifest("dfdc", tmp_path, part="train")
    assert len(table) == 400 and table["label"].value_counts().to_dict() == {1: 323, 0: 77}
    fakes, reals = table[table["label"] == 1], table[table["label"] == 0]
    assert fakes["group"].nunique() == 209  # distinct originals
    assert (reals["group"] == reals["video_id"].str.removeprefix("train_sample_videos/")).all()
    in_sample = fakes[fakes["group"].isin(set(reals["group"]))]
    assert (len(in_sample), in_sample["group"].nunique()) == (58, 42)  # fakes whose original is in the sample


def test_dfdcp_dataset_json(tmp_path):
    data = {
        "original_videos/1003254/1003254_A/1255229_A_001.mp4": {"label": "real", "set": "train"},
        "method_A/1003254/1003254_A/1255229_1003254_A_001.mp4": {"label": "fake", "set": "train"},
        "method_B/2000001/2000001_B/3000001_2000001_B_002.mp4": {"label": "fake", "set": "test"},
    }
    write(tmp_path / "dataset.json", json.dumps(data))
    rows = by_id(manifest("dfdcp", tmp_path))
    assert {vid: (labels(r), r["method"], r["group"], r["split"]) for vid, r in rows.items()} == {
        "original_videos/1003254/1003254_A/1255229_A_001": ((0, None, 0), "real", "1003254", "train"),
        "method_A/1003254/1003254_A/1255229_1003254_A_001": ((1, None, 1), "method_A", "1003254", "train"),
        "method_B/2000001/2000001_B/3000001_2000001_B_002": ((1, None, 1), "method_B", "2000001", "test"),
    }
    write(tmp_path / "dataset.json", json.dumps({"a.mp4": {"label": "FAKE", "set": "train"}}))
    with pytest.raises(DatasetError, match="dataset.json: a.mp4: unknown label value 'FAKE'"):
        manifest("dfdcp", tmp_path)
    write(tmp_path / "dataset.json", json.dumps({"a.mp4": {"label": "fake", "set": "holdout"}}))
    with pytest.raises(DatasetError, match="unknown split 'holdout'"):
        manifest("dfdcp", tmp_path)
