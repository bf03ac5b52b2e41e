"""`tetrad doctor`: is a dataset usable? Label files, counts, missing, duplicate and undecodable files.

`doctor()` runs the adapter (a malformed label file is a fatal problem), compares the counts with the ones the
dataset is known to have, looks for every listed file on disk, probes a seeded random sample of the selected
files (or all of them) with PyAV, and hashes the manifest. The report is unusable (exit 1) when the adapter
fails, lists nothing, lists duplicate ids, or none of the selected files exists; anything else is a warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from tqdm import tqdm

from tetrad.datasets.common import Expectation
from tetrad.datasets.manifest import select_rows
from tetrad.datasets.registry import get_adapter, run_adapter
from tetrad.schemas import StatusError
from tetrad.params import ConfigError, DatasetParams, build

COUNTED = ("label", "category", "split", "method")
_LABEL_NAMES = {0: "real (0)", 1: "fake (1)"}
_MAX_PACKETS = 500  # a stream with no decodable frame within this many packets counts as undecodable


@dataclass
class DoctorReport:
    dataset: str
    adapter: str
    root: str
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
    selection: str = ""
    selected: int = 0
    probed: int = 0
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


def doctor(params: DatasetParams, full: bool = False, sample: int = 20) -> DoctorReport:
    """Check the dataset `params` describes; probe `sample` selected files (all of them with full=True)."""
    report = DoctorReport(params.name, params.adapter, str(params.root))
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
    present = table["path"].map(os.path.isfile)
    report.missing = table.loc[~present, "path"].tolist()
    if report.missing:
        report.warnings.append(f"{len(report.missing)} of {len(table)} listed files are missing")
    n_probe = None if full else sample
    _check_selection(table, set(table.loc[present, "path"]), params, report, n_probe)
    return report


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
        report.fatal.append(f"the selection ({report.selection}) keeps no rows")
    elif on_disk.empty:
        report.fatal.append(f"none of the {len(chosen)} selected files exists")
    else:
        _probe(on_disk, report, n_probe, params.seed)


def _probe(table: pd.DataFrame, report: DoctorReport, n_probe: int | None, seed: int) -> None:
    """Open a seeded random sample (or all) with PyAV; name each file that fails or lacks a labelled stream."""
    if n_probe is not None and n_probe < len(table):
        picks = np.sort(np.random.default_rng(seed).choice(len(table), size=n_probe, replace=False))
        table = table.iloc[picks]
    rows = table.to_dict("records")
    for row in tqdm(rows, desc="probing files", unit="file", disable=None):
        try:
            has_audio, has_video = probe_file(row["path"])
        except StatusError as exc:
            report.undecodable.append(str(exc))
            continue
        if pd.notna(row["audio_label"]) and not has_audio:
            report.stream_problems.append(f"{row['path']}: no audio stream, but audio_label is set")
        if pd.notna(row["video_label"]) and not has_video:
            report.stream_problems.append(f"{row['path']}: no video stream, but video_label is set")
    report.probed = len(rows)
    if report.undecodable:
        report.warnings.append(f"{len(report.undecodable)} of {len(rows)} probed files cannot be decoded")
    if report.stream_problems:
        report.warnings.append(f"{len(report.stream_problems)} probed files lack a stream their labels describe")


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


def manifest_hash(table: pd.DataFrame) -> str:
    """sha256 of the sorted (video_id, label, path) rows: two manifests with equal hashes list the same files."""
    lines = sorted(f"{v}\t{int(lab)}\t{p}" for v, lab, p in zip(table["video_id"], table["label"], table["path"]))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# -- the printed report ---------------------------------------------------------------------------------------

def _render(r: DoctorReport, max_names: int) -> list[str]:
    lines = [f"dataset {r.dataset} (adapter {r.adapter}) at {r.root}"]
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
    lines += _names("missing files", r.missing, max_names)
    lines += _names("duplicate video ids", r.duplicate_ids, max_names)
    lines += _names("files listed under several ids", r.duplicate_paths, max_names)
    if r.selection:
        lines.append(f"selection ({r.selection}): {r.selected} rows; probed {r.probed} files with PyAV")
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

def load_dataset_params(name: str, params_file: Path | None = None, conf_dir: Path = Path("conf"),
                        root: str | None = None) -> DatasetParams:
    """conf/dataset/<name>.yaml, or entry <name> of params.yaml's `datasets` when params_file is given."""
    if params_file is not None:
        data = OmegaConf.to_container(OmegaConf.load(params_file), resolve=True)
        entry = (data.get("datasets") or {}).get(name)  # type: ignore[union-attr]
        if entry is None and (data.get("dataset") or {}).get("name") == name:  # type: ignore[union-attr]
            entry = data["dataset"]  # type: ignore[index]
        if entry is None:
            raise ConfigError(f"{params_file}: no dataset named {name!r}")
    else:
        path = conf_dir / "dataset" / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in (conf_dir / "dataset").glob("*.yaml"))
            raise ConfigError(f"{path} not found (known datasets: {known})")
        entry = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    params = build(DatasetParams, entry, "dataset")
    return dataclasses.replace(params, root=root) if root else params
