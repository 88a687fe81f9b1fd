"""Import use cases for the page and the CLI: preview uploads, import files or Hub datasets, remembered mappings.

The session is passed in and who may import is checked first: curators and admins (the CLI passes no actor).
Every source is parsed before anything is written, then everything goes in one transaction: on any refusal the
database is as it was. The page gets short names and words (`import_for_page`); the CLI the typed errors.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from sqlmodel import Session

from curation.formats import FormatError, RejectedRow, read_file
from curation.hub_import import HubImportError, HubSource, RowsRead, read_hub
from curation.importer import AllRejectedError, ImportReport, Progress, StrictImportError, check_parsed, import_parsed
from curation.records import RecordDraft
from curation.services.annotation import InvalidInput, refuse_null_bytes
from curation.services.permissions import Actor, PermissionDenied
from db import repo
from db.import_tables import ImportMapping
from db.models import utcnow

MAPPED_FIELDS = ("instruction", "input", "output", "system", "category")  # what a table column can become
PREVIEW_ROWS = 5
PARQUET_MAGIC = b"PAR1"


def _may_import(actor: Actor | None) -> None:
    if actor is not None and not actor.reviews:
        raise PermissionDenied("only a curator or admin imports data")


def clean_mapping(mapping: dict[str, str | None] | None) -> dict[str, str]:
    """{field: column} with the unmapped fields left out; InvalidInput for a field no record has."""
    chosen = {f: c.strip() for f, c in (mapping or {}).items() if isinstance(c, str) and c.strip()}
    unknown = [f for f in chosen if f not in MAPPED_FIELDS]
    if unknown:
        raise InvalidInput(f"a column maps to one of {', '.join(MAPPED_FIELDS)}, not {unknown[0]!r}")
    return chosen


def source_name(path: str) -> str:
    """What the page calls a source: a file by its name (uploads sit in a temporary folder), a Hub source as is."""
    return path if path.startswith("hub:") else Path(path).name


# ---- preview ------------------------------------------------------------------------------------

@dataclass
class FilePreview:
    name: str
    format: str | None  # as detected, e.g. "csv:alpaca"; None when the file cannot be read as it is
    rows_read: int = 0
    records: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    columns: list[str] | None = None  # a table's header, the choices of the column mapping
    problem: str | None = None  # why the file cannot be imported as it is
    sample: list[RecordDraft] = field(default_factory=list)  # the first records, as they would be stored


def table_columns(path: str | Path, format: str = "auto") -> list[str] | None:
    """The header of a CSV/TSV or the column names of a Parquet file; None for other files (or an unreadable one)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if format == "parquet" or (format == "auto" and magic == PARQUET_MAGIC):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if format == "csv" or (format == "auto" and path.suffix.lower() in (".csv", ".tsv")):
            with open(path, encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ","), None)
            return [column for column in header or [] if column]
    except (OSError, UnicodeDecodeError, ValueError, csv.Error):
        return None
    return None


def preview_files(actor: Actor | None, paths: Iterable[str], *, format: str = "auto",
                  mapping: dict[str, str | None] | None = None, rows: int = PREVIEW_ROWS) -> list[FilePreview]:
    """For each file: the format detected, counts, rejected rows and its first records as they would be stored."""
    _may_import(actor)
    chosen = clean_mapping(mapping)
    previews = []
    for path in paths:
        columns = table_columns(path, format)
        try:
            parsed = read_file(path, format=format, mapping=chosen or None)
        except FormatError as error:
            problem = error.problem
            if columns and not chosen and "no instruction fields" in problem:
                problem = "has no instruction column: choose below which column holds the instruction"
            previews.append(FilePreview(source_name(str(path)), None, columns=columns, problem=problem))
            continue
        previews.append(FilePreview(source_name(parsed.path), parsed.format, parsed.rows_read, len(parsed.records),
                                    parsed.rejected, columns, sample=parsed.records[:rows]))
    return previews


# ---- import -------------------------------------------------------------------------------------

