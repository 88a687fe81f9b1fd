"""SQLModel tables. JSON columns hold lists and the verbatim keys we do not model."""
from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def json_column(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


class RecordStatus(str, enum.Enum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    discarded = "discarded"


class Role(str, enum.Enum):
    annotator = "annotator"
    curator = "curator"
    admin = "admin"


class Dataset(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    license: Optional[str] = None
    language: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)


class Task(SQLModel, table=True):
    """A Super-NaturalInstructions task: the definition, its examples, and (as Records) its instances."""

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    name: str = Field(index=True, max_length=300)
    definition: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    emphasis_and_caution: Optional[str] = Field(default=None, sa_column=Column(Text))
    things_to_avoid: Optional[str] = Field(default=None, sa_column=Column(Text))
    categories: Optional[list] = json_column()
    domains: Optional[list] = json_column()
    reasoning: Optional[list] = json_column()
    source: Optional[list] = json_column()
    url: Optional[list] = json_column()
    contributors: Optional[list] = json_column()
    input_language: Optional[list] = json_column()
    output_language: Optional[list] = json_column()
    instruction_language: Optional[list] = json_column()
    instance_license: Optional[list] = json_column()
    # Unknown keys verbatim plus the original key order, so an export equals the imported file.
    extra: Optional[dict] = json_column()
    source_file: Optional[str] = None
    status: RecordStatus = Field(default=RecordStatus.draft, index=True)
    version: int = Field(default=1)
    created_by: Optional[str] = None
    updated_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ExampleKind(str, enum.Enum):
    positive = "positive"
    negative = "negative"


class Example(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True, ondelete="CASCADE")
    kind: ExampleKind
    position: int = 0
    input: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    output: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # None is kept apart from "": a null explanation is an SNI defect that validate reports.
    explanation: Optional[str] = Field(default=None, sa_column=Column(Text))
    suggestion: Optional[str] = Field(default=None, sa_column=Column(Text))
    extra: Optional[dict] = json_column()


class Record(SQLModel, table=True):
    """The unit people annotate and train on."""

    __table_args__ = (
        Index("ix_record_dataset_hash", "dataset_id", "content_hash"),
        Index("ix_record_dataset_status", "dataset_id", "status"),
        # The browse table's default order (last updated), with and without a status filter.
        Index("ix_record_browse_status_updated", "dataset_id", "status", "updated_at", "id"),
        Index("ix_record_browse_updated", "dataset_id", "updated_at", "id"),
        Index("ix_record_dataset_machine_draft", "dataset_id", "machine_draft"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    task_id: Optional[int] = Field(default=None, foreign_key="task.id", index=True, ondelete="CASCADE")
    position: Optional[int] = None
    external_id: Optional[str] = None
    instruction: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    input: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    outputs: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    system_prompt: Optional[str] = Field(default=None, sa_column=Column(Text))
    messages: Optional[list] = json_column()
    # The function schemas a tool-calling conversation may call (TRL's `tools` column); part of the duplicate key.
    tools: Optional[list] = json_column()
    category: Optional[str] = Field(default=None, index=True)
    source_file: Optional[str] = None
    source_line: Optional[int] = None
    extra: Optional[dict] = json_column()
    status: RecordStatus = Field(default=RecordStatus.draft)
    review_note: Optional[str] = Field(default=None, sa_column=Column(Text))
    created_by: Optional[str] = None
    updated_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = Field(default=1)
    content_hash: str = Field(max_length=64)
    # Where the record came from: human (the editor), imported (a file or the Hub), template, generated.
    origin: str = Field(default="human", max_length=20, sa_column_kwargs={"server_default": "human"})
    # The state of its machine-written text, for filters and stats: None (none), unreviewed, edited, approved.
    machine_draft: Optional[str] = Field(default=None, max_length=20)
    # Per field, who wrote it (curation/provenance.py): {"outputs": [...], "instruction": {...}, "source": {...}}.
    provenance: Optional[dict] = json_column()
    # The generation job that wrote it (db.generation_tables), so one job's output can be reviewed apart.
    generation_job_id: Optional[int] = Field(default=None, index=True)


class Revision(SQLModel, table=True):
    """Append-only history: a full snapshot of a record or task after each change."""

    __table_args__ = (UniqueConstraint("entity_type", "entity_id", "version"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    entity_type: str = Field(max_length=20)
    entity_id: int = Field(index=True)
    version: int
    snapshot: dict = Field(sa_column=Column(JSON, nullable=False))
    changed_by: Optional[str] = None
    changed_at: datetime = Field(default_factory=utcnow)
    reason: Optional[str] = Field(default=None, sa_column=Column(Text))


class User(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    role: Role = Field(default=Role.annotator)
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)
