"""The review queue and the overview counts."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from curation.services.permissions import Actor, PermissionDenied
from db.flags import flag_counts
from db.models import Dataset, Record, RecordStatus, Task


@dataclass
class QueueItem:
    kind: str  # "record" | "task"
    id: int
    title: str
    author: str
    submitted_at: datetime


def review_queue(session: Session, actor: Actor, *, dataset: str | None = None, limit: int = 100) -> list[QueueItem]:
    """Submitted tasks and stand-alone records, oldest first (task instances travel with their task)."""
    if not actor.reviews:
        raise PermissionDenied("only a curator reviews")
    record_q = select(Record.id, Record.instruction, Record.created_by, Record.updated_at).where(
        Record.status == RecordStatus.submitted, Record.task_id.is_(None))
    task_q = select(Task.id, Task.name, Task.created_by, Task.updated_at).where(Task.status == RecordStatus.submitted)
    if dataset:
        dataset_id = session.execute(select(Dataset.id).where(Dataset.name == dataset)).scalar() or -1
        record_q, task_q = record_q.where(Record.dataset_id == dataset_id), task_q.where(Task.dataset_id == dataset_id)
    items = [QueueItem("record", r.id, " ".join(r.instruction.split())[:120], r.created_by or "", r.updated_at)
             for r in session.execute(record_q.order_by(Record.updated_at, Record.id).limit(limit))]
    items += [QueueItem("task", t.id, t.name, t.created_by or "", t.updated_at)
              for t in session.execute(task_q.order_by(Task.updated_at, Task.id).limit(limit))]
    return sorted(items, key=lambda i: (i.submitted_at, i.kind, i.id))[:limit]


@dataclass
class Overview:
    by_status: dict[str, int]
    by_category: list[tuple[str, int]]
    by_author: list[tuple[str, int]]
    by_day: list[tuple[str, int]]
    tasks_by_status: dict[str, int]
    flags: dict[str, int]  # records (not discarded) failing each quality check, every check listed


def overview(session: Session, *, dataset: str | None = None, top: int = 15) -> Overview:
    """Record counts by status, category (top), author (top), day of last change and quality flag; tasks by status."""
    where, task_where, dataset_id = [], [], None
    if dataset:
        dataset_id = session.execute(select(Dataset.id).where(Dataset.name == dataset)).scalar() or -1
        where, task_where = [Record.dataset_id == dataset_id], [Task.dataset_id == dataset_id]

    def grouped(column, *, model=Record, filters=where, limit=None):
        query = select(column, func.count()).select_from(model).where(*filters).group_by(column)
        query = query.order_by(func.count().desc()).limit(limit) if limit else query.order_by(column)
        return [(getattr(k, "value", k), n) for k, n in session.execute(query)]

    day = func.date(Record.updated_at)
    return Overview(
        by_status={status: n for status, n in grouped(Record.status)},
        by_category=[(k or "(none)", n) for k, n in grouped(Record.category, limit=top)],
        by_author=[(k or "(import)", n) for k, n in grouped(Record.created_by, limit=top)],
        by_day=[(str(k), n) for k, n in grouped(day)],
        tasks_by_status={status: n for status, n in grouped(Task.status, model=Task, filters=task_where)},
        flags=flag_counts(session, dataset_id),
    )
