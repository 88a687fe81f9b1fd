"""Near-duplicate use cases: search a dataset, list its groups, record and undo a curator's decision, flag quality.

A search stores its pairs (down to a floor below the threshold, so a UI can move the threshold without
searching again). Groups are built when listed, so decisions taken since a search always apply:
discarded records drop out, and records marked "not duplicates" are never paired again.
"""
from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
from sqlalchemy import delete, insert
from sqlmodel import Session, select

from curation import dedup, dedup_search
from curation.embeddings import DEFAULT_FIELDS, FIELDS, Embedder, embed_cached, record_parts
from curation.static_embeddings import StaticEmbedder
from curation.records import NULL_BYTE, normalize_text, null_byte_reason
from db import repo
from db.dedup_tables import DedupRun, DuplicateDecision, DuplicatePair, SearchedRecords
from db.models import Record, RecordStatus, utcnow

Progress = Callable[[int, int], None]
Shared = list[tuple[str, str]]  # (prefix, suffix) left out of each compared part, in FIELDS order ("": none)
DECISIONS = ("keep_one", "not_duplicates", "merge")
SEMANTIC_FLOOR = 0.90  # pairs kept per search: the UI's threshold can go down to here
PAIR_INSERT_CHUNK = 50_000  # pairs per INSERT: millions of pairs never sit in memory as row dicts
# review: SemDeDup's greedy groups around a kept record (no chaining); connected: every linked record together,
# the grouping a train/test split needs so that no pair straddles it.
GROUPINGS = ("review", "connected")
SHARED_TEXT_SHARE = 0.3  # a prefix or suffix this share of the records carry is left out of the comparison
# reference: the sentence model embeds every record (the measure of the others); cascade: static vectors pick the
# candidates and the sentence model embeds only those (dedup_search); auto: the cascade from MIN_RECORDS records.
MODES = ("auto", "cascade", "reference")


class DedupError(ValueError):
    """A request that cannot be carried out, said in the user's words."""


@dataclass
class DuplicateGroup:
    kind: str  # exact | semantic | lexical
    score: float  # the highest pair score in the group (1.0 for exact)
    keep_id: int  # the proposed record to keep
    records: list[dict[str, Any]]
    pairs: list[tuple[int, int, float]] = field(default_factory=list)


@dataclass
class DedupReport:
    dataset: str
    method: str
    fields: str
    threshold: float
    records: int
    seconds: float
    run_id: int | None
    exact_groups: list[DuplicateGroup]
    groups: list[DuplicateGroup]
    highest_score: float | None = None
    left_out: list[str] = field(default_factory=list)  # what compared_texts cut from every record, in words
    mode: str | None = None  # how a semantic search found its pairs (MODES, or "distributed"); None for lexical
    # A re-run that searched only what changed: the run whose other pairs it carried over, and how many records
    # it searched anew (None: a full search).
    carried_from: int | None = None
    searched: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dataset_id_of(session: Session, name: str) -> int:
    dataset = repo.get_dataset(session, name)
    if dataset is None:
        raise DedupError(f"dataset {name!r} does not exist")
    return dataset.id


def _rows(session: Session, query) -> list:
    """Rows through the Core connection: plain tuples, none of the ORM's per-row bookkeeping."""
    return session.connection().execute(query).all()


