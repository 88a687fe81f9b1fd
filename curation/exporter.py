"""Export a dataset to the formats trainers take, streamed so memory stays flat."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from sqlmodel import Session

from curation.formats.writers import EXPORT_FORMATS, write_jsonl, write_parquet, write_sni_tasks
from db import repo
from db.models import RecordStatus


class ExportError(Exception):
    pass


def export_dataset(session: Session, dataset_name: str, format: str, out: str | Path,
                   statuses: Iterable[str] | None = None) -> int:
    """Write the dataset's records (or SNI tasks) to `out`; returns how many were written.

    Discarded records are left out unless asked for by status.
    """
    if format not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {format!r} (choose from {', '.join(EXPORT_FORMATS)})")
    dataset = repo.get_dataset(session, dataset_name)
    if dataset is None:
        raise ExportError(f"no dataset named {dataset_name!r}")
    try:
        wanted = [RecordStatus(s) for s in statuses] if statuses else [
            s for s in RecordStatus if s is not RecordStatus.discarded]
    except ValueError as exc:
        raise ExportError(f"{exc}; statuses are {', '.join(s.value for s in RecordStatus)}") from None
    out = Path(out)
    if format == "sni":
        tasks = repo.list_tasks(session, dataset.id)
        if not tasks:
            raise ExportError(f"dataset {dataset_name!r} has no Super-NaturalInstructions tasks to export")
        drafts = [repo.task_draft(session, task) for task in tasks]
        write_sni_tasks(drafts, out)
        return len(drafts)
    records = repo.iter_record_drafts(session, dataset.id, wanted, columns=repo.TRAINING_COLUMNS)
    if format == "parquet":
        return write_parquet(records, out)
    return write_jsonl(records, out, format)
