"""`tetrad doctor`: is a dataset usable? Label files, counts, missing, duplicate and undecodable files.

`doctor()` checks the root (naming where it was set), runs the adapter (a malformed label file is a fatal
problem), compares the counts with the ones the dataset is known to have, flags groups (identities, sources) that
appear in more than one split, looks for every listed file on disk, probes a seeded random sample of the selected
files with PyAV (first frame of each stream) or, with `full`, decodes every selected file completely, and hashes
the manifest. The report is unusable (exit 1) when the root is missing, the adapter fails, lists nothing, lists
duplicate ids, or none of the selected files exists; anything else is a warning.

The dataset comes from conf/dataset/<name>.yaml or a params.yaml, with Hydra-style `key=value` overrides
(`split=val`, `options.parts=[train,dev]`, or an adapter option by its bare name: `parts=[train,dev]`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from tqdm import tqdm

from tetrad.datasets.common import Expectation
from tetrad.datasets.manifest import access_problem, select_rows
from tetrad.datasets.registry import get_adapter, run_adapter
from tetrad.schemas import StatusError
from tetrad.params import ConfigError, DatasetParams, build

COUNTED = ("label", "category", "split", "method")
_LABEL_NAMES = {0: "real (0)", 1: "fake (1)"}
_MAX_PACKETS = 500  # a stream with no decodable frame within this many packets counts as undecodable
# A full decode may come out a little shorter than the header's duration without anything being lost: header
# durations are rounded and codecs trim their delay and padding (tens of ms). A cut file loses far more.
_SLACK_S = 0.5
_EXAMPLES = 3  # groups named in the cross-split warning


@dataclass
class DoctorReport:
    dataset: str
    adapter: str
    root: str
    root_source: str = ""  # where the root was set: "--root", "`root` in conf/dataset/x.yaml", ...
    fatal: list[str] = field(default_factory=list)  # each makes the dataset unusable
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the adapter logged (de-duplication, derived splits)
    rows: int = 0
    groups: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> value -> rows
    expected: list[Expectation] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # paths of listed files not on disk
    duplicate_ids: list[str] = field(default_factory=list)
    duplicate_paths: list[str] = field(default_factory=list)
    shared_groups: list[str] = field(default_factory=list)  # "group: split, split" for groups in several splits
    selection: str = ""
    selected: int = 0
    probed: int = 0
    full: bool = False  # probed files were decoded completely, not just their first frames
    undecodable: list[str] = field(default_factory=list)  # "path: why"
    stream_problems: list[str] = field(default_factory=list)  # "path: no audio stream, but audio_label is set"
    manifest_hash: str | None = None
    table: pd.DataFrame | None = field(default=None, repr=False)  # the adapter's rows, reused by the manifest stage

    @property
    def usable(self) -> bool:
        return not self.fatal

    @property
    def exit_code(self) -> int:
        return 0 if self.usable else 1

    def render(self, max_names: int = 200) -> str:
        return "\n".join(_render(self, max_names))


def doctor(params: DatasetParams, full: bool = False, sample: int = 20,
           root_source: str | None = None) -> DoctorReport:
    """Check the dataset `params` describes; probe `sample` selected files, or decode all of them fully (`full`).

    `root_source` says where `params.root` was set (a flag, a config key), for the message when it is missing."""
    report = DoctorReport(params.name, params.adapter, str(params.root),
                          root_source or f"`root` of dataset {params.name!r}", full=full)
    if not Path(params.root).is_dir():
        report.fatal.append(_missing_root(params.root, report.root_source))
        return report
    table = report.table = _run(params, report)
    if table is None:
        return report
    if table.empty:
        report.fatal.append("the adapter listed no files")
        return report
    report.rows, report.groups = len(table), table["group"].nunique()
    report.counts = {col: _value_counts(table[col], col) for col in COUNTED}
    expected = get_adapter(params.adapter).expected  # each adapter module knows its dataset's official counts
    report.expected = expected(table) if expected is not None else []
    differ = [e for e in report.expected if not e.ok]
    if differ:
        report.warnings.append(f"{len(differ)} of {len(report.expected)} counts differ from the dataset's known "
                               f"ones (a partial copy, a subset, or a changed label file)")
    _duplicates(table, report)
    _shared_groups(table, report)
    problems = table["path"].map(access_problem)
    present = problems.isna()
    report.missing = [f"{path}: {why}" for path, why in zip(table.loc[~present, "path"], problems[~present])]
    if report.missing:
        report.warnings.append(f"{len(report.missing)} of {len(table)} listed files are missing or unreadable")
    n_probe = None if full else sample
    _check_selection(table, set(table.loc[present, "path"]), params, report, n_probe)
    return report


def _missing_root(root: str, source: str) -> str:
    where = "" if Path(root).is_absolute() else f" ({Path(root).resolve()})"
    return f"dataset root {root}{where} does not exist (set by {source})"


def _run(params: DatasetParams, report: DoctorReport) -> pd.DataFrame | None:
    with _captured_logs() as records:
        try:
            table = run_adapter(params)
        except Exception as exc:  # noqa: BLE001  (any adapter failure is the doctor's finding, not a crash)
            report.fatal.append(f"adapter {params.adapter!r} failed: {type(exc).__name__}: {exc}")
            table = None
    for record in records:
        (report.warnings if record.levelno >= logging.WARNING else report.notes).append(record.getMessage())
    return table


@contextmanager
def _captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Collect what the adapters log (INFO and up) so the report shows it."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("tetrad.datasets")
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _value_counts(column: pd.Series, name: str) -> dict[str, int]:
    counts = column.astype(object).where(column.notna(), None).value_counts(dropna=False)
    names = {k: _LABEL_NAMES.get(k, str(k)) if name == "label" else ("<null>" if k is None else str(k))
             for k in counts.index}
    return {names[k]: int(v) for k, v in sorted(counts.items(), key=lambda kv: names[kv[0]])}


def _duplicates(table: pd.DataFrame, report: DoctorReport) -> None:
    report.duplicate_ids = sorted(set(table.loc[table["video_id"].duplicated(), "video_id"]))
    report.duplicate_paths = sorted(set(table.loc[table["path"].duplicated(), "path"]))
    if report.duplicate_ids:
        report.fatal.append(f"{len(report.duplicate_ids)} video ids are listed more than once")
    if report.duplicate_paths:
        report.warnings.append(f"{len(report.duplicate_paths)} files are listed under more than one id")


def _shared_groups(table: pd.DataFrame, report: DoctorReport) -> None:
    """Groups (identities, sources) listed in more than one split: a model trained or tuned on one split has seen
    the people it is then tested on. A warning: some official protocols do this (Celeb-DF with all_videos)."""
    labelled = table[table["split"].notna()]
    splits = labelled.groupby("group", sort=True)["split"].agg(lambda s: sorted(set(s)))
    shared = splits[splits.map(len) > 1]
    report.shared_groups = [f"{group}: {', '.join(names)}" for group, names in shared.items()]
    if report.shared_groups:
        examples = "; ".join(report.shared_groups[:_EXAMPLES])
        report.warnings.append(f"{len(shared)} of {len(splits)} groups appear in more than one split (e.g. "
                               f"{examples}): the splits share identities or sources")


def _check_selection(table: pd.DataFrame, present: set[str], params: DatasetParams, report: DoctorReport,
                     n_probe: int | None) -> None:
    """What a run would use (split/sample/limit applied): its files probed, its manifest hashed."""
    report.selection = f"split={params.split} sample={params.sample} limit={params.limit} seed={params.seed}"
    try:
        chosen = select_rows(table, params)
    except ValueError as exc:
        report.fatal.append(f"the selection ({report.selection}) failed: {exc}")
        return
    report.selected = len(chosen)
    report.manifest_hash = manifest_hash(chosen)
    on_disk = chosen[chosen["path"].isin(present)]
    if chosen.empty:
        splits = _value_counts(table["split"], "split")
        report.fatal.append(f"the selection ({report.selection}) keeps no rows (splits listed: {splits})")
    elif on_disk.empty:
        report.fatal.append(f"none of the {len(chosen)} selected files exists")
    else:
        _probe(on_disk, report, n_probe, params.seed)


def _probe(table: pd.DataFrame, report: DoctorReport, n_probe: int | None, seed: int) -> None:
    """Probe a seeded random sample (or decode all, `report.full`); name each file that fails or lacks a stream."""
    if n_probe is not None and n_probe < len(table):
        picks = np.sort(np.random.default_rng(seed).choice(len(table), size=n_probe, replace=False))
        table = table.iloc[picks]
    rows = table.to_dict("records")
    check = decode_fully if report.full else probe_file
    # A full decode takes time in proportion to the bytes, so its progress bar counts bytes (a true total).
    sizes = [_size(row["path"]) for row in rows] if report.full else [1] * len(rows)
    desc, unit = ("decoding files fully", "B") if report.full else ("probing files", "file")
    with tqdm(total=sum(sizes), desc=desc, unit=unit, unit_scale=report.full, disable=None) as bar:
        for row, size in zip(rows, sizes):
            _probe_row(row, check, report)
            bar.update(size)
    report.probed = len(rows)
    if report.undecodable:
        how = "fully decoded" if report.full else "probed"
        report.warnings.append(f"{len(report.undecodable)} of {len(rows)} {how} files cannot be decoded in full "
                               "(the pipeline scores a cut file on what decodes, as `partial`)")
    if report.stream_problems:
        report.warnings.append(f"{len(report.stream_problems)} probed files lack a stream their labels describe")


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # gone since it was listed: the check itself names it
        return 0


def _probe_row(row: dict[str, Any], check: Callable[[str], tuple[bool, bool]], report: DoctorReport) -> None:
    try:
        has_audio, has_video = check(row["path"])
    except StatusError as exc:
        report.undecodable.append(str(exc))
        return
    if pd.notna(row["audio_label"]) and not has_audio:
        report.stream_problems.append(f"{row['path']}: no audio stream, but audio_label is set")
    if pd.notna(row["video_label"]) and not has_video:
        report.stream_problems.append(f"{row['path']}: no video stream, but video_label is set")


def probe_file(path: str | Path) -> tuple[bool, bool]:
    """(has audio, has video), after decoding the first frame of each; StatusError when the file cannot."""
    try:
        with av.open(str(path)) as box:
            streams = [*box.streams.audio[:1], *box.streams.video[:1]]
            if not streams:
                raise StatusError("decode_error", f"{path}: no audio or video stream")
            _first_frames(box, streams, path)
            return bool(box.streams.audio), bool(box.streams.video)
    except StatusError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as exc:
        raise StatusError("decode_error", f"{path}: cannot decode ({type(exc).__name__}: {exc})") from None


def _first_frames(box: av.container.InputContainer, streams: list, path: str | Path) -> None:
    pending = {s.index for s in streams}
    for n, packet in enumerate(box.demux(streams)):
        if packet.decode():
            pending.discard(packet.stream.index)
        if not pending or n >= _MAX_PACKETS:
            break
    if pending:
        kinds = sorted(s.type for s in streams if s.index in pending)
        raise StatusError("decode_error", f"{path}: no decodable frame in the {'/'.join(kinds)} stream")


def decode_fully(path: str | Path) -> tuple[bool, bool]:
    """(has audio, has video) after decoding every packet of every audio and video stream; StatusError naming the
    file when decoding fails or gives less than the header declares. A cut file (e.g. a broken download with its
    index first) opens and decodes its first frames fine, so only the whole stream tells; frame-threaded video
    decoding (as `tetrad.media.decode` does) stops early on it instead of raising, hence the count check, the same
    rule as decode's: fewer video frames than the header declares is a cut file (which the pipeline keeps as
    `partial`; the doctor names it, a dataset should not hold one)."""
    try:
        with av.open(str(path)) as box:
            streams = [*box.streams.video, *box.streams.audio]
            if not streams:
                raise StatusError("decode_error", f"{path}: no audio or video stream")
            decoded = _decode_streams(box, streams, path)
            short = [m for s in streams if (m := _shortfall(s, decoded[s.index], box)) is not None]
            if short:
                raise StatusError("decode_error", f"{path}: {'; '.join(short)} (truncated or corrupt file)")
            return bool(box.streams.audio), bool(box.streams.video)
    except StatusError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, OSError) as exc:
        raise StatusError("decode_error", f"{path}: cannot decode ({type(exc).__name__}: {exc})") from None


def _decode_streams(box: av.container.InputContainer, streams: list, path: str | Path) -> dict[int, float]:
    """Per stream index: the video frames, or the seconds of audio, that decode."""
    decoded = {s.index: 0.0 for s in streams}
    for stream in streams:
        if stream.type == "video":
            stream.thread_type = "AUTO"  # as the pipeline decodes it (and several times faster)
    try:
        for packet in box.demux(streams):
            for frame in packet.decode():
                is_audio = isinstance(frame, av.AudioFrame)
                decoded[packet.stream.index] += frame.samples / (frame.sample_rate or 1) if is_audio else 1
    except (av.error.FFmpegError, ValueError) as exc:
        done = ", ".join(_amount(s, decoded[s.index]) for s in streams)
        raise StatusError("decode_error", f"{path}: decoding failed after {done} (truncated or corrupt file; "
                                          f"{type(exc).__name__}: {exc})") from None
    return decoded


def _shortfall(stream: av.stream.Stream, decoded: float, box: av.container.InputContainer) -> str | None:
    """What is missing when a stream decoded to less than its header declares (frames, else duration)."""
    if stream.type == "video" and stream.frames:
        if decoded >= stream.frames:
            return None
        return f"only {int(decoded)} of {stream.frames} video frames could be decoded"
    declared = _declared_seconds(stream, box)
    rate = float(stream.average_rate or 0) if stream.type == "video" else 1.0
    if declared is None or not rate:
        return None  # nothing in the header to compare with
    seconds = decoded / rate
    if seconds >= declared - _SLACK_S:
        return None
    return f"the {stream.type} stream decodes to {seconds:.3f} s of the {declared:.3f} s its header declares"


def _declared_seconds(stream: av.stream.Stream, box: av.container.InputContainer) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return box.duration / av.time_base if box.duration else None


def _amount(stream: av.stream.Stream, decoded: float) -> str:
    return f"{decoded:.3f} s of audio" if stream.type == "audio" else f"{int(decoded)} video frames"


def manifest_hash(table: pd.DataFrame) -> str:
    """sha256 of the sorted (video_id, label, path) rows: two manifests with equal hashes list the same files."""
    lines = sorted(f"{v}\t{int(lab)}\t{p}" for v, lab, p in zip(table["video_id"], table["label"], table["path"]))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# -- the printed report ---------------------------------------------------------------------------------------

def _render(r: DoctorReport, max_names: int) -> list[str]:
    lines = [f"dataset {r.dataset} (adapter {r.adapter}) at {r.root} (root from {r.root_source})"]
    lines += [f"  fatal: {m}" for m in r.fatal]
    lines += [f"  note: {m}" for m in r.notes]
    if r.rows:
        lines.append(f"rows: {r.rows}   groups: {r.groups}")
        lines += [f"  by {col}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                  for col, counts in r.counts.items()]
    if r.expected:
        lines.append("expected vs found:")
        lines += [f"  {'ok  ' if e.ok else 'WARN'}  {e.what}: expected {e.expected}, found {e.found}"
                  for e in r.expected]
    if r.rows:  # no "none" lines for checks that never ran (a missing root, a failed adapter)
        lines += _names("missing or unreadable files", r.missing, max_names)
        lines += _names("duplicate video ids", r.duplicate_ids, max_names)
        lines += _names("files listed under several ids", r.duplicate_paths, max_names)
        lines += _names("groups in several splits", r.shared_groups, max_names)
    if r.selection:
        how = ("decoded {} files fully with PyAV (every frame of every stream)" if r.full else
               "probed {} files with PyAV (first frame of each stream)").format(r.probed)
        lines.append(f"selection ({r.selection}): {r.selected} rows; {how}")
    if r.probed:
        lines += _names("undecodable files", r.undecodable, max_names)
        lines += _names("stream problems", r.stream_problems, max_names)
    if r.manifest_hash:
        lines.append(f"manifest sha256: {r.manifest_hash}")
    lines += [f"warning: {w}" for w in r.warnings]
    verdict = "UNUSABLE" if r.fatal else ("usable, with warnings" if r.warnings else "usable")
    return [*lines, f"result: {verdict} ({len(r.fatal)} fatal, {len(r.warnings)} warnings)"]


def _names(title: str, names: list[str], limit: int) -> list[str]:
    if not names:
        return [f"{title}: none"]
    more = [f"  ... and {len(names) - limit} more"] if len(names) > limit else []
    return [f"{title}: {len(names)}", *(f"  {n}" for n in names[:limit]), *more]


# -- the dataset to check, from conf/ or a params.yaml (the `tetrad doctor` command) --------------------------

@dataclass(frozen=True)
class DoctorTarget:
    """The dataset to check, and where its root was set (for the message when the root is missing)."""

    params: DatasetParams
    root_source: str


def load_dataset_params(name: str, params_file: Path | None = None, conf_dir: Path = Path("conf"),
                        root: str | None = None, overrides: Sequence[str] = ()) -> DatasetParams:
    """conf/dataset/<name>.yaml, or entry <name> of params.yaml's `datasets` when params_file is given."""
    return load_target(name, params_file, conf_dir, root, overrides).params


