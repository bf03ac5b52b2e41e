"""Parity of tetrad's RetinaFace face detector with ternaus/retinaface's own `Model.predict_jsons`.

    python -m tetrad.parity.retinaface --upstream ../upstream/retinaface --upstream-deps ../upstream/pydeps \\
        --weights-dir weights --out reports/parity.md

Upstream's package is imported at run time from a checkout of ternaus/retinaface@b72317d (or a folder holding
the pip package `retinaface_pytorch` 0.0.8, the same files), with albumentations 1.0.0 (upstream's pin, kept out
of the project's environment: `pip install --no-deps --target DIR albumentations==1.0.0`) from `--upstream-deps`.
Nothing is patched: upstream's `get_model` loads each checkpoint through torch hub from a `file://` URL of the
release-format zip (hub's own extraction), and `predict_jsons` runs with its defaults (0.7, 0.4) on one frame at
a time. It rounds boxes, points and scores to 2 decimals; to read its unrounded numbers it is run a second time
with its module constant `ROUNDING_DIGITS` set to 8. Ours runs batched (frames of one size in one forward).

Checkpoints, all in the release format: the pipeline's demo-random weights (`write_demo_weights`), the crowded
variant (dozens of faces on large pictures, so NMS has work to do), the crowded one with its coarse boxes moved
one prior side right (so upstream's drop rule removes boxes that start past the last column), and the real
release when the weights cache holds it. Pictures: skimage's astronaut (no resize, and upscaled), two generated
1280x720 frames at upstream SBI's max_size 2048 (one batch), a 333x1000 picture whose resize rounds half to even,
a small upscaled one and a blank one (upstream's "no face" sentinel). Exit status 1 when a count differs, a box or
point by more than 1e-2 px, or a score by more than 1e-4.
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
import skimage.data
import torch

from tetrad.faces import Face
from tetrad.faces import retinaface as rf
from tetrad.parity.common import FileCheck, check_files, files_lines, isolated_import, publish, upstream_commit
from tetrad.weights import get_entry, verify_entry

log = logging.getLogger(__name__)

SECTION = "retinaface"
BOX_TOL = 1e-2  # px, boxes and points
SCORE_TOL = 1e-4
FINE_DIGITS = 8  # upstream's ROUNDING_DIGITS for reading its unrounded numbers
PINS = {  # sha256 at ternaus/retinaface@b72317d (identical in retinaface_pytorch 0.0.8)
    "retinaface/predict_single.py": "9e20392e2c8196bcb1f014c4d6a4faa0b3d1009022d5c1fb8b74b0378a3c0fcf",
    "retinaface/network.py": "bfe4626ac4c003a19ff8211c131a94fd5de7eebb28e80f31595e718f57d037ea",
    "retinaface/net.py": "d41d3012a139421774f4f24767c1d120c485e7b79b2b2f56e68b23d8ceea9734",
    "retinaface/prior_box.py": "fb67789b81d6e792eb74fe09b2dc88066a7e3043f49b44a79cd9444e7756b3db",
    "retinaface/box_utils.py": "fb07aca60c14d95dd065889cf637f7b4cd144425d4398a89ef7cff4c6ff0e2c1",
    "retinaface/utils.py": "4ec170dbeaf3a0843696c5da2cd877c350c6539a5e4a8e7048a52e621daef9a5",
    "retinaface/pre_trained_models.py": "119e08a68eeb648e90d65a87ab767c04e1f878d21d1117e1828d5c0c666e3aad",
}
ALBUMENTATIONS_PIN = "1.0.0"
HUB_NAME = "resnet50_2020-07-20"  # upstream's model table entry whose loader is reused with our file's URL


@dataclass(frozen=True)
class Case:
    name: str
    frames: list[np.ndarray]  # RGB uint8, one size
    max_size: int


@dataclass
class Result:
    weights: str
    case: str
    n_ours: int
    n_upstream: int
    box: float  # max abs diff, unrounded, px
    points: float
    score: float
    rounded_diff: float  # max abs diff of the 2-decimal boxes and points
    rounded_differing: int  # rounded values that differ at all
    score2_differing: int  # upstream's 2-decimal score != round(ours, 2)
    dropped: int = 0  # faces after NMS that upstream's clipping loop drops (start past the last column or row)

    @property
    def ok(self) -> bool:
        return (self.n_ours == self.n_upstream and self.box <= BOX_TOL and self.points <= BOX_TOL
                and self.score <= SCORE_TOL and self.rounded_diff <= BOX_TOL + 1e-6)


# --------------------------------------------------------------------------------------------- inputs


def face_frame(height: int, width: int, x: int, y: int, seed: int) -> np.ndarray:
    """A generated background with the astronaut's head pasted at (x, y)."""
    frame = rf.calibration_image(seed, height, width)
    head = skimage.data.astronaut()[20:260, 120:330]
    h, w = min(head.shape[0], height - y), min(head.shape[1], width - x)
    frame[y:y + h, x:x + w] = head[:h, :w]
    return frame


