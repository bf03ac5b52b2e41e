"""`tetrad doctor`: the report names every missing, corrupt or duplicate file and every bad label file."""

from __future__ import annotations

import dataclasses
import json
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.datasets.conftest import mux_tone, place, write
from tetrad.datasets import build_manifest
from tetrad.cli import parse_args
from tetrad.cli import parser as cli_parser
from tetrad.datasets.doctor import decode_fully, doctor, load_dataset_params, load_target, manifest_hash, probe_file
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
    assert report.missing == [f"{missing.resolve()}: file not found"]
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
    (["real/a.mp4"], "test", "keeps no rows"),
])
def test_unusable_datasets(tmp_path, media, files, split, message):
    (tmp_path / "real").mkdir()
    for rel in files:
        place(tmp_path, rel, media["av"])
    report = doctor(DatasetParams(name="f", adapter="folder", root=str(tmp_path), split=split))
    assert report.exit_code == 1 and any(message in f for f in report.fatal), report.fatal


def test_a_file_listed_twice_is_unusable(tmp_path, media):
    place(tmp_path, "real/a.mp4", media["av"])
    write(tmp_path / "labels.csv", "path,label\nreal/a.mp4,0\nreal/a.mp4,1\n")
    report = doctor(DatasetParams(name="f", adapter="folder", root=str(tmp_path), options={"csv": "labels.csv"}))
    assert report.exit_code == 1 and any("video ids are listed more than once" in f for f in report.fatal)
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


# -- full decode, overrides, cross-split groups, where the root came from (issue 12) ---------------------------

CONF = Path(__file__).resolve().parents[2] / "conf"  # the shipped conf/, read only
ASV_PROTOCOLS = "LA/ASVspoof2019_LA_cm_protocols"


