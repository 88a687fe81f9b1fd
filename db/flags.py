"""Records' quality flags in the database: written beside every write of a record's text, counted per check.

Flags derive from the text as the content hash does, so db.repo stores them wherever it writes instruction,
input or outputs, and no caller can forget them. The checks themselves (curation.quality.records) are plain
Python that knows nothing of storage.
"""
from __future__ import annotations

from sqlalchemy import delete, func, insert, select
from sqlmodel import Session

from curation.quality.records import CHECKS, record_flags
from db.flag_tables import RecordFlag
from db.models import Record, RecordStatus

Texts = tuple[str, str, list[str]]  # (instruction, input, outputs)


def add_flags(session: Session, ids: list[int], texts: list[Texts]) -> None:
    """Store the checks each new record fails, given its id and its (instruction, input, outputs)."""
    rows = [{"record_id": record_id, "flag": name} for record_id, (instruction, input, outputs) in zip(ids, texts)
            for name in record_flags(instruction, input, outputs)]
    if rows:
        session.connection().execute(insert(RecordFlag.__table__), rows)


def store_flags(session: Session, texts: dict[int, Texts]) -> None:
    """Replace the stored flags of each record id by the checks its (instruction, input, outputs) fail now."""
    table = RecordFlag.__table__
    ids = list(texts)
    for start in range(0, len(ids), 500):
        session.connection().execute(delete(table).where(table.c.record_id.in_(ids[start:start + 500])))
    add_flags(session, ids, list(texts.values()))


def stored_flags(session: Session, dataset_id: int) -> dict[int, list[str]]:
    """{record id: the checks it fails, sorted} for every record of the dataset that fails one."""
    rows = session.execute(select(RecordFlag.record_id, RecordFlag.flag).join(Record, Record.id == RecordFlag.record_id)
                           .where(Record.dataset_id == dataset_id).order_by(RecordFlag.record_id, RecordFlag.flag))
    found: dict[int, list[str]] = {}
    for record_id, flag in rows:
        found.setdefault(record_id, []).append(flag)
    return found


def flag_counts(session: Session, dataset_id: int | None = None) -> dict[str, int]:
    """{check name: records failing it} in CHECKS order (0 included), discarded records left out."""
    query = (select(RecordFlag.flag, func.count()).join(Record, Record.id == RecordFlag.record_id)
             .where(Record.status != RecordStatus.discarded).group_by(RecordFlag.flag))
    if dataset_id is not None:
        query = query.where(Record.dataset_id == dataset_id)
    found = dict(session.execute(query).all())
    return {name: found.get(name, 0) for name in CHECKS}
