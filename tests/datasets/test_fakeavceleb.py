"""FakeAVCeleb v1.2: trailing-comma header, 10 values, re-rooted folders, duplicate rows, repeated names."""

from __future__ import annotations

import logging

import pytest

from tests.datasets.conftest import by_id, labels, manifest, place, real_copy, write
from tetrad.datasets.common import SPLITS, DatasetError, grouped_split

HEADER = "source,target1,target2,method,category,type,race,gender,path,\n"
ROWS = [
    "id00076,-,-,real,A,RealVideo-RealAudio,African,men,00109.mp4,FakeAVCeleb/RealVideo-RealAudio/African/men/id00076",
    "id00076,fake.mp4,-,rtvc,B,RealVideo-FakeAudio,African,men,00109_fake.mp4,"
    "FakeAVCeleb/RealVideo-FakeAudio/African/men/id00076",
    "id00076,id00166,-,faceswap,C,FakeVideo-RealAudio,African,men,00109_00010.mp4,"
    "FakeAVCeleb/FakeVideo-RealAudio/African/men/id00076",
    "id00076,id00166,-,faceswap-wav2lip,D,FakeVideo-FakeAudio,African,men,00109_id00166_wavtolip.mp4,"
    "FakeAVCeleb/FakeVideo-FakeAudio/African/men/id00076",
    # the same file again with another method, as 22 files of v1.2 are
    "id00076,id00166,-,wav2lip,D,FakeVideo-FakeAudio,African,men,00109_id00166_wavtolip.mp4,"
    "FakeAVCeleb/FakeVideo-FakeAudio/African/men/id00076",
    "id00220,-,-,real,A,RealVideo-RealAudio,Asian (South),women,00027.mp4,"
    "FakeAVCeleb/RealVideo-RealAudio/Asian (South)/women/id00220",
    # a C faceswap file that reuses the real file's name in another folder
    "id00220,-,-,faceswap,C,FakeVideo-RealAudio,Asian (South),women,00027.mp4,"
    "FakeAVCeleb/FakeVideo-RealAudio/Asian (South)/women/id00220",
]
EXPECTED = {  # video_id -> (label, audio, video), category, method, group
    "RealVideo-RealAudio/African/men/id00076/00109": ((0, 0, 0), "A", "real", "id00076"),
    "RealVideo-FakeAudio/African/men/id00076/00109_fake": ((1, 1, 0), "B", "rtvc", "id00076"),
    "FakeVideo-RealAudio/African/men/id00076/00109_00010": ((1, 0, 1), "C", "faceswap", "id00076"),
    "FakeVideo-FakeAudio/African/men/id00076/00109_id00166_wavtolip": ((1, 1, 1), "D", "faceswap-wav2lip", "id00076"),
    "RealVideo-RealAudio/Asian (South)/women/id00220/00027": ((0, 0, 0), "A", "real", "id00220"),
    "FakeVideo-RealAudio/Asian (South)/women/id00220/00027": ((1, 0, 1), "C", "faceswap", "id00220"),
}


@pytest.fixture()
def tree(tmp_path, media):
    root = tmp_path / "FakeAVCeleb_v1.2"
    write(root / "meta_data.csv", HEADER + "\n".join(ROWS) + "\n")
    for vid in EXPECTED:
        place(root, vid + ".mp4", media["av"])
    return root


def test_rows_labels_groups_and_splits(tree, caplog):
    with caplog.at_level(logging.INFO, logger="tetrad.datasets"):
        table = manifest("fakeavceleb", tree)
    rows = by_id(table)
    assert set(rows) == set(EXPECTED)
    for vid, (labs, category, method, group) in EXPECTED.items():
        row = rows[vid]
        assert (labels(row), row["category"], row["method"], row["group"]) == (labs, category, method, group), vid
        assert row["path"] == str((tree / (vid + ".mp4")).resolve())
    want = dict(zip(["id00076", "id00220"], grouped_split(["id00076", "id00220"], 0, [0.7, 0.15, 0.15])))
    assert all(row["split"] == want[row["group"]] and row["split"] in SPLITS for row in rows.values())
    assert "1 duplicated rows dropped" in caplog.text and "grouped split" in caplog.text


def test_split_seed_option_is_used(tree):
    groups = [f"id{i:05d}" for i in range(40)]
    assert grouped_split(groups, 0, [0.5, 0.25, 0.25]) != grouped_split(groups, 9, [0.5, 0.25, 0.25])
    table = manifest("fakeavceleb", tree, split_seed=9, split_fractions=[0.0, 0.0, 1.0])
    assert table["split"].eq("test").all()


def test_edited_variant_reads_the_same(tree):
    variant = "source,target1,target2,method,category,type,race,gender,filename,path\r\n" + "".join(
        r.replace(",FakeAVCeleb/", ",FakeAVCeleb_v1.2/") + "\r\n" for r in ROWS)
    official = manifest("fakeavceleb", tree)
    write(tree / "meta_data.csv", variant)
    assert manifest("fakeavceleb", tree).equals(official)


@pytest.mark.parametrize("text, message", [
    ("source,target1,path\n", "header"),
    (HEADER + ROWS[0].rsplit(",", 1)[0] + "\n", r"meta_data.csv:2: 9 values, expected 10"),
    (HEADER + ROWS[0].replace(",A,", ",E,") + "\n", r"meta_data.csv:2: unknown category 'E'"),
    (HEADER + ROWS[0].replace(",A,", ",B,") + "\n", r"category B has type 'RealVideo-RealAudio'"),
])
def test_bad_label_file_is_one_clear_error(tmp_path, text, message):
    write(tmp_path / "meta_data.csv", text)
    with pytest.raises(DatasetError, match=message):
        manifest("fakeavceleb", tmp_path)


def test_real_meta_data_csv(tmp_path):
    real_copy("FakeAVCeleb/meta_data.csv", tmp_path / "meta_data.csv")
    table = manifest("fakeavceleb", tmp_path)
    assert len(table) == 21544 and table["video_id"].is_unique  # 21566 rows, 22 files listed twice
    assert table["category"].value_counts().to_dict() == {"D": 10835, "C": 9709, "A": 500, "B": 500}
    assert table["group"].nunique() == 500
    assert table.groupby("group")["split"].nunique().eq(1).all()
    assert table.groupby("category")["label"].unique().map(list).to_dict() == \
        {"A": [0], "B": [1], "C": [1], "D": [1]}
    assert table["video_id"].str.startswith(("RealVideo-", "FakeVideo-")).all()
    variant = real_copy("FakeAVCeleb/variant-arnabk001/meta_data.csv", tmp_path / "v" / "meta_data.csv")
    assert manifest("fakeavceleb", variant.parent)["video_id"].tolist() == table["video_id"].tolist()
