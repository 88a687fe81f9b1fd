"""What a dataset covers and how it reads: quality flags, clusters on a map, and the editor's live near-duplicate hint.

The use cases of the diversity view beside near-duplicate search (curation.services.dedup), on the same
records and cached vectors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from curation import dedup, diversity
from curation.embeddings import DEFAULT_FIELDS, Embedder, record_parts
from curation.quality.records import CHECKS
from curation.services.annotation import InvalidInput
from curation.services.dedup import (Progress, Shared, dataset_id_of, live_records, part_vectors, shared_parts,
                                     without_shared_parts)
from db.flags import stored_flags
from db.models import Dataset, Record, RecordStatus


def quality_report(session: Session, *, dataset: str, examples: int = 5) -> dict[str, Any]:
    """Counts of live records failing each check, with the first few record ids of each."""
    dataset_id = dataset_id_of(session, dataset)
    live = session.exec(select(Record.id).where(Record.dataset_id == dataset_id,
                                                Record.status != RecordStatus.discarded).order_by(Record.id)).all()
    flags = stored_flags(session, dataset_id)
    counts = {name: 0 for name in CHECKS}
    found: dict[str, list[int]] = {name: [] for name in CHECKS}
    for record_id in live:
        for name in flags.get(record_id, ()):
            counts[name] += 1
            if len(found[name]) < examples:
                found[name].append(record_id)
    return {"dataset": dataset, "records": len(live), "flags": counts, "examples": found}


# ---- coverage and the editor's live hint ---------------------------------------------------------

def coverage_report(session: Session, *, dataset: str, fields: str = "instruction", embedder: Embedder | None = None,
                    n_clusters: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """diversity.coverage of the live records, each point also carrying its instruction, category, status and flags."""
    dataset_id = dataset_id_of(session, dataset)
    records = live_records(session, dataset_id)
    vectors = part_vectors(session, records, fields, embedder or Embedder(), progress)
    report = diversity.coverage(records, vectors.mean(axis=1), n_clusters)
    flags = stored_flags(session, dataset_id)
    for point, r in zip(report["points"], records):
        point.update(instruction=r["instruction"][:300], category=r["category"], status=r["status"],
                     flags=flags.get(r["id"], []))
    return {"dataset": dataset, "records": len(records), **report}


@dataclass
class NearDuplicateHint:
    """What the editor keeps in memory to show, while someone types, the records their text already matches."""

    dataset_id: int
    fields: str
    embedder: Embedder
    index: dedup.NearDuplicateIndex
    # The prefix and suffix a large share of the records carry in each part, left out as a search leaves them
    # (shared_parts): cut from the records indexed and from what is typed, or a common preamble matches everything.
    shared: Shared = field(default_factory=list)

    def compared(self, instruction: str, input: str = "", output: str = "") -> tuple[str, ...]:
        """A text's parts as the index compares them; a part that is only the start of its shared prefix (the
        preamble being typed or pasted) is "", so it matches nothing yet."""
        parts = record_parts(self.fields, instruction, input, output)
        if not self.shared:
            return parts
        return tuple("" if text.strip() and prefix.startswith(text.rstrip()) else cut
                     for text, cut, (prefix, _) in zip(parts, without_shared_parts(parts, self.shared), self.shared))


def dataset_sizes(session: Session, dataset: str | None = None) -> dict[str, int]:
    """How many records each dataset holds (or only `dataset`), by name; empty datasets are left out."""
    query = select(Dataset.name, func.count(Record.id)).join(Record, Record.dataset_id == Dataset.id)
    if dataset is not None:
        query = query.where(Dataset.name == dataset)
    return dict(session.exec(query.group_by(Dataset.name)).all())


def near_duplicate_hint(session: Session, *, dataset: str, fields: str = DEFAULT_FIELDS,
                        embedder: Embedder | None = None, progress: Progress | None = None) -> NearDuplicateHint:
    """Load (embedding what the cache lacks) every live record of a dataset for closest_records()."""
    dataset_id = dataset_id_of(session, dataset)
    records = live_records(session, dataset_id)
    embedder = embedder or Embedder()
    shared = shared_parts(records, fields)[0]
    vectors = part_vectors(session, records, fields, embedder, progress, shared=shared)
    index = dedup.NearDuplicateIndex([r["id"] for r in records], [vectors[:, k] for k in range(vectors.shape[1])])
    return NearDuplicateHint(dataset_id, fields, embedder, index, shared)


def closest_records(session: Session, hint: NearDuplicateHint, *, instruction: str, input: str = "", output: str = "",
                    threshold: float = dedup.DEFAULT_THRESHOLD, k: int = 5,
                    exclude_id: int | None = None) -> list[dict[str, Any]]:
    """Records at or above `threshold` to what is being typed, most similar first: id, score, instruction, input, status."""
    compared = hint.compared(instruction or "", input or "", output or "")
    if not compared[0].strip():  # nothing typed yet, or only the preamble every record starts with
        return []
    parts = hint.embedder.encode(compared)
    found = hint.index.closest(list(parts), threshold, k, exclude=[exclude_id] if exclude_id else [])
    if not found:
        return []
    rows = {r.id: r for r in session.exec(select(Record).where(Record.id.in_([i for i, _ in found])))}
    return [{"id": i, "score": round(score, 4), "instruction": rows[i].instruction, "input": rows[i].input,
             "status": rows[i].status.value} for i, score in found
            if i in rows and rows[i].status != RecordStatus.discarded]


def similar_records(session: Session, hint: NearDuplicateHint, *, record_id: int, k: int = 10,
                    floor: float = 0.0) -> list[dict[str, Any]]:
    """The `k` live records nearest in meaning to record `record_id` (itself left out), most similar first, each
    with its score (the lowest of its parts' cosines, as a search scores a pair): Find similar."""
    record = session.get(Record, int(record_id))
    if record is None or record.dataset_id != hint.dataset_id:
        raise InvalidInput(f"record {record_id} is not in this dataset")
    return closest_records(session, hint, instruction=record.instruction, input=record.input,
                           output=(record.outputs or [""])[0], threshold=floor, k=k, exclude_id=record.id)


def records_by_meaning(hint: NearDuplicateHint, text: str, k: int = 500) -> list[tuple[int, float]]:
    """(record id, score) of the `k` live records closest in meaning to `text`, best first: Browse's search by
    meaning. A record scores its best part (instruction or input), as a query may name what either holds."""
    import numpy as np

    if not (text or "").strip() or not len(hint.index.ids):
        return []
    vector = hint.embedder.encode([text.strip()])[0]
    scores = np.max([part @ vector for part in hint.index.parts], axis=0)
    top = np.argsort(-scores, kind="stable")[:k]
    return [(int(hint.index.ids[i]), round(float(scores[i]), 4)) for i in top]


def remember_record(hint: NearDuplicateHint, *, record_id: int, instruction: str, input: str = "",
                    output: str = "") -> None:
    """Add a record saved after the hint was built, so the next annotator sees it too."""
    hint.index.add(record_id, list(hint.embedder.encode(hint.compared(instruction, input, output))))
