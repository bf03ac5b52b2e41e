"""Every registered detector: spec sanity, upstream-format round trip with strict loading, P(fake) in [0, 1]."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tetrad.aggregate.reduce import RULES
from tetrad.layers import create_detector, detector_class, get_spec, list_detectors
from tetrad.layers.base import Unit
from tetrad.params import LAYERS
from tetrad.weights import declared_weights, entries

DETECTORS = list_detectors()


def tiny_weights(name: str, root: Path, seed: int = 0) -> dict[str, Path]:
    cls = detector_class(name)
    paths = {}
    for slot in cls.spec.weights:
        path = root / name / slot
        cls.write_demo_weights(slot, path, "tiny", seed)
        paths[slot] = path
    return paths


def sample_units(kind: str, n: int = 3, reads_source: bool = False) -> list[Unit]:
    rng = np.random.default_rng(0)
    if reads_source:  # SyncNet's windows: pictures and sound its make_units cuts together from the video
        from tetrad.layers.syncnet import av_windows, frame_plan, mfcc

        frames = pd.DataFrame({"video_id": "v", "frame_idx": range(n + 5), "pts_s": np.arange(n + 5) / 25,
                               "box": [[0, 0, 10, 10]] * (n + 5), "status": "ok"})
        wave = (rng.standard_normal((n + 5) * 640) * 0.1).astype(np.float32)
        crops = rng.integers(0, 256, (n + 5, 224, 224, 3), dtype=np.uint8)
        return av_windows("v", crops, mfcc(wave), len(wave), frame_plan("v", frames, None), 15)
    if kind == "audio":
        return [Unit("v", i, 0.0, 1.0, rng.standard_normal(16000).astype(np.float32) * 0.1) for i in range(n)]
    shape = {"frames": (224, 224, 3), "faces": (380, 380, 3), "mouths": (25, 96, 96)}[kind]
    return [Unit("v", i, 0.0, 0.0, rng.integers(0, 256, shape, dtype=np.uint8), frame_idx=i) for i in range(n)]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-weights")


@pytest.mark.parametrize("name", DETECTORS)
def test_spec_is_complete(name):
    spec = get_spec(name)
    assert spec.name == name
    assert spec.layer in LAYERS
    assert spec.input_kind in ("audio", "frames", "faces", "mouths")
    assert spec.reduce in RULES
    assert spec.upstream and spec.licence and spec.paper and spec.label
    assert "tiny" in spec.variants
    known = entries()
    for slot, entry in spec.weights.items():
        assert entry in known, f"{name}.{slot} names unknown weights {entry!r}"
        assert known[entry].layer == spec.layer


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_declares_its_own_weights(name):
    module = sys.modules[detector_class(name).__module__]
    declared = {e.name for e in module.WEIGHTS}
    assert set(get_spec(name).weights.values()) <= declared, f"{name}: declare its checkpoints in {module.__name__}"


@pytest.mark.parametrize("package", ["tetrad.layers", "tetrad.media"])
def test_imported_weights_equal_the_statically_read_ones(package):
    folder = Path(importlib.import_module(package).__path__[0])
    for path in sorted(folder.glob("*.py")):
        static = declared_weights(path)
        if static:  # what `tetrad weights` reads without importing is what the module really holds
            module = importlib.import_module(f"{package}.{path.stem}")
            assert tuple(module.WEIGHTS) == static, path


@pytest.mark.parametrize("name", DETECTORS)
def test_tiny_round_trip_forward(name, tiny_dir):
    detector = create_detector(name, tiny_weights(name, tiny_dir), variant="tiny")
    units = sample_units(detector.spec.input_kind, reads_source=detector.reads_source)
    with torch.inference_mode():
        logits = detector(detector.preprocess(units))
    assert logits.shape == (len(units),)
    p = torch.sigmoid(logits)
    assert torch.isfinite(logits).all() and ((p >= 0) & (p <= 1)).all()
    again = create_detector(name, tiny_weights(name, tiny_dir), variant="tiny")
    with torch.inference_mode():
        torch.testing.assert_close(again(again.preprocess(units)), logits)


@pytest.mark.parametrize("name", DETECTORS)
def test_demo_weights_are_not_degenerate(name, tiny_dir):
    detector = create_detector(name, tiny_weights(name, tiny_dir / "spread"), variant="tiny")
    with torch.inference_mode():
        units = sample_units(detector.spec.input_kind, 6, reads_source=detector.reads_source)
        p = torch.sigmoid(detector(detector.preprocess(units)))
    assert p.std() > 1e-3, f"{name}: every demo score is the same constant {p.tolist()}"


def test_registering_a_name_twice_raises():
    from tetrad.layers import register_detector

    with pytest.raises(ValueError, match="already registered"):
        register_detector(detector_class(DETECTORS[0]))


def test_unknown_detector_lists_known_ones():
    with pytest.raises(KeyError, match="registered"):
        create_detector("no_such_detector", {})
