"""Checkpoint formats: strict loading, clear errors naming the file, and the real UFD head when available."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tetrad.layers import CheckpointError, create_detector
from tetrad.layers.base import load_checkpoint
from tetrad.layers.ufd import UFDDetector
from tetrad.layers.w2v2 import W2V2Detector, fake_index

SHARED = Path(os.environ.get("TETRAD_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "upstream-data"


@pytest.fixture(scope="module")
def ufd_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ufd")
    for slot in ("backbone", "head"):
        UFDDetector.write_demo_weights(slot, root / f"{slot}.pt", "tiny", 0)
    return {"backbone": root / "backbone.pt", "head": root / "head.pt"}


@pytest.fixture(scope="module")
def w2v2_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("w2v2") / "model"
    W2V2Detector.write_demo_weights("model", path, "tiny", 0)
    return path


def test_missing_file_names_it(tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path / "nope.pth")):
        load_checkpoint(tmp_path / "nope.pth")


def test_truncated_checkpoint_names_file(ufd_files, tmp_path):
    bad = tmp_path / "head.pth"
    bad.write_bytes(ufd_files["head"].read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as err:
        create_detector("ufd_clip_vitl14", {**ufd_files, "head": bad}, variant="tiny")
    assert str(bad) in str(err.value)


def test_head_with_wrong_keys_lists_them(ufd_files, tmp_path):
    bad = tmp_path / "head.pth"
    torch.save({"fc.weight": torch.zeros(1, 768), "fc.bias": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError) as err:
        create_detector("ufd_clip_vitl14", {**ufd_files, "head": bad}, variant="tiny")
    message = str(err.value)
    assert str(bad) in message and "missing keys [bias, weight]" in message and "fc.weight" in message


def test_head_with_wrong_shape_is_reported(ufd_files, tmp_path):
    bad = tmp_path / "head.pth"
    torch.save({"weight": torch.zeros(1, 512), "bias": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        create_detector("ufd_clip_vitl14", {**ufd_files, "head": bad}, variant="tiny")


def test_backbone_that_is_not_clip_is_rejected(ufd_files, tmp_path):
    bad = tmp_path / "backbone.pt"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(CheckpointError, match="not an OpenAI CLIP ViT"):
        create_detector("ufd_clip_vitl14", {**ufd_files, "backbone": bad}, variant="tiny")


def test_full_variant_insists_on_vitl14(ufd_files):
    with pytest.raises(CheckpointError, match="expected ViT-L/14"):
        create_detector("ufd_clip_vitl14", ufd_files, variant="full")


def test_pickled_code_is_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "extra": Path("/")}, evil)  # a non-tensor object needs full unpickling
    with pytest.raises(CheckpointError, match="refused: it holds more than tensors.*GLOBAL pathlib.PosixPath"):
        load_checkpoint(evil)


def test_w2v2_checkpoint_missing_weights_fails(w2v2_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "model"
    bad.mkdir()
    for f in w2v2_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    state = load_file(bad / "model.safetensors")
    state.pop(next(k for k in state if k.startswith("classifier.")))
    save_file(state, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="missing_keys"):
        create_detector("w2v2_deepfake_v2", {"model": bad}, variant="tiny")


@pytest.mark.parametrize("labels, expected", [({0: "fake", 1: "real"}, (0, 1)), ({"0": "Real", "1": "FAKE"}, (1, 0))])
def test_fake_index_follows_id2label(labels, expected):
    assert fake_index(labels, "cfg") == expected


@pytest.mark.parametrize("labels", [{0: "LABEL_0", 1: "LABEL_1"}, {0: "spoof", 1: "bonafide"}, {0: "fake"}])
def test_fake_index_refuses_other_labels(labels):
    with pytest.raises(CheckpointError, match="id2label"):
        fake_index(labels, "cfg")


def test_w2v2_label_order_drives_p_fake(w2v2_dir, tmp_path):
    """Swapping id2label (and nothing else) must flip P(fake): the index is never hard-coded."""
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for f in w2v2_dir.iterdir():
        (swapped / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((swapped / "config.json").read_text())
    cfg["id2label"], cfg["label2id"] = {"0": "real", "1": "fake"}, {"real": 0, "fake": 1}
    (swapped / "config.json").write_text(json.dumps(cfg))
    from tests.layers.test_registry import sample_units

    units = sample_units("audio")
    a = create_detector("w2v2_deepfake_v2", {"model": w2v2_dir}, variant="tiny")
    b = create_detector("w2v2_deepfake_v2", {"model": swapped}, variant="tiny")
    with torch.inference_mode():
        torch.testing.assert_close(a(a.preprocess(units)), -b(b.preprocess(units)))


@pytest.mark.skipif(not (SHARED / "ufd_fc_weights.pth").is_file(), reason="../shared/upstream-data not present")
def test_real_ufd_head_loads_strictly(ufd_files):
    state = load_checkpoint(SHARED / "ufd_fc_weights.pth")
    assert set(state) == {"weight", "bias"} and state["weight"].shape == (1, 768)
    assert state["bias"].item() == pytest.approx(-0.51670, abs=1e-5)
    assert state["weight"][0, :5].tolist() == pytest.approx([-0.31958, -0.11331, -0.17839, 0.03969, 0.17240], abs=1e-5)
    detector = create_detector("ufd_clip_vitl14", {**ufd_files, "head": SHARED / "ufd_fc_weights.pth"}, variant="tiny")
    assert detector.fc.bias.item() == pytest.approx(-0.51670, abs=1e-5)
