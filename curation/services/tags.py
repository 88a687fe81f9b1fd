"""Tags on records: free words curators put on records to find them again (Browse filters by them)."""
from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlmodel import Session

from curation.records import null_byte_field
from curation.services.annotation import InvalidInput
from curation.services.permissions import Actor, PermissionDenied, authorize
from db import repo
from db.models import utcnow
from db.review_tables import RecordTag

MAX_TAG = 100
CHUNK = 900  # ids per statement, under SQLite's bound-parameter limit


def clean_tag(tag: str | None) -> str:
    """The tag as stored (spaces around it dropped); InvalidInput saying what is wrong with it."""
    tag = " ".join((tag or "").split())
    if not tag:
        raise InvalidInput("write the tag")
    if len(tag) > MAX_TAG:
        raise InvalidInput(f"a tag is at most {MAX_TAG} characters; this one is {len(tag)}")
    if "," in tag:
        raise InvalidInput("a tag cannot hold a comma (Browse lists a record's tags separated by commas)")
    if null_byte_field({"tag": tag}):
        raise InvalidInput("the tag holds a null byte")
    return tag


def require_curator(actor: Actor | None, what: str) -> None:
    if actor is None:
        raise PermissionDenied("sign in first")
    if not actor.reviews:
        raise PermissionDenied(f"only a curator can {what}")


def record_tags(session: Session, actor: Actor | None, record_id: int) -> list[str]:
    """The record's tags, sorted."""
    authorize(actor, "view")
    repo.get_record(session, int(record_id))
    return list(session.execute(select(RecordTag.tag).where(RecordTag.record_id == int(record_id))
                                .order_by(RecordTag.tag)).scalars())


def add_tag(session: Session, actor: Actor | None, record_id: int, tag: str) -> list[str]:
    """Put `tag` on the record (curators); its tags after."""
    require_curator(actor, "tag records")
    tag = clean_tag(tag)
    repo.get_record(session, int(record_id))
    tag_records(session, [int(record_id)], tag, by=actor.name)
    return record_tags(session, actor, record_id)


def remove_tag(session: Session, actor: Actor | None, record_id: int, tag: str) -> list[str]:
    """Take `tag` off the record (curators); its tags after. InvalidInput if it does not carry it."""
    require_curator(actor, "tag records")
    tag = clean_tag(tag)
    repo.get_record(session, int(record_id))
    if not untag_records(session, [int(record_id)], tag):
        raise InvalidInput(f"record #{record_id} has no tag {tag!r}")
    return record_tags(session, actor, record_id)


def tag_records(session: Session, record_ids: list[int], tag: str, *, by: str | None) -> list[int]:
    """Put `tag` on each record that lacks it (no permission check: callers authorize); the ids it was added to."""
    added: list[int] = []
    connection = session.connection()
    now = utcnow()
    for start in range(0, len(record_ids), CHUNK):
        chunk = record_ids[start:start + CHUNK]
        have = set(connection.execute(select(RecordTag.record_id).where(
            RecordTag.tag == tag, RecordTag.record_id.in_(chunk))).scalars())
        new = [record_id for record_id in chunk if record_id not in have]
        if new:
            connection.execute(insert(RecordTag.__table__), [
                {"record_id": record_id, "tag": tag, "added_by": by, "added_at": now} for record_id in new])
        added += new
    return added


def untag_records(session: Session, record_ids: list[int], tag: str) -> list[int]:
    """Take `tag` off each record that carries it (callers authorize); the ids it was taken off."""
    removed: list[int] = []
    connection = session.connection()
    for start in range(0, len(record_ids), CHUNK):
        chunk = record_ids[start:start + CHUNK]
        have = list(connection.execute(select(RecordTag.record_id).where(
            RecordTag.tag == tag, RecordTag.record_id.in_(chunk))).scalars())
        if have:
            connection.execute(delete(RecordTag.__table__).where(RecordTag.tag == tag,
                                                                 RecordTag.record_id.in_(have)))
        removed += sorted(have)
    return removed
