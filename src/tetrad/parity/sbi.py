"""Parity of tetrad's SBI layer (face crops + EfficientNet-B4 logits) with upstream mapooon/SelfBlendedImages.

    python -m tetrad.parity.sbi --upstream ../upstream/SelfBlendedImages --weights-dir weights --out reports/parity.md

Crops: a mini-benchmark video is decoded once with PyAV and re-written losslessly (FFV1, bgr0, AVI) so that
upstream's own `src/inference/preprocess.py::extract_frames` reads, through OpenCV, exactly the frames we decoded
(checked frame by frame; if OpenCV cannot, the frames are handed to it through a stand-in capture). Its face
detector is a stub returning, for each sampled frame, the MTCNN boxes our extract stage produced, plus planted
cases: extra faces of 0.5625x / 0.36x the area, integer boxes of exactly half the area, boxes crossing the frame
edges, and a frame where the stub returns RetinaFace's "no face" sentinel. Upstream's crops and frame indices are
compared with those of our `tetrad.media.faces.face_rows` on the same frames and boxes.

Logits: a random-initialised checkpoint in SBI's format (`SBIDetector.write_demo_weights`), and the real one when
the weights cache holds it, is read with upstream's load line (`torch.load(path)["model"]`, strict
`load_state_dict`) into upstream's `Detector` (built offline by the runtime patch `patches/
sbi_offline_efficientnet.py`); both models score the same crops. The SBI section of the report is rewritten
between its markers. Exit status 1 when any crop differs or a logit/probability differs by more than 1e-4.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace

import av
import cv2
import numpy as np
import pandas as pd
import torch

from tetrad.aggregate.reduce import reduce_units
from tetrad.faces import Face, create_face_detector
from tetrad.io import file_sha256
from tetrad.layers import create_detector, detector_class
from tetrad.layers.sbi import VARIANTS, SBIDetector
from tetrad.media import pixels
from tetrad.media.decode import frame_indices
from tetrad.media.faces import FaceTools, detect_faces, face_rows
from tetrad.params import ExtractParams, FaceParams, FacesExtractParams
from tetrad.parity.common import (FileCheck, check_files, decode_rgb, files_lines, load_file_module, load_patch,
                                  max_abs, publish, quiet, upstream_commit)
from tetrad.weights import get_entry, verify_entry

log = logging.getLogger(__name__)

NAME = "sbi_effb4"
SECTION = "sbi"
TOLERANCE = 1e-4
PATCH = "sbi_offline_efficientnet"
PINS = {  # sha256 at mapooon/SelfBlendedImages@9fe4efe
    "src/inference/model.py": "2ac95577acd6b28ddb23b58aed2f08f84f113f3231d51bb265abbe1e6212f562",
    "src/inference/preprocess.py": "cd9d03e4e85fa39fb83e8bf6fe0756ed3a1a92c32fe252918225490cb018341e",
}
SENTINEL = [{"bbox": [], "score": -1, "landmarks": []}]  # RetinaFace's predict_jsons when it finds no face
REAL_WEIGHTS = ("sbi_ffc23", "sbi_ffraw")


@dataclass(frozen=True)
class Upstream:
    model: ModuleType  # src/inference/model.py
    preprocess: ModuleType  # src/inference/preprocess.py
    files: list[FileCheck]
    commit: str


@dataclass
class CropResult:
    video: str
    reader: str  # how upstream's cv2.VideoCapture got the frames
    n_sampled: int
    planted: list[str]
    ours_idx: list[int]
    upstream_idx: list[int]
    max_diff: float
    n_diff_pixels: int
    frames_mismatched: list[int] = field(default_factory=list)  # frames upstream saw that differ from ours
    detector_calls: int = 0  # upstream's predict_jsons calls: one per sampled frame

    @property
    def ok(self) -> bool:
        return (self.ours_idx == self.upstream_idx and self.max_diff == 0 and not self.frames_mismatched
                and self.detector_calls == self.n_sampled)


@dataclass
class LogitResult:
    weights: str
    n_crops: int
    diff_input: float
    diff_logits: float  # max over both columns of [l0, l1]
    diff_fake_logit: float  # our forward (l1 - l0) vs upstream's l1 - l0
    diff_p_fake: float  # our sigmoid(forward) vs upstream softmax(1)[:, 1]
    videos: list[tuple[str, float, float]]  # video, P(fake) by our reducer, by upstream's rule

    @property
    def diff_video(self) -> float:
        return max((abs(a - b) for _, a, b in self.videos), default=0.0)

    @property
    def ok(self) -> bool:
        worst = max(self.diff_input, self.diff_logits, self.diff_fake_logit, self.diff_p_fake, self.diff_video)
        return worst <= TOLERANCE


@dataclass
class VideoCrops:
    """One video's comparison and what the logit check needs: our cache rows and upstream's crops (CHW)."""

    result: CropResult
    rows: pd.DataFrame
    crops: list[np.ndarray]


# --------------------------------------------------------------------------------------------- upstream


def load_upstream(checkout: Path) -> Upstream:
    """Import the checkout's model.py and preprocess.py under private names; they have no sibling imports."""
    inference = checkout / "src" / "inference"
    if not (inference / "model.py").is_file():
        raise FileNotFoundError(f"{inference}/model.py not found: pass --upstream <checkout of SelfBlendedImages>")
    files = check_files(checkout, PINS)
    model = load_file_module(inference / "model.py", "tetrad_upstream_sbi_model")
    preprocess = load_file_module(inference / "preprocess.py", "tetrad_upstream_sbi_preprocess")
    return Upstream(model, preprocess, files, upstream_commit(checkout))