def cases(seed: int) -> list[Case]:
    astronaut = skimage.data.astronaut()
    wide = face_frame(333, 1000, 600, 40, seed + 1)
    return [
        Case("astronaut 512x512 @512 (no resize)", [astronaut], 512),
        Case("astronaut 512x512 @640", [astronaut], 640),
        Case("2 frames 1280x720 @2048 (one batch)", [face_frame(720, 1280, 300, 200, seed),
                                                     face_frame(720, 1280, 900, 420, seed + 2)], 2048),
        Case("333x1000 @500 (166.5 -> 166 rows)", [wide], 500),
        Case("100x150 @256", [face_frame(100, 150, 0, 0, seed + 3)], 256),
        Case("blank 240x320 @320", [np.full((240, 320, 3), 90, np.uint8)], 320),
    ]


def checkpoints(weights_dir: Path, tmp: Path, seed: int) -> list[tuple[str, Path]]:
    """Random checkpoints in the release format, plus the real release when the weights cache holds it."""
    demo, crowded, shifted = tmp / "demo-rf.zip", tmp / "crowded-rf.zip", tmp / "shifted-rf.zip"
    rf.write_demo_weights(demo, seed)
    state = rf.demo_state_dict(seed, crowded=True)
    rf.write_checkpoint(state, crowded)
    state["BboxHead.2.conv1x1.bias"][0::4] += 10.0  # dx of both anchors: one prior side right
    rf.write_checkpoint(state, shifted)
    found = [("demo-random", demo), ("random crowded", crowded), ("random crowded, boxes shifted right", shifted)]
    check = verify_entry(get_entry(rf.ENTRY), weights_dir)
    if check.ok:
        found.append((f"real {rf.ENTRY}", check.path))
    return found


# --------------------------------------------------------------------------------------------- upstream


@dataclass(frozen=True)
class Upstream:
    predict: ModuleType  # retinaface.predict_single
    models: ModuleType  # retinaface.pre_trained_models
    files: list[FileCheck]
    commit: str
    albumentations: str


def load_upstream(checkout: Path) -> Upstream:
    """Import upstream's package (call inside `isolated_import`)."""
    import albumentations
    import retinaface.pre_trained_models as models
    import retinaface.predict_single as predict

    if albumentations.__version__ != ALBUMENTATIONS_PIN:
        log.warning("albumentations %s, not upstream's pinned %s", albumentations.__version__, ALBUMENTATIONS_PIN)
    return Upstream(predict, models, check_files(checkout, PINS), upstream_commit(checkout), albumentations.__version__)


def upstream_model(up: Upstream, path: Path, max_size: int, hub_dir: Path) -> object:
    """Upstream's `get_model`, its download pointed at our file (torch hub reads file:// URLs)."""
    name = f"tetrad-{path.stem}"
    up.models.models[name] = up.models.models[HUB_NAME]._replace(url=path.resolve().as_uri())
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(hub_dir))  # never the user's cache: hub would reuse a stale file of the same name
    try:
        model = up.models.get_model(name, max_size=max_size)
    finally:
        torch.hub.set_dir(before)
    model.eval()
    return model


def predict(up: Upstream, model: object, frame: np.ndarray, digits: int) -> list[dict]:
    """Upstream's annotations of one frame at a rounding; the "no face" sentinel becomes []."""
    up.predict.ROUNDING_DIGITS = digits
    try:
        out = model.predict_jsons(frame)
    finally:
        up.predict.ROUNDING_DIGITS = rf.ROUNDING_DIGITS
    return [] if len(out) == 1 and out[0]["score"] == -1 else out


# --------------------------------------------------------------------------------------------- compare


def _arrays(faces: list[Face]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([f.box for f in faces], np.float64).reshape(-1, 4),
            np.array([f.points for f in faces], np.float64).reshape(-1, 5, 2),
            np.array([f.score for f in faces], np.float64))


def _theirs(annotations: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([a["bbox"] for a in annotations], np.float64).reshape(-1, 4),
            np.array([a["landmarks"] for a in annotations], np.float64).reshape(-1, 5, 2),
            np.array([a["score"] for a in annotations], np.float64))


def _max(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.abs(a[:n] - b[:n]).max()) if n else 0.0


def compare(weights: str, case: Case, ours: list[list[Face]], fine: list[list[dict]],
            coarse: list[list[dict]]) -> Result:
    """Face lists matched in order (both NMS order) over the case's frames."""
    mine = [_arrays(f) for f in ours]
    mine2 = [_arrays([rf.rounded(x) for x in f]) for f in ours]
    theirs, theirs2 = [_theirs(a) for a in fine], [_theirs(a) for a in coarse]
    n_ours, n_up = sum(len(f) for f in ours), sum(len(a) for a in coarse)
    box = max((_max(m[0], t[0]) for m, t in zip(mine, theirs)), default=0.0)
    pts = max((_max(m[1], t[1]) for m, t in zip(mine, theirs)), default=0.0)
    score = max((_max(m[2], t[2]) for m, t in zip(mine, theirs)), default=0.0)
    # upstream's rounded floats as our float32 boxes hold them, so equal roundings compare equal
    r_diffs = [np.abs(np.float32(t[i])[:len(m[i])] - m[i][:len(t[i])]).ravel()
               for m, t in zip(mine2, theirs2) for i in (0, 1)]
    r_diff = np.concatenate(r_diffs) if r_diffs else np.zeros(0)
    s2 = sum(int((np.round(m[2][:len(t[2])], 2) != t[2][:len(m[2])]).sum()) for m, t in zip(mine, theirs2))
    return Result(weights, case.name, n_ours, n_up, box, pts, score, float(r_diff.max(initial=0.0)),
                  int((r_diff > 0).sum()), s2)


