"""The generated mini benchmark: layout, labels, media spec, manipulations, faulty files, determinism."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tetrad import mini

GOOD = [f"clips/s{k}_{c}" for k in range(6) for c in "ABCD"]
FAULTY = ["faulty/no_audio", "faulty/no_face", "faulty/short", "faulty/truncated"]
SHIFTED = sorted(mini.AUDIO_SHIFTS)
_CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def _rows(root: Path) -> list[dict]:
    with (root / "labels.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _label(cell: str) -> int | None:
    return None if cell == "" else int(cell)


def _video(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as box:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in box.decode(video=0)]


def _audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as box:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in box.decode(audio=0)])


def _faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    gray = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2GRAY)
    return [tuple(int(v) for v in b) for b in _CASCADE.detectMultiScale(gray, 1.1, 5, minSize=(40, 40))]


def test_labels_header_rows_and_files(mini_root: Path) -> None:
    with (mini_root / "labels.csv").open() as handle:
        assert handle.readline().rstrip("\n") == ",".join(mini.HEADER)
    rows = _rows(mini_root)
    ids = [r["video_id"] for r in rows]
    assert len(rows) == 30 and ids == sorted(ids) and ids == sorted(GOOD + FAULTY + SHIFTED)
    for r in rows:
        assert r["file"] == r["video_id"] + ".mp4" and (mini_root / r["file"]).is_file()
    assert (mini_root / "README.md").read_text().count("| clips/s") == 24


def test_categories_methods_and_groups(mini_root: Path) -> None:
    rows = _rows(mini_root)
    assert Counter(r["category"] for r in rows) == {"A": 6 + 3, "B": 6, "C": 6 + 1 + 2, "D": 6}
    for r in rows:
        if r["video_id"].startswith("clips/"):
            source, category = Path(r["video_id"]).name.split("_")
            assert r["group"] == source and r["category"] == category
        fake_video, _, fake_audio = r["method"].partition("+")
        if r["video_id"].startswith("shifted/"):
            assert r["method"] == "av_shift" and r["group"] == f"s{mini.SHIFT_SOURCE}"
        elif r["category"] in "AB":
            assert r["method"] == {"A": "real", "B": "espeak"}[r["category"]]
        else:
            assert fake_video in ("self_blend", "mouth_retime")
            assert fake_audio == ("espeak" if r["category"] == "D" else "")
    methods = {r["method"] for r in rows if r["category"] == "C"}
    assert methods == {"self_blend", "mouth_retime", "av_shift"}


def test_label_consistency(mini_root: Path) -> None:
    expected = {"A": (0, 0, 0), "B": (1, 1, 0), "C": (1, 0, 1), "D": (1, 1, 1)}
    for r in _rows(mini_root):
        label, audio, video = (_label(r[k]) for k in ("label", "audio_label", "video_label"))
        known = [v for v in (audio, video) if v is not None]
        assert label == max(known)
        if r["video_id"] == "faulty/no_audio":
            assert (label, audio, video) == (1, None, 1)  # the only genuinely unknown modality
        else:
            assert (label, audio, video) == expected[r["category"]]


def test_good_clips_match_the_media_spec(mini_root: Path) -> None:
    durations = set()
    for vid in GOOD:
        with av.open(str(mini_root / f"{vid}.mp4")) as box:
            (video,), (sound,) = box.streams.video, box.streams.audio
            assert video.codec_context.name == "h264" and video.average_rate == 25
            assert (video.width, video.height, video.format.name) == (320, 320, "yuv420p")
            assert sound.codec_context.name == "aac" and sound.rate == 44100 and sound.channels == 1
            duration = box.duration / av.time_base
            assert 3.0 <= duration <= 6.0, vid
            n_frames = sum(1 for _ in box.decode(video=0))
        assert n_frames == pytest.approx(duration * 25, abs=2)
        durations.add(round(duration, 1))
    assert len(durations) > 2  # durations vary by source


def test_face_stays_large_and_visible(mini_root: Path) -> None:
    for k in range(6):
        frames = _video(mini_root / f"clips/s{k}_A.mp4")
        for frame in (frames[0], frames[len(frames) // 2], frames[-1]):
            (x, y, w, h), *_ = sorted(_faces(frame), key=lambda b: -b[2])
            assert w >= 90 and x >= 0 and y >= 0 and x + w <= 320 and y + h <= 320


def test_real_and_fake_audio_differ(mini_root: Path) -> None:
    for k in range(6):
        real, fake = _audio(mini_root / f"clips/s{k}_A.mp4"), _audio(mini_root / f"clips/s{k}_B.mp4")
        n = min(len(real), len(fake))
        assert abs(len(real) - len(fake)) <= 2048
        assert np.sqrt(np.mean(real**2)) > 0.02 and np.sqrt(np.mean(fake**2)) > 0.02  # both are speech
        assert abs(np.corrcoef(real[:n], fake[:n])[0, 1]) < 0.3
        pictures_a, pictures_b = (_video(mini_root / f"clips/s{k}_{c}.mp4")[0] for c in "AB")
        assert np.array_equal(pictures_a, pictures_b)  # B swaps the voice only


@pytest.mark.parametrize("k", range(6))
def test_fake_video_changes_the_face_only(mini_root: Path, k: int) -> None:
    method = {r["video_id"]: r["method"] for r in _rows(mini_root)}[f"clips/s{k}_C"]
    real, fake = _video(mini_root / f"clips/s{k}_A.mp4"), _video(mini_root / f"clips/s{k}_C.mp4")
    assert len(real) == len(fake)  # same camera move, frame for frame
    inside, outside = [], []
    for i in range(0, len(real), 10):
        (x, y, w, h), *_ = sorted(_faces(real[i]), key=lambda b: -b[2])
        diff = np.abs(real[i] - fake[i]).mean(axis=2)
        if method == "mouth_retime":  # the lower middle of the face box, down to the chin
            inside.append(diff[y + 6 * h // 10 : y + 11 * h // 10, x + w // 5 : x + 4 * w // 5].mean())
        else:
            inside.append(diff[y : y + h, x : x + w].mean())
        keep = np.ones(diff.shape, bool)
        keep[max(0, y - h // 2) : y + 2 * h, max(0, x - w // 2) : x + w + w // 2] = False  # face, chin, margin
        outside.append(diff[keep].mean())
    assert np.mean(inside) > 4 * np.mean(outside) and min(inside) > 2 * max(outside), (inside, outside)
    assert max(outside) < 2.5  # two independent H.264 encodes of the same pixels differ by ~1-2 levels


def test_truncated_fails_to_decode(mini_root: Path) -> None:
    path = mini_root / "faulty/truncated.mp4"
    assert path.stat().st_size < (mini_root / "clips/s0_A.mp4").stat().st_size / 2
    with pytest.raises(av.error.FFmpegError):
        with av.open(str(path)) as box:
            for _ in box.decode(*box.streams):
                pass


def test_no_audio_has_only_a_video_stream(mini_root: Path) -> None:
    with av.open(str(mini_root / "faulty/no_audio.mp4")) as box:
        assert len(box.streams.audio) == 0 and len(box.streams.video) == 1
    assert len(_video(mini_root / "faulty/no_audio.mp4")) > 75


def test_no_face_has_no_face_but_has_speech(mini_root: Path) -> None:
    frames = _video(mini_root / "faulty/no_face.mp4")
    assert all(not _faces(frames[i]) for i in range(0, len(frames), 10))
    assert np.sqrt(np.mean(_audio(mini_root / "faulty/no_face.mp4") ** 2)) > 0.02


def test_short_is_a_valid_sub_second_clip(mini_root: Path) -> None:
    with av.open(str(mini_root / "faulty/short.mp4")) as box:
        assert box.duration / av.time_base < 1.0
        assert len(box.streams.audio) == 1 and len(box.streams.video) == 1
    assert len(_video(mini_root / "faulty/short.mp4")) == mini.SHORT_FRAMES


def test_rerun_is_byte_identical_and_removes_stale_clips(mini_root: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    (again / "clips").mkdir(parents=True)
    (again / "clips" / "stale.mp4").write_bytes(b"old")
    (again / "notes.txt").write_text("kept")
    assert mini.make_mini(again) == again
    assert not (again / "clips" / "stale.mp4").exists() and (again / "notes.txt").exists()
    names = sorted(p.relative_to(mini_root) for p in mini_root.rglob("*") if p.is_file())
    made = [p.relative_to(again) for p in again.rglob("*") if p.is_file() and p.name != "notes.txt"]
    assert names == sorted(made)
    for name in names:  # x264 single-threaded without mbtree, native AAC: bytes repeat on the same install
        assert (mini_root / name).read_bytes() == (again / name).read_bytes(), name


def test_plan_depends_on_the_seed() -> None:
    lengths = {"Front Center": 1.4, "Rear Left": 1.3, "Side Right": 1.35}
    face, shape = (177, 66, 95, 95), (512, 512, 3)
    plans = [mini._plan_source(0, seed, face, shape, lengths) for seed in (0, 0, 1)]
    assert plans[0] == plans[1] and plans[0] != plans[2]


def test_missing_material_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mini, "ALSA_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="alsa-utils"):
        mini.make_mini(tmp_path / "out")
    monkeypatch.undo()
    monkeypatch.setattr(mini.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="espeak-ng"):
        mini.make_mini(tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written before the checks pass


def _envelope(wave: np.ndarray, per_frame: int) -> np.ndarray:
    n = len(wave) // per_frame
    return np.sqrt((wave[:n * per_frame].astype(np.float64).reshape(n, per_frame) ** 2).mean(axis=1))


def _best_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> int:
    """The lag (frames) by which `b` follows `a`, by the correlation of their frame envelopes."""
    n = min(len(a), len(b)) - 2 * max_lag
    scores = {lag: float(np.corrcoef(a[max_lag:max_lag + n], b[max_lag + lag:max_lag + lag + n])[0, 1])
              for lag in range(-max_lag, max_lag + 1)}
    return max(scores, key=scores.get)


@pytest.mark.parametrize("vid", sorted(mini.AUDIO_SHIFTS))
def test_shifted_clips_move_the_sound_by_the_stated_frames(mini_root: Path, vid: str) -> None:
    """A shifted clip's sound is its source's recorded speech (the track its mouth was made to follow, with no
    lag) moved by the stated frames: their loudness envelopes line up at exactly that lag."""
    per_frame = mini.SAMPLE_RATE // mini.FPS
    source = f"clips/s{mini.SHIFT_SOURCE}_A"
    real = _envelope(_audio(mini_root / f"{source}.mp4"), per_frame)
    moved = _envelope(_audio(mini_root / f"{vid}.mp4"), per_frame)
    assert _best_lag(real, moved, 12) == mini.AUDIO_SHIFTS[vid]