def upstream_detector(up: Upstream, checkpoint: Path, variant: str) -> tuple[torch.nn.Module, list[dict]]:
    """Upstream's Detector built offline, then upstream's own load line: torch.load(...)["model"], strict."""
    patch = load_patch(PATCH)
    with patch.offline_from_pretrained(**VARIANTS[variant]) as calls:
        model = up.model.Detector()
    model.load_state_dict(torch.load(checkpoint)["model"])
    return model.eval(), calls


# --------------------------------------------------------------------------------------------- frames


def write_lossless(frames: list[np.ndarray], path: Path, fps: float) -> None:
    """FFV1 with packed BGR (bgr0): OpenCV's FFmpeg backend converts it back to BGR24 without loss."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=round(fps))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "bgr0"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


def opencv_reads_back(path: Path, frames: list[np.ndarray]) -> bool:
    """True when cv2.VideoCapture reports the right count and returns exactly our frames (as BGR)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened() or int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) != len(frames):
            return False
        for rgb in frames:
            ok, bgr = cap.read()
            if not ok or not np.array_equal(bgr[..., ::-1], rgb):
                return False
        return True
    finally:
        cap.release()


class FrameCapture:
    """Fallback stand-in for cv2.VideoCapture over frames already in memory (BGR, as OpenCV returns them)."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames, self.pos = frames, 0

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def get(self, prop: int) -> float:
        return float(len(self.frames)) if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.pos >= len(self.frames):
            return False, None
        self.pos += 1
        return True, np.ascontiguousarray(self.frames[self.pos - 1][..., ::-1])

    def release(self) -> None:
        self.pos = len(self.frames)


# --------------------------------------------------------------------------------------------- faces


def detected_faces(frames: list[np.ndarray], picked: list[int]) -> dict[int, list[Face]]:
    """Our extract stage's faces (MTCNN, min score) on the sampled frames."""
    tools = FaceTools(create_face_detector("mtcnn", {}, "cpu"), None, FaceParams())
    return detect_faces([(i, 0.0, frames[i]) for i in picked], tools)