def run_case(up: Upstream, weights: str, path: Path, case: Case, hub_dir: Path) -> Result:
    ours = rf.RetinaFaceDetector(weights=path, max_size=case.max_size, batch_size=len(case.frames))
    found = ours.detect_unrounded(case.frames)
    dropped = ours.dropped
    model = upstream_model(up, path, case.max_size, hub_dir)
    with torch.inference_mode():
        fine = [predict(up, model, f, FINE_DIGITS) for f in case.frames]
        coarse = [predict(up, model, f, rf.ROUNDING_DIGITS) for f in case.frames]
    result = compare(weights, case, found, fine, coarse)
    result.dropped = dropped
    log.info("%s / %s: %d vs %d faces, box %.2e, score %.2e", weights, case.name, result.n_ours,
             result.n_upstream, result.box, result.score)
    return result


def run(checkout: Path, deps: list[Path], weights_dir: Path, seed: int = 0,
        selected: list[Case] | None = None) -> tuple[Upstream, list[Result]]:
    """The whole comparison (the tests pass a few small cases)."""
    results = []
    with isolated_import([checkout, *deps], ["retinaface", "albumentations"]), \
            tempfile.TemporaryDirectory() as tmp:
        up = load_upstream(checkout)
        for weights, path in checkpoints(weights_dir, Path(tmp), seed):
            for case in selected if selected is not None else cases(seed):
                results.append(run_case(up, weights, path, case, Path(tmp) / "hub"))
    return up, results


# --------------------------------------------------------------------------------------------- report


def render(up: Upstream, results: list[Result]) -> str:
    lines = [
        "## RetinaFace (SBI's face detector) vs ternaus/retinaface", "",
        f"Date {datetime.date.today().isoformat()}, torch {torch.__version__}, upstream commit {up.commit}, "
        f"albumentations {up.albumentations}, CPU, {torch.get_num_threads()} threads. Tolerances: boxes and "
        f"points {BOX_TOL:g} px, scores {SCORE_TOL:g}; face counts must be equal.", "",
        "Upstream files imported (sha256 pinned for b72317d):", *files_lines(up.files), "",
        "Upstream: `get_model` loading each release-format zip through torch hub (a file:// URL), then "
        "`predict_jsons(frame)` per frame with its defaults (confidence 0.7, NMS 0.4), unpatched; run twice, as "
        f"shipped (2 decimals) and with its `ROUNDING_DIGITS` set to {FINE_DIGITS} for the unrounded columns "
        f"(so differences up to {0.5 * 10.0 ** -FINE_DIGITS:.0e} are that rounding). "
        "Ours: `RetinaFaceDetector(weights=zip, max_size=...)`, all frames of a row in one batch; faces matched "
        "in order (both NMS order). \"dropped past the edge\": faces after NMS that upstream's clipping loop "
        "drops (they start at or past the last column or row; ours counts them). \"rounded\": our 2-decimal boxes "
        "and points vs upstream's JSON; \"score 2 dp\": upstream's rounded score vs round(ours, 2).", "",
        "| weights | pictures | faces ours / upstream | dropped past the edge | max abs diff box (px) | points (px) "
        "| score | rounded: max abs diff / values differing | score 2 dp differing | ok |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.weights} | {r.case} | {r.n_ours} / {r.n_upstream} | {r.dropped} | {r.box:.2e} | "
              f"{r.points:.2e} | {r.score:.2e} | {r.rounded_diff:.2e} / {r.rounded_differing} | {r.score2_differing} | "
              f"{'yes' if r.ok else 'NO'} |" for r in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", type=Path, required=True,
                        help="checkout of ternaus/retinaface@b72317d (or a folder holding retinaface_pytorch 0.0.8)")
    parser.add_argument("--upstream-deps", type=Path, action="append", default=[],
                        help="folder(s) with upstream's pinned albumentations 1.0.0 (pip install --target)")
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--out", type=Path, default=Path("reports/parity.md"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    up, results = run(args.upstream, args.upstream_deps, args.weights_dir, args.seed)
    bad = [f"files {f.path}" for f in up.files if not f.ok] + [f"{r.weights} / {r.case}" for r in results
                                                                if not r.ok]
    return publish(args.out, SECTION, render(up, results), bad)


if __name__ == "__main__":
    raise SystemExit(main())
