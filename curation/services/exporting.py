"""Export use cases for the page: a dataset's records, filtered by status, category and quality flag, written to a
file to download. Records stream from the database in batches to the writer, so memory stays flat at any size.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from sqlalchemy import func, select
from sqlmodel import Session

from curation.exporter import ExportError, export_dataset
from curation.formats.writers import EXPORT_FORMATS, write_jsonl, write_parquet
from curation.quality.records import CHECKS
from curation.records import RecordDraft
from curation.services.annotation import InvalidInput
from curation.services.permissions import Actor, PermissionDenied
from db import repo
from db.flag_tables import RecordFlag
from db.models import Record, RecordStatus

ANY_FLAG = "any"  # records that fail at least one quality check
BATCH = 5000
SUFFIXES = {"alpaca": ".jsonl", "messages": ".jsonl", "prompt-completion": ".jsonl", "parquet": ".parquet"}
Progress = Callable[[int, int], None]  # (records written, records in all)


def _may_export(actor: Actor | None) -> None:
    if actor is not None and not actor.reviews:
        raise PermissionDenied("only a curator or admin exports datasets")


@dataclass
class ExportFile:
    path: Path
    count: int
    unit: str  # "record" or "task"


def export_flags() -> list[str]:
    """The quality flags an export can keep to: any, then every check by name."""
    return [ANY_FLAG, *CHECKS]


def default_statuses() -> list[str]:
    """Every status but discarded, as the CLI's export takes by default."""
    return [s.value for s in RecordStatus if s is not RecordStatus.discarded]


def _statuses(statuses: Iterable[str] | None) -> list[RecordStatus]:
    try:
        return [RecordStatus(s) for s in statuses] if statuses else [RecordStatus(s) for s in default_statuses()]
    except ValueError:
        raise InvalidInput(f"statuses are {', '.join(s.value for s in RecordStatus)}") from None


def _filters(dataset_id: int, statuses: list[RecordStatus], category: str | None, flag: str | None) -> list:
    table = Record.__table__
    filters = [table.c.dataset_id == dataset_id, table.c.status.in_([s.value for s in statuses])]
    if category:
        filters.append(table.c.category == category)
    if flag:
        flagged = select(RecordFlag.record_id)
        if flag != ANY_FLAG:
            flagged = flagged.where(RecordFlag.flag == flag)
        filters.append(table.c.id.in_(flagged))
    return filters


def _drafts(session: Session, filters: list, done: Progress | None, total: int) -> Iterator[RecordDraft]:
    """The matching records in id order, read BATCH rows at a time with their training columns only."""
    table = Record.__table__
    columns = repo.TRAINING_COLUMNS
    query = select(*[table.c[name] for name in columns]).where(*filters).order_by(table.c.id)
    result = session.connection().execution_options(yield_per=BATCH).execute(query)
    for count, row in enumerate(result, start=1):
        yield RecordDraft(**dict(zip(columns, row)))
        if done and count % BATCH == 0:
            done(count, total)


def file_name(dataset: str, format: str, suffix: str) -> str:
    """A download's name: the dataset and format, with anything a file system dislikes replaced."""
    return re.sub(r"[^\w.-]+", "_", f"{dataset}-{format}") + suffix


def export_to_file(session: Session, actor: Actor | None, *, dataset: str | None, format: str,
                   statuses: Iterable[str] | None, folder: str | Path, category: str | None = None,
                   flag: str | None = None, progress: Progress | None = None) -> ExportFile:
    """The file in `folder` holding the dataset's matching records (or its SNI tasks, zipped when several)."""
    _may_export(actor)
    if format not in EXPORT_FORMATS:
        raise InvalidInput(f"choose an export format: {', '.join(EXPORT_FORMATS)}")
    found = repo.get_dataset(session, (dataset or "").strip()) if dataset else None
    if found is None:
        raise InvalidInput(f"there is no dataset named {dataset!r}" if dataset else "choose a dataset to export")
    if flag and flag not in export_flags():
        raise InvalidInput(f"unknown quality flag {flag!r}; choose from {', '.join(export_flags())}")
    wanted = _statuses(statuses)
    folder = Path(folder)
    if format == "sni":
        if category or flag:
            raise InvalidInput("a Super-NaturalInstructions export takes whole tasks: "
                               "clear the category and quality flag filters")
        return _sni_file(session, found.name, [s.value for s in wanted], folder)
    filters = _filters(found.id, wanted, category, flag)
    total = session.execute(select(func.count()).select_from(Record.__table__).where(*filters)).scalar_one()
    if not total:
        raise InvalidInput(f"no record of {found.name} matches these filters: nothing to export")
    path = folder / file_name(found.name, format, SUFFIXES[format])
    records = _drafts(session, filters, progress, total)
    count = write_parquet(records, path) if format == "parquet" else write_jsonl(records, path, format)
    if progress:
        progress(count, total)
    return ExportFile(path, count, "record")


def _sni_file(session: Session, dataset: str, statuses: list[str], folder: Path) -> ExportFile:
    tasks_folder = folder / file_name(dataset, "sni", "")
    try:
        count = export_dataset(session, dataset, "sni", tasks_folder, statuses)
    except ExportError as error:
        raise InvalidInput(str(error)) from None
    if count == 1:
        [single] = tasks_folder.iterdir()
        return ExportFile(single, 1, "task")
    archive = shutil.make_archive(str(tasks_folder), "zip", root_dir=tasks_folder)
    shutil.rmtree(tasks_folder)
    return ExportFile(Path(archive), count, "task")
