"""Scores per record, each dataset's judge rubric, and named selections: tables and the functions that store them.

A score row remembers the basis it was computed on (the record's content hash plus what scored it: the judge's
model and rubric, the IFD model, the signals' version), so a new run recomputes only records whose basis changed.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, delete, insert, select
from sqlmodel import Field, Session, SQLModel

from db.models import Record, utcnow


class RecordScore(SQLModel, table=True):
    """One named score of a record (judge, ifd, ppl, length, mtld, nn_distance, language)."""

    __tablename__ = "record_score"
    # Selection and browse read one score over a dataset; the primary key serves "this record's scores".
    __table_args__ = (Index("ix_record_score_name_record", "name", "record_id"),)

    record_id: int = Field(foreign_key="record.id", primary_key=True, ondelete="CASCADE")
    name: str = Field(primary_key=True, max_length=40)
    value: Optional[float] = None  # None for a label-only score (language) or a failed rating
    detail: Optional[dict] = Field(default=None, sa_column=Column(JSON))  # the judge's reason, a language code
    basis: str = Field(max_length=120)  # content hash + what computed it
    computed_at: datetime = Field(default_factory=utcnow)


class ScoreRubric(SQLModel, table=True):
    """The judge's rubric a curator wrote for one dataset (absent: AlpaGasus's default)."""

    __tablename__ = "score_rubric"

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True, ondelete="CASCADE")
    text: str = Field(sa_column=Column(Text, nullable=False))
    updated_by: Optional[str] = None
    updated_at: datetime = Field(default_factory=utcnow)


class Selection(SQLModel, table=True):
    """A named subset of a dataset and the recipe that chose it (method, scores, weights, threshold, N)."""

    __tablename__ = "selection"
    __table_args__ = (UniqueConstraint("dataset_id", "name", name="uq_selection_dataset_name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    recipe: dict = Field(sa_column=Column(JSON, nullable=False))
    revision: str = Field(max_length=64)  # hash of the (record id, version) pairs it ran on
    size: int = 0
    created_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)


class SelectionRecord(SQLModel, table=True):
    """One record a selection took, with its rank (0: taken first)."""

    __tablename__ = "selection_record"

    selection_id: int = Field(foreign_key="selection.id", primary_key=True, ondelete="CASCADE")
    record_id: int = Field(foreign_key="record.id", primary_key=True, ondelete="CASCADE")
    rank: int


def stored_bases(session: Session, dataset_id: int, name: str) -> dict[int, str]:
    """{record id: the basis its `name` score was computed on} over the dataset."""
    rows = session.connection().execute(
        select(RecordScore.record_id, RecordScore.basis).join(Record, Record.id == RecordScore.record_id)
        .where(Record.dataset_id == dataset_id, RecordScore.name == name))
    return dict(rows.all())


def store_scores(session: Session, name: str, rows: list[dict[str, Any]]) -> None:
    """Replace the `name` score of each row's record: rows of {record_id, value, detail, basis}."""
    table = RecordScore.__table__
    ids = [row["record_id"] for row in rows]
    for start in range(0, len(ids), 500):
        session.connection().execute(delete(table).where(table.c.name == name,
                                                         table.c.record_id.in_(ids[start:start + 500])))
    now = utcnow()
    for start in range(0, len(rows), 5000):
        session.connection().execute(insert(table), [
            {"name": name, "computed_at": now, "detail": None, **row} for row in rows[start:start + 5000]])


def stored_scores(session: Session, dataset_id: int, names: list[str] | None = None
                  ) -> dict[int, dict[str, tuple[float | None, dict | None]]]:
    """{record id: {score name: (value, detail)}} for the dataset's scored records (only `names` if given)."""
    query = (select(RecordScore.record_id, RecordScore.name, RecordScore.value, RecordScore.detail)
             .join(Record, Record.id == RecordScore.record_id).where(Record.dataset_id == dataset_id))
    if names is not None:
        query = query.where(RecordScore.name.in_(names))
    found: dict[int, dict[str, tuple[float | None, dict | None]]] = {}
    for record_id, name, value, detail in session.connection().execute(query):
        found.setdefault(record_id, {})[name] = (value, detail)
    return found


class SelectionLeftOut(SQLModel, table=True):
    """A record DEITA's rule skipped because it was too close to one the selection had already taken."""

    __tablename__ = "selection_left_out"

    selection_id: int = Field(foreign_key="selection.id", primary_key=True, ondelete="CASCADE")
    record_id: int = Field(foreign_key="record.id", primary_key=True, ondelete="CASCADE")
    too_close_to: int  # the taken record's id (no foreign key: the note outlives an edit of either record)
    similarity: float
