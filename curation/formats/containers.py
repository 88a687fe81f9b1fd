"""Raw rows out of a file: JSON, JSONL (whatever the file is named), CSV or Parquet."""
from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.formats.errors import FormatError, RejectedRow

PARQUET_MAGIC = b"PAR1"


@dataclass
class RawFile:
    container: str  # json-object | json-array | jsonl | csv | parquet
    rows: list[tuple[str, Any]] = field(default_factory=list)  # (location, row)
    document: Any = None  # the parsed object of a json-object file
    unreadable: list[RejectedRow] = field(default_factory=list)  # JSONL lines that are not JSON
    columns: list[str] | None = None  # a table's header


def load(path: Path, container: str | None = None) -> RawFile:
    """Parse a file into rows; raise FormatError for a file that cannot be read at all."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(name, f"cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise FormatError(name, "the file is empty")
    if container == "parquet" or (container is None and data[:4] == PARQUET_MAGIC):
        return _load_parquet(name, data)
    text = _decode(name, data)
    if container == "csv" or (container is None and path.suffix.lower() in (".csv", ".tsv")):
        return _load_csv(name, text, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    return _load_json_or_jsonl(name, text)


def _decode(name: str, data: bytes) -> str:
    # Spreadsheet and Windows tools save UTF-16 with a byte-order mark: that is text, read it.
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise FormatError(name, "starts like UTF-16 text but cannot be decoded as UTF-16") from None
    if b"\x00" in data[:8192]:
        raise FormatError(name, "is a binary file, not text (JSON, JSONL, CSV) or Parquet")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(
            name, f"is not UTF-8 text (undecodable byte 0x{data[exc.start]:02x} at offset {exc.start}); re-save it as UTF-8"
        ) from None


def _load_json_or_jsonl(name: str, text: str) -> RawFile:
    stripped = text.lstrip()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as whole_error:
        # Not one JSON document: JSONL (whatever the extension), unless it is a broken array/object.
        if stripped.startswith("["):
            raise FormatError(name, f"is not valid JSON ({_describe(whole_error)})") from None
        return _load_jsonl(name, text, whole_error)
    if isinstance(document, list):
        return RawFile("json-array", rows=[(f"index {i}", row) for i, row in enumerate(document)])
    if isinstance(document, dict):
        return RawFile("json-object", document=document)
    raise FormatError(name, f"holds a single JSON {type(document).__name__}, not records")


def _load_jsonl(name: str, text: str, whole_error: json.JSONDecodeError) -> RawFile:
    raw = RawFile("jsonl")
    decoded_any = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw.rows.append((f"line {number}", json.loads(line)))
            decoded_any = True
        except json.JSONDecodeError as exc:
            if not decoded_any:
                # The first line is not JSON either: this is a broken JSON document, not JSONL.
                raise FormatError(name, f"is not valid JSON or JSONL ({_describe(whole_error)})") from None
            raw.unreadable.append(RejectedRow(f"line {number}", f"not valid JSON ({exc.msg})"))
    return raw


def _describe(error: json.JSONDecodeError) -> str:
    if error.pos >= len(error.doc.rstrip()) or error.msg.startswith("Unterminated string"):
        return f"it ends early at line {error.lineno}: truncated?"
    return f"{error.msg} at line {error.lineno} column {error.colno}"


def _load_csv(name: str, text: str, delimiter: str) -> RawFile:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise FormatError(name, "has no header row")
    try:
        # The header is line 1, so data rows start at line 2 (multi-line cells count as one row).
        rows = [(f"line {reader.line_num}", dict(row)) for row in reader]
    except csv.Error as exc:
        raise FormatError(name, f"is not valid CSV ({exc})") from None
    return RawFile("csv", rows=rows, columns=list(reader.fieldnames))


def _load_parquet(name: str, data: bytes) -> RawFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(name, f"is not a readable Parquet file ({exc})") from None
    rows = [(f"row {i + 1}", row) for i, row in enumerate(table.to_pylist())]
    return RawFile("parquet", rows=rows, columns=table.column_names)