def import_sources(session: Session, *, dataset: str, sources: list[str | HubSource], format: str = "auto",
                   mapping: dict[str, str] | None = None, strict: bool = False, keep_duplicates: bool = False,
                   token: str | None = None, actor: Actor | None = None, by: str | None = None,
                   progress: Progress | None = None, reading: RowsRead | None = None) -> ImportReport:
    """The report of importing every file and Hub source: all parsed first, then stored in one transaction.

    `by` names who imported in the history when no actor is signed in (the CLI's --user).

    Raises FormatError (AllRejectedError among them), StrictImportError or HubImportError, with nothing written.
    A mapping used by a successful import is remembered for the dataset.
    """
    _may_import(actor)
    parsed, origins = [], {}
    for source in sources:
        if isinstance(source, HubSource):
            hub_file, origin = read_hub(source, token=token, format=format, mapping=mapping, progress=reading)
            parsed.append(hub_file)
            origins[hub_file.path] = origin
        else:
            parsed.append(read_file(source, format=format, mapping=mapping))
    check_parsed(parsed, strict=strict)
    by = actor.name if actor else by
    report = import_parsed(session, dataset, parsed, keep_duplicates=keep_duplicates, by=by, progress=progress,
                           sources=origins)
    if mapping:
        _remember(session, dataset, mapping, by)
    return report


@dataclass
class PageImport:
    """What the page shows after an import: the report, or why nothing was imported, and every rejected row."""

    report: ImportReport | None
    refused: str | None = None
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (source, location, reason)
    created: bool = False  # the dataset was new: this import created it


def import_for_page(session: Session, actor: Actor, *, dataset: str | None, sources: list[str | HubSource],
                    format: str = "auto", mapping: dict[str, str | None] | None = None, strict: bool = False,
                    keep_duplicates: bool = False, token: str | None = None, progress: Progress | None = None,
                    reading: RowsRead | None = None) -> PageImport:
    """What the page shows after importing as the CLI does (import_sources).

    A refusal of the rows (Strict, or every row of a file rejected) comes back with the rejected rows to show;
    a source that cannot be read at all is InvalidInput in words. Nothing is written on either."""
    _may_import(actor)
    name = (dataset or "").strip()
    if not name:
        raise InvalidInput("choose the dataset to import into, or type the name of a new one")
    refuse_null_bytes({"dataset name": name})
    if not sources:
        raise InvalidInput("add a file to import first")
    created = repo.get_dataset(session, name) is None
    try:
        report = import_sources(session, dataset=name, sources=sources, format=format, mapping=clean_mapping(mapping),
                                strict=strict, keep_duplicates=keep_duplicates, token=token, actor=actor,
                                progress=progress, reading=reading)
    except StrictImportError as refused:
        rejected = [(source_name(p), str(r.location), r.reason) for p, rows in refused.rejected.items() for r in rows]
        return PageImport(None, f"Strict is on and {len(rejected)} row(s) were rejected", rejected)
    except AllRejectedError as refused:
        rejected = [(source_name(refused.path), r.location, r.reason) for r in refused.rejected]
        return PageImport(None, f"all {len(rejected)} rows of {source_name(refused.path)} were rejected", rejected)
    except FormatError as error:
        # Led by words, not the name: the page capitalizes a message's first letter.
        raise InvalidInput(f"nothing was imported: {source_name(error.path)}: {error.problem}") from None
    except HubImportError as error:
        raise InvalidInput(f"nothing was imported: {error}") from None
    rejected = [(source_name(f.path), r.location, r.reason) for f in report.files for r in f.rejected]
    return PageImport(report, None, rejected, created)


def write_rejected_csv(rejected: list[tuple[str, str, str]], path: str | Path) -> Path:
    """A CSV of the rejected rows (source, location, reason) at `path`, for a spreadsheet; returns the path."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["source", "location", "reason"])
        writer.writerows(rejected)
    return path


# ---- remembered mappings ------------------------------------------------------------------------

def remembered_mapping(session: Session, actor: Actor | None, dataset: str | None) -> dict[str, str]:
    """The column mapping the dataset's last table import used ({} when none did, or no such dataset)."""
    _may_import(actor)
    found = repo.get_dataset(session, (dataset or "").strip()) if dataset else None
    stored = session.get(ImportMapping, found.id) if found is not None else None
    return dict(stored.mapping) if stored is not None else {}


def _remember(session: Session, dataset: str, mapping: dict[str, str], by: str | None) -> None:
    found = repo.get_dataset(session, dataset)
    stored = session.get(ImportMapping, found.id) or ImportMapping(dataset_id=found.id)
    stored.mapping, stored.updated_by, stored.updated_at = dict(mapping), by, utcnow()
    session.add(stored)
    session.commit()
