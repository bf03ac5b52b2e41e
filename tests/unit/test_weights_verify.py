"""`tetrad weights verify`: fails when a checkpoint the configured pipeline needs is missing, mismatched or only a
demo-random stand-in (unless --allow-demo); checkpoints nothing needs are listed but never fail on absence."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tetrad import weights as w
from tetrad.cli import parser as cli_parser
from tetrad.params import load_params
from tetrad.weights.cli import needed_weights

PAYLOAD = b"a pinned checkpoint" * 50
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def registry() -> dict[str, w.WeightEntry]:
    entries = [
        w.WeightEntry(name="model_a", layer="audio", filename="a.pth", url="file:///nowhere/a.pth",
                      sha256=hashlib.sha256(PAYLOAD).hexdigest(), licence="MIT", source="test"),
        w.WeightEntry(name="model_v", layer="visual", filename="v.pth", licence="research-only", source="test",
                      manual="Download v.pth by hand, then `tetrad weights import DIR`."),
        w.WeightEntry(name="spare", layer="lip", filename="s.pth", url="file:///nowhere/s.pth", licence="MIT",
                      source="test"),
    ]
    return {e.name: e for e in entries}


def _params(tmp_path: Path, slots: dict[str, dict[str, str]]) -> Path:
    """A params.yaml enabling the given layers (layer -> {slot: weights name or path}), weights in tmp/weights."""
    layers = {name: {"detector": "d", "input": "audio", "weights": s} for name, s in slots.items()}
    data = {"layer": layers, "layer_names": list(layers), "weights": {"dir": str(tmp_path / "weights")}}
    return _write(tmp_path / "params.yaml", json.dumps(data).encode())


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(1_600_000_000 * 10**9,) * 2)  # settled: its sha256 sidecar is trusted
    return path


def _verify(registry, capsys, *argv: str) -> tuple[int, str]:
    args = cli_parser().parse_args(["weights", "verify", *argv])
    args.registry = registry
    code = int(args.func(args))
    return code, capsys.readouterr().out


def _line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.split()[1:2] == [name])


def test_missing_needed_checkpoints_fail(tmp_path, registry, capsys):
    params = _params(tmp_path, {"audio": {"model": "model_a"}, "visual": {"model": "model_v"}})
    code, out = _verify(registry, capsys, "--params", str(params))
    assert code == 1
    assert _line(out, "model_a").split()[:4] == ["FAIL", "model_a", "missing", "layer.audio.weights.model"]
    assert "`tetrad weights fetch model_a`" in _line(out, "model_a")
    assert "prints the manual steps" in _line(out, "model_v")
    assert _line(out, "spare").split()[:4] == ["-", "spare", "missing", "-"]  # nothing needs it: no failure
    assert out.rstrip().endswith("2 of 3 checkpoints FAIL (2 needed)")


def test_present_verified_passes_and_mismatch_fails(tmp_path, registry, capsys):
    params = _params(tmp_path, {"audio": {"model": "model_a"}})
    target = _write(w.path_for(registry["model_a"], tmp_path / "weights"), PAYLOAD)
    code, out = _verify(registry, capsys, "--params", str(params))
    assert code == 0 and _line(out, "model_a").startswith("ok") and "verified" in _line(out, "model_a")
    assert "all 1 needed checkpoints are usable" in out
    _write(target, b"not the checkpoint")
    code, out = _verify(registry, capsys, "--params", str(params))
    assert code == 1 and "sha256 mismatch" in _line(out, "model_a")


def test_unused_mismatch_fails_and_all_needs_every_entry(tmp_path, registry, capsys):
    params = _params(tmp_path, {"audio": {"model": "model_a"}})
    _write(w.path_for(registry["model_a"], tmp_path / "weights"), PAYLOAD)
    _write(w.path_for(registry["spare"], tmp_path / "weights"), b"unpinned")
    assert _verify(registry, capsys, "--params", str(params))[0] == 0
    code, out = _verify(registry, capsys, "--all", "--dir", str(tmp_path / "weights"))
    assert code == 1 and _line(out, "model_v").split()[:4] == ["FAIL", "model_v", "missing", "--all"]
    hf = w.WeightEntry(name="hf", layer="audio", filename="hf", kind="hf_dir", url="a/b", hf_files=("x",))
    (tmp_path / "weights" / "audio" / "hf").mkdir()
    code, out = _verify({**registry, "hf": hf}, capsys, "--params", str(params))
    assert code == 1 and _line(out, "hf").split()[:3] == ["FAIL", "hf", "incomplete"]  # broken, though unused


def test_demo_random_fails_unless_allowed(tmp_path, registry, capsys):
    params = _params(tmp_path, {"audio": {"model": "model_a"}})
    demo = _write(w.path_for(registry["model_a"], tmp_path / "weights", demo=True), b"random weights")
    code, out = _verify(registry, capsys, "--params", str(params))
    assert code == 1 and _line(out, "model_a").split()[:3] == ["FAIL", "model_a", "demo-random"]
    assert f"only the random demo checkpoint {demo}" in out and "pass --allow-demo" in out
    code, out = _verify(registry, capsys, "--params", str(params), "--allow-demo")
    assert code == 0 and _line(out, "model_a").split()[:3] == ["ok", "model_a", "demo-random"]


def test_own_paths_and_unknown_names(tmp_path, registry, capsys):
    own = _write(tmp_path / "mine.pth", b"x")
    params = _params(tmp_path, {"audio": {"model": str(own)}, "visual": {"model": "no_such_entry"}})
    code, out = _verify(registry, capsys, "--params", str(params))
    assert code == 1
    assert _line(out, str(own)).split()[:3] == ["ok", str(own), "own-file"]
    assert "neither a weights entry" in _line(out, "no_such_entry")
    assert _verify(registry, capsys, "--params", str(tmp_path / "absent.yaml"))[0] == 2


def test_needed_weights_of_the_shipped_params():
    needed = needed_weights(load_params(REPO / "params.yaml"))
    assert needed["aasist"] == ["layer.audio.weights.model"]
    assert needed["lipforensics_mean_face"] == ["extract.mouths.mean_face"]
    assert {"clip_vitl14", "ufd_fc"} <= set(needed)
