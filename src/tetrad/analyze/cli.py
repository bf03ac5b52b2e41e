"""`tetrad analyze PATH...`: the command line of tetrad.analyze (arguments, params, output, exit code)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

EPILOG = """exit status: 0 every file was analysed (whatever the verdicts), 1 some file could not be (its entry says
why), 2 usage error. --json OUT writes one JSON object when one file was analysed, JSON Lines (one object per
line) for several or when OUT ends in .jsonl; `--json -` writes to stdout instead of the table."""


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("analyze", help="your own videos (or audio) through the layers and the fail-fast cascade",
                       description="Score files or folders (searched recursively; media found by content) with "
                                   "the layers of params.yaml, audio first: a file whose audio P(fake) reaches "
                                   "aggregate.fail_fast is not decoded further nor run through the other layers.",
                       epilog=EPILOG)
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="media files and/or folders")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON (see below); - for stdout")
    p.add_argument("--layers", help="comma-separated subset of the enabled layers, e.g. audio,visual")
    p.add_argument("--no-cascade", action="store_true", help="run every layer on every file")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... for every layer and the face detectors (default: params)")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="default: params.yaml")
    p.add_argument("--experiment", help="compose conf/ with experiment=NAME instead of reading --params")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a Hydra override of conf/ (e.g. aggregate.fail_fast=0.8); repeatable; implies composing")
    p.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from tetrad.analyze.inputs import find_media
    from tetrad.analyze.result import console_table, demo_note, results
    from tetrad.analyze.run import AnalyzeOptions, analyze

    # a UsageError or ConfigError becomes one line and exit 2 in the CLI's `guarded`
    layers = tuple(n.strip() for n in args.layers.split(",") if n.strip()) if args.layers else ()
    params = _params(args)
    files = find_media(args.paths)
    analysis = analyze(files, params, AnalyzeOptions(layers, not args.no_cascade, args.device))
    found = results(analysis)
    if args.json:
        _write_json(found, args.json)
    if args.json != "-":
        print(console_table(found))
        print(_summary(found, analysis))
    if note := demo_note(found):
        print(note, file=sys.stderr if args.json == "-" else sys.stdout)
    return 0 if all(r["final_verdict"] is not None for r in found) else 1


def _params(args: argparse.Namespace) -> Any:
    from tetrad.params import ConfigError, compose_params, load_params

    overrides = ([f"experiment={args.experiment}"] if args.experiment else []) + list(args.set)
    if not overrides:
        if not args.params.is_file():
            raise ConfigError(f"{args.params}: not found (run from the Tetrad checkout, or pass --params / "
                              "--experiment)")
        return load_params(args.params)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return load_params(compose_params(Path(tmp) / "params.yaml", overrides))
        except Exception as exc:  # noqa: BLE001 - Hydra's many error types: all are a bad override
            why = " ".join(str(exc).split())  # Hydra's messages run over several lines
            raise ConfigError(f"cannot compose conf/ with {overrides}: {why}") from None


def _write_json(found: list[dict[str, Any]], out: str) -> None:
    from tetrad.io import write_text

    lines = out.endswith(".jsonl") or len(found) != 1
    text = ("".join(json.dumps(r, allow_nan=False) + "\n" for r in found) if lines else
            json.dumps(found[0], indent=2, allow_nan=False) + "\n")
    if out == "-":
        sys.stdout.write(text)
    else:
        write_text(text, Path(out))


def _summary(found: list[dict[str, Any]], analysis: Any) -> str:
    failed = [r["file"] for r in found if r["final_verdict"] is None]
    stopped = len(analysis.stopped)
    cascade = (f"; the cascade stopped {stopped} of {len(found)} after {analysis.first}" if analysis.first else
               "; cascade off")
    loads = sum(r.info["timing"]["load_s"] for r in analysis.layers.values())
    text = (f"{len(found)} file{'s' * (len(found) != 1)}, {len(found) - len(failed)} analysed{cascade}; "
            f"{analysis.wall_s:.1f} s in all ({loads:.1f} s loading models)")
    return text + (f"\ncould not be analysed: {', '.join(failed)}" if failed else "")
