"""Parity of tetrad's LipForensics layer (mouth crops + ResNet-18/MS-TCN logits) with ahaliassos/LipForensics.

    python -m tetrad.parity.lipforensics --upstream ../upstream/LipForensics \\
        --mean-face ../shared/upstream-data/lipforensics_20words_mean_face.npy --weights-dir weights \\
        --out reports/parity.md

Crops: a mini-benchmark clip is decoded once with PyAV; our MTCNN boxes and dlib 68-point landmarks (float64, the
extract stage's own functions) are written with the frames into upstream's layout (`0000.png`, `0000.npy`, ...)
and upstream's own `preprocessing/crop_mouths.py::crop_video_and_save` crops them with its argparse defaults.
Its PNGs are compared with our `mouth_crops` (colour) and `to_gray` (PIL "L", as upstream's clip loader) over
every frame, the last 11 (which reuse the last window's transform) reported separately.

Logits: a random-initialised checkpoint in upstream's format (`LipForensicsDetector.write_demo_weights`), and
the real one when the weights cache holds it, is loaded by upstream's own `get_model(path, device="cpu")`
(runtime patch `patches/lipforensics_cpu_get_model.py`). Upstream's inputs come from its own clip loader
(`data/dataset_clips.py::CelebDFClips`, which reads `./data/datasets/CelebDF/...` relative to the working
directory, so it runs inside a temporary folder laid out that way) with evaluate.py's transform (ToTensorVideo,
CenterCrop(88), NormalizeVideo(0.421, 0.165)); clips: the crops above and the two example mouth videos of the
checkout. Ours go through `make_units` + `preprocess` + forward; the video score is sigmoid(mean clip logit).
The LipForensics section of the report is rewritten between its markers. Exit status 1 when a crop pixel
differs or an input/logit/video score differs by more than 1e-4.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from unittest import mock

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.transforms import CenterCrop, Compose

from tetrad.aggregate.reduce import reduce_units
from tetrad.faces import create_face_detector, create_landmarker
from tetrad.io import file_sha256
from tetrad.layers import create_detector, detector_class
from tetrad.layers.lipforensics import LipForensicsDetector
from tetrad.media.crops import fill_missing, mouth_crops, to_gray, track_face
from tetrad.media.faces import FaceTools, detect_faces, mouth_landmarks
from tetrad.params import FaceParams
from tetrad.parity.common import (FileCheck, check_files, decode_rgb, files_lines, isolated_import,
                                  load_file_module, load_patch, max_abs, publish, quiet, upstream_commit)
from tetrad.weights import get_entry, verify_entry

log = logging.getLogger(__name__)

NAME = "lipforensics_rn18_mstcn"
SECTION = "lipforensics"
TOLERANCE = 1e-4
PATCH = "lipforensics_cpu_get_model"
CLIP = 25  # evaluate.py --frames_per_clip default
TAIL = 11  # frames after the last full 12-frame window
PINS = {  # sha256 at ahaliassos/LipForensics@d0bf555
    "models/spatiotemporal_net.py": "eabfabbb06aa411796b10f9b1de0231bfee719fbc45ff0ab0c40f20820021d29",
    "models/resnet.py": "1d159120f159636b88291702e3e62ea5b43a8716687fb261308bc5092e3c122c",
    "models/tcn.py": "35f57b7b65c976ed77857f9784a94baaa15bd0bbdc94033ec2b3ef48e00c1712",
    "models/configs/lrw_resnet18_mstcn.json": "dc9135351ee1b8458285b3bc5b8c42877f10a6403502437d312b0db81af678c9",
    "preprocessing/crop_mouths.py": "d6c0a68ceaedc299e7264c5a2557f5b5ce259d578b3ba379a3dd42697acd8804",
    "preprocessing/utils.py": "8ce8daaa7c49d368095b5a06970e8f466283006b17b14ffe003a72bb7b76058a",
    "data/transforms.py": "f626c469cf5f43b6e0bd5003be5408afedf22f25186adbde89704c715ea833b1",
    "data/dataset_clips.py": "ebdaef06cd19ed98e5c913905419902ab9fbc592a287a2d9ade9b159f8d1be13",
    "preprocessing/20words_mean_face.npy": "dbf68b2044171e1160716df7c53e8bbfaa0ee8c61fb41171d04cb6092bb81422",
    "examples/real.avi": "49c8983fd89363cdbc8dfd6a98e4fb9ff2183610993aba1f66a15542728ab774",
    "examples/fake.avi": "16e1d1ffcaf587d00fa17010d532c190ae28fc9519afed516ecb5a6dcaeee565",
}
EXAMPLES = ("examples/real.avi", "examples/fake.avi")
REAL_WEIGHTS = "lipforensics_ff"


@dataclass(frozen=True)
class Upstream:
    checkout: Path
    net: ModuleType  # models/spatiotemporal_net.py
    crop: ModuleType  # preprocessing/crop_mouths.py
    transforms: ModuleType  # data/transforms.py
    clips: ModuleType  # data/dataset_clips.py
    files: list[FileCheck]
    commit: str


@dataclass
class CropResult:
    video: str
    video_sha256: str
    n_frames: int
    n_interpolated: int  # frames whose landmarks were filled in (no face found)
    diff_colour: float
    diff_gray: float
    diff_gray_tail: float  # the last 11 frames (reused transform)
    n_diff_pixels: int

    @property
    def ok(self) -> bool:
        return self.diff_colour == 0 and self.diff_gray == 0 and self.diff_gray_tail == 0


@dataclass
class LogitResult:
    weights: str
    n_clips: int
    diff_input: float
    diff_logit: float
    videos: list[tuple[str, int, float, float]]  # video, clips, P(fake) ours (reducer), upstream mean-logit rule

    @property
    def diff_video(self) -> float:
        return max((abs(a - b) for _, _, a, b in self.videos), default=0.0)

    @property
    def ok(self) -> bool:
        return max(self.diff_input, self.diff_logit, self.diff_video) <= TOLERANCE


# --------------------------------------------------------------------------------------------- upstream


def load_upstream(checkout: Path) -> Upstream:
    """Import upstream's files, each with its sibling imports resolved inside the checkout only."""
    if not (checkout / "models" / "spatiotemporal_net.py").is_file():
        raise FileNotFoundError(f"{checkout}/models/spatiotemporal_net.py not found: pass --upstream <LipForensics>")
    files = check_files(checkout, PINS)
    with isolated_import([checkout], ["models"]):  # relative imports of .resnet / .tcn
        net = importlib.import_module("models.spatiotemporal_net")
    with isolated_import([checkout / "preprocessing"], ["utils"]):  # crop_mouths: `from utils import ...`
        crop = load_file_module(checkout / "preprocessing" / "crop_mouths.py", "tetrad_upstream_lip_crop_mouths")
    transforms = load_file_module(checkout / "data" / "transforms.py", "tetrad_upstream_lip_transforms")
    clips = load_file_module(checkout / "data" / "dataset_clips.py", "tetrad_upstream_lip_dataset_clips")
    return Upstream(checkout, net, crop, transforms, clips, files, upstream_commit(checkout))


