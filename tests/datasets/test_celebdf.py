"""Celeb-DF v2: the test list's inverted labels (1 = real), no trailing newline, identity groups."""

from __future__ import annotations

import pytest

from tests.datasets.conftest import by_id, labels, manifest, place, real_copy, write
from tetrad.datasets.common import DatasetError

LIST = ("1 YouTube-real/00170.mp4\n1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n"
        "0 Celeb-synthesis/id17_id2_0003.mp4")  # no trailing newline, as the official file
UNLISTED = ["Celeb-real/id1_0001.mp4", "Celeb-synthesis/id1_id0_0001.mp4", "YouTube-real/00001.mp4"]


@pytest.fixture()
def tree(tmp_path, media):
    write(tmp_path / "List_of_testing_videos.txt", LIST)
    for line in LIST.splitlines():
        place(tmp_path, line.split()[1], media["video"])
    for rel in UNLISTED:
        place(tmp_path, rel, media["video"])
    return tmp_path


def test_inverted_labels_and_identity_groups(tree):
    rows = by_id(manifest("celebdf", tree))
    assert {vid: (labels(r), r["category"], r["method"], r["group"], r["split"]) for vid, r in rows.items()} == {
        "YouTube-real/00170": ((0, None, 0), "YouTube-real", "real", "YouTube-real/00170", "test"),
        "Celeb-real/id0_0000": ((0, None, 0), "Celeb-real", "real", "id0", "test"),
        "Celeb-synthesis/id0_id1_0000": ((1, None, 1), "Celeb-synthesis", "celeb-synthesis", "id0", "test"),
        "Celeb-synthesis/id17_id2_0003": ((1, None, 1), "Celeb-synthesis", "celeb-synthesis", "id17", "test"),
    }


def test_all_videos_adds_the_unlisted_as_train(tree):
    rows = by_id(manifest("celebdf", tree, all_videos=True))
    assert len(rows) == 7
    assert {vid: (r["label"], r["group"], r["split"]) for vid, r in rows.items() if r["split"] == "train"} == {
        "Celeb-real/id1_0001": (0, "id1", "train"),
        "Celeb-synthesis/id1_id0_0001": (1, "id1", "train"),
        "YouTube-real/00001": (0, "YouTube-real/00001", "train"),
    }


@pytest.mark.parametrize("text, message", [
    (LIST.replace("1 ", "X ", 1), r"List_of_testing_videos.txt:1: unknown label value 'X'"),
    (LIST.replace("1 YouTube", "1 2 YouTube"), r":1: .* has 3 fields"),
    (LIST.replace("Celeb-real/", "Celeb-fake/"), r":2: 'Celeb-fake/id0_0000.mp4' is not <folder>/<file>.mp4"),
    (LIST.replace("1 ", "#").replace("0 ", "1 ").replace("#", "0 "), "this copy uses 1 = fake"),
    (LIST.replace("0 Celeb-synthesis/id17", "1 Celeb-synthesis/id17"), ":4: label contradicts the folder"),
    ("", "the file is empty"),
])
def test_bad_list_is_one_clear_error(tmp_path, text, message):
    write(tmp_path / "List_of_testing_videos.txt", text)
    with pytest.raises(DatasetError, match=message):
        manifest("celebdf", tmp_path)


def test_real_test_list(tmp_path):
    real_copy("Celeb-DF-v2/List_of_testing_videos.txt", tmp_path / "List_of_testing_videos.txt")
    table = manifest("celebdf", tmp_path)
    assert len(table) == 518 and table["split"].eq("test").all()
    assert table["label"].value_counts().to_dict() == {1: 340, 0: 178}
    assert table["category"].value_counts().to_dict() == {"Celeb-synthesis": 340, "Celeb-real": 108,
                                                          "YouTube-real": 70}
    ids = set(table["video_id"])
    fakes = table[table["label"] == 1]["video_id"].str.removeprefix("Celeb-synthesis/").str.split("_")
    sources = {f"Celeb-real/{a}_{n}" for a, _, n in fakes}
    with_source = [f"Celeb-real/{a}_{n}" in ids for a, _, n in fakes]
    assert sum(with_source) == 106 and len(sources & ids) == 49  # counted on the official list
    real_groups = set(table.loc[table["category"] == "Celeb-real", "group"])
    assert all(table.loc[table["label"] == 1, "group"].str.fullmatch(r"id\d+")) and real_groups <= set(
        table["group"])
