"""Prompt templates in the store: PromptSource and FLAN imports and the ones people write, versioned.

Each saved change raises `version` and leaves a Revision (entity_type "template") with the full text, so
a record's provenance ({"template": {"stored_id", "version"}}) finds the exact template that made it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow


class PromptTemplate(SQLModel, table=True):
    """A template: Jinja with ||| between prompt and target, its answer choices and PromptSource's metadata."""

    __tablename__ = "prompt_template"
    __table_args__ = (UniqueConstraint("collection", "name", name="uq_prompt_template_name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    collection: str = Field(max_length=200, index=True)  # the dataset it was written for, e.g. super_glue/rte
    name: str = Field(max_length=300)
    source: str = Field(max_length=20)  # promptsource | flan | user
    external_id: Optional[str] = Field(default=None, max_length=100)  # PromptSource's uuid, flan:<task>:<n>
    jinja: str = Field(sa_column=Column(Text, nullable=False))
    answer_choices: Optional[str] = Field(default=None, sa_column=Column(Text))
    original_task: Optional[bool] = None
    choices_in_prompt: Optional[bool] = None
    metrics: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    languages: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reference: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    version: int = 1
    created_by: Optional[str] = None
    updated_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
