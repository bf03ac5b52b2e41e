"""Parity of tetrad's sync layer (SyncNet v2: MFCC, windows, embeddings, distances, offset and confidence) with
joonson/syncnet_python@6efbb1c.

Weights: a random-initialised checkpoint in upstream's format (`SyncNetDetector.write_demo_weights`: a plain
state dict in PyTorch's legacy file format, without BatchNorm batch counters), and the released
`syncnet_v2.model` when it is in the weights folder. Upstream loads them with its own `loadParameters`.

Inputs: generated clips (the astronaut photo with a voiced tone, `tetrad.mini.write_smoke_clip`) and, when the
mini benchmark has been built, its `shifted/` clips (speech moved by a known number of frames). Tetrad decodes
each clip once, cuts its 25 fps face crops from a face track and quantises its 16 kHz audio to 16 bits
(`tetrad.layers.syncnet.read_av`); upstream's `SyncNetInstance.evaluate` is then run on exactly those frames
and samples (patches/syncnet_cpu_evaluate.py stands in for its ffmpeg calls and keeps it on the CPU), and its
network's inputs and outputs are recorded. Compared: the MFCC windows and the frame windows the two networks
see (features, <= 1e-5), the audio and video embeddings, the distances at every shift, the minimum distance and
the confidence (<= 1e-4), and the AV offset (equal). Ours go through `make_units` + `preprocess` + `score` and
the video rule `av_offset`. Exit status 1 when a check fails.

The crops themselves are not compared with upstream's `run_pipeline.py`: it needs S3FD and scenedetect 0.5.1,
and tetrad's face track comes from the extract stage's face detector; `tests/layers/test_syncnet.py` checks the
crop geometry against upstream's formula.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import torch

from tetrad.aggregate.reduce import reduce_units
from tetrad.layers import create_detector
from tetrad.layers.syncnet import SyncNetDetector, frame_plan, pcm16, read_av, unpack
from tetrad.parity.common import (FileCheck, check_files, files_lines, isolated_import, load_patch, max_abs, publish,
                                  quiet, upstream_commit)

log = logging.getLogger(__name__)

SECTION = "syncnet"
FEATURE_TOLERANCE = 1e-5
TOLERANCE = 1e-4
PINS = {
    "SyncNetModel.py": "93e47d993bbf702ab8bb5223771931ea964eb6804787d35ac086885971e1f20c",
    "SyncNetInstance.py": "4bfb7ebbef0a7ceecb1cb7c5ed4bd2472f302d12a300b586fc9d12ad98c59359",
}


@dataclass(frozen=True)
class Row:
    weights: str
    clip: str
    windows: int
    mfcc: float  # max |diff| of the MFCC windows the audio network sees
    frames: float  # of the frame windows the video network sees
    audio_embed: float
    video_embed: float
    dists: float
    min_dist: float
    conf: float
    offsets: tuple[int, int]  # (ours, upstream)

    @property
    def ok(self) -> bool:
        return (max(self.mfcc, self.frames) <= FEATURE_TOLERANCE and self.offsets[0] == self.offsets[1]
                and max(self.audio_embed, self.video_embed, self.dists, self.min_dist, self.conf) <= TOLERANCE)


def track_rows(path: Path) -> pd.DataFrame:
    """A mouths-cache-like table for a clip: every frame with a face box over the picture's centre, drifting a
    little so the median filter has work to do."""
    import av

    with av.open(str(path)) as box:
        stream = box.streams.video[0]
        pts = [float(f.time) for f in box.decode(stream)]
        w, h = stream.codec_context.width, stream.codec_context.height
    drift = np.sin(np.arange(len(pts)) / 3.0) * 4
    boxes = [[w * 0.3 + d, h * 0.25, w * 0.7 + d, h * 0.65 + d / 2] for d in drift]
    rows = pd.DataFrame({"video_id": path.stem, "frame_idx": range(len(pts)), "pts_s": pts, "box": boxes,
                         "status": "ok"})
    rows.attrs["source"] = str(path)
    return rows


def ours(detector: SyncNetDetector, rows: pd.DataFrame) -> dict:
    units = detector.make_units(rows)
    x = detector.preprocess(units)
    with torch.inference_mode():
        frames, audio, index = unpack(x)
        logit, _, d = detector.score(x)
        video = detector.net.embed_video(frames)
        sound = detector.net.embed_audio(audio)
    vshift = detector.options.vshift
    own = index[:, vshift]  # each window's own audio window, among the distinct ones
    scores = pd.DataFrame({"video_id": rows["video_id"].iloc[0], "p_fake": torch.sigmoid(logit).numpy(),
                           "logit": logit.numpy(), "vector": list(d.numpy()), "compute_s": 0.0, "status": "ok",
                           "error": None})
    video_row = reduce_units(scores, "av_offset").iloc[0]
    return {"mfcc": audio[own].numpy(), "frames": frames.numpy(), "audio_embed": sound[own].numpy(),
            "video_embed": video.numpy(), "dists": d.numpy(), "offset": int(video_row["av_offset"]),
            "min_dist": float(video_row["av_min_dist"]), "conf": float(video_row["av_conf"])}


def upstream(up: ModuleType, checkpoint: Path, crops: np.ndarray, pcm: np.ndarray,
             vshift: int, tmp: Path) -> tuple[dict, list[str]]:
    """Upstream's evaluate on our crops (BGR) and samples, its network's inputs and outputs recorded."""
    patch = load_patch("syncnet_cpu_evaluate")
    seen: dict[str, list] = {"lip_in": [], "lip_out": [], "aud_in": [], "aud_out": []}
    with patch.cpu_evaluate(up, crops[..., ::-1], pcm) as calls:
        inst = up.SyncNetInstance()
        inst.loadParameters(str(checkpoint))
        net = inst.__S__
        for name in ("lip", "aud"):
            _record(net, name, seen)
        opt = argparse.Namespace(tmp_dir=str(tmp), reference="clip", batch_size=20, vshift=vshift)
        with torch.no_grad(), quiet("syncnet evaluate"):
            offset, conf, dists = inst.evaluate(opt, videofile="(frames handed over by the patch)")
    mdist = torch.mean(torch.stack([torch.from_numpy(r) for r in dists], 1), 1)  # as evaluate computes it
    cat = {k: torch.cat(v).numpy() for k, v in seen.items()}
    return {"mfcc": cat["aud_in"], "frames": cat["lip_in"], "audio_embed": cat["aud_out"],
            "video_embed": cat["lip_out"], "dists": np.asarray(dists), "offset": int(offset),
            "min_dist": float(mdist.min()), "conf": float(conf)}, calls


def _record(net: torch.nn.Module, name: str, seen: dict[str, list]) -> None:
    forward = getattr(net, f"forward_{name}")

    def recorded(x: torch.Tensor) -> torch.Tensor:
        out = forward(x)
        seen[f"{name}_in"].append(x.detach().clone())
        seen[f"{name}_out"].append(out.detach().clone())
        return out

    setattr(net, f"forward_{name}", recorded)


def compare(up: ModuleType, label: str, checkpoint: Path, variant: str, clip: Path,
            tmp: Path) -> tuple[Row, list[str]]:
    detector = create_detector("syncnet_v2", {"model": checkpoint}, variant)
    rows = track_rows(clip)
    a = ours(detector, rows)
    crops, wave = read_av(clip.stem, str(clip), frame_plan(clip.stem, rows, None), detector.options)
    b, calls = upstream(up, checkpoint, crops, pcm16(wave), detector.options.vshift, tmp)
    diff = {k: max_abs(a[k], b[k]) for k in ("mfcc", "frames", "audio_embed", "video_embed", "dists")}
    return Row(label, clip.name, len(a["dists"]), diff["mfcc"], diff["frames"], diff["audio_embed"],
               diff["video_embed"], diff["dists"], abs(a["min_dist"] - b["min_dist"]), abs(a["conf"] - b["conf"]),
               (a["offset"], b["offset"])), calls


def clips(tmp: Path, extra: list[Path]) -> list[Path]:
    from tetrad.mini import write_smoke_clip

    made = [write_smoke_clip(tmp / f"tone_{s:.1f}s.mp4", s) for s in (2.0, 3.2)]
    return made + [p for p in extra if p.is_file()]


def checkpoints(weights_dir: Path, tmp: Path, seed: int) -> list[tuple[str, Path]]:
    random = tmp / "syncnet_v2_random.model"
    SyncNetDetector.write_demo_weights("model", random, "full", seed)
    real = weights_dir / "sync" / "syncnet_v2.model"
    return [("random", random)] + ([("real", real)] if real.is_file() else [])


def run(checkout: Path, weights_dir: Path, extra: list[Path], seed: int = 0) -> tuple[list[FileCheck], list[Row],
                                                                                         list[str]]:
    files = check_files(checkout, PINS)
    rows, calls = [], []
    with tempfile.TemporaryDirectory(prefix="tetrad-parity-syncnet-") as tmp_dir:
        tmp = Path(tmp_dir)
        with isolated_import([checkout], ["SyncNetModel", "SyncNetInstance"]):
            import SyncNetInstance as up
            for label, path in checkpoints(weights_dir, tmp, seed):
                for clip in clips(tmp, extra):
                    log.info("syncnet parity: %s weights, %s", label, clip.name)
                    row, calls = compare(up, label, path, "full", clip, tmp)
                    rows.append(row)
    return files, rows, calls


def render(checkout: Path, files: list[FileCheck], rows: list[Row], calls: list[str]) -> str:
    patch = load_patch("syncnet_cpu_evaluate")
    lines = [f"## SyncNet v2 (sync layer) vs {patch.UPSTREAM.split('@')[0]}", "",
             f"Date {datetime.date.today()}, torch {torch.__version__}, upstream commit {upstream_commit(checkout)}, "
             f"CPU, {torch.get_num_threads()} threads. Tolerances: features {FEATURE_TOLERANCE:g}, embeddings, "
             f"distances, min dist and confidence {TOLERANCE:g}; AV offset equal.", "",
             f"Patch (patches/syncnet_cpu_evaluate.py): {patch.SUMMARY}. Its calls, for the last clip: "
             f"{'; '.join(calls)}.", "",
             "Clips: the astronaut photo with a voiced tone (`tetrad.mini.write_smoke_clip`) and the mini "
             "benchmark's `shifted/` clips, each with a drifting face box over the picture's centre as its track. "
             "Columns: max |ours - upstream| of what each network sees and gives, over every window and shift.", "",
             "| weights | clip | windows | MFCC windows | frame windows | audio embed | video embed | distances "
             "| min dist | confidence | AV offset ours / upstream | ok |", "|" + "---|" * 12]
    for r in rows:
        lines.append(f"| {r.weights} | {r.clip} | {r.windows} | {r.mfcc:.2e} | {r.frames:.2e} | {r.audio_embed:.2e} "
                     f"| {r.video_embed:.2e} | {r.dists:.2e} | {r.min_dist:.2e} | {r.conf:.2e} "
                     f"| {r.offsets[0]} / {r.offsets[1]} | {'yes' if r.ok else '**no**'} |")
    return "\n".join(lines + ["", "Upstream files:", *files_lines(files)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", type=Path, required=True, help="checkout of joonson/syncnet_python@6efbb1c")
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--clips", type=Path, nargs="*",
                        default=sorted(Path("data/mini/raw/shifted").glob("*.mp4")),
                        help="more clips besides the generated ones (default: the mini benchmark's shifted/)")
    parser.add_argument("--out", type=Path, default=Path("reports/parity.md"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    files, rows, calls = run(args.upstream, args.weights_dir, args.clips, args.seed)
    bad = [f"files {f.path}" for f in files if not f.ok] + [f"{r.weights} {r.clip}" for r in rows if not r.ok]
    return publish(args.out, SECTION, render(args.upstream, files, rows, calls), bad)


if __name__ == "__main__":
    raise SystemExit(main())