def live_records(session: Session, dataset_id: int, discarded: bool = False,
                  ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Records of the dataset (not discarded, unless asked; only `ids` if given) as plain dicts in id order."""
    columns = (Record.id, Record.instruction, Record.input, Record.outputs, Record.status, Record.category,
               Record.created_by, Record.created_at, Record.content_hash, Record.version, Record.generation_job_id)
    query = select(*columns).where(Record.dataset_id == dataset_id).order_by(Record.id)
    query = query if discarded else query.where(Record.status != RecordStatus.discarded)
    if ids is not None:
        rows = [r for start in range(0, len(ids), 1000) for r in _rows(session, query.where(
            Record.id.in_(ids[start:start + 1000])))]
    else:
        rows = _rows(session, query)
    return [{"id": r.id, "instruction": r.instruction, "input": r.input, "output": (r.outputs or [""])[0],
             "status": getattr(r.status, "value", r.status), "category": r.category, "created_by": r.created_by,
             "created_at": r.created_at.isoformat(), "content_hash": r.content_hash, "version": r.version,
             "generation_job_id": r.generation_job_id}
            for r in rows]


def _live_hashes(session: Session, dataset_id: int) -> dict[int, str]:
    """Content hash of every record that is not discarded, by id."""
    return dict(_rows(session, select(Record.id, Record.content_hash).where(
        Record.dataset_id == dataset_id, Record.status != RecordStatus.discarded)))


def _not_duplicate_sets(session: Session, dataset_id: int) -> list[set[int]]:
    rows = session.exec(select(DuplicateDecision.record_ids).where(
        DuplicateDecision.dataset_id == dataset_id, DuplicateDecision.kind == "not_duplicates",
        DuplicateDecision.undone_at.is_(None)))
    return [set(ids) for ids in rows]


def _usable(session: Session, dataset_id: int, pairs, live: dict[int, str]) -> list[tuple[int, int, float]]:
    """Pairs between live records that no active "not duplicates" decision separates."""
    apart = _not_duplicate_sets(session, dataset_id)
    return [(a, b, s) for a, b, s in pairs
            if a in live and b in live and not any(a in ids and b in ids for ids in apart)]


def _group_ids(session: Session, dataset_id: int, pairs: list[tuple[int, int, float]],
               grouping: str) -> tuple[list[list[int]], dict[int, dict[str, Any]]]:
    """(groups as sorted id lists, the live records in them by id) under `grouping` (GROUPINGS)."""
    if grouping not in GROUPINGS:
        raise DedupError(f"unknown grouping {grouping!r}: choose one of {', '.join(GROUPINGS)}")
    ids = sorted({i for pair in pairs for i in pair[:2]})
    by_id = {r["id"]: r for r in live_records(session, dataset_id, ids=ids)}
    if grouping == "connected":
        return dedup.connected_groups(pairs), by_id
    keep_order = [r["id"] for r in sorted(by_id.values(), key=dedup.keep_preference)]
    return [sorted(g) for g in dedup.review_groups(pairs, keep_order)], by_id


def _groups(session: Session, dataset_id: int, kind: str, pairs: list[tuple[int, int, float]],
            grouping: str = "connected") -> list[DuplicateGroup]:
    components, by_id = _group_ids(session, dataset_id, pairs, grouping)
    group_of = {i: n for n, component in enumerate(components) for i in component}
    inside: list[list] = [[] for _ in components]
    for pair in pairs:
        if pair[0] in group_of and group_of[pair[0]] == group_of.get(pair[1]):
            inside[group_of[pair[0]]].append(pair)
    groups = [DuplicateGroup(kind, max(p[2] for p in pairs_in), dedup.proposed_keep([by_id[i] for i in ids]),
                             [by_id[i] for i in ids], pairs_in) for ids, pairs_in in zip(components, inside)]
    return sorted(groups, key=lambda g: (-g.score, g.records[0]["id"]))


def _columns(records: list[dict[str, Any]], fields: str) -> list[tuple[str, ...]]:
    """Each part's texts over the records, in FIELDS order."""
    if not records:
        return [() for _ in FIELDS[fields]]
    return list(zip(*[record_parts(fields, r["instruction"], r["input"], r["output"]) for r in records]))


def _shared_of(columns: list[tuple[str, ...]], fields: str) -> tuple[Shared, list[str]]:
    """(each part's shared prefix and suffix, the sentences saying so) from each part's texts (_columns)."""
    shared, notes = [], []
    for column, name in zip(columns, FIELDS[fields]):
        (prefix, prefix_share), (suffix, suffix_share) = dedup.shared_text(column, SHARED_TEXT_SHARE)
        for where, text, held in (("prefix", prefix, prefix_share), ("suffix", suffix, suffix_share)):
            if text:
                notes.append(left_out_sentence(name, where, text, held))
        shared.append((prefix, suffix))
    return shared, notes


def shared_parts(records: list[dict[str, Any]], fields: str) -> tuple[Shared, list[str]]:
    """(the prefix and suffix compared_texts cuts from each part, the sentences that say so)."""
    return _shared_of(_columns(records, fields), fields)


def without_shared_parts(parts: tuple[str, ...], shared: Shared) -> tuple[str, ...]:
    """One record's parts as compared: each with its part's shared prefix and suffix cut (see shared_parts)."""
    return tuple(dedup.without_shared_text([text], prefix, suffix)[0] if prefix or suffix else text
                 for text, (prefix, suffix) in zip(parts, shared))


def compared_texts(records: list[dict[str, Any]], fields: str) -> tuple[list[tuple[str, ...]], list[str]]:
    """(each record's parts as compared, the sentences that say what was left out of them).

    A prefix or suffix that SHARED_TEXT_SHARE or more of the records carry in one part (a fixed preamble, tool
    descriptions, a template's closing line) would make every record close to every other; it is cut out.
    """
    columns = _columns(records, fields)
    shared, notes = _shared_of(columns, fields)
    columns = [dedup.without_shared_text(column, prefix, suffix) if prefix or suffix else column
               for column, (prefix, suffix) in zip(columns, shared)]
    return list(zip(*columns)) if records else [], notes


def left_out_sentence(part: str, where: str, text: str, held: float) -> str:
    """What the view says about a shared prefix or suffix left out of the comparison."""
    shown = " ".join(text.split())
    if len(shown) > 80:  # cut at a word, on the side away from the records' own text
        shown = shown[:78].rsplit(" ", 1)[0] + "…" if where == "prefix" else "…" + shown[-78:].split(" ", 1)[-1]
    return (f"Left out of the comparison: a shared {part} {where} of {len(text):,} characters held by "
            f"{held:.0%} of the records: “{shown}”")


def left_out_of_comparison(session: Session, *, dataset: str, fields: str | None = None) -> list[str]:
    """The sentences saying which shared prefix or suffix a search of the dataset as it is now would leave out.

    What the latest search left out is on its run (DedupRun.left_out); this is for a search not yet run.
    """
    fields = fields or DEFAULT_FIELDS
    return shared_parts(searched_records(session, dataset_id_of(session, dataset), fields), fields)[1]


def part_vectors(session: Session, records: list, fields: str, embedder: Embedder,
                  progress: Progress | None = None, shared: Shared | None = None) -> np.ndarray:
    """(records, parts, dim) vectors, from the cache where it has them; with `shared`, of the parts as compared."""
    if not records:  # an empty dataset: no vectors, but the shape the index expects (reshape cannot infer it)
        return np.zeros((0, len(FIELDS[fields]), embedder.dim), dtype=np.float32)
    parts = (record_parts(fields, r["instruction"], r["input"], r["output"]) for r in records)
    texts = [t for p in parts for t in (without_shared_parts(p, shared) if shared else p)]
    vectors = embed_cached(session, embedder, texts, progress)
    session.commit()  # keep what was embedded, even if a later step fails
    return vectors.reshape(len(records), len(FIELDS[fields]), -1)


def _semantic_pairs(session: Session, texts: list[tuple[str, ...]], fields: str, embedder: Embedder, floor: float,
                    progress: Progress | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference search (dedup_search.staged_pair_arrays) with vectors from the cache: indices into texts."""
    return dedup_search.staged_pair_arrays(texts, _cached_embed(session, embedder), floor, progress)


def _cached_embed(session: Session, embedder: Embedder):
    return lambda texts, progress: embed_cached(session, embedder, texts, progress)


def added_by_job(groups: list[DuplicateGroup], job_id: int | None) -> list[DuplicateGroup]:
    """The groups holding at least one record that generation job `job_id` wrote (all of them when None)."""
    if job_id is None:
        return groups
    return [g for g in groups if any(r.get("generation_job_id") == int(job_id) for r in g.records)]


def exact_duplicate_groups(session: Session, *, dataset: str, added_by: int | None = None) -> list[DuplicateGroup]:
    """Groups of live records with the same normalized instruction, input and outputs, largest first.

    With `added_by`, only the groups where generation job `added_by` wrote a record: what it added that is
    already there.
    """
    dataset_id = dataset_id_of(session, dataset)
    live = _live_hashes(session, dataset_id)
    ids = sorted(live)
    pairs = [(ids[g[0]], ids[i], 1.0) for g in dedup.exact_groups([live[i] for i in ids]) for i in g[1:]]
    return added_by_job(_groups(session, dataset_id, "exact", _usable(session, dataset_id, pairs, live)), added_by)


def searched_records(session: Session, dataset_id: int, fields: str) -> list[dict[str, Any]]:
    """Every record of the dataset, discarded ones too (so an undone discard needs no new search), id order."""
    columns = [Record.id, Record.instruction, Record.input] + ([Record.outputs] if fields == "record" else [])
    rows = _rows(session, select(*columns).where(Record.dataset_id == dataset_id).order_by(Record.id))
    return [{"id": r[0], "instruction": r[1], "input": r[2], "output": (r[3] or [""])[0] if len(r) > 3 else ""}
            for r in rows]


def search_mode(mode: str | None, records: int) -> str:
    """The semantic search a request runs: `mode` as asked, or for "auto" the cascade from MIN_RECORDS records on."""
    mode = mode or "auto"
    if mode not in MODES:
        raise DedupError(f"unknown search mode {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "auto":
        return "cascade" if records >= dedup_search.MIN_RECORDS else "reference"
    return mode


def _cascade_pairs(session: Session, texts: list[tuple[str, ...]], fields: str, embedder: Embedder,
                   static: StaticEmbedder, floor: float, progress: Progress | None):
    """The cascade (dedup_search.cascade_pair_arrays), sentence-model vectors from the cache: indices into texts."""
    n, width = len(texts), len(FIELDS[fields])
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    # the bar: the static look over every text is its first tenth, the sentence model's work the rest
    static_progress = (lambda done, of: progress(done * (n // 10) // max(of, 1), n)) if progress else None
    confirm_progress = (lambda done, of: progress(n // 10 + done * (n - n // 10) // max(of, 1), n)) \
        if progress else None
    vectors = static.encode([t for parts in texts for t in parts], static_progress).reshape(n, width, -1)
    found, rows = dedup_search.cascade_search(texts, [vectors[:, p] for p in range(width)],
                                              _cached_embed(session, embedder), floor, progress=confirm_progress)
    if progress:
        progress(n, n)
    candidates = np.zeros(n, dtype=bool)
    candidates[rows] = True
    return found, candidates


# ---- re-runs: search only the records that changed since the last run ----------------------------------

def _pack(ids: np.ndarray, hashes: np.ndarray, candidates: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, ids=ids, hashes=hashes, candidates=candidates)
    return buffer.getvalue()


def _unpack(blob: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(blob)) as arrays:
        return arrays["ids"], arrays["hashes"], arrays["candidates"]


def _previous_search(session: Session, run: DedupRun) -> tuple[DedupRun, SearchedRecords] | None:
    """The dataset's latest semantic run, when it searched the way `run` will (fields, model, precision, floor,
    mode and the same shared parts left out) and kept a record of what it compared."""
    latest = session.exec(select(DedupRun).where(DedupRun.dataset_id == run.dataset_id, DedupRun.method == "semantic")
                          .order_by(DedupRun.id.desc()).limit(1)).first()
    same = ("fields", "model", "precision", "floor", "mode", "left_out")
    if latest is None or any(getattr(latest, name) != getattr(run, name) for name in same):
        return None
    searched = session.get(SearchedRecords, latest.id)
    return (latest, searched) if searched is not None else None


def _run_pair_arrays(session: Session, run_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stored run's pairs as (record_a, record_b, score) arrays, read in slices."""
    result = session.connection().execute(select(DuplicatePair.record_a, DuplicatePair.record_b, DuplicatePair.score)
                                          .where(DuplicatePair.run_id == run_id))
    rows = np.concatenate([np.array(part, dtype=np.float64).reshape(-1, 3) for part in result.partitions(100_000)]
                          or [np.zeros((0, 3))])
    return rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2].astype(np.float32)


