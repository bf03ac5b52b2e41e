"""The `tetrad` command. Building the parser imports nothing heavy: each command imports what it needs when it
runs, so `tetrad --help`, `where`, `weights list` and `doctor` never load torch or a model library."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tetrad.analyze.cli import add_cli as add_analyze_cli
from tetrad.env import guarded, setup
from tetrad.weights.cli import add_cli as add_weights_cli

if TYPE_CHECKING:
    from tetrad.params import Params

CONF_DIR = Path("conf")


def cmd_params(args: argparse.Namespace) -> int:
    from tetrad.params import compose_params

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


def cmd_run(args: argparse.Namespace) -> int:
    from tetrad.stages.runner import run

    return run(only=args.stage or None)


def cmd_make_mini(args: argparse.Namespace) -> int:
    if args.layout == "fakeavceleb":
        from tetrad.stages import mini_fakeavceleb

        root = mini_fakeavceleb.run(Path(args.source), Path(args.out))
        print(f"mini benchmark in FakeAVCeleb v1.2 layout written to {root}")
        return 0
    from tetrad.stages import mini

    mini.run(Path(args.out), seed=args.seed)
    print(f"mini benchmark written to {args.out} (labels.csv, README.md)")
    return 0


def cmd_demo_weights(args: argparse.Namespace) -> int:
    from tetrad.layers.checkpoints import write_demo_weights
    from tetrad.media.meanface import write_demo_mean_face
    from tetrad.params import load_params
    from tetrad.weights.catalog import LAYERS

    params = load_params(args.params)
    for layer in LAYERS:  # dvc.yaml's detect stages depend on weights/<layer>, so the folder must exist
        (Path(params.weights.dir) / layer).mkdir(parents=True, exist_ok=True)
    written = write_demo_weights(params)
    if params.weights.allow_demo:  # face detectors whose checkpoint is a weights entry (RetinaFace)
        from tetrad.stages.extract import face_assets

        written += [r.path for r in face_assets(params).values() if r.source == "demo-random"]
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
    """Where this machine's results are, with the headline numbers; says so when nothing has run here yet."""
    from tetrad.params import load_params
    from tetrad.report import console_summary

    params = load_params(args.params)
    reports = sorted(Path("reports").glob("*/metrics.json"))
    if not reports:
        print("nothing has run on this machine yet: no reports/<dataset>/metrics.json.\n"
              "Run `make demo` (the mini benchmark) or `dvc repro` (the datasets in params.yaml).", file=sys.stderr)
        return 1
    for metrics_path in reports:
        metrics = json.loads(metrics_path.read_text())
        print(f"\n{metrics['dataset']} ({metrics['n_videos']} videos, experiment {metrics.get('experiment')}):")
        print("\n".join(console_summary(metrics)))
        print(f"  metrics: {metrics_path}   report: {metrics_path.parent / 'report.html'} (and report.md)   "
              f"per video: {metrics_path.parent / 'videos.parquet'}   ROC: {metrics_path.parent / 'roc'}/")
    uri = params.mlflow.tracking_uri
    print(f"\nMLflow runs: {uri} (experiment {params.mlflow.experiment!r}); open the UI on them with:\n"
          f"  .venv/bin/tetrad ui      (it prints the link to the runs table)")
    print("Next (the stages run `python`, so activate the environment first): source .venv/bin/activate, then\n"
          "  dvc repro | dvc exp run -S aggregate.threshold=0.7 | dvc metrics show | dvc plots show")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """MLflow's UI over this project's runs (`mlflow server` on params.yaml's tracking URI), announced by the link
    that opens the experiment's runs table rather than MLflow 3's GenAI overview."""
    import os
    import shutil

    from tetrad.params import load_params
    from tetrad.tracking import experiment_id, runs_url

    cfg = load_params(args.params).mlflow
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    cmd = [exe, "server", "--backend-store-uri", cfg.tracking_uri, "--host", args.host, "--port", str(args.port),
           "--workers", "1"]
    found = experiment_id(cfg.tracking_uri, cfg.experiment)
    url = runs_url(f"http://{args.host}:{args.port}", found) if found else f"http://{args.host}:{args.port}"
    print(f"MLflow UI over {cfg.tracking_uri}: open {url}" + ("" if found else
          f"\n(no experiment {cfg.experiment!r} yet: run `make demo` or `dvc repro` first)") + "\nCtrl-C stops it.",
          flush=True)
    os.execvp(exe, cmd)  # the server takes this process's place: Ctrl-C and signals reach it, no orphan is left


