"""Labelled sources: the rows templates run over, read from a file (JSONL, JSON, CSV, TSV, text, Parquet).

A stored dataset is a source too (curation.services.templates reads its records as rows); each row keeps
its place, counted from 1, so a record made from it can say which row it came from.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from curation.templates.model import TemplateError

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt", ".parquet")


class SourceError(TemplateError):
    """The source cannot be read or holds no rows; the message names the file and the line."""


@dataclass
class Source:
    """Rows by position (row n is rows[n - 1]); `record_ids` when the rows are a stored dataset's records."""

    name: str
    rows: list[dict]
    record_ids: list[int] | None = None
    columns: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.rows:
            raise SourceError(f"the source {self.name} has no rows: there is nothing to apply a template to")
        if not self.columns:
            seen: dict[str, None] = {}
            for row in self.rows[:1000]:
                seen.update(dict.fromkeys(row))
            self.columns = list(seen)

    def where(self, row_number: int) -> dict:
        """The provenance of a record made from row `row_number`: the source's name and the row."""
        place = {"dataset": self.name, "row": row_number}
        if self.record_ids is not None:
            place["record"] = self.record_ids[row_number - 1]
        return place


def _jsonl(text: str, name: str) -> list[dict]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise SourceError(f"{name}, line {number}: not JSON ({error})") from None
        if not isinstance(row, dict):
            raise SourceError(f"{name}, line {number}: a row is a JSON object, not {type(row).__name__}")
        rows.append(row)
    return rows


def _json(text: str, name: str) -> list[dict]:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise SourceError(f"{name}: not JSON ({error})") from None
    if not isinstance(document, list) or not all(isinstance(row, dict) for row in document):
        raise SourceError(f"{name}: a JSON source is a list of objects")
    return document


def _table(text: str, name: str, delimiter: str, columns: list[str] | None) -> list[dict]:
    # GLUE's TSVs hold bare quote characters inside sentences: a TSV is read without quoting.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    header = list(columns) if columns else next(reader, None)
    if not header:
        return []
    header = [h.strip() for h in header]
    if any(not h for h in header) or len(set(header)) != len(header):
        raise SourceError(f"{name}: the column names must be distinct and not empty ({', '.join(header)})")
    rows = []
    first = 1 if columns else 2
    for number, values in enumerate(reader, start=first):
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            raise SourceError(f"{name}, line {number}: {len(values)} values for {len(header)} columns")
        rows.append(dict(zip(header, values)))
    return rows


def read_rows(path: str | Path, *, columns: list[str] | None = None) -> list[dict]:
    """The rows of a labelled file; `columns` names the columns of a CSV or TSV that has no header line.

    A .txt file gives one row per line, in a column named `line`.
    """
    path = Path(path)
    name, suffix = path.name, path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SourceError(f"{name}: a source is one of {', '.join(SUFFIXES)}")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise SourceError(f"{name}: not UTF-8 text (byte {error.start})") from None
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(text, name)
    if suffix == ".json":
        return _json(text, name)
    if suffix == ".txt":
        return [{"line": line} for line in text.splitlines() if line.strip()]
    return _table(text, name, "\t" if suffix == ".tsv" else ",", columns)


def read_source(path: str | Path, *, columns: list[str] | None = None, name: str | None = None) -> Source:
    """The file as a Source named after it; SourceError when it cannot be read or has no rows."""
    path = Path(path)
    return Source(name or path.name, read_rows(path, columns=columns))