def _incremental_pairs(session: Session, previous: tuple[DedupRun, SearchedRecords], ids: np.ndarray,
                       hashes: np.ndarray, texts: list[tuple[str, ...]], embedder: Embedder,
                       static: StaticEmbedder | None, floor: float, progress: Progress | None):
    """(pairs as record ids, candidates, rows searched) for a re-run: the last run's pairs between records that
    did not change, and a search of the changed records against all; None when too much changed for that to pay."""
    run, searched = previous
    before_ids, before_hashes, before_candidates = _unpack(searched.arrays)
    at = np.minimum(np.searchsorted(before_ids, ids), max(len(before_ids) - 1, 0))
    same = (before_ids[at] == ids) & (before_hashes[at] == hashes) if len(before_ids) else np.zeros(len(ids), bool)
    changed = np.flatnonzero(~same)
    if not dedup_search.worth_searching_alone(len(changed), len(ids)):
        return None
    a, b, scores = _run_pair_arrays(session, run.id)
    kept = np.isin(a, ids[same]) & np.isin(b, ids[same])
    carried = (a[kept], b[kept], scores[kept])
    candidates = np.ones(len(ids), dtype=bool) if static is None else np.zeros(len(ids), dtype=bool)
    candidates[same] = before_candidates[at[same]]
    if not len(changed):
        if progress:
            progress(len(ids), len(ids))
        return carried, candidates, 0
    static_parts = None
    if static is not None:  # the changed records' static neighbours are looked for among every record
        width = len(texts[0])
        vectors = static.encode([t for parts in texts for t in parts]).reshape(len(texts), width, -1)
        static_parts = [vectors[:, p] for p in range(width)]
    found, candidates = dedup_search.changed_pair_arrays(texts, changed, candidates, _cached_embed(session, embedder),
                                                         floor, static_parts, progress=progress)
    if progress:
        progress(len(ids), len(ids))
    pairs = dedup_search.unique_pairs([carried, (ids[found[0]], ids[found[1]], found[2])])
    return pairs, candidates, len(changed)


