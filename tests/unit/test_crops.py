"""The crop maths of SBI and LipForensics (see src/tetrad/media/crops.py), on hand-checked numbers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tetrad.faces import Face
from tetrad.media.crops import cut_patch, fill_missing, mouth_crops, sbi_crop, sbi_crop_window, select_faces
from tetrad.media.crops import to_gray


def test_sbi_window_truncates_and_adds_one_on_far_edges():
    # w = h = 80: margin 10; x0 - 10 = 19.5 -> 19; x1 + 10 = 119.7 -> 119 + 1
    assert sbi_crop_window([29.5, 40.0, 109.5, 120.0], 200, 300) == (19, 30, 120, 131)


def test_sbi_window_is_clipped_to_the_frame():
    # int() truncates toward zero (-3.75 -> -3), then max(0, .); the far edge is min(size, int(.) + 1)
    assert sbi_crop_window([5.0, -2.0, 95.0, 98.0], 100, 100) == (0, 0, 100, 100)


def test_sbi_crop_is_380_rgb_and_rejects_a_box_outside():
    frame = np.zeros((100, 100, 3), np.uint8)
    assert sbi_crop(frame, [10, 10, 60, 60]).shape == (380, 380, 3)
    with pytest.raises(ValueError, match="outside"):
        sbi_crop(frame, [150, 150, 190, 190])


def test_select_faces_keeps_at_least_half_the_largest_area():
    box = lambda s: np.array([0, 0, s, s], np.float32)  # noqa: E731
    faces = [Face(box(100), 0.9), Face(box(71), 0.99), Face(box(70), 0.99)]  # 71^2 >= 5000 > 70^2
    assert [f.box[2] for f in select_faces(faces)] == [100, 71]
    assert select_faces([]) == []


def test_fill_missing_interpolates_inside_and_holds_at_the_ends():
    a, b = np.zeros((68, 2)), np.full((68, 2), 4.0)
    filled = fill_missing([None, a, None, None, None, b, None])
    assert filled[:, 0, 0].tolist() == [0, 0, 1, 2, 3, 4, 4]
    with pytest.raises(ValueError):
        fill_missing([None, None])


def test_cut_patch_clamps_the_centre_inside():
    image = np.arange(256 * 256).reshape(256, 256)
    assert cut_patch(image, np.array([10.0, 250.0]), 48).shape == (96, 96)
    assert cut_patch(image, np.array([10.0, 250.0]), 48)[0, 0] == image[256 - 96, 0]
    # round half to even, as Python's round: centre 100.5 -> 100, the patch starts at 52
    assert cut_patch(image, np.array([100.5, 100.5]), 48)[0, 0] == image[52, 52]


def test_mouth_crops_reuse_the_last_transform_and_need_a_full_window():
    rng = np.random.default_rng(0)
    mean_face = rng.uniform(60, 200, (68, 2))
    landmarks = np.repeat(mean_face[None], 14, axis=0) + rng.normal(0, 0.5, (14, 68, 2))
    frames = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(14)]
    crops = mouth_crops(frames, landmarks, mean_face)
    assert len(crops) == 14 and {c.shape for c in crops} == {(96, 96, 3)}
    with pytest.raises(ValueError, match="smoothing window"):
        mouth_crops(frames[:11], landmarks[:11], mean_face)


def test_gray_is_pils_rule():
    rgb = np.random.default_rng(1).integers(0, 256, (9, 9, 3), dtype=np.uint8)
    assert np.array_equal(to_gray(rgb), np.asarray(Image.fromarray(rgb).convert("L")))


def test_a_box_outside_the_frame_is_skipped_not_fatal():
    from tetrad.media.faces import face_rows
    from tetrad.params import ExtractParams

    frame = np.zeros((192, 192, 3), np.uint8)
    faces = {0: [Face(np.array([20, 20, 120, 140], np.float32), 0.99),
                 Face(np.array([230, 10, 320, 130], np.float32), 0.98)]}  # outside, larger than half
    rows = face_rows("v", [(0, 0.0, frame)], faces, ExtractParams(), "mtcnn")
    assert [r["status"] for r in rows] == ["ok"] and rows[0]["box"] == [20, 20, 120, 140]


def test_the_mouth_track_follows_one_face_when_sizes_swap():
    from tetrad.media.crops import track_face

    def face(x0: float, size: float) -> Face:
        return Face(np.array([x0, 10, x0 + size, 10 + size], np.float32), 0.99)

    frames = [[face(0, 100), face(200, 90)], [face(200, 95), face(2, 94)], [], [face(201, 99), face(3, 93)],
              [face(200, 90)]]
    picked = track_face(frames)
    assert [None if f is None else float(f.box[0]) for f in picked] == [0, 2, None, 3, 200]  # lost -> largest
