"""ASVspoof 2019 LA protocols (bona fide = real, `-` system) and the generic folder/CSV adapter."""

from __future__ import annotations

import os

import pytest

from tests.datasets.conftest import by_id, labels, manifest, place, real_copy, write
from tetrad.datasets import build_manifest
from tetrad.datasets.common import DatasetError
from tetrad.datasets.doctor import doctor
from tetrad.params import DatasetParams

PROTOCOLS = "LA/ASVspoof2019_LA_cm_protocols"
LINES = {
    "train.trn": "LA_0079 LA_T_1138215 - - bonafide\nLA_0079 LA_T_1271820 - A01 spoof\n"
                 "LA_0080 LA_T_2000001 - A06 spoof\n",
    "dev.trl": "LA_0069 LA_D_1047731 - - bonafide\nLA_0069 LA_D_1105538 - A03 spoof\n",
    "eval.trl": "LA_0039 LA_E_2834763 - A11 spoof\nLA_0040 LA_E_1000001 - - bonafide\n",
}


@pytest.fixture()
def tree(tmp_path, media):
    for suffix, text in LINES.items():
        write(tmp_path / PROTOCOLS / f"ASVspoof2019.LA.cm.{suffix}.txt", text)
    place(tmp_path, "LA/ASVspoof2019_LA_train/flac/LA_T_1138215.flac", media["flac"])
    return tmp_path


def test_protocol_rows(tree):
    rows = by_id(manifest("asvspoof2019la", tree))
    assert {vid: (labels(r), r["method"], r["group"], r["split"]) for vid, r in rows.items()} == {
        "LA/ASVspoof2019_LA_train/flac/LA_T_1138215": ((0, 0, None), "bonafide", "LA_0079", "train"),
        "LA/ASVspoof2019_LA_train/flac/LA_T_1271820": ((1, 1, None), "A01", "LA_0079", "train"),
        "LA/ASVspoof2019_LA_train/flac/LA_T_2000001": ((1, 1, None), "A06", "LA_0080", "train"),
        "LA/ASVspoof2019_LA_dev/flac/LA_D_1047731": ((0, 0, None), "bonafide", "LA_0069", "val"),
        "LA/ASVspoof2019_LA_dev/flac/LA_D_1105538": ((1, 1, None), "A03", "LA_0069", "val"),
        "LA/ASVspoof2019_LA_eval/flac/LA_E_2834763": ((1, 1, None), "A11", "LA_0039", "test"),
        "LA/ASVspoof2019_LA_eval/flac/LA_E_1000001": ((0, 0, None), "bonafide", "LA_0040", "test"),
    }


def test_root_may_be_the_la_folder_and_parts_option(tree):
    table = manifest("asvspoof2019la", tree / "LA", parts=["eval"])
    assert table["video_id"].tolist() == ["ASVspoof2019_LA_eval/flac/LA_E_2834763",
                                          "ASVspoof2019_LA_eval/flac/LA_E_1000001"]


@pytest.mark.parametrize("line, message", [
    ("LA_0009 LA_T_9332881 alaw ita_tx A07 spoof notrim eval", "8 fields: this is an ASVspoof 2021 key file"),
    ("flac LA_T_2834763 A11 spoof", "4 fields: a derived protocol without the speaker column"),
    ("LA_0079 LA_T_1138215 - - genuine", "unknown label value 'genuine'"),
    ("LA_0079 LA_T_1138215 - A01 bonafide", "system 'A01' does not fit key 'bonafide'"),
    ("LA_0079 LA_D_1138215 - - bonafide", r"expected `SPEAKER LA_T_<digits> - SYSTEM KEY` in the train protocol"),
])
def test_bad_protocol_lines(tree, line, message):
    write(tree / PROTOCOLS / "ASVspoof2019.LA.cm.train.trn.txt", LINES["train.trn"] + line + "\n")
    with pytest.raises(DatasetError, match=rf"ASVspoof2019.LA.cm.train.trn.txt:4: .*{message}"):
        manifest("asvspoof2019la", tree)


def test_real_train_and_dev_protocols(tmp_path):
    for name in ("train.trn", "dev.trl"):
        real_copy(f"ASVspoof2019_LA/ASVspoof2019.LA.cm.{name}.txt", tmp_path / PROTOCOLS /
                  f"ASVspoof2019.LA.cm.{name}.txt")
    table = manifest("asvspoof2019la", tmp_path, parts=["train", "dev"])
    assert table.groupby("split").size().to_dict() == {"train": 25380, "val": 24844}
    assert table[table["label"] == 0].groupby("split").size().to_dict() == {"train": 2580, "val": 2548}
    train = table[table["split"] == "train"]
    assert train["method"].value_counts().to_dict() == {
        **{f"A0{i}": 3800 for i in range(1, 7)}, "bonafide": 2580}
    assert table.groupby("split")["group"].nunique().to_dict() == {"train": 20, "val": 20}
    assert (table["audio_label"] == table["label"]).all() and table["video_label"].isna().all()