def _keep_what_was_searched(session: Session, run: DedupRun, ids: np.ndarray, hashes: np.ndarray,
                            candidates: np.ndarray, based_on: int | None, searched: int) -> None:
    """Store what `run` compared for the next re-run, and drop what older runs of the dataset kept."""
    older = select(DedupRun.id).where(DedupRun.dataset_id == run.dataset_id, DedupRun.id != run.id)
    session.execute(delete(SearchedRecords).where(SearchedRecords.run_id.in_(older)))
    session.add(SearchedRecords(run_id=run.id, based_on=based_on, searched=searched,
                                arrays=_pack(ids, hashes, candidates)))


def run_dedup(session: Session, *, dataset: str, threshold: float | None = None, fields: str | None = None,
              lexical: bool = False, embedder: Embedder | None = None, by: str | None = None,
              progress: Progress | None = None, mode: str | None = None,
              static: StaticEmbedder | None = None) -> DedupReport:
    """Search a dataset for near-duplicates (semantic by default, or Self-Instruct's ROUGE-L rule), store and group them.

    `mode` (MODES) says how a semantic search finds its pairs; the run records which one did.
    """
    method = "lexical" if lexical else "semantic"
    fields = fields or ("instruction" if lexical else DEFAULT_FIELDS)
    threshold = threshold if threshold is not None else (dedup.SELF_INSTRUCT_ROUGE if lexical else dedup.DEFAULT_THRESHOLD)
    if fields not in FIELDS:
        raise DedupError(f"unknown fields {fields!r}: choose one of {', '.join(FIELDS)}")
    if not 0.0 < threshold <= 1.0:
        raise DedupError(f"threshold must be above 0 and at most 1, got {threshold}")
    dataset_id = dataset_id_of(session, dataset)
    started = time.perf_counter()
    records = searched_records(session, dataset_id, fields)
    floor = threshold if lexical else min(threshold, SEMANTIC_FLOOR)
    compared, left_out = compared_texts(records, fields)
    run = DedupRun(dataset_id=dataset_id, method=method, fields=fields, threshold=threshold, floor=floor,
                   record_count=len(records), left_out=left_out, created_by=by)
    ids = np.array([r["id"] for r in records], dtype=np.int64)
    del records
    kept = None  # for a semantic search: what it compared, for the next re-run
    if lexical:
        texts = [" ".join(parts) for parts in compared]
        first, second, scores = dedup.lexical_pair_arrays(texts, floor, progress=progress)
        first, second = ids[first], ids[second]
    else:
        embedder = embedder or Embedder()
        run.model, run.precision, run.mode = embedder.model_name, embedder.precision, search_mode(mode, len(ids))
        if run.mode == "cascade":
            static = static or StaticEmbedder(embedder.model_name)
        hashes = dedup_search.text_fingerprints(compared)
        previous = _previous_search(session, run)
        again = previous and _incremental_pairs(session, previous, ids, hashes, compared, embedder,
                                                static if run.mode == "cascade" else None, floor, progress)
        if again:
            (first, second, scores), candidates, searched = again
            kept = (candidates, previous[0].id, searched)
        else:
            if run.mode == "cascade":
                found, candidates = _cascade_pairs(session, compared, fields, embedder, static, floor, progress)
            else:
                found, candidates = _semantic_pairs(session, compared, fields, embedder, floor, progress), \
                    np.ones(len(ids), dtype=bool)
            first, second, scores = ids[found[0]], ids[found[1]], found[2]
            kept = (candidates, None, len(ids))
    del compared
    run.pair_count, run.seconds = len(scores), time.perf_counter() - started
    session.add(run)
    session.flush()
    if kept is not None:
        _keep_what_was_searched(session, run, ids, hashes, *kept)
    for start in range(0, len(scores), PAIR_INSERT_CHUNK):
        end = start + PAIR_INSERT_CHUNK
        session.execute(insert(DuplicatePair), [
            {"run_id": run.id, "record_a": a, "record_b": b, "score": s} for a, b, s in
            zip(first[start:end].tolist(), second[start:end].tolist(), scores[start:end].tolist())])
    session.commit()
    highest = float(scores.max()) if len(scores) else None
    return DedupReport(dataset, method, fields, threshold, run.record_count, run.seconds, run.id,
                       exact_duplicate_groups(session, dataset=dataset),
                       duplicate_groups(session, dataset=dataset, method=method, threshold=threshold),
                       highest_score=highest, left_out=left_out, mode=run.mode,
                       carried_from=kept[1] if kept else None, searched=kept[2] if kept and kept[1] else None)


