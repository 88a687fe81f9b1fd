"""The model replies cache: one row per distinct chat request, so a re-run costs nothing and a stopped run resumes."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow


class LLMReply(SQLModel, table=True):
    """A backend's reply to one request, keyed by curation.llm.request_key; never holds an API key.

    `request` keeps the messages and parameters that were sent, so a record's provenance can point at the key and
    a person can read what the model was asked.
    """

    __tablename__ = "llm_reply"
    __table_args__ = (UniqueConstraint("key", name="uq_llm_reply_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    key: str = Field(max_length=64)  # sha256 of (backend, base URL, model, messages, parameters)
    backend: str = Field(max_length=20)  # openai | hf | local
    base_url: str = Field(max_length=300)
    model: str = Field(max_length=300, index=True)  # clearing the cache of one model starts here
    request: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    texts: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    finish_reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    latency_s: float = 0.0
    logprobs: Optional[list] = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
