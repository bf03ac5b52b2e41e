"""SBI and LipForensics checkpoints: upstream formats load strictly; wrong formats fail naming file and keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
import torch

from tetrad.layers import CheckpointError, create_detector
from tetrad.layers.lipforensics import LipForensicsDetector, LipNet, ARCHS
from tetrad.layers.sbi import SBIDetector


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("face-ckpt")
    SBIDetector.write_demo_weights("model", root / "FFc23.tar", "tiny", 0)
    LipForensicsDetector.write_demo_weights("model", root / "lipforensics_ff.pth", "tiny", 0)
    return {"sbi_effb4": root / "FFc23.tar", "lipforensics_rn18_mstcn": root / "lipforensics_ff.pth"}


def test_sbi_file_is_upstreams_training_checkpoint_layout(files):
    ckpt = torch.load(files["sbi_effb4"], map_location="cpu", weights_only=True)
    assert set(ckpt) == {"model", "optimizer", "epoch"}
    keys = list(ckpt["model"])
    assert keys[0] == "net._conv_stem.weight" and all(k.startswith("net.") for k in keys)
    assert ckpt["model"]["net._fc.weight"].shape[0] == 2  # two classes, softmax[:, 1] = fake


def test_full_sbi_and_lip_key_sets_are_upstreams():
    sbi = SBIDetector("full").state_dict()
    assert sbi["net._fc.weight"].shape == (2, 1792) and sbi["net._conv_stem.weight"].shape == (48, 3, 3, 3)
    lip = LipNet(ARCHS["full"]).state_dict()
    assert lip["frontend3D.0.weight"].shape == (64, 1, 5, 7, 7)
    assert lip["tcn.tcn_output.weight"].shape == (1, 768)
    assert lip["tcn.mb_ms_tcn.network.0.downsample.weight"].shape == (768, 512, 1)
    assert "trunk.layer2.0.downsample.1.running_var" in lip and "trunk.layer1.0.downsample.0.weight" not in lip
    assert lip["tcn.mb_ms_tcn.network.3.cbcr1_2.conv.weight"].shape == (256, 768, 7)
    assert len(lip) == 343


@pytest.mark.parametrize("name", ["sbi_effb4", "lipforensics_rn18_mstcn"])
def test_bare_state_dict_without_model_key_is_refused(files, name, tmp_path):
    bare = tmp_path / "bare.pth"
    torch.save(torch.load(files[name], weights_only=True)["model"], bare)
    with pytest.raises(CheckpointError, match="expected a dict with key 'model'") as err:
        create_detector(name, {"model": bare}, "tiny")
    assert str(bare) in str(err.value)


def test_sbi_one_class_head_is_a_shape_mismatch(files, tmp_path):
    ckpt = torch.load(files["sbi_effb4"], weights_only=True)
    ckpt["model"]["net._fc.weight"] = ckpt["model"]["net._fc.weight"][:1]
    ckpt["model"]["net._fc.bias"] = ckpt["model"]["net._fc.bias"][:1]
    bad = tmp_path / "one_class.tar"
    torch.save(ckpt, bad)
    with pytest.raises(CheckpointError, match=r"2 shape mismatches \[net._fc.bias"):
        create_detector("sbi_effb4", {"model": bad}, "tiny")


def test_lip_with_dataparallel_prefix_lists_the_keys(files, tmp_path):
    state = torch.load(files["lipforensics_rn18_mstcn"], weights_only=True)["model"]
    bad = tmp_path / "module.pth"
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, bad)
    with pytest.raises(CheckpointError) as err:
        create_detector("lipforensics_rn18_mstcn", {"model": bad}, "tiny")
    message = str(err.value)
    assert str(bad) in message and "343 missing keys [frontend3D.0.weight" in message
    assert "343 unexpected keys [module.frontend3D.0.weight" in message


def test_sbi_checkpoint_in_a_variant_it_was_not_made_for_fails(files):
    with pytest.raises(CheckpointError, match="shape mismatches"):
        create_detector("sbi_effb4", {"model": files["sbi_effb4"]}, "full")


def test_lip_clip_score_is_the_mean_logit_then_sigmoid(files):
    import numpy as np
    import pandas as pd

    from tetrad.aggregate.reduce import reduce_units

    detector = create_detector("lipforensics_rn18_mstcn", {"model": files["lipforensics_rn18_mstcn"]}, "tiny")
    rows = pd.DataFrame({"video_id": "v", "frame_idx": range(60), "status": "ok", "pts_s": np.arange(60) / 25,
                         "height": 96, "width": 96,
                         "image": [np.full((96, 96), i * 4, np.uint8).tobytes() for i in range(60)]})
    units = detector.make_units(rows)
    assert [u.frame_idx for u in units] == [0, 25] and units[1].t_start_s == 1.0  # remainder of 10 dropped
    x = detector.preprocess(units)
    assert x.shape == (2, 1, 25, 88, 88)
    assert x[0, 0, 3, 0, 0].item() == pytest.approx((12 / 255 - 0.421) / 0.165, abs=1e-6)
    with torch.inference_mode():
        logits = detector(x).tolist()
    scores = pd.DataFrame({"video_id": "v", "unit_idx": [0, 1], "logit": logits, "p_fake": 0.0,
                           "compute_s": 0.0, "status": "ok", "error": None})
    video = reduce_units(scores, "mean_logit_sigmoid").iloc[0]
    assert video["p_fake"] == pytest.approx(1 / (1 + np.exp(-np.mean(logits))))


def test_semantic_layer_reads_face_crops_cropped_to_224(tmp_path):
    import numpy as np
    import pandas as pd

    from tetrad.layers import get_spec
    from tetrad.layers.ufd import UFDDetector

    assert get_spec("ufd_clip_vitl14").inputs == ("frames", "faces")
    assert get_spec("sbi_effb4").inputs == ("faces",)
    for slot in ("backbone", "head"):
        UFDDetector.write_demo_weights(slot, tmp_path / slot, "tiny", 0)
    ufd = create_detector("ufd_clip_vitl14", {s: tmp_path / s for s in ("backbone", "head")}, "tiny")
    face = np.random.default_rng(0).integers(0, 256, (380, 380, 3), dtype=np.uint8)
    rows = pd.DataFrame({"video_id": "v", "frame_idx": [3, 9], "face_idx": 0, "status": "ok", "pts_s": 0.0,
                         "height": 380, "width": 380, "channels": 3, "image": [face.tobytes()] * 2})
    units = ufd.make_units(rows)
    assert [u.data.shape for u in units] == [(224, 224, 3)] * 2 and [u.frame_idx for u in units] == [3, 9]
    assert ufd.preprocess(units).shape == (2, 3, 224, 224)


@pytest.mark.parametrize("crop", ["center_crop", "resize_crop"])
def test_ufd_never_squashes_a_non_square_picture(tmp_path, crop):
    """A 301x500 and a 150x400 picture: upstream's centre crop (offset round-half-even, zero padding) or the
    aspect-keeping video protocol, never a resize to a square."""
    import numpy as np
    import pandas as pd

    from tetrad.layers.ufd import UFDDetector

    for slot in ("backbone", "head"):
        UFDDetector.write_demo_weights(slot, tmp_path / slot, "tiny", 0)
    ufd = create_detector("ufd_clip_vitl14", {s: tmp_path / s for s in ("backbone", "head")}, "tiny", {"crop": crop})
    rng = np.random.default_rng(1)
    tall, wide = (rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((301, 500, 3), (150, 400, 3)))
    rows = pd.DataFrame({"video_id": "v", "frame_idx": [0, 1], "face_idx": 0, "status": "ok", "pts_s": 0.0,
                         "height": [301, 150], "width": [500, 400], "channels": 3,
                         "image": [tall.tobytes(), wide.tobytes()]})
    first, second = (u.data for u in ufd.make_units(rows))
    if crop == "center_crop":
        np.testing.assert_array_equal(first, tall[38:262, 138:362])  # round(77 / 2) = 38, half to even
        np.testing.assert_array_equal(second[37:187], wide[:, 88:312])  # 37 zero rows above, 37 below
        assert not second[:37].any() and not second[187:].any()
    else:  # short side to 256: 301x500 -> 256x425, 150x400 -> 256x683, then the centre 224x224
        assert first.shape == second.shape == (224, 224, 3)
        scaled = np.asarray(Image.fromarray(tall).resize((425, 256), Image.BILINEAR))
        assert np.abs(first.astype(int) - scaled[16:240, 100:324]).mean() < 3  # same region, not squashed
