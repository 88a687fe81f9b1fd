"""Comments on a record, threaded: anyone who can see the record reads them and writes one or a reply."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from curation.records import null_byte_field
from curation.services.annotation import InvalidInput
from curation.services.permissions import Actor, authorize
from db import repo
from db.review_tables import RecordComment

MAX_COMMENT = 10_000


@dataclass
class CommentView:
    id: int
    record_id: int
    parent_id: int | None
    author: str | None
    text: str
    written_at: datetime
    depth: int  # 0 for a comment that starts a thread, 1 for a reply to it, ...


def add_comment(session: Session, actor: Actor | None, record_id: int, text: str,
                reply_to: int | None = None) -> CommentView:
    """Write a comment on the record (a reply when `reply_to` names one of its comments)."""
    authorize(actor, "create")
    record = repo.get_record(session, int(record_id))
    text = (text or "").strip()
    if not text:
        raise InvalidInput("write the comment first")
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"a comment is at most {MAX_COMMENT:,} characters; this one is {len(text):,}")
    if null_byte_field({"comment": text}):
        raise InvalidInput("the comment holds a null byte; remove it and send again")
    if reply_to:
        parent = session.get(RecordComment, int(reply_to))
        if parent is None or parent.record_id != record.id:
            raise InvalidInput(f"comment #{reply_to} is not a comment on record #{record.id}")
    comment = RecordComment(record_id=record.id, parent_id=int(reply_to) if reply_to else None,
                            author=actor.name, text=text)
    session.add(comment)
    session.flush()
    depth = 0
    parent_id = comment.parent_id
    while parent_id is not None:
        depth += 1
        parent_id = session.get(RecordComment, parent_id).parent_id
    return _view(comment, depth)


def record_comments(session: Session, actor: Actor | None, record_id: int) -> list[CommentView]:
    """The record's comments as threads: each comment followed by its replies (oldest first at every level)."""
    authorize(actor, "view")
    repo.get_record(session, int(record_id))
    rows = list(session.exec(select(RecordComment).where(RecordComment.record_id == int(record_id))
                             .order_by(RecordComment.written_at, RecordComment.id)))
    replies: dict[int | None, list[RecordComment]] = {}
    for row in rows:
        replies.setdefault(row.parent_id, []).append(row)
    threaded: list[CommentView] = []

    def walk(parent_id: int | None, depth: int) -> None:
        for row in replies.get(parent_id, []):
            threaded.append(_view(row, depth))
            walk(row.id, depth + 1)

    walk(None, 0)
    return threaded


def _view(row: RecordComment, depth: int) -> CommentView:
    return CommentView(row.id, row.record_id, row.parent_id, row.author, row.text, row.written_at, depth)
