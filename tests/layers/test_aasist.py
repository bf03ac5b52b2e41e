"""AASIST / AASIST-L: real checkpoints, corrupted files, the input protocol, the score convention, upstream parity."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from tetrad.layers import CheckpointError, create_detector
from tetrad.layers.aasist import (AASIST_FULL, AASIST_TINY, AASISTArch, AASISTDetector, AASISTOptions, tile_to_length,
                                  window_units)
from tetrad.layers.base import Unit, load_checkpoint
from tetrad.schemas import StatusError
from tetrad.params import ConfigError
from tetrad.weights import WeightsError, resolve

SHARED = Path(os.environ.get("TETRAD_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "upstream-data"
REAL = {"aasist": ("aasist_AASIST.pth", "AASIST.pth", 297_866), "aasist_l": ("aasist_AASIST-L.pth", "AASIST-L.pth",
                                                                               85_306)}
ALSA_SPEECH = Path("/usr/share/sounds/alsa/Front_Center.wav")
UPSTREAM = os.environ.get("TETRAD_UPSTREAM_AASIST")
N = AASIST_FULL.nb_samp


def real_file(name: str) -> Path:
    path = SHARED / REAL[name][0]
    if not path.is_file():
        pytest.skip(f"no real AASIST weights at {path}")
    return path


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("aasist") / "tiny.pth"
    AASISTDetector.write_demo_weights("model", path, "tiny", 0)
    return path


def audio_rows(wave: np.ndarray, sr: int = 16000) -> pd.DataFrame:
    return pd.DataFrame({"video_id": ["v"], "sample_rate": [sr], "waveform": [wave]})


# --------------------------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_weights_load_strictly_with_documented_param_counts(name):
    path = real_file(name)
    state = load_checkpoint(path)  # weights_only=True, CPU
    assert len(state) == 229
    detector = create_detector(name, {"model": path})
    assert sum(p.numel() for p in detector.net.parameters()) == REAL[name][2]
    assert set(detector.net.state_dict()) == set(state)


def test_corrupted_copy_is_a_sha256_mismatch_naming_the_file(tmp_path):
    source = SHARED / REAL["aasist"][0]
    data = bytearray(source.read_bytes() if source.is_file() else b"\0" * 4096)
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "audio" / REAL["aasist"][1]
    bad.parent.mkdir()
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch") as err:
        resolve("aasist", tmp_path)
    assert str(bad) in str(err.value)


def test_truncated_copy_fails_naming_the_file(tmp_path, tiny_file):
    source = SHARED / REAL["aasist"][0]
    data = source.read_bytes() if source.is_file() else tiny_file.read_bytes()
    bad = tmp_path / "audio" / REAL["aasist"][1]
    bad.parent.mkdir()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        resolve("aasist", tmp_path)
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as err:
        load_checkpoint(bad)
    assert str(bad) in str(err.value)


def test_checkpoint_of_the_other_variant_lists_shape_mismatches(tmp_path, tiny_file):
    with pytest.raises(CheckpointError, match="shape mismatches") as err:
        create_detector("aasist", {"model": tiny_file}, variant="full")
    assert str(tiny_file) in str(err.value)


def test_arch_round_trips_through_upstream_conf():
    assert AASISTArch.from_conf(AASIST_FULL.as_conf()) == AASIST_FULL
    assert AASISTArch.from_conf(AASIST_TINY.as_conf()) == AASIST_TINY


# --------------------------------------------------------------------------------------------- input protocol


def test_tiling_equals_upstream_pad():
    wave = np.array([1, 2, 3, 4, 5], dtype=np.float32)
    # upstream pad: repeats = int(12 / 5) + 1 = 3 -> [1..5, 1..5, 1..5][:12]
    assert tile_to_length(wave, 12).tolist() == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2]
    assert tile_to_length(wave, 10).tolist() == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
    assert tile_to_length(wave, 5).tolist() == [1, 2, 3, 4, 5]
    assert tile_to_length(wave, 3).tolist() == [1, 2, 3]


def test_short_clip_is_one_tiled_window():
    wave = np.random.default_rng(0).standard_normal(24000).astype(np.float32)  # 1.5 s
    units = window_units("v", wave, 16000, N, 1.0, "all")
    assert len(units) == 1 and units[0].data.shape == (N,)
    np.testing.assert_array_equal(units[0].data, np.concatenate([wave, wave, wave])[:N])
    assert (units[0].t_start_s, units[0].t_end_s) == (0.0, 1.5)


def test_windows_all_versus_first():
    n = 2 * N + 10000
    wave = np.arange(n, dtype=np.float32)
    every = window_units("v", wave, 16000, N, 1.0, "all")
    assert [int(u.data[0]) for u in every] == [0, N, n - N]  # the tail window is aligned to the clip end
    assert all(u.data.shape == (N,) for u in every)
    first = window_units("v", wave, 16000, N, 1.0, "first")
    assert len(first) == 1
    np.testing.assert_array_equal(first[0].data, wave[:N])


def test_short_clips_are_tiled_and_scored_as_upstream_does():
    """Upstream's pad tiles any non-empty clip: 0.83 s (13280 samples) is one unit of N samples by default."""
    wave = np.arange(13280, dtype=np.float32)
    (unit,) = window_units("v", wave, 16000, N, AASISTOptions().min_s, "all")
    assert unit.data.shape == (N,) and unit.data[13280] == 0 and unit.data[N - 1] == (N - 1) % 13280
    assert AASISTOptions().min_s == 0.0


