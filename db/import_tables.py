"""The column mapping a dataset's last table import used, offered again when the next table comes in."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from db.models import utcnow


class ImportMapping(SQLModel, table=True):
    """{record field: table column} for one dataset, e.g. {"instruction": "question", "output": "answer"}."""

    __tablename__ = "import_mapping"

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True, ondelete="CASCADE")
    mapping: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_by: Optional[str] = None
    updated_at: datetime = Field(default_factory=utcnow)