def rerun_words(session: Session, run: DedupRun) -> str | None:
    """For a re-run that searched only what changed, that in words; None for a full search."""
    searched = session.get(SearchedRecords, run.id)
    if searched is None or searched.based_on is None:
        return None
    changed = f"{searched.searched:,} record{'s' * (searched.searched != 1)}"
    if not searched.searched:
        return f"nothing changed since search #{searched.based_on}: its pairs were kept"
    return f"searched only the {changed} changed since search #{searched.based_on}, its other pairs kept"


def latest_run(session: Session, *, dataset: str, method: str = "semantic") -> DedupRun | None:
    return session.exec(select(DedupRun).where(DedupRun.dataset_id == dataset_id_of(session, dataset),
                                               DedupRun.method == method).order_by(DedupRun.id.desc())).first()


def _run_pairs(session: Session, dataset: str, method: str, threshold: float | None):
    """The latest search of `method` and its usable pairs at `threshold`, exact duplicates left out."""
    run = latest_run(session, dataset=dataset, method=method)
    if run is None:
        return None, []
    threshold = run.threshold if threshold is None else threshold
    if threshold < run.floor - 1e-9:
        raise DedupError(f"the last search kept pairs down to {run.floor}; search again to go to {threshold}")
    query = select(DuplicatePair.record_a, DuplicatePair.record_b, DuplicatePair.score).where(
        DuplicatePair.run_id == run.id)
    query = query.where(DuplicatePair.score > threshold if method == "lexical" else DuplicatePair.score >= threshold)
    live = _live_hashes(session, run.dataset_id)
    pairs = _usable(session, run.dataset_id, [tuple(p) for p in _rows(session, query)], live)
    return run, [(a, b, s) for a, b, s in pairs if live[a] != live[b]]


