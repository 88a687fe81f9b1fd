"""Annotation guidelines: one row per version of a dataset's guidelines, never changed once written."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow


class Guidelines(SQLModel, table=True):
    """A version of a dataset's annotation guidelines (Markdown); the highest version is the one in force."""

    __tablename__ = "guidelines"
    __table_args__ = (UniqueConstraint("dataset_id", "version", name="uq_guidelines_version"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    version: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    written_by: Optional[str] = None
    written_at: datetime = Field(default_factory=utcnow)
    reason: Optional[str] = Field(default=None, sa_column=Column(Text))
