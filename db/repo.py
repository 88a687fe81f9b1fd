"""Repository functions: each takes the session it works in and never commits on its own."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Iterator

from sqlalchemy import func, insert, text, update
from sqlmodel import Session, select

from curation.records import SNI_LIST_FIELDS, ExampleDraft, RecordDraft, TaskDraft, content_hash
from db.flags import add_flags, store_flags
from db.models import Dataset, Example, Record, RecordStatus, Revision, Task, User, utcnow

RECORD_EDITABLE = {"instruction", "input", "outputs", "system_prompt", "messages", "category", "status",
                   "review_note", "task_id", "position", "extra", "provenance", "machine_draft",
                   "tools"}  # the function schemas
TASK_EDITABLE = {"name", "definition", "emphasis_and_caution", "things_to_avoid", "status",
                 *SNI_LIST_FIELDS.values(), "extra"}


class NotFoundError(LookupError):
    pass


class ConflictError(Exception):
    """Someone else saved first; `current` is what they saved."""

    def __init__(self, entity: str, entity_id: int, expected_version: int, current: dict[str, Any]):
        self.entity, self.entity_id, self.expected_version, self.current = entity, entity_id, expected_version, current
        super().__init__(
            f"{entity} {entity_id} was changed by {current.get('updated_by') or 'someone else'} "
            f"(version {current.get('version')}, you edited version {expected_version}); reload to see their change"
        )


# ---- datasets ------------------------------------------------------------------------------

def get_dataset(session: Session, name: str) -> Dataset | None:
    return session.exec(select(Dataset).where(Dataset.name == name)).first()


def get_or_create_dataset(session: Session, name: str, **fields: Any) -> Dataset:
    dataset = get_dataset(session, name)
    if dataset is None:
        dataset = Dataset(name=name, **fields)
        session.add(dataset)
        session.flush()
    return dataset


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.exec(select(Dataset).order_by(Dataset.name)))


# ---- snapshots and revisions ------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, RecordStatus):
        return value.value
    return getattr(value, "value", value)


def snapshot(row: Record | Task) -> dict[str, Any]:
    """A full JSON snapshot of a record or task, as stored in its Revision."""
    return {column: _jsonable(getattr(row, column)) for column in type(row).model_fields}


def add_revision(session: Session, row: Record | Task, *, by: str | None, reason: str | None) -> None:
    session.add(Revision(entity_type=type(row).__name__.lower(), entity_id=row.id, version=row.version,
                         snapshot=snapshot(row), changed_by=by, reason=reason))


def history(session: Session, entity_type: str, entity_id: int) -> list[Revision]:
    return list(session.exec(
        select(Revision).where(Revision.entity_type == entity_type, Revision.entity_id == entity_id)
        .order_by(Revision.version)
    ))


# ---- records ------------------------------------------------------------------------------------

def existing_hashes(session: Session, dataset_id: int) -> set[str]:
    return set(session.exec(select(Record.content_hash).where(Record.dataset_id == dataset_id)))


def _allocate_record_ids(session: Session, first_row: dict, count: int) -> list[int]:
    """Ids for `count` new records, the first of which (first_row) is inserted here.

    Bulk inserts then carry explicit ids, so no per-row RETURNING round trip is needed.
    PostgreSQL draws them from the sequence; SQLite gives max(id)+1 to each new row and,
    once our first insert holds the write lock, nobody else can take ids in between.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        sequence = connection.execute(text("SELECT pg_get_serial_sequence('record', 'id')")).scalar_one()
        return list(connection.execute(text("SELECT nextval(:seq) FROM generate_series(1, :n)"),
                                       {"seq": sequence, "n": count}).scalars())
    first_id = connection.execute(insert(Record.__table__).returning(Record.__table__.c.id), first_row).scalar_one()
    return list(range(first_id, first_id + count))


