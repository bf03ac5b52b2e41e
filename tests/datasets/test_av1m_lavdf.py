"""AV-Deepfake1M and LAV-DF: labels from fake segments / n_fakes, modality labels from modify type / flags."""

from __future__ import annotations

import json
import logging

import pytest

from tests.datasets.conftest import by_id, labels, manifest, real_copy, write
from tetrad.datasets.common import DatasetError


def _av1m(file, modify_type, segments, original=None, split="val") -> dict:
    return {"file": file, "original": original, "split": split, "modify_type": modify_type, "audio_model": "",
            "fake_segments": segments, "audio_fake_segments": [], "visual_fake_segments": [],
            "video_frames": 100, "audio_frames": 64000}


VAL = [
    _av1m("id00001/abc/00001/real.mp4", "real", []),
    _av1m("id00001/abc/00001/fake_video_real_audio.mp4", "visual_modified", [[1.0, 1.5]],
          "id00001/abc/00001/real.mp4"),
    _av1m("id00002/xyz/00003/fake_video_real_audio.mp4", "video_modified", [[0.2, 0.6]],
          "id00002/xyz/00003/real.mp4"),  # the other spelling
    _av1m("id00001/abc/00001/real_video_fake_audio.mp4", "audio_modified", [[2.0, 2.4]],
          "id00001/abc/00001/real.mp4"),
    _av1m("id00001/abc/00001/fake_video_fake_audio.mp4", "both-modified", [[0.5, 0.9]],
          "id00001/abc/00001/real.mp4"),  # the spelling of the upstream loader
    _av1m("id00003/qqq/00002/real_video_fake_audio.mp4", "audio_modified", [],
          "id00003/qqq/00002/real.mp4"),  # modified by name, but no fake segment: real
]


def test_av1m_labels_groups_and_spellings(tmp_path, caplog):
    write(tmp_path / "val_metadata.json", json.dumps(VAL))
    write(tmp_path / "train_metadata.json", json.dumps([_av1m("id09999/t/00001/real.mp4", "real", [], None, "train")]))
    with caplog.at_level(logging.WARNING, logger="tetrad.datasets"):
        rows = by_id(manifest("av1m", tmp_path, subsets=["train", "val"]))
    assert {vid: (labels(r), r["method"], r["group"], r["split"]) for vid, r in rows.items()} == {
        "train/id09999/t/00001/real": ((0, 0, 0), "real", "id09999/t/00001/real", "train"),
        "val/id00001/abc/00001/real": ((0, 0, 0), "real", "id00001/abc/00001/real", "val"),
        "val/id00001/abc/00001/fake_video_real_audio": ((1, 0, 1), "visual_modified", "id00001/abc/00001/real", "val"),
        "val/id00002/xyz/00003/fake_video_real_audio": ((1, 0, 1), "visual_modified", "id00002/xyz/00003/real", "val"),
        "val/id00001/abc/00001/real_video_fake_audio": ((1, 1, 0), "audio_modified", "id00001/abc/00001/real", "val"),
        "val/id00001/abc/00001/fake_video_fake_audio": ((1, 1, 1), "both_modified", "id00001/abc/00001/real", "val"),
        "val/id00003/qqq/00002/real_video_fake_audio": ((0, 0, 0), "real", "id00003/qqq/00002/real", "val"),
    }
    assert "1 entries where modify_type says modified but fake_segments is empty: real" in caplog.text
    assert rows["val/id00001/abc/00001/real"]["path"] == str((tmp_path / "val/id00001/abc/00001/real.mp4").resolve())


@pytest.mark.parametrize("entry, message", [
    (_av1m("a/b.mp4", "lip_modified", [[0, 1]]), "entry 0: unknown modify_type 'lip_modified'"),
    ({"file": "a/b.mp4", "modify_type": "real"}, r"entry 0: missing \['fake_segments'\]"),
    (_av1m("a/b.mp4", "real", "[]"), "fake_segments is '\\[\\]', expected a list"),
])
def test_av1m_bad_metadata(tmp_path, entry, message):
    write(tmp_path / "val_metadata.json", json.dumps([entry]))
    with pytest.raises(DatasetError, match=message):
        manifest("av1m", tmp_path)


def test_av1m_test_subset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="withheld"):
        manifest("av1m", tmp_path, subsets=["test"])


def _lavdf(file, n_fakes, video, audio, split, original=None) -> dict:
    return {"file": file, "n_fakes": n_fakes, "fake_periods": [[0.5, 0.9]] * int(n_fakes), "duration": 4.224,
            "original": original, "modify_video": video, "modify_audio": audio, "split": split,
            "video_frames": 103, "audio_channels": 1, "audio_frames": 65536}


def test_lavdf_labels_groups_and_splits(tmp_path, caplog):
    entries = [
        _lavdf("test/000001.mp4", 0, False, False, "test"),
        _lavdf("test/000002.mp4", 1, True, False, "test", "test/000001.mp4"),
        _lavdf("dev/000003.mp4", 2, False, True, "dev", "dev/000009.mp4"),
        _lavdf("train/000004.mp4", 1, True, True, "train", "train/000010.mp4"),
        _lavdf("train/000005.mp4", 1, False, False, "train", "train/000010.mp4"),  # no flag: modality unknown
    ]
    write(tmp_path / "metadata.json", json.dumps(entries))
    with caplog.at_level(logging.WARNING, logger="tetrad.datasets"):
        rows = by_id(manifest("lavdf", tmp_path))
    assert {vid: (labels(r), r["method"], r["group"], r["split"]) for vid, r in rows.items()} == {
        "test/000001": ((0, 0, 0), "real", "test/000001", "test"),
        "test/000002": ((1, 0, 1), "visual_modified", "test/000001", "test"),
        "dev/000003": ((1, 1, 0), "audio_modified", "dev/000009", "val"),
        "train/000004": ((1, 1, 1), "both_modified", "train/000010", "train"),
        "train/000005": ((1, None, None), None, "train/000010", "train"),
    }
    assert "n_fakes > 0 but no modify flag" in caplog.text


def test_lavdf_real_excerpt_as_metadata_min(tmp_path):
    real_copy("LAV-DF/metadata.min.excerpt.json", tmp_path / "metadata.min.json")
    rows = by_id(manifest("lavdf", tmp_path))
    assert {vid: (labels(r), r["split"], r["group"]) for vid, r in rows.items()} == \
        {"test/000001": ((0, 0, 0), "test", "test/000001")}


def test_lavdf_bad_metadata(tmp_path):
    write(tmp_path / "metadata.json", json.dumps([_lavdf("x.mp4", "1", True, False, "test")]))
    with pytest.raises(DatasetError, match="metadata.json: entry 0: n_fakes must be an int"):
        manifest("lavdf", tmp_path)
    write(tmp_path / "metadata.json", json.dumps([_lavdf("x.mp4", 1, True, False, "holdout")]))
    with pytest.raises(DatasetError, match="unknown split 'holdout'"):
        manifest("lavdf", tmp_path)
