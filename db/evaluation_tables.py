"""Tables of evaluation: each evaluation of a trained model, and the answers it scored, prompt by prompt.

An evaluation names what it measured exactly: the model revision, the dataset revision and config whose test
split it ran on, and the selection recipe the model was trained on (None: trained on everything).
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from db.jobs_tables import JobStatus
from db.models import utcnow


class Evaluation(SQLModel, table=True):
    """One evaluation job: what it evaluated, where it ran, how far it got and the metrics it gave."""

    __tablename__ = "evaluation"

    id: Optional[int] = Field(default=None, primary_key=True)
    training_job_id: Optional[int] = Field(default=None, foreign_key="training_job.id", index=True,
                                           ondelete="SET NULL")
    dataset_id: Optional[int] = Field(default=None, foreign_key="dataset.id", index=True, ondelete="SET NULL")
    model: str = Field(max_length=500)  # a Hub repo id or a local folder
    model_revision: Optional[str] = Field(default=None, max_length=64)
    base_model: Optional[str] = Field(default=None, max_length=500)
    dataset_repo: Optional[str] = Field(default=None, max_length=200)
    dataset_revision: Optional[str] = Field(default=None, max_length=64)
    dataset_config: Optional[str] = Field(default=None, max_length=200)
    selection_recipe: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    spec: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # never a secret
    launcher: str = Field(default="local", max_length=40)
    external_id: Optional[str] = Field(default=None, max_length=500)
    work_dir: Optional[str] = None
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    message: Optional[str] = Field(default=None, sa_column=Column(Text))
    progress: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # {"stage", "done", "total"}
    # {"tuned": {...}, "base": {...}, "judge": {...}, "harness": {...}}
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    log_tail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None


class EvaluationAnswer(SQLModel, table=True):
    """One test prompt of an evaluation: the reference, both models' answers, their scores and the judge's verdicts.

    Each pair is judged in both orders (a_first: the tuned answer shown first); a verdict is "A", "B", "tie" or
    None when the judge's reply could not be read. A preference is 1 (tuned better), 0.5 (tie), 0 or None.
    """

    __tablename__ = "evaluation_answer"

    evaluation_id: int = Field(foreign_key="evaluation.id", primary_key=True, ondelete="CASCADE")
    position: int = Field(primary_key=True)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    reference: str = Field(sa_column=Column(Text, nullable=False))
    tuned_answer: Optional[str] = Field(default=None, sa_column=Column(Text))
    base_answer: Optional[str] = Field(default=None, sa_column=Column(Text))
    rouge_l_tuned: Optional[float] = None
    rouge_l_base: Optional[float] = None
    exact_match_tuned: Optional[bool] = None
    exact_match_base: Optional[bool] = None
    vs_base_a_first: Optional[str] = Field(default=None, max_length=20)
    vs_base_b_first: Optional[str] = Field(default=None, max_length=20)
    vs_base_preference: Optional[float] = None
    vs_reference_a_first: Optional[str] = Field(default=None, max_length=20)
    vs_reference_b_first: Optional[str] = Field(default=None, max_length=20)
    vs_reference_preference: Optional[float] = None
    judge_replies: Optional[dict] = Field(default=None, sa_column=Column(JSON))  # the judge's raw words, per order
