"""`tetrad weights {list,fetch,import,verify}`: the command line of the weights manager.

Building the parser reads no catalog (the entries are only read when a command runs), so `tetrad --help` and
every other command stay cheap. Each handler returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tetrad.weights.catalog import registry_or_entries
from tetrad.weights.errors import ManualDownloadRequired, WeightsError
from tetrad.weights.fetch import fetch
from tetrad.weights.importer import import_dir
from tetrad.weights.store import DEFAULT_DIR, list_status


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_list(args: argparse.Namespace) -> int:
    reg = registry_or_entries(getattr(args, "registry", None))
    rows = [["name", "layer", "status", "size", "licence", "demo-random", "source"]]
    for ver in list_status(args.dir, reg):
        entry = reg[ver.name]
        size = ver.size if ver.size is not None else entry.size
        how = "" if entry.automatic or ver.ok else " (manual)"
        rows.append([ver.name, ver.layer, ver.status + how, _human(size), entry.licence.split(" (")[0],
                     "yes" if ver.demo_present else "no", entry.source])
    print(_table(rows))
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    reg = registry_or_entries(getattr(args, "registry", None))
    names = args.names or [n for n, e in reg.items() if e.automatic]
    rc = 0
    for name in names:
        try:
            for path in fetch([name], args.dir, timeout=args.timeout, registry=reg):
                print(f"{name}: {path}")
        except ManualDownloadRequired as exc:
            print(f"manual download needed: {exc}")
            rc = max(rc, 2)
        except (WeightsError, KeyError) as exc:
            print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
            rc = 1
    if not args.names:
        for ver in list_status(args.dir, reg):
            if not reg[ver.name].automatic and not ver.ok:
                print(f"manual: {ver.name}: {reg[ver.name].manual}")
    return rc


def _cmd_import(args: argparse.Namespace) -> int:
    try:
        imported = import_dir(args.src, args.dir, registry=getattr(args, "registry", None))
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in imported:
        print(f"imported {name}: {path}")
    if not imported:
        print(f"nothing new to import from {args.src}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    bad = 0
    for ver in list_status(args.dir, getattr(args, "registry", None)):
        print(f"{ver.name:24s} {ver.status:17s} {ver.message}")
        bad += ver.status in ("mismatch", "incomplete")
    return 1 if bad else 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add `weights {list,fetch,import,verify}` to a parser's subparsers; handlers return an exit code."""
    parser = subparsers.add_parser("weights", help="list, fetch, import and verify model weights")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    sub = parser.add_subparsers(dest="weights_command", metavar="{list,fetch,import,verify}")
    commands = {
        "list": (_cmd_list, "show every checkpoint and its state"),
        "fetch": (_cmd_fetch, "download checkpoints (default: every automatic one)"),
        "import": (_cmd_import, "copy matching checkpoints from a local folder"),
        "verify": (_cmd_verify, "check sha256 of every checkpoint (exit 1 on a mismatch)"),
    }
    for name, (handler, text) in commands.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="weights cache folder (default: weights)")
        if name == "fetch":
            p.add_argument("names", nargs="*", metavar="NAME", help="entries: see `tetrad weights list`")
            p.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
        if name == "import":
            p.add_argument("src", type=Path, metavar="DIR", help="folder to search (recursively)")
        p.set_defaults(func=handler)
    return parser
