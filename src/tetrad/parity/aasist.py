"""Parity of tetrad's AASIST / AASIST-L with upstream clovaai/aasist: same checkpoint, same waveforms, same logits.

    python -m tetrad.parity.aasist --upstream /tmp/upstream/aasist --weights-dir weights --out reports/parity.md

Upstream's `models/AASIST.py` is imported at run time from the checkout (never vendored) and built from the
checkout's `config/*.conf`; it runs on CPU as it is, so no runtime patch is applied. Both models get the real
checkpoints (from the weights cache, or `--real-dir`, sha256-checked) and a random-initialised one in upstream's
format, and the same batch: seeded synthetic signals, the Debian alsa-utils voice WAVs and espeak-ng speech
(when present), each tiled/cut to 64600 samples as upstream's `pad`. A second check runs the whole input path:
the same clips written as 16 kHz wav and flac files, read by upstream's way (soundfile at the native rate, `pad`)
into upstream's model, and by tetrad's own decode (`tetrad.media.decode`) and window rule into ours; the first
window's bona fide logits must agree to 1e-3. The AASIST section of the report is
rewritten between its markers, so other layers' sections can live in the same file. Exit status 1 when a
difference exceeds the tolerance.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import logging
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from scipy.signal import resample_poly

from tetrad.io import file_sha256
from tetrad.layers import create_detector, detector_class
from tetrad.layers.aasist import ARCHS, SAMPLE_RATE, AASISTArch, AASISTDetector, probe_signals, tile_to_length
from tetrad.layers.base import load_checkpoint
from tetrad.media.decode import decode
from tetrad.parity.common import publish, upstream_commit
from tetrad.weights import get_entry, verify_entry

log = logging.getLogger(__name__)

CONFS = {"aasist": "AASIST.conf", "aasist_l": "AASIST-L.conf"}
SECTION = "aasist"  # the report section between <!-- aasist:begin --> and <!-- aasist:end -->
TOLERANCE = 1e-4
DECODE_TOLERANCE = 1e-3  # the bound for the whole path, file to first-window bona fide logit
ALSA_DIR = Path("/usr/share/sounds/alsa")
ALSA_SPEECH = ("Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right",
               "Side_Left", "Side_Right")  # Noise.wav is not speech
ESPEAK_LINES = (("en-us", "The quick brown fox jumps over the lazy dog."),
                ("en-gb", "Please call Stella and ask her to bring these things with her from the store."),
                ("en-us", "Audio anti spoofing systems decide whether speech is genuine or synthetic."))


@dataclass(frozen=True)
class Clip:
    name: str
    kind: str  # synthetic | alsa (recorded human speech) | espeak (espeak-ng synthetic speech)
    wave: np.ndarray  # 16 kHz float32, raw level


# --------------------------------------------------------------------------------------------- upstream


def load_upstream(checkout: Path) -> ModuleType:
    """Import the checkout's models/AASIST.py under a private name (no sys.path change)."""
    path = checkout / "models" / "AASIST.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass --upstream <checkout of clovaai/aasist>")
    spec = importlib.util.spec_from_file_location("tetrad_upstream_aasist_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upstream_config(checkout: Path, name: str) -> dict:
    return json.loads((checkout / "config" / CONFS[name]).read_text())["model_config"]


def build_upstream(module: ModuleType, conf: dict, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = module.Model(conf)
    model.load_state_dict(state, strict=True)
    return model.eval()


# --------------------------------------------------------------------------------------------- inputs


def read_wav_16k(path: Path) -> np.ndarray:
    """A WAV as mono float32 at 16 kHz (polyphase resampling), level untouched."""
    wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    wave = wave.mean(axis=1)
    if sr != SAMPLE_RATE:
        ratio = Fraction(SAMPLE_RATE, sr)
        wave = resample_poly(wave, ratio.numerator, ratio.denominator)
    return np.asarray(wave, dtype=np.float32)


def espeak_wave(text: str, voice: str, out: Path) -> np.ndarray | None:
    """espeak-ng speech (written to `out`) at 16 kHz, or None when espeak-ng is not installed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    subprocess.run([exe, "-v", voice, "-w", str(out), text], check=True, capture_output=True)
    return read_wav_16k(out)


def synthetic_clips(seed: int) -> list[Clip]:
    """Seeded signals: the demo-calibration probes plus a short (tiled) and a long (first window) clip."""
    probes = probe_signals(64600, seed).numpy()
    clips = [Clip(f"probe{i}", "synthetic", p) for i, p in enumerate(probes[[1, 4, 5, 6]])]
    rng = np.random.default_rng(seed)
    clips.append(Clip("noise_1.3s", "synthetic", (rng.standard_normal(20800) * 0.05).astype(np.float32)))
    t = np.arange(6 * SAMPLE_RATE) / SAMPLE_RATE
    long = 0.2 * np.sin(2 * np.pi * 300 * t) + rng.standard_normal(t.size) * 0.02
    clips.append(Clip("tone_6s", "synthetic", long.astype(np.float32)))
    return clips


def speech_clips(folder: Path) -> list[Clip]:
    clips = [Clip(f"alsa/{n}", "alsa", read_wav_16k(ALSA_DIR / f"{n}.wav"))
             for n in ALSA_SPEECH if (ALSA_DIR / f"{n}.wav").is_file()]
    for i, (voice, text) in enumerate(ESPEAK_LINES):
        wave = espeak_wave(text, voice, folder / f"espeak_{i}.wav")
        if wave is not None:
            clips.append(Clip(f"espeak/{voice}-{i}", "espeak", wave))
    return clips


def batch_of(clips: list[Clip], nb_samp: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([tile_to_length(c.wave, nb_samp) for c in clips]))


# --------------------------------------------------------------------------------------------- comparison


@dataclass
class Result:
    name: str
    weights: str  # real | random
    n_inputs: int
    diff_l0: float
    diff_l1: float
    diff_fake: float
    diff_sinc: float
    ours_fake: list[float]
    upstream_l1: list[float]

    @property
    def ok(self) -> bool:
        return max(self.diff_l0, self.diff_l1, self.diff_fake) <= TOLERANCE


def compare(name: str, weights: str, checkpoint: Path, module: ModuleType, conf: dict, x: torch.Tensor,
            chunk: int = 8) -> Result:
    """Run our detector and upstream's Model on the same checkpoint and batch (in chunks, to bound memory)."""
    ours = create_detector(name, {"model": checkpoint}, variant="full")
    theirs = build_upstream(module, conf, load_checkpoint(checkpoint))
    logits, fake, ref = [], [], []
    with torch.inference_mode():
        for part in torch.split(x, chunk):
            ours_fake, _ = ours.score(part)
            logits.append(ours.logits(part))
            fake.append(ours_fake)
            ref.append(theirs(part, Freq_aug=False)[1])
    logits, fake, ref = torch.cat(logits), torch.cat(fake), torch.cat(ref)
    diff = (logits - ref).abs().amax(dim=0)
    return Result(name, weights, len(x), float(diff[0]), float(diff[1]),
                  float((fake - (ref[:, 0] - ref[:, 1])).abs().max()),
                  float((ours.net.sinc[:, 0] - theirs.conv_time.band_pass).abs().max()),
                  fake.tolist(), ref[:, 1].tolist())


def real_checkpoint(name: str, weights_dir: Path, real_dir: Path | None) -> Path | None:
    """The published checkpoint, sha256-verified: from the weights cache, else from `real_dir`."""
    entry = get_entry(name)
    cached = verify_entry(entry, weights_dir)
    if cached.status == "verified":
        return cached.path
    for candidate in (real_dir / n for n in entry.names) if real_dir else ():
        if candidate.is_file() and file_sha256(candidate) == entry.sha256:
            return candidate
    log.warning("%s: no verified real checkpoint in %s%s; random weights only", name, weights_dir,
                f" or {real_dir}" if real_dir else "")
    return None


def check_arch(name: str, conf: dict) -> None:
    """Our hyper-parameters must be the checkout's, or the comparison is meaningless."""
    theirs, ours = AASISTArch.from_conf(conf), ARCHS[name]["full"]
    if theirs != ours:
        raise SystemExit(f"{name}: upstream config {CONFS[name]} gives {theirs}, ours is {ours}")


def run_model(name: str, args: argparse.Namespace, module: ModuleType, x: torch.Tensor, files: list[Path],
              tmp: Path) -> tuple[list[Result], list[DecodeResult]]:
    conf = upstream_config(args.upstream, name)
    check_arch(name, conf)
    checkpoints = []
    real = real_checkpoint(name, args.weights_dir, args.real_dir)
    if real is not None:
        log.info("%s: real weights %s", name, real)
        checkpoints.append(("real", real))
    random_path = tmp / f"{name}_random.pth"
    detector_class(name).write_demo_weights("model", random_path, "full", args.seed)
    log.info("%s: random-initialised weights (seed %d)", name, args.seed)
    checkpoints.append(("random", random_path))
    return ([compare(name, kind, path, module, conf, x) for kind, path in checkpoints],
            [compare_decode(name, kind, path, module, conf, files) for kind, path in checkpoints])


@dataclass
class DecodeResult:
    name: str
    weights: str
    n_files: int
    formats: str
    diff_l1: float

    @property
    def ok(self) -> bool:
        return self.diff_l1 <= DECODE_TOLERANCE


def write_files(clips: list[Clip], folder: Path) -> list[Path]:
    """Each clip as a 16 kHz 16-bit wav and a 24-bit flac, with a 0.83 s cut added (shorter than a second: it
    must be tiled and scored, as upstream does)."""
    folder.mkdir(parents=True, exist_ok=True)
    waves = [(c.name.replace("/", "_"), c.wave) for c in clips]
    waves.append(("short_0.83s", clips[0].wave[:13280]))
    paths = []
    for name, wave in waves:
        for suffix, subtype in ((".wav", "PCM_16"), (".flac", "PCM_24")):
            paths.append(folder / f"{name}{suffix}")
            sf.write(paths[-1], np.clip(wave, -1.0, 1.0), SAMPLE_RATE, subtype=subtype)
    return paths


def upstream_read(path: Path, nb_samp: int) -> np.ndarray:
    """Upstream's eval input: soundfile's float64 samples at the native rate, `pad`-tiled, then float32."""
    wave, _ = sf.read(str(path))
    if len(wave) >= nb_samp:
        return wave[:nb_samp].astype(np.float32)
    return np.tile(wave, nb_samp // len(wave) + 1)[:nb_samp].astype(np.float32)


def compare_decode(name: str, weights: str, checkpoint: Path, module: ModuleType, conf: dict,
                   files: list[Path]) -> DecodeResult:
    """First-window bona fide logit: upstream's read + model vs tetrad's decode + window rule + model."""
    ours = create_detector(name, {"model": checkpoint}, variant="full", options={"windows": "first"})
    theirs = build_upstream(module, conf, load_checkpoint(checkpoint))
    nb_samp = AASISTDetector.spec.input_size[0]
    diffs = []
    with torch.inference_mode():
        for path in files:
            wave = decode(path, SAMPLE_RATE, None).audio
            units = ours.make_units(_audio_rows(path.name, wave))
            _, l1 = ours.score(ours.preprocess(units))
            ref = theirs(torch.from_numpy(upstream_read(path, nb_samp))[None], Freq_aug=False)[1][:, 1]
            diffs.append(float((l1 - ref).abs().max()))
    kinds = ", ".join(sorted({p.suffix for p in files}))
    return DecodeResult(name, weights, len(files), kinds, max(diffs))


def _audio_rows(vid: str, wave: np.ndarray) -> pd.DataFrame:
    """The audio cache row the detect stage would hand the detector."""
    return pd.DataFrame([{"video_id": vid, "sample_rate": SAMPLE_RATE, "num_samples": wave.size,
                          "waveform": wave, "status": "ok", "error": None}])


# --------------------------------------------------------------------------------------------- report


def render(results: list[Result], decoded: list[DecodeResult], clips: list[Clip], commit: str) -> str:
    lines = [
        "## AASIST / AASIST-L (audio layer) vs clovaai/aasist", "",
        f"Date {datetime.date.today().isoformat()}, torch {torch.__version__}, upstream commit {commit}, CPU, "
        f"{torch.get_num_threads()} threads. Inputs: {len(clips)} waveforms tiled/cut to 64600 samples "
        f"({', '.join(sorted({c.kind for c in clips}))}). Tolerance {TOLERANCE:g}. Upstream's models/AASIST.py "
        "runs unpatched.", "",
        "| model | weights | n inputs | max abs diff logits[:,0] | max abs diff logits[:,1] "
        "| max abs diff fake logit (ours vs l0-l1) | sinc bank max abs diff | ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.name} | {r.weights} | {r.n_inputs} | {r.diff_l0:.2e} | {r.diff_l1:.2e} | {r.diff_fake:.2e} "
              f"| {r.diff_sinc:.2e} | {'yes' if r.ok else 'NO'} |" for r in results]
    lines += ["", "Through tetrad's own decode: each input written as a 16 kHz file, upstream reading it with "
              "soundfile + `pad`, tetrad with `tetrad.media.decode` + the `first` window rule; first-window bona "
              f"fide logit l1 (tolerance {DECODE_TOLERANCE:g}; includes a 0.83 s clip, tiled):", "",
              "| model | weights | files | formats | max abs diff l1 | ok |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.name} | {r.weights} | {r.n_files} | {r.formats} | {r.diff_l1:.2e} | "
              f"{'yes' if r.ok else 'NO'} |" for r in decoded]
    real = [r for r in results if r.weights == "real"]
    if real:
        lines += ["", "Scores with the real weights (P(fake) = sigmoid(l0 - l1) from ours; l1 = upstream's "
                  "bona fide score). alsa = recorded human speech, espeak = espeak-ng synthetic speech:", "",
                  "| input | kind | " + " | ".join(f"{r.name} P(fake) | {r.name} l1" for r in real) + " |",
                  "|---|---|" + "---|---|" * len(real)]
        for i, clip in enumerate(clips):
            cells = " | ".join(f"{_sigmoid(r.ours_fake[i]):.3f} | {r.upstream_l1[i]:.2f}" for r in real)
            lines.append(f"| {clip.name} | {clip.kind} | {cells} |")
    return "\n".join(lines)


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", type=Path, required=True, help="checkout of clovaai/aasist")
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--real-dir", type=Path, default=None, help="folder holding aasist_AASIST(-L).pth")
    parser.add_argument("--out", type=Path, default=Path("reports/parity.md"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    module = load_upstream(args.upstream)
    with tempfile.TemporaryDirectory() as tmp:
        clips = synthetic_clips(args.seed) + speech_clips(Path(tmp))
        x = batch_of(clips, AASISTDetector.spec.input_size[0])
        files = write_files(clips, Path(tmp) / "files")
        runs = [run_model(name, args, module, x, files, Path(tmp)) for name in CONFS]
    results = [r for direct, _ in runs for r in direct]
    decoded = [r for _, through in runs for r in through]
    section = render(results, decoded, clips, upstream_commit(args.upstream))
    failed = [f"{r.name}/{r.weights} (tolerance {TOLERANCE:g})" for r in results if not r.ok]
    failed += [f"{r.name}/{r.weights} through decode (tolerance {DECODE_TOLERANCE:g})" for r in decoded if not r.ok]
    return publish(args.out, SECTION, section, failed)


if __name__ == "__main__":
    raise SystemExit(main())
