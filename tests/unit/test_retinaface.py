"""RetinaFace (ternaus/retinaface resnet50) as a face backend: the release's state-dict layout and zip format,
strict loading, priors, decoding, upstream's resize / drop / rounding rules, demo-random weights that find a
handful of faces, and a golden check against upstream's own code when it is available (skipped otherwise).

Upstream is found as in tests/layers/test_parity_faces.py: TETRAD_UPSTREAM_RETINAFACE (a checkout of
ternaus/retinaface@b72317d, or a folder holding the pip package) and TETRAD_UPSTREAM_PYDEPS (albumentations
1.0.0), defaulting to ../upstream/retinaface and ../upstream/pydeps next to the repository.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from tetrad import weights as wm
from tetrad.faces import Face, list_face_detectors
from tetrad.faces import retinaface as rf

REPO = Path(__file__).resolve().parents[2]
N_KEYS = 456  # upstream RetinaFace(name="Resnet50", ...).state_dict() under torch 2.14


@pytest.fixture(scope="module")
def net() -> rf.RetinaFaceNet:
    return rf.RetinaFaceNet()


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    """A weights cache holding only the demo-random checkpoint, written as the pipeline writes it."""
    folder = tmp_path_factory.mktemp("weights")
    assert rf.write_demo_checkpoint(rf.ENTRY, folder) is not None
    return folder


@pytest.fixture(scope="module")
def demo_path(weights_dir) -> Path:
    return wm.path_for(wm.get_entry(rf.ENTRY), weights_dir, demo=True)


@pytest.fixture(scope="module")
def detector(demo_path) -> rf.RetinaFaceDetector:
    return rf.RetinaFaceDetector(weights=demo_path, max_size=128)


def face_frame(height: int = 120, width: int = 160, seed: int = 3) -> np.ndarray:
    frame = rf.calibration_image(seed, height, width)
    frame[10:90, 40:110] = np.asarray(skimage.data.astronaut()[40:200:2, 160:300:2])
    return frame


# ------------------------------------------------------------------------------------------------ format


def test_state_dict_has_the_release_keys_and_shapes(net):
    state = net.state_dict()
    assert len(state) == N_KEYS
    shapes = {
        "body.conv1.weight": (64, 3, 7, 7), "body.layer4.2.bn3.running_var": (2048,),
        "fpn.output1.0.weight": (256, 512, 1, 1), "fpn.output3.1.num_batches_tracked": (),
        "fpn.merge1.0.weight": (256, 256, 3, 3), "ssh1.conv3X3.0.weight": (128, 256, 3, 3),
        "ssh2.conv5X5_1.0.weight": (64, 256, 3, 3), "ssh3.conv7X7_2.1.bias": (64,),
        "ssh3.conv7x7_3.0.weight": (64, 64, 3, 3), "ClassHead.0.conv1x1.weight": (4, 256, 1, 1),
        "BboxHead.2.conv1x1.bias": (8,), "LandmarkHead.1.conv1x1.weight": (20, 256, 1, 1),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert {k.split(".")[0] for k in state} == {"body", "fpn", "ssh1", "ssh2", "ssh3", "ClassHead", "BboxHead",
                                                "LandmarkHead"}
    assert not [k for k in state if k.startswith(("body.fc", "body.avgpool"))]


def test_release_zip_round_trip_and_torch_hub_reads_it(tmp_path):
    state = {"a.weight": torch.arange(6.0).view(2, 3), "b.num_batches_tracked": torch.tensor(3)}
    path = tmp_path / "model-0123abc.zip"
    rf.write_checkpoint(state, path)
    with zipfile.ZipFile(path) as zf:
        assert len(zf.infolist()) == 1  # torch hub's "legacy zip": exactly one member
    for got in (rf.read_state_dict(path),
                torch.hub.load_state_dict_from_url(path.as_uri(), model_dir=str(tmp_path / "hub"), progress=False)):
        assert set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)
    plain = tmp_path / "plain.pth"
    torch.save(state, plain)  # a torch.save file is a zip of many entries: read as it is
    assert torch.equal(rf.read_state_dict(plain)["a.weight"], state["a.weight"])


def test_unreadable_files_name_the_file(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(rf.CheckpointError, match="broken.zip: cannot read"):
        rf.read_state_dict(bad)
    with pytest.raises(rf.CheckpointError, match="absent.zip: RetinaFace checkpoint not found"):
        rf.read_state_dict(tmp_path / "absent.zip")
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(rf.CheckpointError, match="list.pth: expected a state dict"):
        rf.read_state_dict(listed)


def test_strict_load_names_the_file_and_the_keys(net):
    state = dict(net.state_dict())
    del state["LandmarkHead.2.conv1x1.bias"], state["ssh1.conv3X3.0.weight"]
    state["model.extra"] = torch.zeros(1)
    with pytest.raises(rf.CheckpointError) as err:
        rf.load_into(rf.RetinaFaceNet(), state, "weights/face/x.zip")
    message = str(err.value)
    assert message.startswith("weights/face/x.zip: ")
    for key in ("LandmarkHead.2.conv1x1.bias", "ssh1.conv3X3.0.weight", "model.extra", "2 missing", "1 unexpected"):
        assert key in message
    state = dict(net.state_dict(), **{"ClassHead.0.conv1x1.bias": torch.zeros(6)})
    with pytest.raises(rf.CheckpointError, match=r"x.pth: 1 tensors have the wrong shape.*ClassHead.0.conv1x1.bias"):
        rf.load_into(rf.RetinaFaceNet(), state, "x.pth")


# ------------------------------------------------------------------------------------------------ geometry


def test_priors_by_hand():
    p = rf.priors(64, 96).double().numpy()
    assert p.shape == (8 * 12 * 2 + 4 * 6 * 2 + 2 * 3 * 2, 4)
    expected = [[4 / 96, 4 / 64, 16 / 96, 16 / 64], [4 / 96, 4 / 64, 32 / 96, 32 / 64],  # cell (0, 0), 2 sizes
                [12 / 96, 4 / 64, 16 / 96, 16 / 64]]  # cell (0, 1): columns first
    np.testing.assert_allclose(p[:3], expected, rtol=1e-6)
    np.testing.assert_allclose(p[2 * 12], [4 / 96, 12 / 64, 16 / 96, 16 / 64], rtol=1e-6)  # row 1
    np.testing.assert_allclose(p[192], [8 / 96, 8 / 64, 64 / 96, 64 / 64], rtol=1e-6)  # level 1 starts
    np.testing.assert_allclose(p[-1], [80 / 96, 48 / 64, 512 / 96, 512 / 64], rtol=1e-6)  # level 2, cell (1, 2)
    odd = rf.priors(100, 150)  # ceil: 13x19, 7x10, 4x5 cells
    assert len(odd) == 2 * (13 * 19 + 7 * 10 + 4 * 5) and float(odd[:, 2:].max()) > 1  # never clipped


def test_resize_follows_albumentations_longest_max_size():
    assert rf.resized_size(720, 1280, 2048) == (1152, 2048)
    assert rf.resized_size(333, 1000, 500) == (166, 500)  # 166.5: half to even
    assert rf.resized_size(335, 1000, 500) == (168, 500)  # 167.5: half to even
    assert rf.resized_size(100, 150, 256) == (171, 256)
    frame = face_frame()
    assert rf.resize_longest(frame, 160) is frame
    assert rf.resize_longest(frame, 64).shape == (48, 64, 3)


def test_normalise_is_albumentations_normalize_bit_for_bit():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mean = np.array(rf.MEAN, np.float32) * np.float32(255)
    denominator = np.reciprocal(np.array(rf.STD, np.float32) * np.float32(255), dtype=np.float32)
    expected = (image.astype(np.float32) - mean) * denominator
    got = rf.normalise(torch.from_numpy(image)[None])[0].permute(1, 2, 0).numpy()
    assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_decode_boxes_and_points():
    prior = torch.tensor([[0.5, 0.25, 0.2, 0.1]])
    assert torch.allclose(rf.decode_boxes(torch.zeros(1, 4), prior), torch.tensor([[0.4, 0.2, 0.6, 0.3]]))
    loc = torch.tensor([[1.0, -2.0, float(np.log(2) / 0.2), 0.0]])  # centre +0.1 w, -0.2 h; width doubled
    assert torch.allclose(rf.decode_boxes(loc, prior), torch.tensor([[0.32, 0.18, 0.72, 0.28]]), atol=1e-6)
    pre = torch.zeros(1, 10)
    pre[0, 2:4] = torch.tensor([5.0, -5.0])  # point 2: +0.5 w, -0.5 h
    points = rf.decode_points(pre, prior).view(5, 2)
    assert torch.allclose(points[0], prior[0, :2]) and torch.allclose(points[1], torch.tensor([0.6, 0.2]))


def test_drop_rule_equals_upstreams_clipping_loop():
    width, height = 50, 40
    xs = [-30.0, -1.0, 0.0, 0.5, 47.9, 48.0, 48.5, 49.0, 49.5, 60.0]
    boxes = np.array([[x0, y0, x0 + dx, y0 + dy] for x0 in xs for y0 in xs for dx in (0.5, 1.0, 20.0)
                      for dy in (0.5, 20.0)], np.float32)

    def upstream_keeps(box: np.ndarray) -> bool:  # its loop, written out: clip, then `continue` if empty
        x_min = np.clip(box[0], 0, width - 1)
        x_max = np.clip(box[2], x_min + 1, width - 1)
        y_min = np.clip(box[1], 0, height - 1)
        y_max = np.clip(box[3], y_min + 1, height - 1)
        return bool(x_min < x_max and y_min < y_max)

    assert rf.kept_by_upstream(boxes, height, width).tolist() == [upstream_keeps(b) for b in boxes]


def test_scale_back_drop_and_two_decimal_rounding():
    boxes = np.array([[10.0, 20.0, 30.0, 40.0], [99.0, 0.0, 120.0, 10.0]], np.float32)  # 2nd starts at 198 px
    points = np.tile(np.float32([1.0, 2.0]), (2, 5))
    faces = rf._faces(boxes, np.float32([0.9, 0.8]), points, 2.0, 100, 199)
    assert len(faces) == 1 and np.array_equal(faces[0].box, [20.0, 40.0, 60.0, 80.0])
    face = rf.rounded(Face(np.float32([0.125, 0.135, -3.14159, 1e3 / 3]), 0.87654321,
                           np.float32([[0.125, 2.0049]] * 5)))
    assert np.array_equal(face.box, np.float32([0.12, 0.14, -3.14, 333.33]))  # float64 np.round, half to even
    assert np.array_equal(face.points[0], np.float32([0.12, 2.0])) and face.score == 0.87654321
    assert face.box.dtype == np.float32 and face.points.shape == (5, 2)


def test_hub_hash_prefix_check(caplog):
    assert rf.check_hub_hash(Path("retinaface_resnet50_2020-07-20-f168fae3c.zip"), "f168fae3c" + "0" * 55)
    assert rf.check_hub_hash(Path("plain.zip"), "0" * 64)
    with caplog.at_level(logging.WARNING):
        assert not rf.check_hub_hash(Path("w-abc123.zip"), "0" * 64)
    assert "abc123" in caplog.text


# ------------------------------------------------------------------------------------------------ demo weights


def test_catalog_entry_and_demo_in_the_cache(weights_dir, demo_path):
    entry = wm.get_entry(rf.ENTRY)
    assert entry.layer == "face" and entry.sha256 is None and entry.url.endswith(entry.filename)
    assert demo_path.is_file() and wm.DEMO_SUBDIR in demo_path.parts
    assert rf.write_demo_checkpoint(rf.ENTRY, weights_dir) is None  # already there
    assert rf.resolve_weights(rf.ENTRY, weights_dir, allow_demo=True) == (demo_path, "demo-random")
    assert rf.resolve_weights(demo_path) == (demo_path, "demo-random")  # as the extract stage hands it over
    with pytest.raises(wm.WeightsNotFound, match="tetrad weights fetch retinaface_resnet50"):
        rf.resolve_weights(rf.ENTRY, weights_dir, allow_demo=False)
    assert rf.RetinaFaceDetector.write_demo_checkpoint(rf.ENTRY, weights_dir) is None


def test_demo_weights_find_a_handful_of_faces(detector):
    assert "retinaface" in list_face_detectors() and detector.provenance == "demo-random"
    frames = [face_frame(), rf.calibration_image(5, 120, 160), skimage.data.astronaut()]
    for faces in detector.detect(frames):
        assert 1 <= len(faces) <= 5
        assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
        for face in faces:
            assert 0.7 < face.score <= 1.0 and face.box.dtype == np.float32 and face.points.shape == (5, 2)
            assert np.array_equal(face.box, np.round(face.box.astype(np.float64), 2).astype(np.float32))
    assert detector.dropped == 0


def test_batches_equal_single_frames(detector):
    frames = [face_frame(seed=s) for s in (1, 2, 3)]
    together = detector.detect_unrounded(frames)
    for frame, batch in zip(frames, together):
        (alone,) = detector.detect_unrounded([frame])
        assert len(alone) == len(batch)
        for a, b in zip(alone, batch):
            assert np.abs(a.box - b.box).max() < 1e-3 and abs(a.score - b.score) < 1e-5


# ------------------------------------------------------------------------------------------------ upstream


def _upstream() -> tuple[Path, list[Path]]:
    checkout = Path(os.environ.get("TETRAD_UPSTREAM_RETINAFACE") or REPO.parent / "upstream" / "retinaface")
    deps = Path(os.environ.get("TETRAD_UPSTREAM_PYDEPS") or REPO.parent / "upstream" / "pydeps")
    if (checkout / "retinaface" / "predict_single.py").is_file():
        return checkout, [deps] if deps.is_dir() else []
    package = pytest.importorskip("retinaface", reason="retinaface_pytorch (or a checkout) not available")
    return Path(package.__file__).parents[1], []  # the installed package: the same files as the checkout


def test_golden_against_upstream(tmp_path):
    from tetrad.parity import retinaface as parity
    from tetrad.parity.common import isolated_import

    checkout, deps = _upstream()
    path = tmp_path / "crowded.zip"
    rf.write_checkpoint(rf.demo_state_dict(0, crowded=True), path)
    cases = [parity.Case("100x150 @256", [face_frame(100, 150)], 256),
             parity.Case("333x1000 @500", [parity.face_frame(333, 1000, 600, 40, 1)], 500)]
    with isolated_import([checkout, *deps], ["retinaface", "albumentations"]):
        pytest.importorskip("albumentations", reason="upstream's albumentations not available")
        from retinaface.prior_box import priorbox

        up = parity.load_upstream(checkout)
        theirs = priorbox(min_sizes=[[16, 32], [64, 128], [256, 512]], steps=[8, 16, 32], clip=False,
                          image_size=(100, 150))
        assert torch.equal(rf.priors(100, 150), theirs)
        assert all(f.ok for f in up.files), [f.path for f in up.files if not f.ok]
        results = [parity.run_case(up, "crowded", path, case, tmp_path / "hub") for case in cases]
    for result in results:
        assert result.ok and result.n_ours > 0 and result.rounded_differing == 0, result
