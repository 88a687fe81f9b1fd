"""Tables of the near-duplicate work: cached embedding vectors, dedup runs and their pairs, curator decisions."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow


class EmbeddingVector(SQLModel, table=True):
    """One text's vector, keyed so that a model or precision change never mixes vectors."""

    __tablename__ = "embedding_vector"
    __table_args__ = (UniqueConstraint("model", "precision", "text_hash", name="uq_embedding_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    model: str = Field(max_length=200)
    precision: str = Field(max_length=16)
    text_hash: str = Field(max_length=64)
    dim: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # float32, L2-normalized


class DedupRun(SQLModel, table=True):
    """One near-duplicate search over a dataset; its pairs are kept down to `floor` so the UI can move the threshold."""

    __tablename__ = "dedup_run"

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    method: str = Field(max_length=20)  # semantic | lexical
    fields: str = Field(max_length=40)  # instruction | instruction+input | record
    model: Optional[str] = Field(default=None, max_length=200)
    precision: Optional[str] = Field(default=None, max_length=16)
    threshold: float
    floor: float
    record_count: int = 0
    pair_count: int = 0
    seconds: float = 0.0
    # The sentences saying which shared prefix or suffix the comparison left out; None for a search stored before.
    left_out: Optional[list] = Field(default=None, sa_column=Column(JSON))
    # How a semantic search found its pairs: reference | cascade | distributed; None for lexical and older runs.
    mode: Optional[str] = Field(default=None, max_length=20)
    created_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)


class DuplicatePair(SQLModel, table=True):
    __tablename__ = "duplicate_pair"
    __table_args__ = (Index("ix_duplicate_pair_run_score", "run_id", "score"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="dedup_run.id", ondelete="CASCADE")
    record_a: int  # the smaller record id
    record_b: int
    score: float


class DuplicateDecision(SQLModel, table=True):
    """A curator's word on a group: keep_one, not_duplicates or merge. Undone decisions stay as history."""

    __tablename__ = "duplicate_decision"

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=20)
    record_ids: list = Field(sa_column=Column(JSON, nullable=False))
    keep_id: Optional[int] = None
    # What the decision changed, to undo it: {record id: {"version": after our change, "before": {field: value}}}.
    changes: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    decided_by: Optional[str] = None
    decided_at: datetime = Field(default_factory=utcnow)
    undone_by: Optional[str] = None
    undone_at: Optional[datetime] = None


class SearchedRecords(SQLModel, table=True):
    """What one semantic dedup run compared, so the next run over the same dataset searches only what changed.

    `arrays` is an .npz: `ids` (record ids, id order), `hashes` (a 64-bit hash of each record's compared text)
    and `candidates` (whether the cascade's static look flagged the record; all true for the reference search).
    Kept apart from dedup_run so listing runs never loads it (16 bytes a record: 1M records are about 17 MB).
    """

    __tablename__ = "dedup_searched"

    run_id: int = Field(foreign_key="dedup_run.id", primary_key=True, ondelete="CASCADE")
    # The run whose pairs this one carried over for the records that had not changed; None for a full search.
    based_on: Optional[int] = None
    searched: int = 0  # records this run searched anew (all of them for a full search)
    arrays: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
