"""The Diversity map kept with the vectors: each record's 2-D place and cluster, laid out once per content."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow


class RecordMap(SQLModel, table=True):
    """One laid-out map of a dataset's live records, found again by its fingerprint (curation.maps.map_fingerprint:
    the records' ids and embedded texts, the model, the fields, the projection and clusters asked for).

    `arrays` is an .npz: `ids` (record ids, id order), `xy` (float32, two a record) and `clusters` (the k-means
    cluster of each record). About 20 bytes a record: 52k records are about 1 MB.
    """

    __tablename__ = "record_map"
    __table_args__ = (UniqueConstraint("dataset_id", "fields", "fingerprint", name="uq_record_map"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True, ondelete="CASCADE")
    fields: str = Field(max_length=40)  # what was embedded: instruction, instruction+input, record
    projection: str = Field(max_length=10)  # what was asked: auto, umap, pca
    method: str = Field(max_length=10)  # what drew it: umap or pca
    fingerprint: str = Field(max_length=64)
    records: int = 0
    seconds: float = 0.0  # the layout (clusters and projection), not the embedding
    created_by: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
    arrays: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
