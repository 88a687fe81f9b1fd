"""Assignments: a record or task given to an annotator to answer, with the answer they gave."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow


class Assignment(SQLModel, table=True):
    """One item (a record or a task) given to one annotator.

    status: open (theirs to do), done (answered), skipped (with a note), withdrawn (taken back by a curator).
    For a record the answer is the annotator's own output (and an optional 1-5 rating of the record's current
    output); when several annotators answer the same record a curator reconciles them into the record itself.
    """

    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("item_type", "item_id", "annotator", name="uq_assignment_item_annotator"),
                      Index("ix_assignment_item", "item_type", "item_id"),
                      Index("ix_assignment_annotator_status", "annotator", "status"))

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    item_type: str = Field(max_length=10)  # record | task
    item_id: int
    annotator: str = Field(max_length=100)
    status: str = Field(default="open", max_length=12)
    answer: Optional[str] = Field(default=None, sa_column=Column(Text))
    rating: Optional[int] = None
    note: Optional[str] = Field(default=None, sa_column=Column(Text))  # why it was skipped
    assigned_by: Optional[str] = None
    assigned_at: datetime = Field(default_factory=utcnow)
    answered_at: Optional[datetime] = None
    reconciled_by: Optional[str] = None
    reconciled_at: Optional[datetime] = None
