"""`tetrad weights {list,fetch,import,verify}`: the command line of the weights manager.

Building the parser reads no catalog (the entries are only read when a command runs), so `tetrad --help` and
every other command stay cheap. Each handler returns the exit code.

`verify` checks what the configured pipeline loads (params.yaml: each enabled layer's weight slots, and the mouth
mean face when mouths are extracted): it fails when one of them is missing, mismatched or incomplete, or is only
a demo-random stand-in (random weights, not the checkpoint: their scores mean nothing) unless `--allow-demo`
accepts those. A mismatched or incomplete file in the cache fails it even when no layer uses it.

`fetch --open` is the step of `make demo` that gets real weights where it can: the openly licensed, sha256-pinned
files (offline: it says so and exits 0), then one line per layer of params.yaml saying whether it will run real
or demo-random weights. A download whose sha256 is wrong is refused and exits 1, so no demo-random file is ever
written in its place.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tetrad.weights.catalog import WeightEntry, registry_or_entries
from tetrad.weights.errors import ManualDownloadRequired, WeightsError
from tetrad.weights.fetch import MIRROR_ENV, OpenFetch, check_mirror, fetch, fetch_open, open_entries
from tetrad.weights.importer import import_dir
from tetrad.weights.store import DEFAULT_DIR, Verification, list_status, path_for, verify_entry

if TYPE_CHECKING:
    from tetrad.params import Params


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
    try:  # a bad mirror is a usage error, found before any download
        mirror = check_mirror(args.mirror if args.mirror is not None else os.environ.get(MIRROR_ENV))
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.open:
        return _cmd_fetch_open(args, reg, mirror)
    names = args.names or [n for n, e in reg.items() if e.automatic]
    rc = 0
    for name in names:
        try:
            for path in fetch([name], args.dir, timeout=args.timeout, registry=reg, mirror=mirror):
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


def _cmd_fetch_open(args: argparse.Namespace, reg: Mapping[str, WeightEntry], mirror: str | None) -> int:
    """`fetch --open`: exit 0 fetched or offline, 1 when a download was refused (wrong sha256), 2 bad params."""
    if args.names:
        print("error: --open fetches the openly licensed entries; give no NAME with it", file=sys.stderr)
        return 2
    done = fetch_open(args.dir, args.timeout, reg, mirror)
    print(_open_summary(done))
    for why in done.unavailable.values():
        print(f"warning: {why}; where a layer needs it, it runs demo-random weights", file=sys.stderr)
    for why in done.refused.values():
        print(f"error: {why}", file=sys.stderr)
    if done.refused:  # exit 1 stops `make demo` before `tetrad demo-weights` could put a demo file there
        print("error: refused: nothing was placed instead of it, not even demo-random weights. A wrong mirror, a "
              "proxy's page or a changed upstream file? Fix that, then run this again.", file=sys.stderr)
        return 1
    return _print_will_run(args.params, args.dir, reg)


def _open_summary(done: OpenFetch) -> str:
    said = []
    if done.fetched:
        said.append(f"fetched {', '.join(done.fetched)} (sha256 verified)")
    if done.present:
        said.append(f"already present: {', '.join(done.present)}")
    if done.refused:
        said.append(f"REFUSED {', '.join(done.refused)} (wrong sha256)")
    if done.unavailable:
        said.append(f"not available: {', '.join(done.unavailable)}")
    if done.offline:
        said.append(f"offline ({done.offline}): {'nothing more' if said else 'nothing'} fetched")
    return "weights: " + "; ".join(said or ["no openly licensed checkpoints in the catalog"])


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


@dataclass(frozen=True)
class Check:
    """One line of `weights verify`: a checkpoint, its state, who needs it, and whether that is acceptable."""

    name: str
    status: str  # a store status, or "demo-random" / "unknown" / "own-file" for the pipeline's needs
    needed_by: list[str]  # the params keys that name it; empty: no configured layer loads it
    message: str
    ok: bool

    @property
    def mark(self) -> str:
        """FAIL, ok, or - for a checkpoint nothing needs (shown for the whole picture, never failing on absence)."""
        return "FAIL" if not self.ok else ("ok" if self.needed_by else "-")


def needed_weights(params: Params) -> dict[str, list[str]]:
    """What the configured pipeline loads: weights-registry name (or a user's own path) -> the params keys naming it
    (`layer.<layer>.weights.<slot>`, and `extract.mouths.mean_face` when the mouths kind is extracted)."""
    needed: dict[str, list[str]] = {}
    for layer_name, layer in params.layer.items():
        for slot, value in layer.weights.items():
            needed.setdefault(value, []).append(f"layer.{layer_name}.weights.{slot}")
    if "mouths" in params.extract.kinds:
        needed.setdefault(params.extract.mouths.mean_face, []).append("extract.mouths.mean_face")
    face = params.extract.face
    uses = {"faces": ("options", face.options),
            "mouths": ("mouth_options", face.mouth_options) if face.mouth_detector else ("options", face.options)}
    for kind, (key, options) in uses.items():  # face detectors whose checkpoint is a weights entry (RetinaFace)
        if kind in params.extract.kinds and isinstance(options.get("weights"), str):
            keys = needed.setdefault(options["weights"], [])
            if f"extract.face.{key}.weights" not in keys:
                keys.append(f"extract.face.{key}.weights")
    return needed


# What a checkpoint will be when the pipeline loads it, worst first: a row of `will_run` shows its worst one.
STATES: tuple[str, ...] = ("MISMATCH", "INCOMPLETE", "MISSING", "demo-random", "real")


def _will_load(name: str, reg: Mapping[str, WeightEntry], weights_dir: Path, allow_demo: bool) -> str:
    """One of STATES for a needed name: real, demo-random (missing, demo allowed), or why the stage will stop."""
    if name not in reg:  # a user's own file
        return "real" if Path(name).exists() else "MISSING"
    ver = verify_entry(reg[name], weights_dir)
    if ver.ok:
        return "real"
    if ver.status != "missing":
        return ver.status.upper()
    return "demo-random" if allow_demo else "MISSING"


def _row_of(key: str) -> str:
    """The row of `will_run` a params key belongs to: its layer, or the crops whose asset it is."""
    parts = key.split(".")
    if parts[0] == "layer":
        return parts[1]
    return "mouth crops" if key == "extract.mouths.mean_face" else "face crops"


def will_run(params: Params, weights_dir: Path,
             registry: Mapping[str, WeightEntry]) -> list[tuple[str, str, list[str]]]:
    """(layer or crops, the worst of STATES among its checkpoints, their names), in the order of params."""
    rows: dict[str, list[str]] = {}
    for name, keys in needed_weights(params).items():
        for key in keys:
            names = rows.setdefault(_row_of(key), [])
            if name not in names:
                names.append(name)
    allow = params.weights.allow_demo
    return [(row, min((_will_load(n, registry, weights_dir, allow) for n in names), key=STATES.index), names)
            for row, names in rows.items()]


def _print_will_run(params_path: Path | None, weights_dir: Path, reg: Mapping[str, WeightEntry]) -> int:
    """One line per layer (and crop asset) of the params: real or demo-random weights, or why it would stop."""
    path = params_path or Path("params.yaml")
    if params_path is None and not path.is_file():
        return 0  # outside a project: the fetch summary is all there is to say
    from tetrad.params import load_params  # only here: fetch without --open needs no params

    try:
        rows = will_run(load_params(path), weights_dir, reg)
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path} will run (weights in {weights_dir}/):")
    width = max((len(row) for row, _, _ in rows), default=0)
    fetched_here = {e.name for e in open_entries(reg)}
    for row, state, names in rows:
        # Only what --open never fetches needs a hint: a manual download, or a file upstream pins no sha256 for.
        todo = [n for n in names
                if n in reg and n not in fetched_here and _will_load(n, reg, weights_dir, True) != "real"]
        says = " says how" if any(reg[n].manual for n in todo) else ""
        hint = f" (`tetrad weights fetch {' '.join(todo)}`{says})" if todo else ""
        print(f"  {row:<{width}}  {state:<11}  {', '.join(names)}{hint}")
    return 0


def verify_checks(weights_dir: Path, registry: Mapping[str, WeightEntry], needed: Mapping[str, list[str]] | None,
                  allow_demo: bool = False) -> list[Check]:
    """One check per catalog entry, then one per needed name that is no entry; `needed` None: every entry is."""
    checks = []
    for ver in list_status(weights_dir, registry):
        by = ["--all"] if needed is None else list(needed.get(ver.name, []))
        checks.append(_entry_check(ver, registry[ver.name], by, weights_dir, allow_demo))
    for name, by in (needed or {}).items():
        if name not in registry:
            checks.append(_own_file_check(name, by))
    return checks


def _entry_check(ver: Verification, entry: WeightEntry, needed_by: list[str], weights_dir: Path,
                 allow_demo: bool) -> Check:
    if ver.status in ("mismatch", "incomplete") or ver.ok or not needed_by:
        return Check(ver.name, ver.status, needed_by, ver.message, ver.status not in ("mismatch", "incomplete"))
    get = f"`tetrad weights fetch {entry.name}`" + (" prints the manual steps" if entry.manual else "")
    if ver.demo_present:
        demo = path_for(entry, weights_dir, demo=True)
        accepted = "accepted by --allow-demo" if allow_demo else "pass --allow-demo to accept it"
        return Check(ver.name, "demo-random", needed_by, f"only the random demo checkpoint {demo}: not the real "
                     f"weights, its scores mean nothing ({accepted}); real one: {get}", allow_demo)
    return Check(ver.name, "missing", needed_by, f"{ver.message}; {get}", False)


def _own_file_check(name: str, needed_by: list[str]) -> Check:
    """A slot set to a path (a user's own checkpoint) has no sha256 to check: it must exist."""
    if Path(name).exists():
        return Check(name, "own-file", needed_by, f"{name}: a file of your own (no sha256 to check)", True)
    return Check(name, "unknown", needed_by, f"{name}: neither a weights entry (see `tetrad weights list`) nor an "
                 "existing file", False)


def _cmd_verify(args: argparse.Namespace) -> int:
    try:
        needed, weights_dir, note = _verify_scope(args)
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reg = registry_or_entries(getattr(args, "registry", None))
    checks = verify_checks(weights_dir, reg, needed, args.allow_demo)
    print(note)
    rows = [["", "name", "status", "needed by", "detail"]]
    rows += [[c.mark, c.name, c.status, ", ".join(c.needed_by) or "-", c.message] for c in checks]
    print(_table(rows))
    bad = [c for c in checks if not c.ok]
    n_needed = sum(bool(c.needed_by) for c in checks)
    print(f"{len(bad)} of {len(checks)} checkpoints FAIL ({n_needed} needed)" if bad else
          f"all {n_needed} needed checkpoints are usable")
    return 1 if bad else 0


def _verify_scope(args: argparse.Namespace) -> tuple[dict[str, list[str]] | None, Path, str]:
    """(what is needed: None for every entry, the weights folder, a line saying which)."""
    if args.all or (args.params is None and not Path("params.yaml").is_file()):
        why = "--all" if args.all else "no params.yaml here"
        return None, args.dir or DEFAULT_DIR, f"checking every catalog entry ({why})"
    from tetrad.params import load_params  # only here: verify --all needs no params

    path = args.params or Path("params.yaml")
    params = load_params(path)
    weights_dir = args.dir or Path(params.weights.dir)
    return needed_weights(params), weights_dir, f"checking what {path} needs, in {weights_dir}/"


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add `weights {list,fetch,import,verify}` to a parser's subparsers; handlers return an exit code."""
    parser = subparsers.add_parser("weights", help="list, fetch, import and verify model weights")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    sub = parser.add_subparsers(dest="weights_command", metavar="{list,fetch,import,verify}")
    commands = {
        "list": (_cmd_list, "show every checkpoint and its state"),
        "fetch": (_cmd_fetch, "download checkpoints (default: every automatic one)"),
        "import": (_cmd_import, "copy matching checkpoints from a local folder"),
        "verify": (_cmd_verify, ("check the checkpoints params.yaml needs (exit 1 when one is missing, "
                                 "mismatched or only demo-random)")),
    }
    for name, (handler, text) in commands.items():
        p = sub.add_parser(name, help=text, description=text)
        if name == "verify":  # its default is params.yaml's weights.dir
            p.add_argument("--dir", type=Path, help="weights cache folder (default: weights.dir of --params)")
        else:
            p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="weights cache folder (default: weights)")
        if name == "fetch":
            _add_fetch_options(p)
        if name == "import":
            p.add_argument("src", type=Path, metavar="DIR", help="folder to search (recursively)")
        if name == "verify":
            p.add_argument("--params", type=Path, help="the pipeline to check (default: params.yaml; without one, "
                                                       "every catalog entry)")
            p.add_argument("--all", action="store_true", help="every catalog entry is needed, used or not")
            p.add_argument("--allow-demo", action="store_true",
                           help="accept demo-random stand-ins for missing checkpoints (their scores mean nothing)")
        p.set_defaults(func=handler)
    return parser


def _add_fetch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="entries: see `tetrad weights list`")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="network timeout in seconds (connecting, and each read)")
    p.add_argument("--mirror", metavar="URL",
                   help=f"http(s)://HOST[:PORT][/PATH] replacing the scheme and host of each download URL, its path "
                        f"kept (default: ${MIRROR_ENV}; Hugging Face repos: set HF_ENDPOINT)")
    p.add_argument("--open", action="store_true",
                   help="what `make demo` runs: the openly licensed, sha256-pinned checkpoints not yet present "
                        "(offline is no error), then per layer of --params: real or demo-random weights; exit 1 "
                        "when a download's sha256 is wrong (refused, nothing placed instead)")
    p.add_argument("--params", type=Path, help="with --open: the pipeline to summarise (default: params.yaml, if any)")