def duplicate_groups(session: Session, *, dataset: str, method: str = "semantic",
                     threshold: float | None = None, added_by: int | None = None,
                     grouping: str = "review") -> list[DuplicateGroup]:
    """The latest search's groups at `threshold` (at or above for semantic, above for lexical), most similar first.

    Pairs of exact duplicates are left to exact_duplicate_groups, so a curator sees each pair once. With
    `added_by`, only the groups where generation job `added_by` wrote a record (added_by_job). `grouping`
    "review" (dedup.review_groups) puts each record with the kept record it is close to, so groups do not
    chain; "connected" gives the connected components of the pairs, as a train/test split needs.
    """
    run, pairs = _run_pairs(session, dataset, method, threshold)
    return added_by_job(_groups(session, run.dataset_id, method, pairs, grouping), added_by) if run else []


def duplicate_counts(session: Session, *, dataset: str, method: str = "semantic",
                     threshold: float | None = None, grouping: str = "review") -> dict[str, int]:
    """{"groups", "pairs", "records"} at `threshold` from the latest search: cheap enough for a slider."""
    run, pairs = _run_pairs(session, dataset, method, threshold)
    groups = _group_ids(session, run.dataset_id, pairs, grouping)[0] if run else []
    return {"groups": len(groups), "pairs": len(pairs), "records": sum(len(g) for g in groups)}


