"""`tetrad doctor`: the report names every missing, corrupt or duplicate file and every bad label file."""

from __future__ import annotations

import json

import pytest

from tests.datasets.conftest import place, write
from tetrad.datasets import build_manifest
from tetrad.cli import parser as cli_parser
from tetrad.datasets.doctor import doctor, load_dataset_params, manifest_hash
from tetrad.params import DatasetParams

LIST = "1 YouTube-real/00170.mp4\n1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n" \
       "0 Celeb-synthesis/id17_id2_0003.mp4"


@pytest.fixture()
def celebdf(tmp_path, media):
    """Four listed videos: one missing, one corrupt, two good."""
    write(tmp_path / "List_of_testing_videos.txt", LIST)
    place(tmp_path, "Celeb-real/id0_0000.mp4", media["video"])
    place(tmp_path, "Celeb-synthesis/id0_id1_0000.mp4", media["video"])
    place(tmp_path, "Celeb-synthesis/id17_id2_0003.mp4", media["corrupt"])
    return DatasetParams(name="cdf", adapter="celebdf", root=str(tmp_path))


def test_report_names_missing_and_corrupt_files(celebdf, tmp_path):
    report = doctor(celebdf, full=True)
    missing, corrupt = tmp_path / "YouTube-real/00170.mp4", tmp_path / "Celeb-synthesis/id17_id2_0003.mp4"
    assert report.usable and report.exit_code == 0
    assert report.missing == [str(missing.resolve())]
    assert len(report.undecodable) == 1 and report.undecodable[0].startswith(f"{corrupt.resolve()}: cannot decode")
    assert report.probed == 3 and report.rows == 4 and report.groups == 3
    assert report.counts["label"] == {"fake (1)": 2, "real (0)": 2}
    assert report.counts["category"] == {"Celeb-real": 1, "Celeb-synthesis": 2, "YouTube-real": 1}
    assert ("videos in the test list", 518, 4) in [(e.what, e.expected, e.found) for e in report.expected]
    assert "5 of 5 counts differ from the dataset's known ones" in report.warnings[0]
    assert report.manifest_hash == manifest_hash(build_manifest(celebdf))
    text = report.render()
    for needle in (str(missing.resolve()), str(corrupt.resolve()), "WARN  videos in the test list: expected 518",
                   "result: usable, with warnings", f"manifest sha256: {report.manifest_hash}"):
        assert needle in text


def test_probe_sample_is_seeded_and_bounded(celebdf):
    one = doctor(celebdf, sample=1)
    assert one.probed == 1
    assert doctor(celebdf, sample=1).undecodable == one.undecodable  # same seed, same file


def test_wrong_label_file_is_fatal_and_named(tmp_path):
    inverted = LIST.replace("1 ", "#").replace("0 ", "1 ").replace("#", "0 ")
    list_file = write(tmp_path / "List_of_testing_videos.txt", inverted)
    report = doctor(DatasetParams(name="cdf", adapter="celebdf", root=str(tmp_path)))
    assert report.exit_code == 1 and not report.rows
    assert str(list_file) in report.fatal[0] and "1 = fake" in report.fatal[0]
    assert "result: UNUSABLE" in report.render()


def test_missing_stream_duplicates_and_adapter_notes(tmp_path, media):
    header = "source,target1,target2,method,category,type,race,gender,path,\n"
    row = "id00076,fake.mp4,-,rtvc,B,RealVideo-FakeAudio,African,men,00109_fake.mp4," \
          "FakeAVCeleb/RealVideo-FakeAudio/African/men/id00076\n"
    write(tmp_path / "meta_data.csv", header + row + row)
    clip = place(tmp_path, "RealVideo-FakeAudio/African/men/id00076/00109_fake.mp4", media["video"])
    report = doctor(DatasetParams(name="fav", adapter="fakeavceleb", root=str(tmp_path)))
    assert report.stream_problems == [f"{clip.resolve()}: no audio stream, but audio_label is set"]
    assert any("1 duplicated rows dropped" in n for n in report.notes)
    assert [e.found for e in report.expected if e.what.startswith("files")] == [1]


@pytest.mark.parametrize("files, split, message", [
    ([], None, "the adapter listed no files"),
    (["real/a.mp4", "real/a.wav"], None, "video ids are listed more than once"),
    (["real/a.mp4"], "test", "keeps no rows"),
])
def test_unusable_datasets(tmp_path, media, files, split, message):
    (tmp_path / "real").mkdir()
    for rel in files:
        place(tmp_path, rel, media["av"])
    report = doctor(DatasetParams(name="f", adapter="folder", root=str(tmp_path), split=split))
    assert report.exit_code == 1 and any(message in f for f in report.fatal), report.fatal
    if len(files) == 2:
        assert "real/a" in report.render()


def test_all_files_missing_is_fatal(tmp_path):
    write(tmp_path / "labels.csv", "path,label\nreal/gone.mp4,0\n")
    report = doctor(DatasetParams(name="f", adapter="folder", root=str(tmp_path), options={"csv": "labels.csv"}))
    assert report.exit_code == 1 and "none of the 1 selected files exists" in report.fatal
    assert str((tmp_path / "real/gone.mp4").resolve()) in report.render()


def test_cli_reads_conf_dataset_yaml_and_params_yaml(celebdf, tmp_path, capsys):
    conf = tmp_path / "conf"
    write(conf / "dataset" / "celebdf.yaml", "name: celebdf\nadapter: celebdf\nroot: nowhere\nsplit: null\n"
          "limit: null\nsample: null\nseed: 0\noptions: {}\n")
    parser = cli_parser()
    args = parser.parse_args(["doctor", "celebdf", "--root", celebdf.root, "--conf-dir", str(conf), "--sample", "2"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "dataset celebdf (adapter celebdf)" in out and "probed 2 files" in out
    args = parser.parse_args(["doctor", "celebdf", "--conf-dir", str(conf)])
    assert args.func(args) == 1 and "does not exist" in capsys.readouterr().out
    params_file = write(tmp_path / "params.yaml", json.dumps(
        {"datasets": {"cdf": {"name": "cdf", "adapter": "celebdf", "root": celebdf.root}}}))
    assert load_dataset_params("cdf", params_file).root == celebdf.root
    args = parser.parse_args(["doctor", "nope", "--conf-dir", str(conf)])
    assert args.func(args) == 2 and "known datasets: ['celebdf']" in capsys.readouterr().out
