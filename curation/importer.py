"""Import files into a dataset: all or nothing per command, duplicates skipped and counted."""
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


class StrictImportError(Exception):
    """--strict and some rows were rejected: nothing was written."""

    def __init__(self, rejected: dict[str, list[RejectedRow]]):
        self.rejected = rejected
        count = sum(len(v) for v in rejected.values())
        first_file, first_rows = next(iter(rejected.items()))
        super().__init__(f"{first_file}: {count} row(s) rejected in strict mode, nothing imported "
                         f"(first: {first_rows[0]})")


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
    if strict and any(p.rejected for p in parsed):
        raise StrictImportError({p.path: p.rejected for p in parsed if p.rejected})
    return parsed


def import_files(session: Session, dataset_name: str, paths: list[str | Path], *, format: str = "auto",
                 mapping: dict[str, str] | None = None, strict: bool = False, keep_duplicates: bool = False,
                 by: str | None = None, progress: Progress | None = None) -> ImportReport:
    """Import files into a dataset in one transaction: on any error the database is as before."""
    parsed = parse_files(paths, format=format, mapping=mapping, strict=strict)
    total = sum(len(p.records) for p in parsed)
    done = 0
    try:
        dataset = repo.get_or_create_dataset(session, dataset_name)
        seen = repo.existing_hashes(session, dataset.id)
        reports = []
        for p in parsed:
            report = FileReport(p.path, p.format, p.rows_read, rejected=list(p.rejected))
            reason = f"imported from {Path(p.path).name}"
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
                    repo.insert_records(session, dataset.id, kept, by=by, reason=reason, hashes=hashes,
                                        origin="imported")
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


__all__ = ["FormatError", "ImportReport", "StrictImportError", "import_files", "parse_files"]
