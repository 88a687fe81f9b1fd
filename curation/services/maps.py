"""The Diversity map of a dataset: its live records clustered and laid out in 2-D, kept in the database by a
fingerprint of what they were laid out from, so that opening the view again reads the map instead of laying it
out anew (about 40 s at 52k records on two cores, bench/map_build.py).

The fingerprint (curation.maps.map_fingerprint) covers each live record's id and the texts embedded for it, the
model and precision, the fields, the projection and clusters asked for: an edit, a new record or a discarded
one lays the map out again; a review (another status) does not. Statuses, categories and flags are read fresh.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sqlalchemy import delete, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from curation import diversity, maps
from curation.embeddings import Embedder, record_parts
from curation.services.dedup import Progress, dataset_id_of, live_records, part_vectors
from db.flags import stored_flags
from db.map_tables import RecordMap
from db.models import Record, RecordStatus

MAP_FIELDS = "instruction"  # what the map embeds, as coverage always has
# Seconds of layout (clusters and UMAP) a record, before any map was stored to learn from: bench/map_build.py
# measured 52k records in about 35 s on two busy cores; a little more here, the estimate is said to a person.
SECONDS_PER_RECORD = 0.0008
SECONDS_TO_START = 3.0  # loading umap and numba's cached functions
LEARN_FROM = 1_000  # records: a stored map this large tells how fast this machine lays out


@dataclass
class StoredMap:
    ids: np.ndarray
    xy: np.ndarray
    clusters: np.ndarray
    method: str
    seconds: float
    created_by: str | None


def fingerprint_of(records: list[dict[str, Any]], *, fields: str, embedder: Embedder, projection: str = "auto",
                   n_clusters: int | None = None) -> str:
    """The fingerprint of the map these records (live_records rows, id order) would be laid out into."""
    texts = ((r["id"], record_parts(fields, r["instruction"], r["input"], r["output"])) for r in records)
    return maps.map_fingerprint(texts, model=f"{embedder.model_name}@{embedder.precision}", fields=fields,
                                projection=projection, clusters=n_clusters)


def stored_map(session: Session, *, dataset_id: int, fields: str, fingerprint: str) -> StoredMap | None:
    """The map stored under this fingerprint, or None."""
    row = session.exec(select(RecordMap).where(RecordMap.dataset_id == dataset_id, RecordMap.fields == fields,
                                               RecordMap.fingerprint == fingerprint)).first()
    if row is None:
        return None
    arrays = np.load(io.BytesIO(row.arrays))
    return StoredMap(arrays["ids"], arrays["xy"], arrays["clusters"], row.method, row.seconds, row.created_by)


def store_map(session: Session, *, dataset_id: int, fields: str, projection: str, fingerprint: str,
              ids: np.ndarray, xy: np.ndarray, clusters: np.ndarray, method: str, seconds: float,
              by: str | None = None) -> None:
    """Keep a laid-out map, in place of the dataset's earlier one for the same fields and projection."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, ids=np.asarray(ids, dtype=np.int64), xy=np.asarray(xy, dtype=np.float32),
                        clusters=np.asarray(clusters, dtype=np.int32))
    session.exec(delete(RecordMap).where(RecordMap.dataset_id == dataset_id, RecordMap.fields == fields,
                                         or_(RecordMap.projection == projection,
                                             RecordMap.fingerprint == fingerprint)))
    try:
        with session.begin_nested():  # another process stored the same map a moment ago: theirs stays
            session.add(RecordMap(dataset_id=dataset_id, fields=fields, projection=projection, method=method,
                                  fingerprint=fingerprint, records=len(ids), seconds=round(float(seconds), 3),
                                  created_by=by, arrays=buffer.getvalue()))
    except IntegrityError:
        pass


def estimated_seconds(session: Session, records: int) -> float:
    """About how long laying out `records` records takes here: at the pace of the latest map of at least
    LEARN_FROM records on this database, or SECONDS_PER_RECORD before there is one. The embedding is apart."""
    pace = session.exec(select(RecordMap.seconds, RecordMap.records).where(RecordMap.records >= LEARN_FROM)
                        .order_by(RecordMap.created_at.desc(), RecordMap.id.desc())).first()
    per_record = pace[0] / pace[1] if pace else SECONDS_PER_RECORD
    return SECONDS_TO_START + per_record * records if records >= maps.UMAP_FROM else 0.5


def map_size(session: Session, *, dataset: str) -> int:
    """How many live records a map of the dataset shows."""
    dataset_id = dataset_id_of(session, dataset)
    return session.exec(select(func.count(Record.id)).where(Record.dataset_id == dataset_id,
                                                           Record.status != RecordStatus.discarded)).one()


def map_report(session: Session, *, dataset: str, fields: str = MAP_FIELDS, embedder: Embedder | None = None,
               n_clusters: int | None = None, projection: str = "auto", progress: Progress | None = None,
               laying_out: Callable[[], None] | None = None, stored_only: bool = False,
               by: str | None = None) -> dict[str, Any] | None:
    """diversity.coverage of the live records (each point with its instruction, category, status and flags)
    and "map": how it was drawn (method, seconds, stored: read from the database rather than laid out).

    The stored map is used when its fingerprint matches; otherwise the records are embedded (the vector cache
    first), clustered and laid out, and the map is stored. stored_only: None instead of laying out.
    `laying_out` is called when the embedding is done and the layout starts.
    """
    dataset_id = dataset_id_of(session, dataset)
    records = live_records(session, dataset_id)
    embedder = embedder or Embedder()
    key = fingerprint_of(records, fields=fields, embedder=embedder, projection=projection, n_clusters=n_clusters)
    ids = np.asarray([r["id"] for r in records], dtype=np.int64)
    found = stored_map(session, dataset_id=dataset_id, fields=fields, fingerprint=key)
    if found is not None and not np.array_equal(found.ids, ids):
        found = None
    if found is None:
        if stored_only:
            return None
        vectors = part_vectors(session, records, fields, embedder, progress).mean(axis=1)
        if laying_out:
            laying_out()
        started = time.perf_counter()
        clusters = (diversity.cluster_labels(vectors, n_clusters) if len(records)
                    else np.zeros(0, dtype=np.int64))
        xy = diversity.map_2d(vectors, projection=projection) if len(records) else np.zeros((0, 2), np.float32)
        found = StoredMap(ids, xy, clusters, maps.projection_for(len(records), projection),
                          time.perf_counter() - started, by)
        store_map(session, dataset_id=dataset_id, fields=fields, projection=projection, fingerprint=key, ids=ids,
                  xy=xy, clusters=clusters, method=found.method, seconds=found.seconds, by=by)
        stored = False
    else:
        stored = True
    report = diversity.coverage(records, None, labels=np.asarray(found.clusters, dtype=np.int64), xy=found.xy)
    flags = stored_flags(session, dataset_id)
    for point, r in zip(report["points"], records):
        point.update(instruction=r["instruction"][:300], category=r["category"], status=r["status"],
                     flags=flags.get(r["id"], []))
    return {"dataset": dataset, "records": len(records), **report,
            "map": {"method": found.method, "seconds": round(float(found.seconds), 1), "stored": stored}}
