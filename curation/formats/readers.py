"""read_file: detect a file's format and turn it into records (and SNI tasks), row errors kept apart."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curation.formats import containers, rows, sni
from curation.formats.errors import FormatError, RejectedRow, RowError
from curation.records import RecordDraft, TaskDraft, null_byte_field, null_byte_reason, record_fields

IMPORT_FORMATS = ("auto", "alpaca", "dolly", "sni", "self-instruct", "sharegpt", "messages",
                  "prompt-completion", "csv", "parquet")


@dataclass
class ParsedFile:
    path: str
    format: str
    records: list[RecordDraft] = field(default_factory=list)
    tasks: list[TaskDraft] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    rows_read: int = 0


def read_file(path: str | Path, format: str = "auto", mapping: dict[str, str] | None = None) -> ParsedFile:
    """Parse one file. Raises FormatError when the file as a whole cannot be taken."""
    path = Path(path)
    name = str(path)
    if format not in IMPORT_FORMATS:
        raise FormatError(name, f"unknown format {format!r} (choose from {', '.join(IMPORT_FORMATS)})")
    container = format if format in ("csv", "parquet") else None
    raw = containers.load(path, container)
    if raw.container == "json-object" and format != "sni" and rows.detect_row_format(raw.document):
        # A JSONL file of one line is one JSON object too: when its keys say record, it is that one record.
        raw = containers.RawFile("jsonl", rows=[("line 1", raw.document)])

    if raw.container == "json-object":
        if format == "auto" and not sni.is_sni_task(raw.document):
            raise FormatError(name, "is a JSON object but not a Super-NaturalInstructions task "
                                    "(expected 'Definition' and 'Instances')")
        if format not in ("auto", "sni"):
            raise FormatError(name, f"is a single JSON object, not {format} records")
        task = sni.parse_task(raw.document, name=path.stem, source_file=path.name)
        rejected = sni.take_unstorable_instances(task)
        return ParsedFile(name, "sni", records=list(task.instances), tasks=[task], rejected=rejected,
                          rows_read=len(task.instances) + len(rejected))
    if format == "sni":
        raise FormatError(name, "is not a Super-NaturalInstructions task (expected one JSON object)")
    if mapping and raw.columns is not None:
        _check_mapped_columns(name, raw.columns, mapping)

    table_rows = raw.rows
    if raw.container in ("csv", "parquet"):
        table_rows = [(loc, _map_columns(name, row, mapping)) for loc, row in raw.rows]
    elif mapping:
        table_rows = [(loc, _map_columns(name, row, mapping) if isinstance(row, dict) else row) for loc, row in raw.rows]

    row_format = format if format in rows.CONVERTERS else _detect(name, table_rows)
    _check_required_fields(name, row_format, table_rows)
    parsed = ParsedFile(name, row_format if raw.container not in ("csv", "parquet") else f"{raw.container}:{row_format}",
                        rejected=list(raw.unreadable), rows_read=len(table_rows) + len(raw.unreadable))
    convert = rows.CONVERTERS[row_format]
    for location, row in table_rows:
        if not isinstance(row, dict):
            parsed.rejected.append(RejectedRow(location, f"not an object but {type(row).__name__}"))
            continue
        try:
            drafts = convert(row)
            _refuse_unstorable(drafts)
        except RowError as exc:
            parsed.rejected.append(RejectedRow(location, str(exc)))
            continue
        line = _line_number(location)
        for draft in drafts:
            draft.source_file, draft.source_line = path.name, line
        parsed.records.extend(drafts)
    return parsed


def _refuse_unstorable(drafts: list[RecordDraft]) -> None:
    """RowError when a record holds text no database can store (a null byte), naming the field."""
    for draft in drafts:
        if unstorable := null_byte_field(record_fields(draft)):
            raise RowError(null_byte_reason(unstorable))


def _line_number(location: str) -> int:
    return int(location.rsplit(" ", 1)[1])


def _map_columns(name: str, row: dict, mapping: dict[str, str] | None) -> dict:
    """Rename table columns to record fields (--map field=column); unmapped columns pass through."""
    if not mapping:
        return row
    _check_mapped_columns(name, list(row), mapping)
    renamed = {column: field_name for field_name, column in mapping.items()}
    return {renamed.get(k, k): v for k, v in row.items()}


def _check_mapped_columns(name: str, columns: list, mapping: dict[str, str]) -> None:
    missing = [column for column in mapping.values() if column not in columns]
    if missing:
        raise FormatError(name, f"has no column {missing[0]!r} to map (columns: {', '.join(map(str, columns))})")


def _detect(name: str, table_rows: list) -> str:
    for _, row in table_rows[:50]:
        detected = rows.detect_row_format(row)
        if detected:
            return detected
    if not table_rows:
        raise FormatError(name, "holds no records")
    first = table_rows[0][1]
    keys = ", ".join(map(str, first)) if isinstance(first, dict) else type(first).__name__
    raise FormatError(name, f"has no instruction fields to import (found: {keys}); "
                            "pass --format, or --map instruction=COLUMN for a table")


def _check_required_fields(name: str, row_format: str, table_rows: list) -> None:
    required = rows.REQUIRED_FIELDS[row_format]
    for _, row in table_rows:
        if isinstance(row, dict) and {f for f in required} <= {str(k).lower() for k in row}:
            return
    raise FormatError(name, f"lacks the fields the {row_format} format needs ({', '.join(required)})")