def insert_records(session: Session, dataset_id: int, drafts: list[RecordDraft], *, by: str | None,
                   reason: str, task_id: int | None = None, status: RecordStatus = RecordStatus.draft,
                   hashes: list[str] | None = None, origin: str = "human",
                   provenances: list[dict | None] | None = None, generation_job_id: int | None = None) -> list[int]:
    """Insert many records and their first Revision in bulk; returns their ids in order.

    `origin` says how they came in (curation.provenance.ORIGINS); `provenances`, one per draft, who wrote what.
    """
    from curation.provenance import machine_draft_state

    if not drafts:
        return []
    now = utcnow()
    hashes = hashes or [d.hash() for d in drafts]
    rows = [
        {
            "dataset_id": dataset_id, "task_id": task_id, "position": d.source_line if task_id else None,
            "external_id": d.external_id, "instruction": d.instruction, "input": d.input,
            "outputs": list(d.outputs), "system_prompt": d.system_prompt, "messages": d.messages,
            "tools": d.tools,
            "category": d.category, "source_file": d.source_file, "source_line": d.source_line,
            "extra": d.extra, "status": status.value, "review_note": None, "created_by": by, "updated_by": by,
            "created_at": now, "updated_at": now, "version": 1, "content_hash": digest,
            "origin": origin, "provenance": provenance, "machine_draft": machine_draft_state(provenance),
            "generation_job_id": generation_job_id,
        }
        for d, digest, provenance in zip(drafts, hashes, provenances or [None] * len(drafts))
    ]
    ids = _allocate_record_ids(session, rows[0], len(rows))
    for record_id, row in zip(ids, rows):
        row["id"] = record_id
    connection = session.connection()
    already_inserted = 0 if connection.dialect.name == "postgresql" else 1
    if len(rows) > already_inserted:
        connection.execute(insert(Record.__table__), rows[already_inserted:])
    stamp = now.isoformat()
    connection.execute(insert(Revision.__table__), [
        {"entity_type": "record", "entity_id": row["id"], "version": 1, "changed_by": by, "changed_at": now,
         "reason": reason, "snapshot": {**row, "created_at": stamp, "updated_at": stamp}}
        for row in rows
    ])
    add_flags(session, ids, [(d.instruction, d.input, d.outputs) for d in drafts])
    return ids


def get_record(session: Session, record_id: int) -> Record:
    record = session.get(Record, record_id)
    if record is None:
        raise NotFoundError(f"record {record_id} does not exist")
    return record


def create_record(session: Session, dataset_id: int, draft: RecordDraft, *, by: str | None,
                  reason: str = "created", status: RecordStatus = RecordStatus.draft, origin: str = "human",
                  provenance: dict | None = None) -> Record:
    [record_id] = insert_records(session, dataset_id, [draft], by=by, reason=reason, status=status, origin=origin,
                                 provenances=[provenance])
    return get_record(session, record_id)


