"""The distributed near-duplicate searches: one row per job handed to an engine, and the dedup run it produced."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from db.jobs_tables import JobStatus
from db.models import utcnow


class DistributedSearch(SQLModel, table=True):
    __tablename__ = "distributed_search"

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    fields: str = Field(max_length=40)  # instruction | instruction+input | record
    threshold: float
    floor: float
    executor: str = Field(max_length=20)  # local | slurm | hf-jobs
    tasks: int
    work_dir: str  # the job folder: spec, shards, the engine's logs and completions
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    error: Optional[str] = Field(default=None, sa_column=Column(Text))
    # The dedup run its pairs were imported into (SET NULL: forgetting the runs keeps the job's history).
    run_id: Optional[int] = Field(default=None, foreign_key="dedup_run.id", ondelete="SET NULL")
    record_count: int = 0
    created_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None
