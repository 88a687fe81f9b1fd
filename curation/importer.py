"""Import files (and Hub datasets) into a dataset: all or nothing per command, duplicates skipped and counted."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sqlmodel import Session

from curation.formats import FormatError, RejectedRow, read_file
from curation.formats.readers import ParsedFile
from curation.records import RecordDraft
from db import repo

Progress = Callable[[int, int], None]  # (records done, records in all)
BATCH = 5000
FIRST_REASONS = 3  # how many rejected rows a refusal names


class StrictImportError(Exception):
    """--strict and some rows were rejected: nothing was written."""

    def __init__(self, rejected: dict[str, list[RejectedRow]]):
        self.rejected = rejected
        count = sum(len(v) for v in rejected.values())
        first_file, first_rows = next(iter(rejected.items()))
        super().__init__(f"{first_file}: {count} row(s) rejected in strict mode, nothing imported "
                         f"(first: {first_rows[0]})")


class AllRejectedError(FormatError):
    """Every row of a file was rejected: importing it would add nothing, so nothing is imported."""

    def __init__(self, path: str, rejected: list[RejectedRow]):
        self.rejected = rejected
        first = "; ".join(str(row) for row in rejected[:FIRST_REASONS])
        super().__init__(path, f"all {len(rejected)} row(s) rejected, nothing imported (first: {first})")


@dataclass
class FileReport:
    path: str
    format: str
    rows_read: int
    imported: int = 0
    duplicates_skipped: int = 0
    tasks: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


@dataclass
class ImportReport:
    dataset: str
    files: list[FileReport]

    @property
    def imported(self) -> int:
        return sum(f.imported for f in self.files)

    @property
    def duplicates_skipped(self) -> int:
        return sum(f.duplicates_skipped for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(len(f.rejected) for f in self.files)


def parse_files(paths: list[str | Path], *, format: str = "auto",
                mapping: dict[str, str] | None = None, strict: bool = False) -> list[ParsedFile]:
    """Parse every file before anything is written; FormatError or StrictImportError on bad input."""
    parsed = [read_file(path, format=format, mapping=mapping) for path in paths]
    check_parsed(parsed, strict=strict)
    return parsed


def check_parsed(parsed: list[ParsedFile], *, strict: bool = False) -> None:
    """Refuse the whole import: AllRejectedError when a file has rows and none was taken,
    StrictImportError in strict mode when any row was rejected."""
    for p in parsed:
        if p.rejected and not p.records:
            raise AllRejectedError(p.path, p.rejected)
    if strict and any(p.rejected for p in parsed):
        raise StrictImportError({p.path: p.rejected for p in parsed if p.rejected})


def import_files(session: Session, dataset_name: str, paths: list[str | Path], *, format: str = "auto",
                 mapping: dict[str, str] | None = None, strict: bool = False, keep_duplicates: bool = False,
                 by: str | None = None, progress: Progress | None = None) -> ImportReport:
    """Import files into a dataset in one transaction: on any error the database is as before."""
    parsed = parse_files(paths, format=format, mapping=mapping, strict=strict)
    return import_parsed(session, dataset_name, parsed, keep_duplicates=keep_duplicates, by=by, progress=progress)


def import_parsed(session: Session, dataset_name: str, parsed: list[ParsedFile], *, keep_duplicates: bool = False,
                  by: str | None = None, progress: Progress | None = None,
                  sources: dict[str, dict] | None = None) -> ImportReport:
    """The report of storing parsed files in one transaction (the dataset is created if new); on any error the
    database is as before.

    `sources` maps a parsed path to where its rows came from ({"hub": ..., "revision": ...}): each record keeps it
    in its provenance with its row, so the same rows can be read again.
    """
    total = sum(len(p.records) for p in parsed)
    done = 0
    try:
        dataset = repo.get_or_create_dataset(session, dataset_name)
        seen = repo.existing_hashes(session, dataset.id)
        reports = []
        for p in parsed:
            report = FileReport(p.path, p.format, p.rows_read, rejected=list(p.rejected))
            source = (sources or {}).get(p.path)
            reason = f"imported from {p.path if source else Path(p.path).name}"
            if p.tasks:
                for task in p.tasks:
                    kept, hashes = _without_duplicates(task.instances, seen, keep_duplicates, report)
                    repo.insert_task(session, dataset.id, task, by=by, reason=reason, instances=kept, hashes=hashes,
                                     origin="imported")
                    report.tasks += 1
                    done += len(task.instances)
                    if progress:
                        progress(done, total)
            else:
                for start in range(0, len(p.records), BATCH):
                    batch = p.records[start:start + BATCH]
                    kept, hashes = _without_duplicates(batch, seen, keep_duplicates, report)
                    provenances = [{"source": {**source, "row": d.source_line}} for d in kept] if source else None
                    repo.insert_records(session, dataset.id, kept, by=by, reason=reason, hashes=hashes,
                                        origin="imported", provenances=provenances)
                    done += len(batch)
                    if progress:
                        progress(done, total)
            reports.append(report)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return ImportReport(dataset_name, reports)


def _without_duplicates(drafts: list[RecordDraft], seen: set[str], keep_duplicates: bool,
                        report: FileReport) -> tuple[list[RecordDraft], list[str]]:
    """Drop exact duplicates of records already in the dataset or earlier in this import.

    Returns the records kept and their content hashes."""
    kept, hashes = [], []
    for draft in drafts:
        digest = draft.hash()
        if digest in seen and not keep_duplicates:
            report.duplicates_skipped += 1
            continue
        seen.add(digest)
        kept.append(draft)
        hashes.append(digest)
    report.imported += len(kept)
    return kept, hashes


__all__ = ["AllRejectedError", "FormatError", "ImportReport", "StrictImportError", "check_parsed", "import_files",
           "import_parsed", "parse_files"]