def forget_runs(session: Session, *, dataset: str) -> int:
    """Delete every stored search of a dataset (decisions stay); returns how many."""
    runs = session.exec(select(DedupRun.id).where(DedupRun.dataset_id == dataset_id_of(session, dataset))).all()
    if runs:
        session.execute(delete(DuplicatePair).where(DuplicatePair.run_id.in_(runs)))
        session.execute(delete(DedupRun).where(DedupRun.id.in_(runs)))
    session.commit()
    return len(runs)


# ---- curator decisions ------------------------------------------------------------------------

def decide(session: Session, *, dataset: str, record_ids: list[int], decision: str, keep_id: int | None = None,
           versions: dict[int, int], by: str | None = None, reason: str | None = None) -> int:
    """Record a decision on a group and carry it out; returns its id. Raises repo.ConflictError on a stale version.

    keep_one: the others are discarded. merge: the kept record gains the others' distinct outputs, the others
    are discarded. not_duplicates: nothing changes, and these records are never grouped together again.
    `versions` are the record versions the curator looked at, one per record: a record changed since is a
    conflict, so a decision never rests on text nobody saw.
    """
    if decision not in DECISIONS:
        raise DedupError(f"unknown decision {decision!r}: choose one of {', '.join(DECISIONS)}")
    if reason and NULL_BYTE in reason:  # no database here stores one
        raise DedupError(f"{null_byte_reason('reason')}; remove it and decide again")
    ids = sorted(set(record_ids))
    if len(ids) < 2:
        raise DedupError("a decision needs two or more records")
    dataset_id = dataset_id_of(session, dataset)
    records = {r.id: r for r in session.exec(select(Record).where(Record.id.in_(ids), Record.dataset_id == dataset_id))}
    if missing := [i for i in ids if i not in records]:
        raise DedupError(f"record(s) {', '.join(map(str, missing))} are not in dataset {dataset!r}")
    if decision != "not_duplicates" and keep_id not in records:
        raise DedupError(f"{decision} needs the id of the record to keep, one of {', '.join(map(str, ids))}")
    versions = {int(k): int(v) for k, v in (versions or {}).items()}
    if unversioned := [i for i in ids if i not in versions]:
        raise DedupError(f"say which version of record(s) {', '.join(map(str, unversioned))} the decision is based "
                         "on: reload the group and decide again")
    for record in records.values():
        if versions[record.id] != record.version:
            raise repo.ConflictError("record", record.id, versions[record.id], repo.snapshot(record))
    changes: dict[str, dict] = {}

    def change(record: Record, values: dict, before: dict, why: str) -> None:
        updated = repo.update_record(session, record.id, expected_version=versions[record.id],
                                     changes=values, by=by, reason=why)
        changes[str(record.id)] = {"version": updated.version, "before": before}

    try:
        if decision == "merge":
            keeper = records[keep_id]
            seen = {normalize_text(o) for o in keeper.outputs}
            extra = []
            for record in records.values():
                for output in record.outputs if record.id != keep_id else []:
                    if normalize_text(output) not in seen:
                        seen.add(normalize_text(output))
                        extra.append(output)
            if extra:
                change(keeper, {"outputs": [*keeper.outputs, *extra]}, {"outputs": list(keeper.outputs)},
                       f"merged outputs of duplicates {', '.join(str(i) for i in ids if i != keep_id)}")
        if decision in ("keep_one", "merge"):
            for record in records.values():
                if record.id != keep_id and record.status != RecordStatus.discarded:
                    change(record, {"status": RecordStatus.discarded}, {"status": record.status.value},
                           reason or f"duplicate of record {keep_id}")
        row = DuplicateDecision(dataset_id=dataset_id, kind=decision, record_ids=ids, keep_id=keep_id,
                                changes=changes or None, reason=reason, decided_by=by)
        session.add(row)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return row.id


