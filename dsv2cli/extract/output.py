"""Where results go: JSON, JSON Lines or CSV, to a stream or a file, and what a file already holds.

JSON Lines and CSV files are appended to one complete record at a time (a single ``write`` on
a file opened with ``O_APPEND``), so an interrupted batch leaves only whole records; a rerun
reads back the keys (content hash + schema digest) of the records already there and skips them.
A JSON file is written once, at the end, through a temporary file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ..errors import UsageError
from ..fsutil import write_atomic
from .schema import FieldSet

FORMATS = ("json", "jsonl", "csv")
Key = tuple[str, str]  # (content_hash, schema_digest)


class Writable(Protocol):
    """Where results are written when there is no --out: stdout, or the CLI's screen writer."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


def pick_format(fmt: str | None, out: Path | None, inputs: int) -> str:
    """``--format`` if given; else from ``--out``'s suffix; else json for one input, jsonl for several."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return fmt
    suffix = out.suffix.lower() if out is not None else ""
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    return "json" if inputs == 1 else "jsonl"


def record_key(record: Mapping[str, Any]) -> Key:
    return str(record.get("content_hash")), str(record.get("schema_digest"))


# --- CSV flattening -----------------------------------------------------------------------


def _resolve(schema: Mapping[str, Any], fields: FieldSet) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    prefix = f"#/{fields.defs_key}/"
    if isinstance(ref, str) and ref.startswith(prefix):
        target = fields.defs.get(ref[len(prefix) :])
        if isinstance(target, Mapping):
            return target
    return schema


def _value_paths(schema: Mapping[str, Any], fields: FieldSet, prefix: str, depth: int = 0) -> list[str]:
    """Column names for a value: one per leaf of nested objects; lists and scalars are one column."""
    schema = _resolve(schema, fields)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list):
        objects = [b for b in branches if isinstance(b, Mapping) and b.get("type") != "null"]
        if len(objects) == 1:
            schema = _resolve(objects[0], fields)
    props = schema.get("properties")
    if depth < 4 and isinstance(props, Mapping) and props and schema.get("type", "object") == "object":
        return [p for name, sub in props.items() for p in _value_paths(sub, fields, f"{prefix}.{name}", depth + 1)]
    return [prefix]


def csv_columns(fields: FieldSet) -> list[str]:
    columns = ["source", "content_hash", "schema_digest", "unverified"]
    for name, schema in fields.fields.items():
        columns.extend(_value_paths(schema, fields, name))
        columns.extend([f"{name}.evidence", f"{name}.verified", f"{name}.location", f"{name}.conflicts"])
    return columns


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _dig(value: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def flatten(record: Mapping[str, Any], fields: FieldSet) -> dict[str, str]:
    """One CSV row: nested values as ``field.sub`` columns, evidence, verified, citation, conflict count."""
    row = {
        "source": _cell(record.get("source")),
        "content_hash": _cell(record.get("content_hash")),
        "schema_digest": _cell(record.get("schema_digest")),
        "unverified": ";".join(record.get("unverified") or []),
    }
    values = record.get("fields") or {}
    for name, schema in fields.fields.items():
        entry = values.get(name)
        for column in _value_paths(schema, fields, name):
            row[column] = _cell(_dig(entry.get("value"), column.split(".")[1:]) if entry else None)
        row[f"{name}.evidence"] = _cell(entry.get("evidence") if entry else None)
        row[f"{name}.verified"] = _cell(entry.get("verified") if entry else None)
        location = entry.get("location") if entry else None
        row[f"{name}.location"] = _cell(location.get("cite") if isinstance(location, Mapping) else None)
        row[f"{name}.conflicts"] = str(len(entry.get("conflicts") or [])) if entry else ""
    return row


def csv_text(rows: list[dict[str, str]], columns: list[str], header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# --- Sinks -----------------------------------------------------------------------------------


def _append(path: Path, text: str) -> None:
    """Append ``text`` with one write on an O_APPEND descriptor: never a half-written record."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        while written < len(data):  # regular files take it all at once; be correct anyway
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


class Sink:
    """Receives finished records. ``done`` holds the keys already in the output file."""

    def __init__(self) -> None:
        self.done: set[Key] = set()
        self.notes: list[str] = []  # for stderr: what was found in an existing file

    def write(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output (JSON writes everything here)."""


class JsonlSink(Sink):
    def __init__(self, stream: Writable | None, path: Path | None, force: bool) -> None:
        super().__init__()
        self.stream, self.path = stream, path
        if path is not None:
            if force and path.exists():
                path.write_text("", encoding="utf-8")
            elif path.exists() and path.stat().st_size:
                self._read_back(path)

    def _read_back(self, path: Path) -> None:
        bad = 0
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(record, dict):
                self.done.add(record_key(record))
        if bad:
            self.notes.append(f"warning: {path}: ignored {bad} unreadable line(s)")
        if not _ends_with_newline(path):
            _append(path, "\n")  # a cut-off last line stays on its own line

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        if self.path is not None:
            _append(self.path, line)
        if self.stream is not None:
            self.stream.write(line)
            self.stream.flush()
        self.done.add(record_key(record))


class CsvSink(Sink):
    def __init__(self, stream: Writable | None, path: Path | None, force: bool, fields: FieldSet) -> None:
        super().__init__()
        self.stream, self.path, self.fields = stream, path, fields
        self.columns = csv_columns(fields)
        self._need_header = True
        if path is not None and path.exists() and path.stat().st_size and not force:
            self._read_back(path)
        elif path is not None and path.exists():
            path.write_text("", encoding="utf-8")

    def _read_back(self, path: Path) -> None:
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames != self.columns:
                raise UsageError(f"{path}: its columns are for another schema; write to a new file or pass --force")
            for row in reader:
                self.done.add((row.get("content_hash") or "", row.get("schema_digest") or ""))
        self._need_header = False
        if not _ends_with_newline(path):
            _append(path, "\n")

    def write(self, record: dict[str, Any]) -> None:
        text = csv_text([flatten(record, self.fields)], self.columns, self._need_header)
        self._need_header = False
        if self.path is not None:
            _append(self.path, text)
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()
        self.done.add(record_key(record))


class JsonSink(Sink):
    """One object for a single input, else an array; written when the batch ends."""

    def __init__(self, stream: Writable | None, path: Path | None, single: bool) -> None:
        super().__init__()
        self.stream, self.path, self.single = stream, path, single
        self.records: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.done.add(record_key(record))

    def close(self) -> None:
        if self.single and len(self.records) <= 1:
            payload: Any = self.records[0] if self.records else None
            if payload is None:
                return
        else:
            payload = self.records
        text = json.dumps(payload, ensure_ascii=False, indent=2) + "\n"
        if self.path is not None:
            write_atomic(self.path, text)
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()


def open_sink(fmt: str, stream: Writable, out: Path | None, force: bool, fields: FieldSet, inputs: int) -> Sink:
    """Results go to ``out`` when given (stdout stays empty), else to ``stream``."""
    target_stream = None if out is not None else stream
    if out is not None and out.parent and not out.parent.exists():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    if fmt == "jsonl":
        return JsonlSink(target_stream, out, force)
    if fmt == "csv":
        return CsvSink(target_stream, out, force, fields)
    return JsonSink(target_stream, out, single=inputs == 1)
