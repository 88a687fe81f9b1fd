"""The review queue and the overview counts."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlmodel import Session

from curation.services.annotation import InvalidInput
from curation.services.permissions import Actor, PermissionDenied
from db.flags import flag_counts
from db.models import Dataset, Record, RecordStatus, Task
from db.score_tables import RecordScore


@dataclass
class QueueItem:
    kind: str  # "record" | "task"
    id: int
    title: str
    author: str
    submitted_at: datetime
    score: float | None = None  # the score the queue is ordered by, when it is


@dataclass(frozen=True)
class QueueOrder:
    label: str
    highest_first: bool  # which end of the score is the worst, so it is reviewed first


# Worst first, per score: a low judge rating; an IFD near or above 1 (the instruction does not help predict the
# output); a surprising output (high perplexity); a record sitting on another (likely a near-duplicate); a short or
# repetitive output.
QUEUE_ORDERS = {  # by the stored score's name
    "judge": QueueOrder("Judge rating, lowest first", False),
    "ifd": QueueOrder("IFD, highest first", True),
    "ppl": QueueOrder("Perplexity, highest first", True),
    "nn_distance": QueueOrder("Nearest neighbour, closest first", False),
    "length": QueueOrder("Length, shortest first", False),
    "mtld": QueueOrder("Lexical diversity (MTLD), lowest first", False),
}


def review_queue(session: Session, actor: Actor, *, dataset: str | None = None, limit: int = 100,
                 order: str | None = None) -> list[QueueItem]:
    """Submitted tasks and stand-alone records, oldest first (task instances travel with their task).

    With `order` (a key of QUEUE_ORDERS), records come worst first by that score, each with its value; records
    without the score, then tasks (which have no scores), follow oldest first.
    """
    if not actor.reviews:
        raise PermissionDenied("only a curator reviews")
    if order and order not in QUEUE_ORDERS:
        raise InvalidInput(f"the queue cannot be ordered by {order!r}; choose one of {', '.join(QUEUE_ORDERS)}")
    by = QUEUE_ORDERS.get(order or "")
    record_q = select(Record.id, Record.instruction, Record.created_by, Record.updated_at,
                      *([RecordScore.value] if by else [])).where(
        Record.status == RecordStatus.submitted, Record.task_id.is_(None))
    task_q = select(Task.id, Task.name, Task.created_by, Task.updated_at).where(Task.status == RecordStatus.submitted)
    if dataset:
        dataset_id = session.execute(select(Dataset.id).where(Dataset.name == dataset)).scalar() or -1
        record_q, task_q = record_q.where(Record.dataset_id == dataset_id), task_q.where(Task.dataset_id == dataset_id)
    if by is None:
        record_q = record_q.order_by(Record.updated_at, Record.id)
    else:
        # The worst `limit` records by the score, not the oldest `limit` sorted: unscored ones go last.
        record_q = record_q.outerjoin(RecordScore, and_(RecordScore.record_id == Record.id,
                                                        RecordScore.name == order))
        worst = RecordScore.value.desc() if by.highest_first else RecordScore.value.asc()
        record_q = record_q.order_by(RecordScore.value.is_(None), worst, Record.updated_at, Record.id)
    items = [QueueItem("record", r[0], " ".join(r[1].split())[:120], r[2] or "", r[3],
                       r[4] if by else None) for r in session.execute(record_q.limit(limit))]
    items += [QueueItem("task", t.id, t.name, t.created_by or "", t.updated_at)
              for t in session.execute(task_q.order_by(Task.updated_at, Task.id).limit(limit))]
    if by is None:
        return sorted(items, key=lambda i: (i.submitted_at, i.kind, i.id))[:limit]
    scored = [i for i in items if i.score is not None]  # already worst first
    rest = sorted((i for i in items if i.score is None), key=lambda i: (i.submitted_at, i.kind, i.id))
    return (scored + rest)[:limit]


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