def update_record(session: Session, record_id: int, *, expected_version: int, changes: dict[str, Any],
                  by: str | None, reason: str | None = None) -> Record:
    """Apply changes if nobody saved since `expected_version`; leaves a Revision. Raises ConflictError."""
    unknown = set(changes) - RECORD_EDITABLE
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
    current = get_record(session, record_id)
    merged = {k: changes.get(k, getattr(current, k)) for k in ("instruction", "input", "outputs", "messages", "tools")}
    values = {**changes, "version": Record.version + 1, "updated_by": by, "updated_at": utcnow(),
              # the tools join the duplicate key
              "content_hash": content_hash(merged["instruction"], merged["input"], merged["outputs"], merged["messages"],
                                           merged["tools"])}
    result = session.execute(
        update(Record).where(Record.id == record_id, Record.version == expected_version).values(**values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(current)
    if result.rowcount != 1:
        raise ConflictError("record", record_id, expected_version, snapshot(current))
    if changes.keys() & {"instruction", "input", "outputs"}:
        store_flags(session, {record_id: (current.instruction, current.input, current.outputs)})
    add_revision(session, current, by=by, reason=reason)
    session.flush()
    return current


def iter_records(session: Session, dataset_id: int, statuses: Iterable[RecordStatus] | None = None,
                 batch_size: int = 5000) -> Iterator[Record]:
    """Records of a dataset in id order, streamed in batches so memory stays flat."""
    query = select(Record).where(Record.dataset_id == dataset_id)
    if statuses:
        query = query.where(Record.status.in_(list(statuses)))
    last_id = 0
    while True:
        batch = list(session.exec(query.where(Record.id > last_id).order_by(Record.id).limit(batch_size)))
        if not batch:
            return
        yield from batch
        last_id = batch[-1].id
        session.expunge_all()


# "tools": a tool-calling conversation trains with its function schemas.
TRAINING_COLUMNS = ("instruction", "input", "outputs", "system_prompt", "messages", "tools", "category")
DRAFT_COLUMNS = (*TRAINING_COLUMNS, "source_file", "source_line", "external_id", "extra")


def iter_record_drafts(session: Session, dataset_id: int, statuses: Iterable[RecordStatus] | None = None,
                       columns: tuple[str, ...] = DRAFT_COLUMNS, batch_size: int = 5000) -> Iterator[RecordDraft]:
    """A dataset's records as drafts in id order: plain column reads, no ORM objects (fast export).

    `columns=TRAINING_COLUMNS` reads only what a training format needs."""
    table = Record.__table__
    query = select(*[table.c[name] for name in columns]).where(table.c.dataset_id == dataset_id)
    if statuses:
        query = query.where(table.c.status.in_([s.value for s in statuses]))
    result = session.connection().execution_options(yield_per=batch_size).execute(query.order_by(table.c.id))
    for row in result:
        yield RecordDraft(**dict(zip(columns, row)))


def record_draft(record: Record) -> RecordDraft:
    return RecordDraft(
        instruction=record.instruction, input=record.input, outputs=list(record.outputs),
        system_prompt=record.system_prompt, messages=record.messages, tools=record.tools,
        category=record.category,
        source_file=record.source_file, source_line=record.source_line, external_id=record.external_id,
        extra=record.extra,
    )


# ---- tasks ----------------------------------------------------------------------------------------

def insert_task(session: Session, dataset_id: int, draft: TaskDraft, *, by: str | None, reason: str,
                instances: list[RecordDraft] | None = None, hashes: list[str] | None = None,
                origin: str = "human") -> Task:
    """A task with its examples and instances (all of draft.instances unless given)."""
    task = Task(dataset_id=dataset_id, name=draft.name, definition=draft.definition,
                emphasis_and_caution=draft.emphasis_and_caution, things_to_avoid=draft.things_to_avoid,
                extra=draft.extra, source_file=draft.source_file, created_by=by, updated_by=by, **draft.lists)
    session.add(task)
    session.flush()
    session.execute(insert(Example), [
        {"task_id": task.id, "kind": e.kind, "position": i, "input": e.input, "output": e.output,
         "explanation": e.explanation, "suggestion": e.suggestion, "extra": e.extra}
        for i, e in enumerate(draft.examples)
    ]) if draft.examples else None
    add_revision(session, task, by=by, reason=reason)
    insert_records(session, dataset_id, draft.instances if instances is None else instances,
                   by=by, reason=reason, task_id=task.id, hashes=hashes, origin=origin)
    return task


def list_tasks(session: Session, dataset_id: int) -> list[Task]:
    return list(session.exec(select(Task).where(Task.dataset_id == dataset_id).order_by(Task.id)))


def task_draft(session: Session, task: Task) -> TaskDraft:
    """A stored task with its examples and instances, as formats.sni writes it."""
    examples = session.exec(select(Example).where(Example.task_id == task.id).order_by(Example.position))
    instances = session.exec(select(Record).where(Record.task_id == task.id, Record.status != RecordStatus.discarded)
                             .order_by(Record.position, Record.id))
    return TaskDraft(
        name=task.name, definition=task.definition, emphasis_and_caution=task.emphasis_and_caution,
        things_to_avoid=task.things_to_avoid,
        lists={column: getattr(task, column) for key, column in SNI_LIST_FIELDS.items()
               if getattr(task, column) is not None or key in (task.extra or {}).get("key_order", [])},
        examples=[ExampleDraft(kind=e.kind.value if hasattr(e.kind, "value") else e.kind, input=e.input,
                               output=e.output, explanation=e.explanation, suggestion=e.suggestion, extra=e.extra)
                  for e in examples],
        instances=[record_draft(r) for r in instances],
        extra=task.extra or {}, source_file=task.source_file,
    )


# ---- users and bookkeeping -------------------------------------------------------------------------

def get_user(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(User.name == name)).first()


def table_counts(session: Session) -> dict[str, int]:
    """Rows per table: what tests compare before and after a refused operation."""
    return {model.__tablename__: session.exec(select(func.count()).select_from(model)).one()
            for model in (Dataset, Task, Example, Record, Revision, User)}