def load_target(name: str, params_file: Path | None = None, conf_dir: Path = Path("conf"),
                root: str | None = None, overrides: Sequence[str] = ()) -> DoctorTarget:
    """The dataset entry, then the `key=value` overrides, then `root` (the --root flag), each in that order."""
    entry, where, prefix = _dataset_entry(name, params_file, conf_dir)
    source = f"`{prefix}root` in {where}" if "root" in entry else f"the default root (no `{prefix}root` in {where})"
    for text, key, value in parse_overrides(overrides):
        entry = _override(entry, key, value, text)
        if key == "root":
            source = f"the override {text!r} on the command line"
    if root:
        entry, source = {**entry, "root": root}, "--root on the command line"
    return DoctorTarget(build(DatasetParams, entry, "dataset"), source)


def _dataset_entry(name: str, params_file: Path | None, conf_dir: Path) -> tuple[dict[str, Any], str, str]:
    """(the dataset's config entry, the file it is in, its key in that file followed by a dot, or '')."""
    if params_file is None:
        path = conf_dir / "dataset" / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in (conf_dir / "dataset").glob("*.yaml"))
            raise ConfigError(f"{path} not found (known datasets: {known})")
        return dict(OmegaConf.to_container(OmegaConf.load(path), resolve=True)), str(path), ""  # type: ignore[arg-type]
    if not Path(params_file).is_file():
        raise ConfigError(f"{params_file}: no such params file")
    data = OmegaConf.to_container(OmegaConf.load(params_file), resolve=True)
    entry = (data.get("datasets") or {}).get(name)  # type: ignore[union-attr]
    if entry is not None:
        return dict(entry), str(params_file), f"datasets.{name}."
    if (data.get("dataset") or {}).get("name") == name:  # type: ignore[union-attr]
        return dict(data["dataset"]), str(params_file), "dataset."  # type: ignore[index]
    raise ConfigError(f"{params_file}: no dataset named {name!r}")


