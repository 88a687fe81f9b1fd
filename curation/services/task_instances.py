"""A task's instances: Records that follow their task's definition and status, each change with its Revision."""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import bindparam, func, insert, select, update
from sqlmodel import Session

from curation.records import RecordDraft, content_hash
from db import repo
from db.flags import store_flags
from db.models import Record, RecordStatus, Revision, Task, utcnow

def live_instances(session: Session, task_id: int) -> list[Record]:
    return list(session.execute(select(Record).where(Record.task_id == task_id, Record.status != RecordStatus.discarded)
                             .order_by(Record.position, Record.id)).scalars())


def sync_instances(session: Session, task: Task, definition: str, rows: Sequence[Any], *, by: str,
                   reason: str) -> None:
    """Make the task's instance records equal `rows` (the editor's instances: .input, .outputs, .id) under
    `definition`: update in place, add, discard the rest.

    Changed rows are written in bulk (one executemany, version-checked, and one insert of their
    Revisions), so a definition edit on a task of 6,000 instances stays a few seconds at most.
    """
    existing = live_instances(session, task.id)
    changed: list[dict] = []
    added: list[RecordDraft] = []
    for n, row in enumerate(rows):
        outputs = [o for o in row.outputs if o.strip()]
        if n < len(existing):
            record = existing[n]
            wanted = {"instruction": definition, "input": row.input, "outputs": outputs, "position": n}
            if any(getattr(record, k) != v for k, v in wanted.items()):
                changed.append({"record": record, "values": wanted})
        else:
            added.append(RecordDraft(instruction=definition, input=row.input, outputs=outputs,
                                     external_id=row.id or f"{task.name}-{n}", source_line=n))
    removed = existing[len(rows):]
    now = utcnow()
    if changed:
        params = [{"rid": c["record"].id, "old_version": c["record"].version,
                   **{f"new_{k}": v for k, v in c["values"].items()},
                   "new_hash": content_hash(c["values"]["instruction"], c["values"]["input"],
                                            c["values"]["outputs"], c["record"].messages)} for c in changed]
        columns = Record.__table__.c
        statement = (update(Record).where(Record.id == bindparam("rid"), Record.version == bindparam("old_version"))
                     .values(instruction=bindparam("new_instruction"), input=bindparam("new_input"),
                             outputs=bindparam("new_outputs", type_=columns.outputs.type),
                             position=bindparam("new_position"), content_hash=bindparam("new_hash"),
                             version=Record.version + 1, updated_by=by, updated_at=now))
        result = session.connection().execute(statement, params)
        if result.rowcount != len(params):
            raise repo.ConflictError("task", task.id, task.version - 1, {"updated_by": "someone else",
                                                                          "version": task.version})
        _add_revisions(session, [c["record"].id for c in changed], by=by, reason=reason, at=now)
        store_flags(session, {c["record"].id: (c["values"]["instruction"], c["values"]["input"],
                                               c["values"]["outputs"]) for c in changed})
    if added:
        repo.insert_records(session, task.dataset_id, added, by=by, reason=reason, task_id=task.id,
                            status=RecordStatus(task.status))
    for record in removed:
        repo.update_record(session, record.id, expected_version=record.version,
                           changes={"status": RecordStatus.discarded}, by=by, reason=f"{reason}: instance removed")


def _add_revisions(session: Session, ids: list[int], *, by: str, reason: str, at) -> None:
    """A Revision (full snapshot, as stored now) for each record of `ids`."""
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = session.execute(select(Record).where(Record.id.in_(chunk)).execution_options(populate_existing=True)
                               ).scalars().all()
        session.execute(insert(Revision), [
            {"entity_type": "record", "entity_id": r.id, "version": r.version, "snapshot": repo.snapshot(r),
             "changed_by": by, "changed_at": at, "reason": reason} for r in rows])


def set_instance_status(session: Session, task_id: int, status: RecordStatus, *, by: str, reason: str) -> None:
    """Give the task's live instances the task's status, in bulk, each with its Revision."""
    ids = list(session.execute(select(Record.id).where(Record.task_id == task_id, Record.status != RecordStatus.discarded,
                                                    Record.status != status)).scalars())
    if not ids:
        return
    now = utcnow()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        session.execute(update(Record).where(Record.id.in_(chunk)).values(
            status=status, version=Record.version + 1, updated_by=by, updated_at=now)
            .execution_options(synchronize_session=False))
    _add_revisions(session, ids, by=by, reason=reason, at=now)


def instance_count(session: Session, task_id: int) -> int:
    return session.execute(select(func.count()).select_from(Record).where(
        Record.task_id == task_id, Record.status != RecordStatus.discarded)).scalar_one()