def _faststart_mp4(path: Path, n_frames: int = 50, rate: int = 16000) -> Path:
    """H.264 + AAC with the index first (as the mini benchmark and web videos have it): a cut copy still opens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as box:
        video = box.add_stream("libx264", rate=25, width=64, height=64, pix_fmt="yuv420p")
        video.codec_context.thread_count = 1
        sound = box.add_stream("aac", rate=rate, layout="mono")
        for i in range(n_frames):  # noise frames: big enough packets that a cut lands mid-stream
            pixels = np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            box.mux(video.encode(frame))
        mux_tone(box, sound, n_frames * rate // 25, rate)
        box.mux(video.encode(None))
    return path


@pytest.fixture()
def cut_tree(tmp_path):
    """folder adapter: real/good.mp4 whole, real/cut.mp4 its first half (opens, first frames decode)."""
    good = _faststart_mp4(tmp_path / "real" / "good.mp4")
    data = good.read_bytes()
    (tmp_path / "real" / "cut.mp4").write_bytes(data[: len(data) // 2])
    return tmp_path


def test_full_decodes_every_frame_and_names_a_truncated_file(cut_tree):
    params = DatasetParams(name="f", adapter="folder", root=str(cut_tree))
    cut = str((cut_tree / "real" / "cut.mp4").resolve())
    assert probe_file(cut) == (True, True)  # the first-frame probe cannot tell...
    assert doctor(params, sample=5).undecodable == []
    report = doctor(params, full=True)  # ...the full decode can
    assert report.full and report.probed == 2 and report.usable
    assert len(report.undecodable) == 1, report.undecodable
    line = f"{re.escape(cut)}: only \\d+ of 50 video frames could be decoded; the audio stream decodes to " \
           r"[01]\.\d{3} s of the 2\.000 s its header declares \(truncated or corrupt file\)"
    assert re.fullmatch(line, report.undecodable[0]), report.undecodable[0]
    assert any(w.startswith("1 of 2 fully decoded files cannot be decoded in full") for w in report.warnings)
    text = report.render()
    assert "decoded 2 files fully with PyAV" in text and f"undecodable files: 1\n  {report.undecodable[0]}" in text
    assert decode_fully(cut_tree / "real" / "good.mp4") == (True, True)


def test_full_reports_the_mini_benchmarks_truncated_file(mini_root):
    report = doctor(DatasetParams(root=str(mini_root)), full=True)
    truncated = str((mini_root / "faulty" / "truncated.mp4").resolve())
    assert len(report.undecodable) == 1 and report.undecodable[0].startswith(f"{truncated}: only ")
    assert "truncated or corrupt file" in report.undecodable[0]
    assert report.probed == report.selected == 30 and report.exit_code == 0


@pytest.fixture()
def asv_train_dev(tmp_path, media):
    """An ASVspoof 2019 LA copy with only the train and dev protocols (no eval)."""
    write(tmp_path / ASV_PROTOCOLS / "ASVspoof2019.LA.cm.train.trn.txt",
          "LA_0079 LA_T_1138215 - - bonafide\nLA_0079 LA_T_1271820 - A01 spoof\n")
    write(tmp_path / ASV_PROTOCOLS / "ASVspoof2019.LA.cm.dev.trl.txt", "LA_0069 LA_D_1047731 - - bonafide\n")
    for rel in ("train/flac/LA_T_1138215", "train/flac/LA_T_1271820", "dev/flac/LA_D_1047731"):
        place(tmp_path, f"LA/ASVspoof2019_LA_{rel}.flac", media["flac"])
    return tmp_path


def _doctor_cli(argv: list[str], capsys) -> tuple[int, str]:
    args = parse_args(["doctor", *argv])
    return args.func(args), capsys.readouterr().out


def test_overrides_adapter_options_and_selection(asv_train_dev, capsys):
    base = ["asvspoof2019la", "--conf-dir", str(CONF), "--root", str(asv_train_dev)]
    code, out = _doctor_cli(base, capsys)  # the shipped config reads the eval protocol too
    assert code == 1 and "ASVspoof2019.LA.cm.eval.trl.txt not found" in out
    code, out = _doctor_cli([*base, "parts=[train,dev]", "split=val"], capsys)  # overrides after the options
    assert code == 0, out
    assert "selection (split=val sample=None limit=None seed=0): 1 rows" in out and "result: usable" in out
    target = load_target("asvspoof2019la", None, CONF, None, ["options.parts=[train]", "limit=1", "split=null"])
    assert target.params.options == {"parts": ["train"]} and target.params.limit == 1
    assert target.params.split is None
    with pytest.raises(SystemExit):  # an unknown option is still an argparse error, not an override
        parse_args(["doctor", "asvspoof2019la", "split=val", "--nope"])


@pytest.mark.parametrize("override, message", [
    ("protocol=x", "override 'protocol=x': unknown key 'protocol' (dataset keys: name, adapter, root, split"),
    ("options.nope=1", "unknown key 'options.nope'"),
    ("limit=many", "dataset.limit: expected int, got 'many'"),
    ("split", "cannot parse the override"),
])
def test_bad_override_is_one_error_naming_it(override, message, capsys):
    code, out = _doctor_cli(["asvspoof2019la", "--conf-dir", str(CONF), override], capsys)
    assert code == 2 and out.startswith("error: ") and message in out and len(out.splitlines()) == 1, out


def test_identity_in_several_splits_is_flagged(celebdf, tmp_path, media, capsys):
    place(tmp_path, "Celeb-real/id0_0001.mp4", media["video"])  # unlisted: split train with all_videos
    (tmp_path / "YouTube-real").mkdir(exist_ok=True)
    assert doctor(celebdf).shared_groups == []  # the test list alone: one split
    report = doctor(dataclasses.replace(celebdf, options={"all_videos": True}))
    assert report.shared_groups == ["id0: test, train"] and report.usable
    assert any("1 of 3 groups appear in more than one split (e.g. id0: test, train)" in w for w in report.warnings)
    assert "groups in several splits: 1\n  id0: test, train" in report.render()
    conf = write(tmp_path / "conf" / "dataset" / "celebdf.yaml", f"name: celebdf\nadapter: celebdf\nroot: {tmp_path}\n")
    code, out = _doctor_cli(["celebdf", "--conf-dir", str(conf.parents[1]), "all_videos=true"], capsys)
    assert code == 0 and "appear in more than one split" in out


def test_missing_root_names_where_it_was_set(tmp_path, capsys):
    conf = write(tmp_path / "conf" / "dataset" / "cdf.yaml", "name: cdf\nadapter: celebdf\nroot: nowhere\n")
    conf_dir = str(conf.parents[1])
    code, out = _doctor_cli(["cdf", "--conf-dir", conf_dir], capsys)
    assert code == 1 and f"does not exist (set by `root` in {conf})" in out
    code, out = _doctor_cli(["cdf", "--conf-dir", conf_dir, "--root", str(tmp_path / "gone")], capsys)
    assert code == 1 and f"dataset root {tmp_path / 'gone'} does not exist (set by --root on the command line)" in out
    code, out = _doctor_cli(["cdf", "--conf-dir", conf_dir, "root=elsewhere"], capsys)
    assert code == 1 and "(set by the override 'root=elsewhere' on the command line)" in out
    params_file = write(tmp_path / "params.yaml", "datasets:\n  cdf:\n    name: cdf\n    adapter: celebdf\n"
                                                  "    root: nowhere\n")
    code, out = _doctor_cli(["cdf", "--params", str(params_file)], capsys)
    assert code == 1 and f"(set by `datasets.cdf.root` in {params_file})" in out
    assert "params.yaml" not in _doctor_cli(["cdf", "--params", str(params_file), "--root", "x"], capsys)[1]