def cmd_doctor(args: argparse.Namespace) -> int:
    from tetrad.datasets.doctor import doctor, load_target
    from tetrad.params import ConfigError

    if args.env and args.dataset and "=" in args.dataset:  # `doctor --env engine=ray`: an override, not a dataset
        args.overrides, args.dataset = [args.dataset, *args.overrides], None
    if args.env == bool(args.dataset):
        print("error: doctor checks a DATASET, or the machine with --env (one of the two)", file=sys.stderr)
        return 2
    if args.env:
        return _doctor_env(args)
    try:
        target = load_target(args.dataset, args.params, Path(args.conf_dir), args.root, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    report = doctor(target.params, full=args.full, sample=args.sample, root_source=target.root_source)
    print(report.render())
    return report.exit_code


def _doctor_env(args: argparse.Namespace) -> int:
    from tetrad.envcheck import as_json, env_checks, render
    from tetrad.params import ConfigError

    try:
        params = _env_params(args)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    checks = env_checks(params, smoke=not args.no_smoke)
    print(json.dumps(as_json(checks), indent=2) if args.json else render(checks))
    return 1 if any(c.failed for c in checks) else 0


def _env_params(args: argparse.Namespace) -> Params:
    """The pipeline `doctor --env` checks: params.yaml, or conf/ composed with the overrides given (as `dvc exp
    run -S` would compose them, e.g. `engine=ray engine.address=auto`)."""
    from tetrad.params import compose_params, load_params

    if not args.overrides:
        return load_params(args.params or "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        return load_params(compose_params(Path(tmp) / "params.yaml", args.overrides, Path(args.conf_dir)))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tetrad", description="Evaluate audio-visual deepfake detectors.")
    top.add_argument("-v", "--verbose", action="store_true")
    sub = top.add_subparsers(dest="command", required=True)
    _add_pipeline_commands(sub)
    add_analyze_cli(sub)
    _add_doctor(sub)
    add_weights_cli(sub)
    return top


def _add_pipeline_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="run every stage of dvc.yaml in order, without writing dvc.lock (make demo)")
    p.add_argument("--stage", action="append", help="only this stage (e.g. aggregate@mini); repeatable")
    p.set_defaults(func=cmd_run)
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
    p = sub.add_parser("where", help="where this machine's reports and MLflow runs are, with the headline numbers")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=cmd_where)
    p = sub.add_parser("ui", help="MLflow's UI over this project's runs; prints the link to the runs table")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=cmd_ui)


def _add_doctor(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("doctor", help="check a dataset (label files, counts, undecodable files) or, with --env, "
                                      "this machine",
                       description="Is a dataset usable? Label files, counts, missing, duplicate and undecodable "
                                   "files, groups shared across splits. Hydra-style KEY=VALUE overrides change "
                                   "the dataset config for the check. With --env instead: Python, torch, CUDA, "
                                   "FFmpeg codecs, every checkpoint params.yaml needs, and a smoke analysis of a "
                                   "generated clip (exit 1 when anything is missing).")
    p.add_argument("dataset", metavar="DATASET", nargs="?",
                   help="conf/dataset/<DATASET>.yaml (or a dataset of --params)")
    p.add_argument("--env", action="store_true", help="check this machine instead of a dataset")
    p.add_argument("--json", action="store_true", help="--env: the checks as JSON")
    p.add_argument("--no-smoke", action="store_true", help="--env: skip the smoke analysis")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="Hydra-style overrides of the dataset config: split=val, limit=100, "
                        "options.parts=[train,dev] (or an adapter option by its name: parts=[train,dev])")
    p.add_argument("--root", help="dataset root (overrides the config's root)")
    p.add_argument("--full", action="store_true",
                   help="decode every frame of every stream of every selected file (finds truncated files)")
    p.add_argument("--sample", type=int, default=20, help="files to probe with PyAV (default 20)")
    p.add_argument("--params", type=Path, help="read the dataset from this params.yaml instead of conf/ (--env: the "
                                               "pipeline to check, default params.yaml)")
    p.add_argument("--conf-dir", default="conf", help="the conf/ folder (default: conf)")
    p.set_defaults(func=cmd_doctor)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line. KEY=VALUE overrides may also follow a command's options
    (`doctor X --root R split=val`): argparse alone takes positionals only before them."""
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list) and not any(e.startswith("-") for e in extra):
        args.overrides += extra
    elif extra:
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup(args.verbose)
    return guarded(lambda: args.func(args), args.verbose)


if __name__ == "__main__":
    sys.exit(main())
