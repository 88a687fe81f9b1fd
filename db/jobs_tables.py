"""Tables of publishing and training: what went to the Hub at which commit, and each SFT run."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from db.models import utcnow


class Publication(SQLModel, table=True):
    """A dataset revision on the Hub: the commit it returned and exactly which record versions went in."""

    __tablename__ = "publication"

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    repo_id: str = Field(max_length=200, index=True)
    endpoint: str = Field(max_length=300)
    commit_id: str = Field(max_length=64)
    private: bool = False
    configs: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    statuses: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # {"train": [[record_id, version], ...], "test": [...]}: enough to rebuild the same rows.
    snapshot: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    split_counts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)


class JobStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = (JobStatus.completed, JobStatus.failed, JobStatus.cancelled)


class TrainingJob(SQLModel, table=True):
    """One SFT run: its spec, where it runs, how it went, and the data and model revisions it links."""

    __tablename__ = "training_job"

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    publication_id: Optional[int] = Field(default=None, foreign_key="publication.id", ondelete="SET NULL")
    spec: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    launcher: str = Field(max_length=40)
    external_id: Optional[str] = Field(default=None, max_length=200)
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    message: Optional[str] = Field(default=None, sa_column=Column(Text))
    dataset_repo: Optional[str] = Field(default=None, max_length=200)
    dataset_revision: Optional[str] = Field(default=None, max_length=64)
    model_repo: Optional[str] = Field(default=None, max_length=200)
    model_revision: Optional[str] = Field(default=None, max_length=64)
    metrics: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    log_tail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    work_dir: Optional[str] = None
    created_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
