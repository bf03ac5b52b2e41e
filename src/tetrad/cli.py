"""The `tetrad` command: build the mini benchmark, manage weights, compose params, list detectors."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tetrad import weights as wm
from tetrad.datasets import doctor as dataset_doctor
from tetrad.pipeline import setup

CONF_DIR = Path("conf")


def compose_params(out: Path, overrides: list[str], conf_dir: Path = CONF_DIR) -> Path:
    """conf/ -> params.yaml with the same composer `dvc exp run -S` uses, so both write the same file."""
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(out, str(conf_dir.resolve()), None, "config", str(Path.cwd()), overrides)
    return out


def cmd_params(args: argparse.Namespace) -> int:
    if not args.check:
        compose_params(Path(args.out), args.overrides)
        print(f"wrote {args.out} from {CONF_DIR}/ {' '.join(args.overrides)}".rstrip())
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = compose_params(Path(tmp) / "params.yaml", args.overrides).read_text()
    if fresh != Path(args.out).read_text():
        print(f"{args.out} is out of date with {CONF_DIR}/: run `make params` and commit it", file=sys.stderr)
        return 1
    print(f"{args.out} matches {CONF_DIR}/")
    return 0


def cmd_make_mini(args: argparse.Namespace) -> int:
    from tetrad.mini import make_mini
    from tetrad.mini_layouts import export_fakeavceleb

    if args.layout == "fakeavceleb":
        root = export_fakeavceleb(Path(args.source), Path(args.out))
        print(f"mini benchmark in FakeAVCeleb v1.2 layout written to {root}")
        return 0
    make_mini(Path(args.out), seed=args.seed)
    print(f"mini benchmark written to {args.out} (labels.csv, README.md)")
    return 0


def cmd_demo_weights(args: argparse.Namespace) -> int:
    from tetrad.params import load_params
    from tetrad.pipeline import write_demo_mean_face, write_demo_weights

    params = load_params(args.params)
    written = write_demo_weights(params)
    standin = write_demo_mean_face(params)
    if standin is not None:
        print(f"DEMO STAND-IN mean face written (no real 20words_mean_face.npy): {standin}")
    for path in written:
        print(f"demo-random checkpoint written: {path}")
    if not written:
        print("no demo-random checkpoints needed (real or demo files already present)")
    return 0


def cmd_detectors(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tetrad.layers import get_spec, list_detectors

    for name in list_detectors():
        spec = get_spec(name)
        print(json.dumps(asdict(spec), default=str) if args.json else
              f"{name:22s} layer={spec.layer:9s} input={spec.input_kind:7s} reduce={spec.reduce:20s} {spec.upstream}")
    return 0


def cmd_where(args: argparse.Namespace) -> int:
    """What `make demo` prints at the end: where each result is, and the headline numbers."""
    from tetrad.params import load_params
    from tetrad.report import console_summary

    params = load_params(args.params)
    reports = sorted(Path("reports").glob("*/metrics.json"))
    if not reports:
        print("no reports yet: run `dvc repro` (or `make demo`)", file=sys.stderr)
        return 1
    for metrics_path in reports:
        metrics = json.loads(metrics_path.read_text())
        print(f"\n{metrics['dataset']} ({metrics['n_videos']} videos, experiment {metrics.get('experiment')}):")
        print("\n".join(console_summary(metrics)))
        print(f"  metrics: {metrics_path}   report: {metrics_path.parent / 'report.md'}   "
              f"per video: {metrics_path.parent / 'videos.parquet'}   ROC: {metrics_path.parent / 'roc'}/")
    uri = params.mlflow.tracking_uri
    print(f"\nMLflow runs: {uri} (experiment {params.mlflow.experiment!r}); open the UI with:\n"
          f"  .venv/bin/mlflow ui --backend-store-uri {uri}\nthen browse http://127.0.0.1:5000")
    print("Next (the stages run `python`, so activate the environment first): source .venv/bin/activate, then\n"
          "  dvc metrics show | dvc plots show | dvc exp run -S aggregate.threshold=0.7")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tetrad", description="Evaluate audio-visual deepfake detectors.")
    top.add_argument("-v", "--verbose", action="store_true")
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("params", help="compose conf/ into params.yaml (or --check that it is up to date)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. aggregate.threshold=0.7")
    p.add_argument("--out", default="params.yaml")
    p.add_argument("--check", action="store_true")
    p.set_defaults(func=cmd_params)
    p = sub.add_parser("make-mini", help="generate the mini benchmark")
    p.add_argument("--out", default="data/mini/raw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", choices=("mini", "fakeavceleb"), default="mini",
                   help="fakeavceleb: re-lay out an existing mini benchmark (--source) in FakeAVCeleb v1.2 format")
    p.add_argument("--source", default="data/mini/raw", help="the mini benchmark to re-lay out")
    p.set_defaults(func=cmd_make_mini)
    p = sub.add_parser("demo-weights", help="write random demo checkpoints where real weights are missing")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=cmd_demo_weights)
    p = sub.add_parser("detectors", help="list registered detectors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_detectors)
    p = sub.add_parser("where", help="where the reports and MLflow runs are, with the headline numbers")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=cmd_where)
    wm.add_cli(sub)
    dataset_doctor.add_cli(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup(args.verbose)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
