"""Audio layer: a wav2vec2 sequence classifier from `transformers` (default MelodyMachine/Deepfake-audio-detection-V2).

Checkpoint format: a Hugging Face `save_pretrained` directory (config.json, preprocessor_config.json,
model.safetensors). P(fake) is read from `config.id2label`, never from a hard-coded index: V2's labels are
reported as {0: fake, 1: real}, so index 1 is *real*, not fake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, Wav2Vec2Config
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

from tetrad.layers.base import CheckpointError, Detector, DetectorSpec, Unit
from tetrad.layers.registry import register_detector
from tetrad.layers.units import AUDIO_COUNT_COLUMNS, audio_windows, window_starts
from tetrad.params import ConfigError, build
from tetrad.weights.catalog import WeightEntry

# The checkpoints this detector can load (read without importing this module by `tetrad weights`; literals only).
WEIGHTS = (
    WeightEntry(
        name="w2v2_deepfake_v2", layer="audio", filename="Deepfake-audio-detection-V2", kind="hf_dir",
        url="MelodyMachine/Deepfake-audio-detection-V2", licence="apache-2.0",
        aliases=("w2v2_deepfake_v2", "MelodyMachine_Deepfake-audio-detection-V2"),
        hf_files=("config.json", "preprocessor_config.json", "model.safetensors"),
        source="https://huggingface.co/MelodyMachine/Deepfake-audio-detection-V2",
    ),
)


SAMPLE_RATE = 16000
MIN_ENCODER_SAMPLES = 400  # the conv feature encoder's receptive field


@dataclass(frozen=True)
class W2V2Options:
    window_s: float = 4.0  # equal-length windows, see tetrad.layers.units.audio_windows
    # Shorter clips get status too_short. The feature encoder needs 400 samples (25 ms) for a single frame; we
    # keep 1 s (50 frames) because the head mean-pools frames without a mask and the model was fine-tuned on
    # clips of seconds: under a second a clip is mostly edge effects.
    min_s: float = 1.0

    def __post_init__(self) -> None:
        if self.min_s < MIN_ENCODER_SAMPLES / SAMPLE_RATE:
            raise ConfigError(f"layer.audio.options.min_s: wav2vec2 needs at least {MIN_ENCODER_SAMPLES} samples "
                              f"({MIN_ENCODER_SAMPLES / SAMPLE_RATE:.3f} s) for one frame, got {self.min_s}")


def fake_index(id2label: Mapping[Any, str], where: str) -> tuple[int, int]:
    """(fake, real) class indices from the config; anything but exactly {fake, real} is an error."""
    names = {int(k): str(v).strip().lower() for k, v in id2label.items()}
    if sorted(names.values()) != ["fake", "real"]:
        raise CheckpointError(f"{where}: id2label must name exactly 'fake' and 'real', got {dict(id2label)}")
    inverse = {v: k for k, v in names.items()}
    return inverse["fake"], inverse["real"]


@register_detector
class W2V2Detector(Detector):
    spec = DetectorSpec(
        name="w2v2_deepfake_v2",
        layer="audio",
        input_kind="audio",
        reduce="mean_prob",
        label="logit = l_fake - l_real (classes from config.id2label); P(fake) = sigmoid(logit) = softmax[fake]",
        weights={"model": "w2v2_deepfake_v2"},
        checkpoint_format="Hugging Face save_pretrained dir (Wav2Vec2ForSequenceClassification)",
        upstream="huggingface.co/MelodyMachine/Deepfake-audio-detection-V2 (README de3cde5)",
        licence="apache-2.0",
        paper="wav2vec 2.0 (Baevski et al., 2020) fine-tuned for real/fake speech; no paper for V2",
        input_size=(SAMPLE_RATE * 4,),
        normalisation="per-window zero mean / unit variance (feature extractor do_normalize)",
    )
    options_type = W2V2Options
    count_columns = AUDIO_COUNT_COLUMNS

    def __init__(self, model: Wav2Vec2ForSequenceClassification, extractor: Any, options: W2V2Options,
                 where: str) -> None:
        super().__init__()
        self.model = model
        self.extractor = extractor
        self.options = options
        self.fake_idx, self.real_idx = fake_index(model.config.id2label, where)

    @classmethod
    def from_weights(cls, weights: Mapping[str, Path], variant: str, options: Mapping[str, Any]) -> W2V2Detector:
        opts = build(W2V2Options, dict(options), "layer.audio.options")
        source = str(weights["model"])
        model = _load_model(source)
        extractor = AutoFeatureExtractor.from_pretrained(source)
        if getattr(extractor, "sampling_rate", SAMPLE_RATE) != SAMPLE_RATE:
            raise CheckpointError(f"{source}: feature extractor expects {extractor.sampling_rate} Hz, not 16 kHz")
        return cls(model, extractor, opts, source)

    def make_units(self, rows: pd.DataFrame) -> list[Unit]:
        row = rows.iloc[0]
        wave = np.asarray(row["waveform"], dtype=np.float32)
        return audio_windows(str(row["video_id"]), wave, int(row["sample_rate"]), self.options.window_s,
                             self.options.min_s)

    def count_units(self, rows: pd.DataFrame) -> int:
        row = rows.iloc[0]
        return len(window_starts(str(row["video_id"]), int(row["num_samples"]), int(row["sample_rate"]),
                                 self.options.window_s, self.options.min_s)[0])

    def preprocess(self, units: list[Unit]) -> torch.Tensor:
        feats = self.extractor([u.data for u in units], sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return feats["input_values"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_values=x).logits
        return logits[:, self.fake_idx] - logits[:, self.real_idx]

    @classmethod
    def write_demo_weights(cls, slot: str, path: Path, variant: str, seed: int) -> None:
        torch.manual_seed(seed)
        model = Wav2Vec2ForSequenceClassification(_config(variant))
        _spread_head(model, seed)
        model.save_pretrained(path)
        Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                 do_normalize=True, return_attention_mask=False).save_pretrained(path)


def _load_model(source: str) -> Wav2Vec2ForSequenceClassification:
    """from_pretrained, but a missing/unexpected/mis-shaped weight is an error, not a silent random init."""
    try:
        model, info = AutoModelForAudioClassification.from_pretrained(source, output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{source}: cannot load audio classifier ({exc})") from None
    problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if problems:
        raise CheckpointError(f"{source}: checkpoint does not match the model: {problems}")
    return model


def _config(variant: str) -> Wav2Vec2Config:
    labels = {"id2label": {0: "fake", 1: "real"}, "label2id": {"fake": 0, "real": 1}}  # V2's reported order
    if variant == "full":  # wav2vec2-base: the library defaults are its architecture
        return Wav2Vec2Config(architectures=["Wav2Vec2ForSequenceClassification"], **labels)
    return Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                          classifier_proj_size=16, architectures=["Wav2Vec2ForSequenceClassification"], **labels)


def _spread_head(model: Wav2Vec2ForSequenceClassification, seed: int) -> None:
    """Random init scores every clip alike (the pooled features share a large common part), so calibrate a
    random head on seeded synthetic signals: centred logits with a spread of about 1.5, so demo scores vary."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
    probes = [torch.randn(t.shape, generator=gen) * a for a in (0.01, 0.1, 0.5)]
    probes += [torch.sin(2 * torch.pi * f * t * (1 + t)) * 0.3 for f in (110.0, 220.0, 440.0, 880.0, 1760.0)]
    x = torch.stack([(p - p.mean()) / (p.std() + 1e-7) for p in probes])
    model.eval()  # dropout would make the calibration, and so the file, differ between runs
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 1.0, generator=gen)
        model.classifier.bias.zero_()
        pooled = model.projector(model.wav2vec2(x).last_hidden_state).mean(1)
        logits = model.classifier(pooled)
        scale = 1.5 / (logits[:, 0] - logits[:, 1]).std().clamp_min(1e-6)
        model.classifier.weight.mul_(scale)
        model.classifier.bias.copy_(-logits.mean(0) * scale)
