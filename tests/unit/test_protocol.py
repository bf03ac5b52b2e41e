"""`protocol: upstream` sets every layer as its upstream evaluates; departures are refused, reported and tagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tetrad import protocol
from tetrad.params import compose_params
from tetrad.params import ConfigError, load_params
from tetrad.report import protocol_lines
from tetrad.tracking import run_tags

ROOT = Path(__file__).resolve().parents[2]


def composed(tmp_path: Path, *overrides: str):
    return load_params(compose_params(tmp_path / "params.yaml", list(overrides), ROOT / "conf"))


def test_upstream_protocol_has_no_departures(tmp_path):
    params = composed(tmp_path, "protocol=upstream", "experiment=benchmark")
    assert params.protocol == "upstream" and protocol.departures(params) == []
    assert params.layer["audio"].options["windows"] == "first"
    assert params.layer["semantic"].options["crop"] == "center_crop"
    assert params.extract.frames.mode == "center_crop"
    protocol.check(params)


def test_the_demo_experiment_is_refused_under_the_upstream_protocol(tmp_path):
    with pytest.raises(ConfigError) as err:
        protocol.check(composed(tmp_path, "protocol=upstream"))  # the demo: 4 SBI frames, RetinaFace at 320 px
    assert "extract.faces.n_frames: 4 (upstream: 32)" in str(err.value)
    assert "extract.face.options.max_size: 320 (upstream: 2048)" in str(err.value)


def test_default_protocol_lists_where_it_departs(tmp_path):
    found = protocol.departures(composed(tmp_path))
    assert "layer.audio.options.windows: 'all' (upstream: 'first')" in found
    assert "layer.semantic.options.crop: 'resize_crop' (upstream: 'center_crop')" in found
    assert "extract.frames.mode: 'resize_crop' (upstream: 'center_crop')" in found


def test_an_override_that_departs_is_refused_by_name(tmp_path):
    params = composed(tmp_path, "protocol=upstream", "experiment=benchmark", "layer.audio.options.windows=all",
                      "layer.visual.precision=bf16")
    with pytest.raises(ConfigError) as err:
        protocol.check(params)
    assert "layer.audio.options.windows: 'all'" in str(err.value) and "layer.visual: precision bf16" in str(err.value)


def test_another_audio_detector_under_the_upstream_protocol(tmp_path):
    params = composed(tmp_path, "protocol=upstream", "experiment=benchmark", "layer/audio=w2v2_deepfake_v2")
    assert params.layer["audio"].detector == "w2v2_deepfake_v2" and protocol.departures(params) == []


def test_protocol_reaches_report_and_tags(tmp_path):
    summary = protocol.summary(composed(tmp_path))
    lines = protocol_lines(summary)
    assert lines[0].startswith("Protocol: **tetrad**;") and len(lines) == len(summary["departures"]) + 2
    tags = run_tags({}, "sha", "demo", summary)
    assert tags["protocol"] == "tetrad" and "layer.audio.options.windows" in tags["protocol.departures"]