def test_real_derived_protocol_is_rejected(tmp_path):
    real_copy("ASVspoof2019_LA/derived-rawnet2/ASVspoof2019.LA.cm.train.trn.txt",
              tmp_path / PROTOCOLS / "ASVspoof2019.LA.cm.train.trn.txt")
    with pytest.raises(DatasetError, match=":1: 4 fields"):
        manifest("asvspoof2019la", tmp_path, parts=["train"])


@pytest.fixture()
def folder_tree(tmp_path, media):
    place(tmp_path, "real/a.mp4", media["av"])
    place(tmp_path, "real/sub/b.flac", media["flac"])
    place(tmp_path, "fake/a.mp4", media["av"])
    place(tmp_path, "fake/deep/c.WAV", media["flac"])
    write(tmp_path / "fake" / "notes.txt", "not media")
    return tmp_path


def test_folder_scan(folder_tree):
    rows = by_id(manifest("folder", folder_tree))
    assert {vid: (labels(r), r["method"], r["group"], r["split"]) for vid, r in rows.items()} == {
        "real/a": ((0, 0, 0), "real", "a", None),
        "real/sub/b": ((0, 0, None), "real", "b", None),  # audio-only: no video label
        "fake/a": ((1, None, None), None, "a", None),
        "fake/deep/c": ((1, None, None), None, "c", None),
    }


def test_folder_csv(folder_tree):
    write(folder_tree / "labels.csv", "path,label,audio_label,video_label,group,split,category,method\n"
          "real/a.mp4,0,0,0,spk1,test,A,real\nfake/a.mp4,1,1,0,spk1,dev,B,tts\nreal/sub/b.flac,0,,,,,,\n")
    rows = by_id(manifest("folder", folder_tree, csv="labels.csv"))
    assert {vid: (labels(r), r["category"], r["method"], r["group"], r["split"]) for vid, r in rows.items()} == {
        "real/a": ((0, 0, 0), "A", "real", "spk1", "test"),
        "fake/a": ((1, 1, 0), "B", "tts", "spk1", "val"),
        "real/sub/b": ((0, None, None), None, "real", "b", None),
    }


@pytest.mark.parametrize("text, message", [
    ("file,label\na.mp4,0\n", "header"),
    ("path,label,colour\na.mp4,0,red\n", "header"),
    ("path,label\na.mp4,fake\n", r"labels.csv:2: unknown label value 'fake'"),
    ("path,label\na.mp4,0,1\n", r"labels.csv:2: wrong number of values"),
    ("path,label\n../a.mp4,0\n", "must name a file under the dataset root"),
    ("path,label,audio_label\na.mp4,1,2\n", r"labels.csv:2 \(audio_label\): unknown label value '2'"),
])
def test_folder_bad_csv(tmp_path, text, message):
    write(tmp_path / "labels.csv", text)
    with pytest.raises(DatasetError, match=message):
        manifest("folder", tmp_path, csv="labels.csv")


def test_every_file_is_a_row_links_and_name_clashes_included(tmp_path, media, monkeypatch):
    place(tmp_path, "real/a.mp4", media["av"])
    place(tmp_path, "real/a.wav", media["flac"])  # same stem, another extension: both keep an id of their own
    place(tmp_path, "fake/locked.mp4", media["av"])
    (tmp_path / "fake" / "dangling.mp4").symlink_to(tmp_path / "fake" / "gone.mp4")
    (tmp_path / "fake" / "loop.mp4").symlink_to(tmp_path / "fake" / "loop2.mp4")
    (tmp_path / "fake" / "loop2.mp4").symlink_to(tmp_path / "fake" / "loop.mp4")
    locked = str((tmp_path / "fake" / "locked.mp4").resolve())
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: p != locked and real_access(p, mode))  # root reads all
    table = build_manifest(DatasetParams(name="f", adapter="folder", root=str(tmp_path)))
    rows = by_id(table)
    assert set(rows) == {"real/a.mp4", "real/a.wav", "fake/locked", "fake/dangling", "fake/loop", "fake/loop2"}
    assert rows["real/a.mp4"]["status"] == "ok" and rows["real/a.wav"]["status"] == "ok"
    errors = {vid: r["error"].split(": ", 1)[1] for vid, r in rows.items() if r["status"] == "error"}
    assert errors == {"fake/locked": "unreadable (permission denied)",
                      "fake/dangling": f"dangling symbolic link (its target {tmp_path / 'fake' / 'gone.mp4'} "
                                       "does not exist)",
                      "fake/loop": "symbolic link loop", "fake/loop2": "symbolic link loop"}
    report = doctor(DatasetParams(name="f", adapter="folder", root=str(tmp_path)))
    assert report.usable and len(report.missing) == 4
    assert any(m.endswith("loop.mp4: symbolic link loop") for m in report.missing)
