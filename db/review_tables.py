"""Tables of the review tools: tags on records, threaded comments, and bulk actions kept so one can be undone."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow


class RecordTag(SQLModel, table=True):
    """A tag on a record (a free word a curator filters by); a record holds each tag once."""

    __tablename__ = "record_tag"
    __table_args__ = (UniqueConstraint("record_id", "tag", name="uq_record_tag"),
                      Index("ix_record_tag_tag", "tag", "record_id"))

    id: Optional[int] = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="record.id", ondelete="CASCADE")
    tag: str = Field(max_length=100)
    added_by: Optional[str] = None
    added_at: datetime = Field(default_factory=utcnow)


class RecordComment(SQLModel, table=True):
    """A comment on a record; a reply names the comment it answers (parent_id)."""

    __tablename__ = "record_comment"

    id: Optional[int] = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="record.id", index=True, ondelete="CASCADE")
    parent_id: Optional[int] = Field(default=None, foreign_key="record_comment.id", ondelete="CASCADE")
    author: Optional[str] = None
    text: str = Field(sa_column=Column(Text, nullable=False))
    written_at: datetime = Field(default_factory=utcnow)


class BulkAction(SQLModel, table=True):
    """One action applied to many records at once (approve, reject, discard, tag, untag, assign)."""

    __tablename__ = "bulk_action"

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: Optional[int] = Field(default=None, foreign_key="dataset.id", index=True, ondelete="CASCADE")
    action: str = Field(max_length=20)
    # What it was given: the reason of a reject, the tag, the annotators and overlap of an assign, and what an
    # assign made (its assignment ids), so the undo can withdraw them.
    detail: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    changed: int = 0  # records it changed
    skipped: int = 0  # records it left as they were (the transition was not allowed, or nothing to do)
    acted_by: Optional[str] = None
    acted_at: datetime = Field(default_factory=utcnow)
    undone_by: Optional[str] = None
    undone_at: Optional[datetime] = None
    undo_skipped: Optional[int] = None  # at the undo: records someone had changed since, left as they were


class BulkActionItem(SQLModel, table=True):
    """A record a bulk action changed: its version before and after, and what the undo puts back."""

    __tablename__ = "bulk_action_item"
    __table_args__ = (Index("ix_bulk_action_item_action", "bulk_action_id", "record_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    bulk_action_id: int = Field(foreign_key="bulk_action.id", ondelete="CASCADE")
    record_id: int = Field(foreign_key="record.id", ondelete="CASCADE")
    version_before: Optional[int] = None  # None for a tag change (tags are not part of a record's version)
    version_after: Optional[int] = None
    # The fields the action changed, as they were: {"status", "review_note", "provenance", "machine_draft"}.
    before: Optional[dict] = Field(default=None, sa_column=Column(JSON))
