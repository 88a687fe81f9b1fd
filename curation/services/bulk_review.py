"""Bulk review: approve, reject, discard, tag or assign many records at once, and undo one such action as a whole.

Every status change goes the versioned way a single change_record goes (version + 1, a Revision with the full
snapshot), in bulk SQL: the records are read and locked a chunk at a time, one UPDATE per chunk sets the fields
every record shares, and the Revisions and the action's items are inserted with executemany. A record whose
transition is not allowed (services.annotation.TRANSITIONS, services.permissions) is reported and left as it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session

from curation import provenance as provenance_rules
from curation.services import assignments
from curation.services.annotation import TRANSITIONS, InvalidInput, refuse_null_bytes
from curation.services.permissions import Actor, PermissionDenied, authorize
from curation.services.tags import clean_tag, require_curator, tag_records, untag_records
from db import repo
from db.models import Record, RecordStatus, Revision, utcnow
from db.repo import NotFoundError
from db.review_tables import BulkAction, BulkActionItem

ACTIONS = {"approve": "approve", "reject": "reject", "discard": "discard", "tag": "add tag", "untag": "remove tag",
           "assign": "assign"}
STATUS_ACTIONS = ("approve", "reject", "discard")
CHUNK = 900  # records per statement, under SQLite's bound-parameter limit
RESTORED = ("status", "review_note", "provenance", "machine_draft")  # what a status action changes, undo puts back
RECORD = Record.__table__


@dataclass
class BulkResult:
    action_id: int | None
    action: str
    changed: int
    # (record id, why it was left as it was); the id is None for what is not one record (assignments withdrawn)
    skipped: list[tuple[int | None, str]] = field(default_factory=list)

    def summary(self, undo: bool = False) -> str:
        """One line for the user: what changed, and how many were left as they were and why (the first few)."""
        what = f"undo of bulk action #{self.action_id}" if undo else f"{ACTIONS[self.action]} #{self.action_id}"
        line = f"{what[:1].upper()}{what[1:]}: {self.changed:,} record{'s' * (self.changed != 1)} changed"
        if self.skipped:
            shown = "; ".join(f"#{record_id} {why}" if record_id else why for record_id, why in self.skipped[:5])
            more = f" and {len(self.skipped) - 5:,} more" if len(self.skipped) > 5 else ""
            line += f"; {len(self.skipped):,} left as they were ({shown}{more})"
        return line + "."


@dataclass
class BulkActionView:
    id: int
    action: str
    detail: dict
    changed: int
    skipped: int
    acted_by: str | None
    acted_at: datetime
    undone_by: str | None
    undone_at: datetime | None
    undo_skipped: int | None

    def describe(self) -> str:
        """e.g. `#3 approve of 1,000 records by cura` or `#4 add tag "check me" on 12 records by cura`."""
        what = ACTIONS[self.action]
        if self.action in ("tag", "untag"):
            what += f" “{self.detail.get('tag')}”"
        elif self.action == "reject":
            what += f" (“{self.detail.get('reason')}”)"
        elif self.action == "assign":
            what += " to " + ", ".join(self.detail.get("annotators") or [])
        return f"#{self.id} {what} of {self.changed:,} record{'s' * (self.changed != 1)} by {self.acted_by or '?'}"


def bulk_review(session: Session, actor: Actor | None, *, record_ids: list[int], action: str,
                reason: str | None = None, tag: str | None = None, annotators: list[str] | None = None,
                overlap: int = 1, dataset: str | None = None) -> BulkResult:
    """Apply `action` (approve, reject, discard, tag, untag, assign) to the records, as one undoable bulk action."""
    require_curator(actor, "review in bulk")
    if action not in ACTIONS:
        raise InvalidInput(f"unknown bulk action {action!r}; choose from {', '.join(ACTIONS)}")
    ids = sorted({int(i) for i in record_ids or []})
    if not ids:
        raise InvalidInput("select the records first (or apply to all that match the filter)")
    detail: dict[str, Any] = {}
    if action == "reject":
        if not (reason or "").strip():
            raise InvalidInput("say why they are rejected: the annotators see the reason")
        refuse_null_bytes({"review note": reason})
        detail["reason"] = reason.strip()
    if action in ("tag", "untag"):
        detail["tag"] = clean_tag(tag)
    if action == "assign":
        annotators = [a for a in (annotators or []) if a]
        if not annotators:
            raise InvalidInput("choose the annotators to assign them to")
        detail.update(annotators=annotators, overlap=int(overlap or 1))
    dataset_id = None
    if dataset:
        found = repo.get_dataset(session, dataset)
        if found is None:
            raise InvalidInput(f"there is no dataset named {dataset!r}")
        dataset_id = found.id
    # Writing the action first takes SQLite's write lock, so nobody changes the records between our read and write.
    bulk = BulkAction(dataset_id=dataset_id, action=action, detail=detail, acted_by=actor.name)
    session.add(bulk)
    session.flush()
    if action in STATUS_ACTIONS:
        changed, skipped = _change_status(session, actor, bulk, ids, detail.get("reason"))
    elif action in ("tag", "untag"):
        changed, skipped = _change_tags(session, actor, bulk, ids, detail["tag"], add=action == "tag")
    else:
        changed, skipped = _assign(session, actor, bulk, ids, dataset, annotators, int(overlap or 1))
    bulk.changed, bulk.skipped = changed, len(skipped)
    session.add(bulk)
    session.flush()
    session.expire_all()  # the ORM's copies of the changed records are stale
    return BulkResult(bulk.id, action, changed, skipped)


def undo_bulk_action(session: Session, actor: Actor | None, action_id: int) -> BulkResult:
    """Put every record the action changed back as it was before it, with a Revision each; a record someone
    changed since is left as it is and reported."""
    require_curator(actor, "undo a bulk action")
    bulk = session.get(BulkAction, int(action_id))
    if bulk is None:
        raise NotFoundError(f"bulk action #{action_id} does not exist")
    if bulk.undone_at is not None:
        raise InvalidInput(f"bulk action #{bulk.id} was already undone by {bulk.undone_by or 'someone'}")
    bulk.undone_by, bulk.undone_at = actor.name, utcnow()
    session.add(bulk)
    session.flush()  # the write lock first, as in bulk_review
    items = session.execute(select(BulkActionItem.record_id, BulkActionItem.version_after, BulkActionItem.before)
                            .where(BulkActionItem.bulk_action_id == bulk.id)
                            .order_by(BulkActionItem.record_id)).all()
    if bulk.action in STATUS_ACTIONS:
        changed, skipped = _restore_status(session, actor, bulk, items)
    elif bulk.action in ("tag", "untag"):
        changed, skipped = _restore_tags(session, actor, bulk, [item.record_id for item in items])
    else:
        changed, skipped = _withdraw(session, actor, bulk)
    bulk.undo_skipped = len(skipped)
    session.add(bulk)
    session.flush()
    session.expire_all()
    return BulkResult(bulk.id, bulk.action, changed, skipped)


def recent_bulk_actions(session: Session, actor: Actor | None, *, limit: int = 10) -> list[BulkActionView]:
    """The latest bulk actions, newest first."""
    require_curator(actor, "see the bulk actions")
    rows = session.execute(select(BulkAction).order_by(BulkAction.id.desc()).limit(limit)).scalars()
    return [_view(row) for row in rows]


def last_undoable(session: Session, actor: Actor | None) -> BulkActionView | None:
    """The newest bulk action not yet undone, or None."""
    require_curator(actor, "undo a bulk action")
    row = session.execute(select(BulkAction).where(BulkAction.undone_at.is_(None), BulkAction.changed > 0)
                          .order_by(BulkAction.id.desc()).limit(1)).scalar()
    return _view(row) if row is not None else None


def _view(row: BulkAction) -> BulkActionView:
    return BulkActionView(row.id, row.action, dict(row.detail or {}), row.changed, row.skipped, row.acted_by,
                          row.acted_at, row.undone_by, row.undone_at, row.undo_skipped)


# ---- status: approve, reject, discard ------------------------------------------------------------------------

def _locked_rows(session: Session, ids: list[int]) -> list[dict]:
    """The records `ids` (full rows), locked until the transaction ends (PostgreSQL; SQLite's lock is already held)."""
    query = select(RECORD).where(RECORD.c.id.in_(ids))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return [dict(row) for row in session.connection().execute(query).mappings()]


def _snapshot(row: dict) -> dict:
    return {column: repo._jsonable(row[column]) for column in Record.model_fields}


def _write(session: Session, by: str, now: datetime, shared: dict, rows: list[dict], own: list[dict],
           reason_of) -> None:
    """Set `shared` on `rows` (one UPDATE), each row's own provenance where it changes, and a Revision each."""
    connection = session.connection()
    ids = [row["id"] for row in rows]
    connection.execute(update(RECORD).where(RECORD.c.id.in_(ids))
                       .values(**shared, version=RECORD.c.version + 1, updated_by=by, updated_at=now))
    if own:
        connection.execute(update(RECORD).where(RECORD.c.id == bindparam("record_id"))
                           .values(provenance=bindparam("new_provenance"), machine_draft=bindparam("new_draft")), own)
    connection.execute(insert(Revision.__table__), [
        {"entity_type": "record", "entity_id": row["id"], "version": row["version"], "changed_by": by,
         "changed_at": now, "reason": reason_of(row), "snapshot": _snapshot(row)} for row in rows])


def _change_status(session: Session, actor: Actor, bulk: BulkAction, ids: list[int],
                   reason: str | None) -> tuple[int, list[tuple[int, str]]]:
    action = bulk.action
    target = TRANSITIONS[action]
    now = utcnow()
    shared: dict[str, Any] = {"status": target}
    if action == "reject":
        shared["review_note"] = reason
    elif action == "approve":
        shared["review_note"] = None
    note = {"approve": "approved", "reject": "rejected", "discard": "discarded"}[action]
    note += f" in bulk action #{bulk.id}" + (f": {reason}" if reason else "")
    changed, skipped = 0, []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows = _locked_rows(session, chunk)
        found = {row["id"] for row in rows}
        skipped += [(record_id, "does not exist") for record_id in chunk if record_id not in found]
        allowed, own, items = [], [], []
        for row in rows:
            try:
                authorize(actor, action, created_by=row["created_by"], status=RecordStatus(row["status"]))
            except PermissionDenied as refused:
                skipped.append((row["id"], str(refused)))
                continue
            before = {column: repo._jsonable(row[column]) for column in RESTORED}
            items.append({"bulk_action_id": bulk.id, "record_id": row["id"], "version_before": row["version"],
                          "version_after": row["version"] + 1, "before": before})
            row.update(shared, version=row["version"] + 1, updated_by=actor.name, updated_at=now)
            if action == "approve" and row["provenance"]:
                approved = provenance_rules.approved(row["provenance"], actor.name)
                if approved != row["provenance"]:
                    row["provenance"], row["machine_draft"] = approved, provenance_rules.machine_draft_state(approved)
                    own.append({"record_id": row["id"], "new_provenance": approved,
                                "new_draft": row["machine_draft"]})
            allowed.append(row)
        if allowed:
            _write(session, actor.name, now, shared, allowed, own, lambda row: note)
            session.connection().execute(insert(BulkActionItem.__table__), items)
            changed += len(allowed)
    return changed, sorted(skipped)


def _restore_status(session: Session, actor: Actor, bulk: BulkAction, items: list) -> tuple[int, list]:
    now = utcnow()
    note = f"undo of bulk action #{bulk.id}"
    changed, skipped = 0, []
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        rows = {row["id"]: row for row in _locked_rows(session, [item.record_id for item in chunk])}
        groups: dict[tuple, list[dict]] = {}
        own = []
        for item in chunk:
            row = rows.get(item.record_id)
            if row is None:
                skipped.append((item.record_id, "was deleted since"))
                continue
            if row["version"] != item.version_after:
                skipped.append((item.record_id, f"was changed since by {row['updated_by'] or 'someone'} "
                                                f"(now version {row['version']}, {repo._jsonable(row['status'])})"))
                continue
            before = item.before or {}
            row.update(status=RecordStatus(before["status"]), review_note=before.get("review_note"),
                       version=row["version"] + 1, updated_by=actor.name, updated_at=now)
            if before.get("provenance") != row["provenance"]:
                row["provenance"], row["machine_draft"] = before.get("provenance"), before.get("machine_draft")
                own.append({"record_id": row["id"], "new_provenance": row["provenance"],
                            "new_draft": row["machine_draft"]})
            groups.setdefault((before["status"], before.get("review_note")), []).append(row)
        for (status, review_note), group in groups.items():
            group_ids = {row["id"] for row in group}
            _write(session, actor.name, now, {"status": RecordStatus(status), "review_note": review_note}, group,
                   [o for o in own if o["record_id"] in group_ids], lambda row: note)
            changed += len(group)
    return changed, sorted(skipped)


# ---- tags -----------------------------------------------------------------------------------------------------

def _change_tags(session: Session, actor: Actor, bulk: BulkAction, ids: list[int], tag: str,
                 add: bool) -> tuple[int, list]:
    existing: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        existing.update(session.execute(select(Record.id).where(Record.id.in_(ids[start:start + CHUNK]))).scalars())
    skipped = [(record_id, "does not exist") for record_id in ids if record_id not in existing]
    present = [record_id for record_id in ids if record_id in existing]
    done = tag_records(session, present, tag, by=actor.name) if add else untag_records(session, present, tag)
    done_set = set(done)
    skipped += [(record_id, f"already has the tag “{tag}”" if add else f"has no tag “{tag}”")
                for record_id in present if record_id not in done_set]
    if done:
        session.connection().execute(insert(BulkActionItem.__table__), [
            {"bulk_action_id": bulk.id, "record_id": record_id, "version_before": None, "version_after": None,
             "before": None} for record_id in done])
    return len(done), sorted(skipped)


def _restore_tags(session: Session, actor: Actor, bulk: BulkAction, ids: list[int]) -> tuple[int, list]:
    tag = bulk.detail["tag"]
    if bulk.action == "tag":  # the tag comes off the records it was put on (one taken off since stays off)
        done = untag_records(session, ids, tag)
        why = f"no longer has the tag “{tag}”"
    else:
        done = tag_records(session, _still_there(session, ids), tag, by=actor.name)
        why = f"has the tag “{tag}” again already"
    done_set = set(done)
    return len(done), [(record_id, why) for record_id in ids if record_id not in done_set]


def _still_there(session: Session, ids: list[int]) -> list[int]:
    found: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        found.update(session.execute(select(Record.id).where(Record.id.in_(ids[start:start + CHUNK]))).scalars())
    return [record_id for record_id in ids if record_id in found]


# ---- assignment (curation.services.assignments) ---------------------------------------------------------------

def _assign(session: Session, actor: Actor, bulk: BulkAction, ids: list[int], dataset: str | None,
            annotators: list[str], overlap: int) -> tuple[int, list]:
    if not dataset:
        raise InvalidInput("choose the dataset whose records you assign")
    made = assignments.assign(session, actor, dataset=dataset, item_type="record", item_ids=ids,
                              annotators=annotators, overlap=overlap)
    bulk.detail = {**bulk.detail, "assignment_ids": list(made)}
    session.connection().execute(insert(BulkActionItem.__table__), [
        {"bulk_action_id": bulk.id, "record_id": record_id, "version_before": None, "version_after": None,
         "before": None} for record_id in ids])
    return len(ids), []


def _withdraw(session: Session, actor: Actor, bulk: BulkAction) -> tuple[int, list]:
    made = list((bulk.detail or {}).get("assignment_ids") or [])
    withdrawn = assignments.withdraw(session, actor, made) if made else 0
    left = len(made) - int(withdrawn or 0)
    gone = [(None, f"{left:,} assignment{'s' * (left != 1)} already withdrawn or answered")] if left else []
    return int(withdrawn or 0), gone