def undo_decision(session: Session, *, decision_id: int, by: str | None = None) -> None:
    """Put back what a decision changed; raises repo.ConflictError if someone edited one of its records since."""
    row = session.get(DuplicateDecision, decision_id)
    if row is None or row.undone_at is not None:
        raise DedupError(f"decision {decision_id} does not exist or was already undone")
    try:
        for record_id, change in (row.changes or {}).items():
            before = dict(change["before"])
            if "status" in before:
                before["status"] = RecordStatus(before["status"])
            repo.update_record(session, int(record_id), expected_version=change["version"], changes=before, by=by,
                               reason=f"undo duplicate decision {decision_id}")
        row.undone_at, row.undone_by = utcnow(), by
        session.add(row)
        session.commit()
    except Exception:
        session.rollback()
        raise


def list_decisions(session: Session, *, dataset: str) -> list[dict[str, Any]]:
    """Every decision on the dataset, newest first, undone ones included."""
    rows = session.exec(select(DuplicateDecision).where(DuplicateDecision.dataset_id == dataset_id_of(session, dataset))
                        .order_by(DuplicateDecision.id.desc()))
    return [{"id": d.id, "kind": d.kind, "record_ids": d.record_ids, "keep_id": d.keep_id, "reason": d.reason,
             "decided_by": d.decided_by, "decided_at": d.decided_at.isoformat(),
             "undone": d.undone_at is not None} for d in rows]