def parse_overrides(overrides: Sequence[str]) -> list[tuple[str, str, Any]]:
    """(text, key, value) of each Hydra-style `key=value`, values parsed by Hydra's own override grammar
    (`[train,dev]` is a list, `null` is None, `'01'` a string)."""
    if not overrides:
        return []
    # Imported only when there are overrides: hydra takes a noticeable time to import.
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as exc:
        raise ConfigError(f"cannot parse the override: {str(exc).splitlines()[0]} (expected key=value, e.g. "
                          f"split=val or options.parts=[train,dev])") from None
    for o in parsed:
        if o.is_delete() or o.is_sweep_override():
            raise ConfigError(f"override {o.input_line!r}: only key=value is supported (no ~deletion, no sweep)")
    return [(o.input_line, o.key_or_group, o.value()) for o in parsed]


def _override(entry: dict[str, Any], key: str, value: Any, text: str) -> dict[str, Any]:
    """The entry with one override applied: a dataset key, `options.<name>`, or an adapter option's bare name."""
    fields = [f.name for f in dataclasses.fields(DatasetParams)]
    if key in fields:
        return {**entry, key: value}
    adapter = entry.get("adapter", DatasetParams.adapter)
    known = adapter_options(adapter) | set(entry.get("options") or {})
    option = key.removeprefix("options.")
    if option not in known:
        raise ConfigError(f"override {text!r}: unknown key {key!r} (dataset keys: {', '.join(fields)}; options "
                          f"of the {adapter} adapter: {', '.join(sorted(known)) or 'none'}, also as options.NAME)")
    return {**entry, "options": {**(entry.get("options") or {}), option: value}}


def adapter_options(adapter: str) -> set[str]:
    """The option names an adapter accepts. Every adapter module keeps them, with their defaults, in `DEFAULTS`
    (checked by `common.check_options`); an adapter without it takes none."""
    try:
        build_fn = get_adapter(adapter).build
    except KeyError:
        return set()  # the adapter run names the unknown adapter
    return set(getattr(sys.modules.get(build_fn.__module__), "DEFAULTS", None) or {})