def _scaled(box: np.ndarray, scale: float, corner: tuple[float, float]) -> Face:
    w, h = (box[2] - box[0]) * scale, (box[3] - box[1]) * scale
    return Face(np.array([corner[0], corner[1], corner[0] + w, corner[1] + h], np.float32), 0.9)


def half_area_boxes(height: int, width: int) -> list[tuple[list[int], float]]:
    """Integer boxes with areas A, exactly A/2 and A/25 inside a frame of any size (float-exact areas)."""
    a, b = int(width * 0.3), 2 * int(height * 0.2)
    x, y = int(width * 0.55), int(height * 0.5)
    return [([a // 4, b // 4, a // 4 + a, b // 4 + b], 0.99), ([x, y, x + a, y + b // 2], 0.95),
            ([0, 0, a // 5, b // 5], 0.9)]


def plant_cases(faces: dict[int, list[Face]], picked: list[int], height: int, width: int) -> list[str]:
    """Edit the boxes of sampled frames 1-4 to exercise the face-selection rule, edge clipping and no-face."""
    notes: list[str] = []
    ref = next((f[0].box for f in faces.values() if f), np.array([100, 80, 200, 210], np.float32))
    w, h = float(ref[2] - ref[0]), float(ref[3] - ref[1])
    cases = [
        ("two extra faces of 0.5625x (kept) and 0.36x (dropped) the area", lambda fs: fs[:1] + [
            _scaled(ref, 0.75, (5.5, 7.25)), _scaled(ref, 0.6, (width * 0.55, height * 0.5))]),
        ("integer boxes, the second of exactly half the area (kept), the third of 4% (dropped)", lambda fs: [
            Face(np.array(b, np.float32), s) for b, s in half_area_boxes(height, width)]),
        ("two equal boxes crossing the left/bottom and the top/right frame edges", lambda fs: [
            Face(np.array([-0.2 * w, height - 0.8 * h, 0.8 * w, height + 0.2 * h], np.float32), 0.98),
            Face(np.array([width - 0.75 * w, -0.25 * h, width + 0.25 * w, 0.75 * h], np.float32), 0.97)]),
        ("no face: the stub returns RetinaFace's sentinel", lambda fs: []),
    ]
    for pos, (note, edit) in enumerate(cases, start=1):
        if pos < len(picked):
            faces[picked[pos]] = edit(faces[picked[pos]])
            notes.append(f"frame {picked[pos]}: {note}")
    return notes


class StubRetinaFace:
    """Stands in for upstream's RetinaFace: each call returns the boxes planned for the next sampled frame, as
    `predict_jsons` dicts, and records whether the frame upstream passed is the one we decoded."""

    def __init__(self, frames: list[np.ndarray], picked: list[int], faces: dict[int, list[Face]]) -> None:
        self.frames, self.picked, self.faces = frames, picked, faces
        self.calls = 0
        self.mismatched: list[int] = []

    def predict_jsons(self, frame: np.ndarray) -> list[dict]:
        idx = self.picked[self.calls] if self.calls < len(self.picked) else -1
        self.calls += 1
        if idx < 0 or not np.array_equal(frame, self.frames[idx]):
            self.mismatched.append(idx)
        found = self.faces.get(idx, [])
        if not found:
            return SENTINEL
        return [{"bbox": [float(v) for v in f.box], "score": f.score, "landmarks": []} for f in found]


# --------------------------------------------------------------------------------------------- crops


def upstream_crops(up: Upstream, video: Path, frames: list[np.ndarray], fps: float, n_frames: int,
                   stub: StubRetinaFace, tmp: Path) -> tuple[list[np.ndarray], list[int], str]:
    """Upstream's extract_frames on a lossless copy of our frames (or, failing that, on the frames directly)."""
    copy = tmp / f"{video.stem}_ffv1.avi"
    write_lossless(frames, copy, fps)
    reader = "FFV1/bgr0 AVI read by OpenCV (checked bit-exact)"
    module = up.preprocess
    if not opencv_reads_back(copy, frames):
        log.warning("OpenCV does not read %s back bit-exactly; feeding the frames directly", copy)
        reader = "frames fed through a stand-in cv2.VideoCapture"
        names = {k: getattr(cv2, k) for k in dir(cv2) if not k.startswith("__")}
        module.cv2 = SimpleNamespace(**{**names, "VideoCapture": lambda _: FrameCapture(frames)})
    try:
        with quiet("sbi extract_frames"):
            out = module.extract_frames(str(copy), n_frames, stub)
    finally:
        module.cv2 = cv2
    if not isinstance(out, tuple):
        raise RuntimeError(f"upstream extract_frames could not open {copy}")
    crops, idx = out
    return [np.asarray(c) for c in crops], [int(i) for i in idx], reader


def our_rows(video: Path, frames: list[np.ndarray], fps: float, picked: list[int],
             faces: dict[int, list[Face]]) -> pd.DataFrame:
    """Our `faces` cache rows for the sampled frames (ok rows and no_face rows)."""
    sampled = [(i, i / fps, frames[i]) for i in picked]
    params = ExtractParams(faces=FacesExtractParams(store="crops"))  # the crops themselves, to compare
    return pd.DataFrame(face_rows(video.stem, sampled, faces, params, "mtcnn"))


def compare_crops(up: Upstream, video: Path, n_frames: int, tmp: Path) -> VideoCrops:
    """Upstream's and our crops of one video from the same frames and boxes."""
    frames, fps = decode_rgb(video)
    picked = frame_indices(len(frames), n_frames)
    faces = detected_faces(frames, picked)
    planted = plant_cases(faces, picked, *frames[0].shape[:2])
    stub = StubRetinaFace(frames, picked, faces)
    crops, idx, reader = upstream_crops(up, video, frames, fps, n_frames, stub, tmp)
    rows = our_rows(video, frames, fps, picked, faces)
    ok = rows[rows["status"] == "ok"]
    ours = [pixels.decode(b, (int(h), int(w), int(c)), e).transpose(2, 0, 1)
            for b, h, w, c, e in zip(ok["image"], ok["height"], ok["width"], ok["channels"], ok["encoding"])]
    same = len(ours) == len(crops)
    diff = max((max_abs(a, b) for a, b in zip(ours, crops)), default=0.0) if same else float("inf")
    n_diff = sum(int((a != b).sum()) for a, b in zip(ours, crops)) if same else -1
    result = CropResult(video.stem, reader, len(picked), planted, ok["frame_idx"].astype(int).tolist(), idx,
                        diff, n_diff, stub.mismatched, stub.calls)
    log.info("%s: %d crops ours, %d upstream, max |diff| %g", video.name, len(ours), len(crops), diff)
    return VideoCrops(result, rows, crops)


# --------------------------------------------------------------------------------------------- logits


def video_score_upstream(p_fake: np.ndarray, idx: list[int]) -> float:
    """Upstream's video rule (inference_video.py): max P(fake) over the faces of each frame, mean over frames."""
    per_frame: dict[int, float] = {}
    for p, i in zip(p_fake.tolist(), idx):
        per_frame[i] = max(per_frame.get(i, -np.inf), p)
    return float(np.mean(list(per_frame.values())))


def video_score_ours(vid: str, frame_idx: list[int], p_fake: np.ndarray, logit: np.ndarray) -> float:
    """Our reducer (the detector's `spec.reduce`) over the unit scores."""
    units = pd.DataFrame({"video_id": vid, "frame_idx": frame_idx, "p_fake": p_fake, "logit": logit,
                          "status": "ok", "error": None, "compute_s": 0.0})
    return float(reduce_units(units, SBIDetector.spec.reduce)["p_fake"].iloc[0])


def run_both(ours: SBIDetector, theirs: torch.nn.Module, x_ours: torch.Tensor, x_up: torch.Tensor,
             chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Our [l0, l1] and l1 - l0, and upstream's logits, in chunks to bound memory."""
    mine, fake, ref = [], [], []
    with torch.inference_mode():
        for a, b in zip(torch.split(x_ours, chunk), torch.split(x_up, chunk)):
            mine.append(ours.logits(a))
            fake.append(ours(a))
            ref.append(theirs(b))
    return torch.cat(mine), torch.cat(fake), torch.cat(ref)


def compare_logits(up: Upstream, weights: str, checkpoint: Path, variant: str,
                   videos: list[VideoCrops]) -> tuple[LogitResult, list[dict]]:
    """Same checkpoint, same crops: ours through make_units/preprocess, upstream's as inference_video.py feeds it."""
    ours = create_detector(NAME, {"model": checkpoint}, variant, {}, "cpu").eval()
    theirs, calls = upstream_detector(up, checkpoint, variant)
    units = [ours.make_units(v.rows) for v in videos]
    x_ours = torch.cat([ours.preprocess(u) for u in units])
    x_up = torch.cat([torch.tensor(np.stack(v.crops)).float() / 255 for v in videos])
    mine, fake, ref = run_both(ours, theirs, x_ours, x_up)
    p_ours, p_up = torch.sigmoid(fake), ref.softmax(1)[:, 1]
    scores, start = [], 0
    for v, u in zip(videos, units):
        part = slice(start, start + len(u))
        idx = [int(x.frame_idx) for x in u]
        scores.append((v.result.video, video_score_ours(v.result.video, idx, p_ours[part].numpy(),
                                                        fake[part].numpy()),
                       video_score_upstream(p_up[part].numpy(), v.result.upstream_idx)))
        start += len(u)
    result = LogitResult(weights, len(x_ours), max_abs(x_ours.numpy(), x_up.numpy()),
                         max_abs(mine.numpy(), ref.numpy()), max_abs(fake.numpy(), (ref[:, 1] - ref[:, 0]).numpy()),
                         max_abs(p_ours.numpy(), p_up.numpy()), scores)
    return result, calls


def checkpoints(weights_dir: Path, tmp: Path, variant: str, seed: int) -> list[tuple[str, Path]]:
    """A random-initialised checkpoint in SBI's format, plus the real ones present in the weights cache."""
    path = tmp / f"{NAME}_random_{variant}.tar"
    detector_class(NAME).write_demo_weights("model", path, variant, seed)
    found = [("random", path)]
    for name in REAL_WEIGHTS if variant == "full" else ():
        check = verify_entry(get_entry(name), weights_dir)
        if check.status in ("verified", "present-unpinned"):
            found.append((f"real {name}", check.path))
    return found


# --------------------------------------------------------------------------------------------- report


def render(up: Upstream, crops: list[CropResult], logits: list[LogitResult], calls: list[dict], n_frames: int,
           videos: list[Path]) -> str:
    patch = load_patch(PATCH)
    lines = [
        "## SBI (visual layer) vs mapooon/SelfBlendedImages", "",
        f"Date {datetime.date.today().isoformat()}, torch {torch.__version__}, upstream commit {up.commit}, CPU, "
        f"{torch.get_num_threads()} threads, detector `{NAME}` variant full. Tolerance {TOLERANCE:g} (logits, "
        "P(fake), inputs); crops must be identical.", "",
        "Upstream files imported (sha256 pinned for 9fe4efe):", *files_lines(up.files), "",
        f"Runtime patch `patches/{PATCH}.py` ({patch.TARGET}): {patch.SUMMARY}. Upstream's calls: "
        + "; ".join(f"from_pretrained({', '.join(f'{k}={v!r}' for k, v in c.items())})" for c in calls[:1]) + ".",
        "",
        f"Crops: upstream `src/inference/preprocess.py::extract_frames(video, {n_frames}, stub)` on "
        + ", ".join(f"mini-benchmark `{v.name}` (sha256 `{file_sha256(v)[:16]}…`)" for v in videos)
        + ", each decoded once with PyAV; the stub detector returns our MTCNN boxes (faces with score >= 0.7) per "
        "sampled frame, with these planted cases:",
    ]
    lines += [f"- {c.video} {note}" for c in crops for note in c.planted]
    lines += ["", "| video | frames read by upstream | sampled frames | crops ours / upstream | same frame indices "
              "| frames upstream saw != ours | max abs pixel diff | differing pixels | ok |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {c.video} | {c.reader} | {c.n_sampled} | {len(c.ours_idx)} / {len(c.upstream_idx)} | "
              f"{'yes' if c.ours_idx == c.upstream_idx else 'NO'} | {len(c.frames_mismatched)} | {c.max_diff:g} | "
              f"{c.n_diff_pixels} | {'yes' if c.ok else 'NO'} |" for c in crops]
    lines += logit_lines(logits)
    return "\n".join(lines)


def logit_lines(logits: list[LogitResult]) -> list[str]:
    return ["", "Logits: the same checkpoint read by upstream's load line (`torch.load(path)[\"model\"]`, strict "
            "`load_state_dict`) into upstream's `Detector`, and by ours; inputs: upstream's crops as "
            "inference_video.py feeds them (`torch.tensor(crops).float()/255`) vs ours via `make_units` + "
            "`preprocess` of our crops. Video score: max P(fake) per frame, mean over frames.", "",
            "| weights | crops | max abs diff input | max abs diff logits [l0, l1] | max abs diff fake logit "
            "(ours vs l1-l0) | max abs diff P(fake) (vs softmax[:,1]) | video P(fake) ours / upstream rule | ok |",
            "|---|---|---|---|---|---|---|---|"] + [
        f"| {r.weights} | {r.n_crops} | {r.diff_input:.2e} | {r.diff_logits:.2e} | {r.diff_fake_logit:.2e} | "
        f"{r.diff_p_fake:.2e} | " + ", ".join(f"{v}: {a:.6f} / {b:.6f}" for v, a, b in r.videos)
        + f" | {'yes' if r.ok else 'NO'} |" for r in logits]


# --------------------------------------------------------------------------------------------- main


def run(checkout: Path, videos: list[Path], n_frames: int, weights_dir: Path, variant: str = "full",
        seed: int = 0) -> tuple[Upstream, list[CropResult], list[LogitResult], list[dict]]:
    """The whole comparison (also used by the tests with the tiny variant and a few frames)."""
    up = load_upstream(checkout)
    logit_results: list[LogitResult] = []
    calls: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        per_video = [compare_crops(up, v, n_frames, Path(tmp)) for v in videos]
        for weights, path in checkpoints(weights_dir, Path(tmp), variant, seed):
            log.info("logits with %s weights (%s)", weights, path)
            result, calls = compare_logits(up, weights, path, variant, per_video)
            logit_results.append(result)
    return up, [v.result for v in per_video], logit_results, calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", type=Path, required=True, help="checkout of mapooon/SelfBlendedImages@9fe4efe")
    parser.add_argument("--video", type=Path, action="append", default=None,
                        help="video(s) to crop (default: data/mini/raw/clips/s0_A.mp4 and s0_C.mp4)")
    parser.add_argument("--n-frames", type=int, default=32, help="frames sampled per video (upstream's default)")
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--out", type=Path, default=Path("reports/parity.md"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    videos = args.video or [Path("data/mini/raw/clips/s0_A.mp4"), Path("data/mini/raw/clips/s0_C.mp4")]
    up, crops, logits, calls = run(args.upstream, videos, args.n_frames, args.weights_dir, "full", args.seed)
    section = render(up, crops, logits, calls, args.n_frames, videos)
    bad = ([f"files {f.path}" for f in up.files if not f.ok] + [f"crops {c.video}" for c in crops if not c.ok]
           + [f"logits {r.weights}" for r in logits if not r.ok])
    return publish(args.out, SECTION, section, bad)


if __name__ == "__main__":
    raise SystemExit(main())
