"""A task's instances: Records that follow their task's definition and status, each change with its Revision."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update
from sqlmodel import Session

from curation.records import RecordDraft
from db import repo
from db.models import Record, RecordStatus, Revision, Task, utcnow

if TYPE_CHECKING:
    from curation.services.tasks import TaskForm


def live_instances(session: Session, task_id: int) -> list[Record]:
    return list(session.execute(select(Record).where(Record.task_id == task_id, Record.status != RecordStatus.discarded)
                             .order_by(Record.position, Record.id)).scalars())


def sync_instances(session: Session, task: Task, form: TaskForm, *, by: str, reason: str) -> None:
    """Make the task's instance records equal the form's rows: update in place, add, discard the rest."""
    existing = live_instances(session, task.id)
    for n, row in enumerate(form.instances):
        outputs = [o for o in row.outputs if o.strip()]
        if n < len(existing):
            record = existing[n]
            changes = {k: v for k, v in {"instruction": form.definition, "input": row.input, "outputs": outputs,
                                         "position": n}.items() if getattr(record, k) != v}
            if changes:
                repo.update_record(session, record.id, expected_version=record.version, changes=changes, by=by,
                                   reason=reason)
        else:
            repo.insert_records(session, task.dataset_id, [RecordDraft(
                instruction=form.definition, input=row.input, outputs=outputs,
                external_id=row.id or f"{task.name}-{n}", source_line=n)], by=by, reason=reason, task_id=task.id,
                status=RecordStatus(task.status))
    for record in existing[len(form.instances):]:
        repo.update_record(session, record.id, expected_version=record.version,
                           changes={"status": RecordStatus.discarded}, by=by, reason=f"{reason}: instance removed")


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
        rows = session.execute(select(Record).where(Record.id.in_(chunk)).execution_options(populate_existing=True)
                            ).scalars().all()
        session.execute(insert(Revision), [
            {"entity_type": "record", "entity_id": r.id, "version": r.version, "snapshot": repo.snapshot(r),
             "changed_by": by, "changed_at": now, "reason": reason} for r in rows])


def instance_count(session: Session, task_id: int) -> int:
    return session.execute(select(func.count()).select_from(Record).where(
        Record.task_id == task_id, Record.status != RecordStatus.discarded)).scalar_one()