def test_too_short_and_wrong_rate_are_statuses():
    with pytest.raises(StatusError) as err:
        window_units("v", np.zeros(8000, np.float32), 16000, N, 1.0, "all")
    assert err.value.status == "too_short"
    with pytest.raises(StatusError, match="16 kHz") as err:
        window_units("v", np.zeros(88200, np.float32), 44100, N, 1.0, "all")
    assert err.value.status == "error"


def test_options_reach_make_units_and_are_checked(tiny_file):
    wave = np.zeros(40000, np.float32)  # tiny windows are 16000 samples: 0, 16000, 24000 (end-aligned)
    every = create_detector("aasist", {"model": tiny_file}, "tiny").make_units(audio_rows(wave))
    first = create_detector("aasist", {"model": tiny_file}, "tiny", {"windows": "first"}).make_units(audio_rows(wave))
    assert [u.t_start_s for u in every] == [0.0, 1.0, 1.5] and [u.t_start_s for u in first] == [0.0]
    with pytest.raises(ConfigError, match="windows"):
        create_detector("aasist", {"model": tiny_file}, "tiny", {"windows": "middle"})
    with pytest.raises(ConfigError, match="window_s"):
        create_detector("aasist", {"model": tiny_file}, "tiny", {"window_s": 4.0})


# --------------------------------------------------------------------------------------------- scores


def test_score_convention(tiny_file):
    detector = create_detector("aasist", {"model": tiny_file}, "tiny")
    rng = np.random.default_rng(1)
    units = [Unit("v", i, 0.0, 1.0, rng.standard_normal(16000).astype(np.float32) * 0.1) for i in range(4)]
    x = detector.preprocess(units)
    with torch.inference_mode():
        logits = detector.logits(x)
        fake, upstream = detector.score(x)
        plain = detector(x)
    torch.testing.assert_close(torch.sigmoid(fake), torch.softmax(logits, dim=1)[:, 0])
    torch.testing.assert_close(upstream, logits[:, 1])  # upstream ranks by the bona fide logit
    torch.testing.assert_close(plain, fake)


def test_real_weights_rank_recorded_speech_above_espeak(tmp_path):
    from tetrad.parity.aasist import espeak_wave, read_wav_16k

    path = real_file("aasist")
    if not ALSA_SPEECH.is_file() or shutil.which("espeak-ng") is None:
        pytest.skip("needs alsa-utils' voice WAVs and espeak-ng")
    synthetic = espeak_wave("The quick brown fox jumps over the lazy dog.", "en-us", tmp_path / "e.wav")
    detector = create_detector("aasist", {"model": path})
    units = [Unit("real", 0, 0.0, 0.0, read_wav_16k(ALSA_SPEECH)), Unit("tts", 0, 0.0, 0.0, synthetic)]
    with torch.inference_mode():
        fake, bona_fide = detector.score(detector.preprocess(units))
    assert bona_fide[0] > bona_fide[1] + 2.0 and fake[0] < fake[1]


@pytest.mark.parametrize("seconds, suffix, subtype", [(0.83, ".wav", "PCM_16"), (5.3, ".flac", "PCM_24")])
def test_our_decode_gives_the_input_upstreams_read_gives(tmp_path, tiny_file, seconds, suffix, subtype):
    """File -> first window: tetrad's decode + window rule == upstream's soundfile read + pad, bit for bit."""
    from tetrad.media.decode import decode
    from tetrad.parity.aasist import upstream_read

    rng = np.random.default_rng(3)
    path = tmp_path / f"clip{suffix}"
    sf.write(path, np.clip(rng.standard_normal(int(seconds * 16000)) * 0.2, -1, 1), 16000, subtype=subtype)
    detector = create_detector("aasist", {"model": tiny_file}, "tiny", {"windows": "first"})
    (unit,) = detector.make_units(audio_rows(decode(path, 16000, None).audio))
    ours = detector.preprocess([unit])[0].numpy()
    np.testing.assert_array_equal(ours, upstream_read(path, detector.net.arch.nb_samp))


# --------------------------------------------------------------------------------------------- upstream parity


@pytest.fixture(scope="module")
def upstream():
    if not UPSTREAM:
        pytest.skip("set TETRAD_UPSTREAM_AASIST to a checkout of clovaai/aasist")
    path = Path(UPSTREAM) / "models" / "AASIST.py"
    spec = importlib.util.spec_from_file_location("tetrad_test_upstream_aasist", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parity(module, name: str, variant: str, path: Path, x: torch.Tensor) -> None:
    ours = create_detector(name, {"model": path}, variant)
    theirs = module.Model(ours.net.arch.as_conf())
    theirs.load_state_dict(load_checkpoint(path), strict=True)
    theirs.eval()
    with torch.inference_mode():
        fake, bona_fide = ours.score(x)
        reference = theirs(x)[1]
    torch.testing.assert_close(bona_fide, reference[:, 1], atol=1e-4, rtol=0)
    torch.testing.assert_close(fake, reference[:, 0] - reference[:, 1], atol=1e-4, rtol=0)


def test_parity_with_upstream_tiny_random(upstream, tiny_file):
    x = torch.randn(3, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    _parity(upstream, "aasist", "tiny", tiny_file, x)


def test_parity_with_upstream_real_aasist_l(upstream):
    x = torch.randn(2, N, generator=torch.Generator().manual_seed(0)) * 0.05
    _parity(upstream, "aasist_l", "full", real_file("aasist_l"), x)