def crop_defaults(up: Upstream) -> argparse.Namespace:
    """Upstream's own argparse defaults of crop_mouths.py (crop 96x96, points 48-67, window 12)."""
    with mock.patch.object(sys, "argv", ["crop_mouths.py"]):
        return up.crop.parse_args()


def upstream_model(up: Upstream, checkpoint: Path) -> tuple[torch.nn.Module, list[str]]:
    """Upstream's get_model on CPU: builds Lipreading from the config json and loads our file strictly."""
    patch = load_patch(PATCH)
    with patch.cpu_get_model(up.net, up.checkout) as calls, quiet("lipforensics get_model"):
        model = up.net.get_model(str(checkpoint), device="cpu")
    return model.eval(), calls


def evaluate_transform(up: Upstream) -> Compose:
    """evaluate.py's composition, from upstream's transforms module and torchvision."""
    t = up.transforms
    return Compose([t.ToTensorVideo(), CenterCrop((88, 88)), t.NormalizeVideo((0.421,), (0.165,))])


# --------------------------------------------------------------------------------------------- crops


def frames_and_landmarks(video: Path, n_frames: int | None) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Decoded frames and float64 68-point landmarks of the largest face (our extract stage's functions)."""
    frames, fps = decode_rgb(video)
    frames = frames[:n_frames] if n_frames else frames
    tools = FaceTools(create_face_detector("mtcnn", {}, "cpu"), create_landmarker("dlib68"), FaceParams())
    sampled = [(i, i / fps, rgb) for i, rgb in enumerate(frames)]
    found = detect_faces(sampled, tools)
    raw = mouth_landmarks(sampled, track_face([found[idx] for idx, _, _ in sampled]), tools)
    missing = sum(lm is None for lm in raw)
    return frames, fill_missing(raw), missing


def write_layout(frames: list[np.ndarray], landmarks: np.ndarray | None, images: Path, marks: Path | None) -> None:
    """Frames as `0000.png` ... and, when given, landmarks as `0000.npy` ..., as upstream's folders hold them."""
    images.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(frames):
        Image.fromarray(rgb).save(images / f"{i:04d}.png")
        if landmarks is not None and marks is not None:
            marks.mkdir(parents=True, exist_ok=True)
            np.save(marks / f"{i:04d}.npy", landmarks[i])


def read_pngs(folder: Path, mode: str | None) -> list[np.ndarray]:
    """PNGs in sorted order, optionally converted as upstream's clip loader does (`convert("L")`)."""
    out = []
    for path in sorted(folder.iterdir()):
        with Image.open(path) as img:
            out.append(np.array(img.convert(mode) if mode else img))
    return out


def compare_crops(up: Upstream, video: Path, n_frames: int | None, mean_face: np.ndarray, tmp: Path,
                  target: Path) -> tuple[CropResult, list[np.ndarray]]:
    """Upstream's crop_video_and_save vs our mouth_crops on the same frames and landmarks; returns our grey crops."""
    frames, landmarks, missing = frames_and_landmarks(video, n_frames)
    write_layout(frames, landmarks, tmp / "images" / video.stem, tmp / "landmarks" / video.stem)
    with quiet("lipforensics crop_video_and_save"):
        up.crop.crop_video_and_save(str(tmp / "images" / video.stem), str(tmp / "landmarks" / video.stem),
                                    str(target), mean_face, crop_defaults(up))
    theirs_rgb, theirs_gray = read_pngs(target, None), read_pngs(target, "L")
    ours_rgb = mouth_crops(frames, landmarks, mean_face)
    ours_gray = [to_gray(c) for c in ours_rgb]
    if len(theirs_rgb) != len(ours_rgb):
        raise RuntimeError(f"{video.name}: upstream wrote {len(theirs_rgb)} crops for {len(ours_rgb)} frames")
    gray_ours, gray_theirs = np.stack(ours_gray), np.stack(theirs_gray)
    result = CropResult(video.stem, file_sha256(video), len(frames), missing,
                        max_abs(np.stack(ours_rgb), np.stack(theirs_rgb)), max_abs(gray_ours, gray_theirs),
                        max_abs(gray_ours[-TAIL:], gray_theirs[-TAIL:]), int((gray_ours != gray_theirs).sum()))
    log.info("%s: %d mouth crops, max |diff| colour %g grey %g", video.name, len(frames), result.diff_colour,
             result.diff_gray)
    return result, ours_gray


# --------------------------------------------------------------------------------------------- logits


def mouth_rows(video_id: str, gray: list[np.ndarray]) -> pd.DataFrame:
    """A minimal `mouths` cache for our clip cutter: one ok row per frame with its greyscale crop."""
    return pd.DataFrame({"video_id": video_id, "frame_idx": range(len(gray)), "pts_s": np.arange(len(gray)) / 25.0,
                         "status": "ok", "image": [np.ascontiguousarray(g).tobytes() for g in gray],
                         "height": [g.shape[0] for g in gray], "width": [g.shape[1] for g in gray]})


def upstream_clips(up: Upstream, root: Path) -> tuple[torch.Tensor, list[str]]:
    """Every clip of upstream's CelebDFClips over `root`/data/datasets/CelebDF, and the video of each clip."""
    with contextlib.chdir(root):
        dataset = up.clips.CelebDFClips(CLIP, True, evaluate_transform(up))
        items = [dataset[i] for i in range(len(dataset))]
        names = [Path(p).name for p in dataset.paths]
    return torch.stack([x for x, _, _ in items]), [names[int(v)] for _, _, v in items]


def run_models(ours: LipForensicsDetector, theirs: torch.nn.Module, x_ours: torch.Tensor, x_up: torch.Tensor,
               chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Our forward and upstream's `model(x, lengths=[25] * B)` (evaluate.py), in chunks to bound memory."""
    mine, ref = [], []
    with torch.inference_mode():
        for a, b in zip(torch.split(x_ours, chunk), torch.split(x_up, chunk)):
            mine.append(ours(a))
            ref.append(theirs(b, lengths=[CLIP] * len(b))[:, 0])
    return torch.cat(mine), torch.cat(ref)


def video_scores(names: list[str], ours: torch.Tensor, ref: torch.Tensor) -> list[tuple[str, int, float, float]]:
    """Ours by the detector's reducer; upstream's as evaluate.py pools clips (mean logit), then a sigmoid."""
    units = pd.DataFrame({"video_id": names, "logit": ours.numpy().astype(np.float64), "p_fake": np.nan,
                          "status": "ok", "error": None, "compute_s": 0.0})
    reduced = reduce_units(units, LipForensicsDetector.spec.reduce).set_index("video_id")
    out = []
    for name in dict.fromkeys(names):
        mask = torch.tensor([n == name for n in names])
        theirs = torch.sigmoid(torch.mean(ref[mask], 0)).item()
        out.append((name, int(mask.sum()), float(reduced.loc[name, "p_fake"]), theirs))
    return out


def compare_logits(up: Upstream, weights: str, checkpoint: Path, variant: str, root: Path,
                   gray: dict[str, list[np.ndarray]]) -> tuple[LogitResult, list[str]]:
    """Same checkpoint and clips: upstream's loader + transform + get_model vs our make_units + preprocess."""
    x_up, names = upstream_clips(up, root)
    ours = create_detector(NAME, {"model": checkpoint}, variant, {}, "cpu").eval()
    units = [u for name in dict.fromkeys(names) for u in ours.make_units(mouth_rows(name, gray[name]))]
    x_ours = ours.preprocess(units)
    theirs, calls = upstream_model(up, checkpoint)
    mine, ref = run_models(ours, theirs, x_ours, x_up)
    result = LogitResult(weights, len(units), max_abs(x_ours.numpy(), x_up.numpy()),
                         max_abs(mine.numpy(), ref.numpy()), video_scores(names, mine, ref))
    return result, calls


def checkpoints(weights_dir: Path, tmp: Path, variant: str, seed: int) -> list[tuple[str, Path]]:
    """A random-initialised checkpoint in upstream's format, plus the real one if the weights cache has it."""
    path = tmp / f"{NAME}_random_{variant}.pth"
    detector_class(NAME).write_demo_weights("model", path, variant, seed)
    found = [("random", path)]
    check = verify_entry(get_entry(REAL_WEIGHTS), weights_dir)
    if check.status in ("verified", "present-unpinned"):
        found.append((f"real {REAL_WEIGHTS}", check.path))
    return found


# --------------------------------------------------------------------------------------------- run


def example_clips(up: Upstream, fake_root: Path, real_root: Path) -> dict[str, list[np.ndarray]]:
    """The checkout's example mouth videos: PNGs for upstream's loader, PIL-greyscale frames for ours."""
    out = {}
    for rel in EXAMPLES:
        frames, _ = decode_rgb(up.checkout / rel)
        name = f"example_{Path(rel).stem}"
        write_layout(frames, None, (real_root if "real" in rel else fake_root) / name, None)
        out[name] = [to_gray(f) for f in frames]
    return out


def run(checkout: Path, video: Path, mean_face: Path, weights_dir: Path, n_frames: int | None = None,
        examples: bool = True, variant: str = "full",
        seed: int = 0) -> tuple[Upstream, CropResult, list[LogitResult], list[str]]:
    """The whole comparison (the tests call it with few frames and without the example videos)."""
    up = load_upstream(checkout)
    face = np.load(mean_face)
    results, calls = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        celebdf = root / "data" / "datasets" / "CelebDF"
        real, fake = celebdf / "RealCelebDF" / "cropped_mouths", celebdf / "FakeCelebDF" / "cropped_mouths"
        fake.mkdir(parents=True)
        crops, gray = compare_crops(up, video, n_frames, face, root, real / video.stem)
        clips = {video.stem: gray, **(example_clips(up, fake, real) if examples else {})}
        for weights, path in checkpoints(weights_dir, root, variant, seed):
            log.info("logits with %s weights (%s)", weights, path)
            result, calls = compare_logits(up, weights, path, variant, root, clips)
            results.append(result)
    return up, crops, results, calls


def render(up: Upstream, crops: CropResult, logits: list[LogitResult], calls: list[str], mean_face: Path) -> str:
    patch = load_patch(PATCH)
    lines = [
        "## LipForensics (lip layer) vs ahaliassos/LipForensics", "",
        f"Date {datetime.date.today().isoformat()}, torch {torch.__version__}, upstream commit {up.commit}, CPU, "
        f"{torch.get_num_threads()} threads, detector `{NAME}` variant full. Tolerance {TOLERANCE:g} (inputs, "
        "logits, video scores); crops must be identical.", "",
        "Upstream files imported or read (sha256 pinned for d0bf555):", *files_lines(up.files), "",
        f"Runtime patch `patches/{PATCH}.py` ({patch.TARGET}): {patch.SUMMARY}. Recorded: {'; '.join(calls)}.", "",
        f"Crops: mini-benchmark `{crops.video}.mp4` (sha256 `{crops.video_sha256[:16]}…`; {crops.n_frames} frames "
        f"decoded with PyAV; MTCNN boxes, dlib 68-point landmarks as float64, {crops.n_interpolated} frames "
        "interpolated) through upstream's `preprocessing/crop_mouths.py::crop_video_and_save` with its argparse "
        f"defaults; mean face `{mean_face.name}` (sha256 `{file_sha256(mean_face)[:16]}…`"
        f"{mean_face_note(up, mean_face)}); upstream's PNGs vs our `mouth_crops` (colour) and `to_gray` (vs PIL "
        "`convert(\"L\")`).",
        "", "| video | frames | max abs diff colour | max abs diff grey | max abs diff grey, last 11 frames "
        "| differing grey pixels | ok |", "|---|---|---|---|---|---|---|",
        f"| {crops.video} | {crops.n_frames} | {crops.diff_colour:g} | {crops.diff_gray:g} | "
        f"{crops.diff_gray_tail:g} | {crops.n_diff_pixels} | {'yes' if crops.ok else 'NO'} |",
    ]
    return "\n".join(lines + logit_lines(logits))


def mean_face_note(up: Upstream, mean_face: Path) -> str:
    same = file_sha256(mean_face) == file_sha256(up.checkout / "preprocessing" / "20words_mean_face.npy")
    return ", the checkout's file" if same else ", **not** the checkout's preprocessing/20words_mean_face.npy"


def logit_lines(logits: list[LogitResult]) -> list[str]:
    lines = ["", "Logits: upstream's `get_model(path, device=\"cpu\")` loads the checkpoint (its own strict "
             "`load_state_dict`). Upstream's inputs come from `data/dataset_clips.py::CelebDFClips` (greyscale, "
             "25-frame non-overlapping clips) with evaluate.py's transform, and it is called as `model(x, "
             "lengths=[25] * B)`; clips: the crops above and the checkout's examples/real.avi and fake.avi (decoded "
             "with PyAV, written as RGB PNGs). Ours: `make_units` + `preprocess` + forward on our grey crops and "
             "`to_gray` frames. Video score: sigmoid(mean clip logit) (ours: the reducer `mean_logit_sigmoid`; "
             "upstream: evaluate.py's mean of the clip logits, then a sigmoid).", "",
             "| weights | clips | max abs diff input | max abs diff logit "
             "| video (clips): P(fake) ours / upstream | ok |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.weights} | {r.n_clips} | {r.diff_input:.2e} | {r.diff_logit:.2e} | "
              + "; ".join(f"{v} ({n}): {a:.6f} / {b:.6f}" for v, n, a, b in r.videos)
              + f" | {'yes' if r.ok else 'NO'} |" for r in logits]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", type=Path, required=True, help="checkout of ahaliassos/LipForensics@d0bf555")
    parser.add_argument("--mean-face", type=Path, required=True, help="20words_mean_face.npy")
    parser.add_argument("--video", type=Path, default=Path("data/mini/raw/clips/s0_A.mp4"))
    parser.add_argument("--n-frames", type=int, default=None, help="first N frames only (default: all)")
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--out", type=Path, default=Path("reports/parity.md"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    up, crops, logits, calls = run(args.upstream, args.video, args.mean_face, args.weights_dir, args.n_frames,
                                   seed=args.seed)
    section = render(up, crops, logits, calls, args.mean_face)
    bad = ([f"files {f.path}" for f in up.files if not f.ok] + ([f"crops {crops.video}"] if not crops.ok else [])
           + [f"logits {r.weights}" for r in logits if not r.ok])
    return publish(args.out, SECTION, section, bad)


if __name__ == "__main__":
    raise SystemExit(main())
