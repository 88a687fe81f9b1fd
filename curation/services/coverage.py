"""What a dataset covers and how it reads: quality flags, clusters on a map, and the editor's live near-duplicate hint.

The use cases of the diversity view beside near-duplicate search (curation.services.dedup), on the same
records and cached vectors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from curation import dedup, diversity
from curation.embeddings import DEFAULT_FIELDS, FIELDS, Embedder, record_parts
from curation.quality.records import CHECKS
from curation.services.annotation import InvalidInput
from curation.services.dedup import (Progress, Shared, dataset_id_of, live_records, part_vectors, shared_parts,
                                     without_shared_parts)
from db.flags import stored_flags
from db.models import Dataset, Record, RecordStatus, utcnow

HINT_BUILD_CHUNK = 8_192  # records per step of a build: each step's vectors go straight into the index
# A refresh reads the records stamped from this long before the previous one read: a save stamped before that
# read but committed after it is not missed (a larger import committed later is taken in by the next full build).
CHANGES_OVERLAP = timedelta(minutes=2)
RECENT_TEXTS = 64  # typed texts whose vectors the hint keeps


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
    changes_from: datetime | None = None  # hint_changes reads the records stamped from then on
    recent: dict[str, Any] = field(default_factory=dict, repr=False)  # text -> vector, the last RECENT_TEXTS

    def encode(self, parts: tuple[str, ...]) -> list[Any]:
        """The parts' vectors, the recently seen texts' from memory: while someone types the instruction, the
        input's vector (often the empty text's) is not computed again at each keystroke."""
        missing = [text for text in dict.fromkeys(parts) if text not in self.recent]
        if missing:
            self.recent.update(zip(missing, self.embedder.encode(missing)))
        vectors = [self.recent[text] for text in parts]
        for text in parts:  # the texts just used are the newest: the oldest unused ones go first
            self.recent[text] = self.recent.pop(text)
        while len(self.recent) > RECENT_TEXTS:
            self.recent.pop(next(iter(self.recent)))
        return vectors

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


def _hint_rows(session: Session, dataset_id: int, fields: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """The texts the hint compares (id, instruction, input, output, status) in id order: of the live records, or
    with `since` of every record stamped since then, discarded ones too."""
    columns = [Record.id, Record.instruction, Record.input, Record.status] + (
        [Record.outputs] if "output" in FIELDS[fields] else [])
    query = select(*columns).where(Record.dataset_id == dataset_id)
    query = query.where(Record.status != RecordStatus.discarded) if since is None else query.where(
        Record.updated_at >= since)
    rows = session.connection().execute(query.order_by(Record.id)).all()
    return [{"id": r[0], "instruction": r[1], "input": r[2], "status": getattr(r[3], "value", r[3]),
             "output": (r[4] or [""])[0] if len(r) > 4 else ""} for r in rows]


def near_duplicate_hint(session: Session, *, dataset: str, fields: str = DEFAULT_FIELDS,
                        embedder: Embedder | None = None, progress: Progress | None = None) -> NearDuplicateHint:
    """Load (embedding what the cache lacks) every live record of a dataset for closest_records().

    `progress` hears (records indexed, records) as the build goes, from (0, records) on; the vectors of each
    HINT_BUILD_CHUNK records go into the index as they come, and what was embedded is committed to the cache.
    """
    dataset_id = dataset_id_of(session, dataset)
    started = utcnow()
    records = _hint_rows(session, dataset_id, fields)
    total = len(records)
    if progress:
        progress(0, total)
    embedder = embedder or Embedder()
    shared = shared_parts(records, fields)[0]
    index = dedup.NearDuplicateIndex.empty(len(FIELDS[fields]), embedder.dim, capacity=total)
    for start in range(0, total, HINT_BUILD_CHUNK):
        chunk = records[start:start + HINT_BUILD_CHUNK]

        def step(done: int, texts: int, start: int = start, size: int = len(chunk)) -> None:
            progress(start + done * size // max(texts, 1), total)

        vectors = part_vectors(session, chunk, fields, embedder, step if progress else None, shared=shared)
        index.extend([r["id"] for r in chunk], [vectors[:, k] for k in range(vectors.shape[1])])
    return NearDuplicateHint(dataset_id, fields, embedder, index, shared, changes_from=started - CHANGES_OVERLAP)


HintChanges = list[tuple[int, Any]]  # (record id, its part vectors; None: no longer live)


def hint_changes(session: Session, hint: NearDuplicateHint) -> tuple[HintChanges, datetime]:
    """What changed since the hint last looked (hint.changes_from): each record stamped since then with its part
    vectors (from the cache, embedding what it lacks), or None for a discarded one; and the next look's start.

    Meant to run beside the hint, without its lock: take_in_changes applies the answer.
    """
    next_from = utcnow() - CHANGES_OVERLAP
    rows = _hint_rows(session, hint.dataset_id, hint.fields, since=hint.changes_from)
    live = [r for r in rows if r["status"] != RecordStatus.discarded.value]
    vectors = part_vectors(session, live, hint.fields, hint.embedder, shared=hint.shared) if live else []
    gone: HintChanges = [(r["id"], None) for r in rows if r["status"] == RecordStatus.discarded.value]
    return gone + [(r["id"], list(v)) for r, v in zip(live, vectors)], next_from


def take_in_changes(hint: NearDuplicateHint, changes: HintChanges, next_from: datetime,
                    skip: set[int] | frozenset = frozenset()) -> int:
    """Apply hint_changes' answer to the index, leaving out the records in `skip` (taken in since, from a save);
    returns how many records it changed."""
    changed = 0
    for record_id, vectors in changes:
        if record_id in skip:
            continue
        if vectors is None:
            hint.index.remove(record_id)
        else:
            hint.index.put(record_id, vectors)
        changed += 1
    hint.changes_from = next_from
    return changed


def closest_records(session: Session, hint: NearDuplicateHint, *, instruction: str, input: str = "", output: str = "",
                    threshold: float = dedup.DEFAULT_THRESHOLD, k: int = 5,
                    exclude_id: int | None = None) -> list[dict[str, Any]]:
    """Records at or above `threshold` to what is being typed, most similar first: id, score, instruction, input, status."""
    compared = hint.compared(instruction or "", input or "", output or "")
    if not compared[0].strip():  # nothing typed yet, or only the preamble every record starts with
        return []
    found = hint.index.closest(hint.encode(compared), threshold, k, exclude=[exclude_id] if exclude_id else [])
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
    """Take in a record saved after the hint was built (new, or its text edited), so the next annotator sees it
    too: one embedding of its parts and a row written, whatever the dataset's size."""
    hint.index.put(record_id, hint.encode(hint.compared(instruction, input, output)))
