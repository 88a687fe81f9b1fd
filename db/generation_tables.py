"""Generation jobs: a pipeline's spec, where it stands, and its report; records it wrote point back here."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from db.jobs_tables import JobStatus
from db.models import utcnow


class GenerationJob(SQLModel, table=True):
    """One Self-Instruct, Evol-Instruct or SNI-expansion run into a dataset (never holds an API key)."""

    __tablename__ = "generation_job"

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    pipeline: str = Field(max_length=20)  # self_instruct | evol_instruct | expand_task
    # Seeds, model label, sampling, target, budget, seed, parents or task: all a rerun needs (curation.services.generation).
    spec: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    cancel_requested: bool = False  # read by the runner between batches, so a job in another process stops too
    kept: int = 0
    target: int = 0
    report: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    message: Optional[str] = Field(default=None, sa_column=Column(Text))
    created_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    heartbeat_at: Optional[datetime] = None  # a running job that stopped beating was interrupted (a crash)
    finished_at: Optional[datetime] = None
