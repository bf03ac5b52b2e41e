"""Config: conf/ composes into the committed params.yaml, and bad keys/values fail at load with their name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tetrad.params import compose_params
from tetrad.params import ConfigError, Params, load_params, params_from_dict

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def composed(tmp_path_factory) -> Path:
    return compose_params(tmp_path_factory.mktemp("p") / "params.yaml", [], ROOT / "conf")


def test_params_yaml_matches_conf(composed):
    """The drift guard: edit conf/, run `make params`, commit both."""
    assert composed.read_text() == (ROOT / "params.yaml").read_text(), "params.yaml drifted: run `make params`"


def test_committed_params_load_into_frozen_dataclasses():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params, Params)
    assert set(params.layer) == {"audio", "visual", "lip", "semantic", "sync"}
    with pytest.raises(AttributeError):
        params.aggregate.threshold = 0.1  # type: ignore[misc]


def test_group_override_and_value_override(tmp_path):
    out = compose_params(tmp_path / "p.yaml", ["aggregate.threshold=0.7", "experiment=benchmark"], ROOT / "conf")
    params = load_params(out)
    assert params.aggregate.threshold == 0.7
    assert params.experiment == "benchmark" and params.extract.frames.n_frames == 16
    assert params.weights.allow_demo is False


def _base() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("aggregate", "thresold"), 0.5, "unknown config key 'aggregate.thresold'"),
        (("aggregate", "threshold"), "high", "aggregate.threshold: expected float"),
        (("aggregate", "threshold"), 1.5, "aggregate.threshold: 1.5 is outside"),
        (("aggregate", "missing"), "ignore", "aggregate.missing: 'ignore' is not one of"),
        (("layer", "audio", "batch_size"), 2.5, "layer.audio.batch_size: expected int"),
        (("layer", "audio", "input"), "video", "layer.audio.input: 'video' is not extracted"),
        (("layer", "audio", "detector"), "", "layer.audio.detector"),
        (("extract", "frames", "mode"), "stretch", "extract.frames.mode"),
        (("aggregate", "folds"), 1, "aggregate.folds: 1 is outside the allowed range [2, 1000]"),
        (("extract", "frames", "n_frames"), -3, "extract.frames.n_frames: -3 is outside the allowed range [1, "),
        (("extract", "shard_size"), 0, "extract.shard_size: 0 is outside the allowed range [1, "),
        (("extract", "workers"), -1, "extract.workers: -1 is outside the allowed range [1, 1024]"),
        (("extract", "shard_mb"), 0, "extract.shard_mb: 0.0 is outside the allowed range [1, "),
        (("layer", "visual", "batch_size"), 0, "layer.visual.batch_size: 0 is outside the allowed range [1, "),
        (("aggregate", "seed_weights", "audio"), -0.1, "aggregate.seed_weights.audio: -0.1 is outside"),
        (("aggregate", "ci"), 1.0, "aggregate.ci: 1.0 is outside the allowed range [0.5, 0.999]"),
    ],
)
def test_bad_config_names_the_key(path, value, message):
    data = _base()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        params_from_dict(data)


def test_unknown_layer_name_is_rejected():
    data = _base()
    data["layer"]["smell"] = data["layer"]["audio"]
    data["layer_names"].append("smell")
    with pytest.raises(ConfigError, match="layer.smell: unknown layer"):
        params_from_dict(data)


def test_detector_options_are_checked_by_the_detector(tmp_path):
    from tetrad.layers.w2v2 import W2V2Detector

    W2V2Detector.write_demo_weights("model", tmp_path / "m", "tiny", 0)
    from tetrad.layers import create_detector

    with pytest.raises(ConfigError, match="layer.audio.options.window"):
        create_detector("w2v2_deepfake_v2", {"model": tmp_path / "m"}, "tiny", {"window": 3})


def test_derived_name_lists_must_match():
    data = _base()
    data["dataset_names"] = ["mini", "other"]
    with pytest.raises(ConfigError, match="dataset_names / layer_names"):
        params_from_dict(data)
