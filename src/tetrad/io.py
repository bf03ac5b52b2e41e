"""The project's file IO: validated Parquet reads, atomic writes (Parquet, JSON, text, any file or folder), hashes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tetrad.env import process_gone

log = logging.getLogger(__name__)


class SchemaError(ValueError):
    """A table does not match its declared schema."""


def to_table(df: pd.DataFrame, schema: pa.Schema, where: str = "table") -> pa.Table:
    """Cast a DataFrame to `schema` exactly: missing or extra columns and null keys are errors."""
    missing = [n for n in schema.names if n not in df.columns]
    extra = [c for c in df.columns if c not in schema.names]
    if missing or extra:
        raise SchemaError(f"{where}: missing columns {missing}, unexpected columns {extra}")
    try:
        table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise SchemaError(f"{where}: cannot cast to schema: {exc}") from exc
    table.validate(full=True)
    for field in schema:
        if not field.nullable and table.column(field.name).null_count:
            raise SchemaError(f"{where}: column {field.name!r} has nulls")
    return table


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temp files (`.<name>.<pid>.tmp`, see write_table) that a killed writer left in `folder` and its
    subfolders: those whose process is gone. A stage calls it on its output folders before it writes."""
    removed = []
    for tmp in Path(folder).rglob(".*.tmp") if Path(folder).is_dir() else []:
        pid = tmp.name.rsplit(".", 2)[-2]
        if not pid.isdigit() or process_gone(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    if removed:
        log.info("removed %d temp files of a killed run in %s", len(removed), folder)
    return removed


def write_table(df: pd.DataFrame | pa.Table, path: Path, schema: pa.Schema) -> Path:
    """Write a Parquet file atomically: a temp name in the same folder, then rename."""
    path = Path(path)
    table = df if isinstance(df, pa.Table) else to_table(df, schema, where=str(path))
    if not table.schema.equals(schema):
        table = table.cast(schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_table(path: Path | list[Path], schema: pa.Schema, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one file or several shards and check they carry exactly `schema`'s columns. With `columns`, only
    those are read (Parquet column projection: the other columns' bytes are never read or decoded)."""
    paths = [Path(p) for p in (path if isinstance(path, list) else [path])]
    want = pa.schema([schema.field(c) for c in columns]) if columns is not None else schema
    if not paths:
        return want.empty_table().to_pandas()
    tables = []
    for p in paths:
        names = pq.read_schema(p).names
        if set(names) != set(schema.names):
            raise SchemaError(f"{p}: columns {names} differ from the expected {schema.names}")
        tables.append(pq.read_table(p, columns=want.names).select(want.names).cast(want))
    return pa.concat_tables(tables).to_pandas()


def write_json(obj: Any, path: Path) -> Path:
    """Write JSON atomically (sorted keys, indented) so reruns are byte-identical."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def stable_hash(obj: Any, length: int = 12) -> str:
    """Short sha256 of a JSON-serialisable object; keys caches by their parameters."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_frame(df: pd.DataFrame, path: Path) -> Path:
    """Atomic Parquet write of a report table whose columns vary with the run (e.g. videos.parquet)."""
    return write_table(pa.Table.from_pandas(df, preserve_index=False), path,
                       pa.Table.from_pandas(df, preserve_index=False).schema)


def write_bytes(data: bytes, path: Path) -> Path:
    """Bytes (a PNG figure, an encoded text) written under a temp name, then renamed in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def write_text(text: str, path: Path) -> Path:
    return write_bytes(text.encode("utf-8"), path)


def write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """`write` a file or folder under a temp name, then rename: a killed write never leaves a half-written file
    under the real name (a temp left by an earlier killed run is removed first)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    write(tmp)
    os.replace(tmp, target)
