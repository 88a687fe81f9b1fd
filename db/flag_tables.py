"""The quality flags of each record, stored so that browse filters and stats count them in the database."""
from __future__ import annotations

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


class RecordFlag(SQLModel, table=True):
    """One quality check (a name of curation.quality.records.CHECKS) that a record fails; db.repo keeps it current."""

    __tablename__ = "record_flag"
    # Browse by one flag and the counts per flag start from the flag; the primary key serves "this record's flags".
    __table_args__ = (Index("ix_record_flag_flag_record", "flag", "record_id"),)

    record_id: int = Field(foreign_key="record.id", primary_key=True, ondelete="CASCADE")
    flag: str = Field(primary_key=True, max_length=40)
