"""Score use cases: rate records with an LLM judge, measure their IFD with a local causal LM, compute the cheap
signals; read the scores back. Each run recomputes only records whose basis (content hash + what scores them)
changed since the stored score, so a second run over an unchanged dataset computes nothing.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sqlmodel import Session, select

from curation.llm import run_requests
from curation.llm.backend import Backend
from curation.scores import ifd as ifd_scores
from curation.scores import judge, signals
from curation.services.annotation import InvalidInput
from curation.services.permissions import Actor, PermissionDenied
from db import repo
from db.llm_cache import DatabaseReplyCache
from db.models import Example, ExampleKind, Record, RecordStatus, Task, utcnow
from db.score_tables import RecordScore, ScoreRubric, stored_bases, stored_scores, store_scores

Progress = Callable[[int, int], None]
Vectors = Callable[[list[dict]], np.ndarray]  # records -> (n, dim) unit vectors
SIGNALS_VERSION = "signals-1"  # bump when a signal's definition changes, so every record is recomputed
SCORE_NAMES = ("judge", "ifd", "ppl", "length", "mtld", "nn_distance", "language")


class ScoreError(InvalidInput):
    """A score run that cannot be carried out, said in the user's words."""


@dataclass
class ScoreRun:
    dataset: str
    names: list[str]
    computed: int  # records scored in this run
    reused: int  # records whose stored score still holds
    failed: int = 0  # records the judge gave no readable rating for (stored with value None and the reason)
    seconds: float = 0.0


def _may_score(actor: Actor | None) -> None:
    if actor is not None and not actor.reviews:
        raise PermissionDenied("only a curator or admin scores a dataset")


def _dataset_id(session: Session, name: str) -> int:
    dataset = repo.get_dataset(session, name)
    if dataset is None:
        raise ScoreError(f"dataset {name!r} does not exist")
    return dataset.id


def scored_records(session: Session, dataset_id: int) -> list[dict]:
    """The dataset's records that are not discarded, as {id, task_id, instruction, input, output, content_hash}."""
    rows = session.connection().execute(
        select(Record.id, Record.task_id, Record.instruction, Record.input, Record.outputs, Record.content_hash)
        .where(Record.dataset_id == dataset_id, Record.status != RecordStatus.discarded).order_by(Record.id))
    return [{"id": r.id, "task_id": r.task_id, "instruction": r.instruction, "input": r.input,
             "output": (r.outputs or [""])[0], "content_hash": r.content_hash} for r in rows]


def _key(*parts: str) -> str:
    """A short hash of what computed a score (model, rubric): part of the basis a stored score is checked on."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _stale(session: Session, dataset_id: int, name: str, records: list[dict], basis: Callable[[dict], str]):
    """(records whose `name` score is missing or was computed on another basis, how many still hold)."""
    stored = stored_bases(session, dataset_id, name)
    stale = [r for r in records if stored.get(r["id"]) != basis(r)]
    return stale, len(records) - len(stale)


# --- the judge's rubric -------------------------------------------------------------------------------------

def rubric_of(session: Session, *, dataset: str) -> str:
    """The rubric the judge rates the dataset's records under (AlpaGasus's default until a curator edits it)."""
    row = session.get(ScoreRubric, _dataset_id(session, dataset))
    return row.text if row is not None else judge.DEFAULT_RUBRIC


def set_rubric(session: Session, *, dataset: str, text: str, actor: Actor | None) -> None:
    """Store the dataset's rubric; an empty text goes back to the default."""
    _may_score(actor)
    dataset_id = _dataset_id(session, dataset)
    row = session.get(ScoreRubric, dataset_id)
    if not text.strip():
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(ScoreRubric(dataset_id=dataset_id, text=text.strip(), updated_by=actor.name if actor else None))
    else:
        row.text, row.updated_by, row.updated_at = text.strip(), actor.name if actor else None, utcnow()
    session.commit()


def task_rubrics(session: Session, task_ids: set[int]) -> dict[int, str]:
    """{task id: its SNI rubric (definition, negative examples and their explanations)}."""
    rubrics = {}
    for task in session.exec(select(Task).where(Task.id.in_(task_ids))).all() if task_ids else []:
        negatives = session.exec(select(Example).where(Example.task_id == task.id,
                                                       Example.kind == ExampleKind.negative)
                                 .order_by(Example.position)).all()
        rubrics[task.id] = judge.sni_rubric(task.definition,
                                            [(e.input, e.output, e.explanation or "") for e in negatives])
    return rubrics


# --- the runs -----------------------------------------------------------------------------------------------

def score_with_judge(session: Session, *, dataset: str, backend: Backend, actor: Actor | None,
                     concurrency: int = 8, progress: Progress | None = None) -> ScoreRun:
    """Rate every changed record with the judge (through the reply cache) and store score and reason as `judge`."""
    _may_score(actor)
    started = time.perf_counter()
    dataset_id = _dataset_id(session, dataset)
    records = scored_records(session, dataset_id)
    default = rubric_of(session, dataset=dataset)
    rubrics = task_rubrics(session, {r["task_id"] for r in records if r["task_id"] is not None})
    rubric = lambda r: rubrics.get(r["task_id"], default)  # noqa: E731
    identity = backend.identity
    basis = lambda r: f"{r['content_hash']}:{_key(identity.model, rubric(r))}"  # noqa: E731
    stale, reused = _stale(session, dataset_id, "judge", records, basis)
    requests = [judge.judge_request(r["instruction"], r["input"], r["output"], rubric(r)) for r in stale]
    report = run_requests(backend, requests, concurrency=concurrency, cache=DatabaseReplyCache(session),
                          progress=progress)
    rows, failed = [], 0
    for record, reply in zip(stale, report.replies):
        if reply is None:
            failed += 1  # not stored: the next run asks again
            continue
        text = reply.texts[0]
        try:
            rating = judge.parse_rating(text)
            rows.append({"record_id": record["id"], "value": rating.score, "basis": basis(record),
                         "detail": {"reason": rating.reason, "model": identity.model}})
        except judge.UnreadableRating as error:
            failed += 1
            rows.append({"record_id": record["id"], "value": None, "basis": basis(record),
                         "detail": {"reason": str(error), "reply": text, "model": identity.model}})
    store_scores(session, "judge", rows)
    session.commit()
    if report.fatal is not None:
        raise ScoreError(f"the judge stopped answering: {report.fatal}")
    return ScoreRun(dataset, ["judge"], len(rows), reused, failed, time.perf_counter() - started)


def score_ifd(session: Session, *, dataset: str, model: str, actor: Actor | None, batch_size: int = 32,
              device: str | None = None, max_length: int = 512, progress: Progress | None = None,
              loaded=None) -> ScoreRun:
    """Store `ifd` (detail: both perplexities) and `ppl` (the output's own perplexity) for every changed record.

    `loaded`, a (model, tokenizer, device) already in memory, skips loading `model` again.
    """
    _may_score(actor)
    started = time.perf_counter()
    dataset_id = _dataset_id(session, dataset)
    records = scored_records(session, dataset_id)
    basis = lambda r: f"{r['content_hash']}:{_key(model, str(max_length))}"  # noqa: E731
    stale, reused = _stale(session, dataset_id, "ifd", records, basis)
    rows_ifd, rows_ppl = [], []
    if stale:
        try:
            lm, tokenizer, device = loaded or ifd_scores.load_model(model, device)
        except (OSError, ValueError) as error:  # a missing folder, an unknown or malformed Hub name
            raise ScoreError(f"cannot load the causal LM {model!r}: {str(error).splitlines()[0]}") from None
        results = ifd_scores.difficulties(lm, tokenizer, [(r["instruction"], r["input"], r["output"]) for r in stale],
                                          device=device, batch_size=batch_size, max_length=max_length,
                                          progress=progress)
        for record, result in zip(stale, results):
            detail = None if result is None else {"ppl_given_instruction": result.ppl_given_instruction,
                                                  "ppl_alone": result.ppl_alone}
            rows_ifd.append({"record_id": record["id"], "value": result and result.ifd, "detail": detail,
                             "basis": basis(record)})
            rows_ppl.append({"record_id": record["id"], "value": result and result.ppl_alone, "basis": basis(record)})
    store_scores(session, "ifd", rows_ifd)
    store_scores(session, "ppl", rows_ppl)
    session.commit()
    return ScoreRun(dataset, ["ifd", "ppl"], len(stale), reused, 0, time.perf_counter() - started)


def default_vectors(session: Session) -> Vectors:
    """Records' instruction+input vectors from the embedding cache (MiniLM), joined into one unit vector each."""
    from curation.dedup import joined_vectors
    from curation.embeddings import DEFAULT_FIELDS, Embedder
    from curation.services.dedup import part_vectors

    def vectors(records: list[dict]) -> np.ndarray:
        parts = part_vectors(session, records, DEFAULT_FIELDS, Embedder())
        return joined_vectors([parts[:, i] for i in range(parts.shape[1])])

    return vectors


def score_signals(session: Session, *, dataset: str, actor: Actor | None, vectors: Vectors | None = None) -> ScoreRun:
    """Store `length`, `mtld` and `language` for every changed record, and every record's `nn_distance`.

    The nearest-neighbour distance depends on the whole dataset, so it is recomputed over all records each run
    (cheap: the vectors come from the embedding cache).
    """
    _may_score(actor)
    started = time.perf_counter()
    dataset_id = _dataset_id(session, dataset)
    records = scored_records(session, dataset_id)
    basis = lambda r: f"{r['content_hash']}:{SIGNALS_VERSION}"  # noqa: E731
    stale, reused = _stale(session, dataset_id, "length", records, basis)
    rows = {"length": [], "mtld": [], "language": []}
    for r in stale:
        common = {"record_id": r["id"], "basis": basis(r)}
        rows["length"].append({**common, "value": float(signals.length(r["output"]))})
        rows["mtld"].append({**common, "value": signals.mtld(r["output"])})
        # The prompt's language and the response's apart: a translation task is the one place they differ.
        detail = {"language": signals.language(f"{r['instruction']} {r['input']}"),
                  "output_language": signals.language(r["output"])}
        rows["language"].append({**common, "value": None, "detail": detail})
    for name, name_rows in rows.items():
        store_scores(session, name, name_rows)
    if records:
        distances = signals.nearest_neighbour_distance((vectors or default_vectors(session))(records))
        store_scores(session, "nn_distance", [
            {"record_id": r["id"], "value": None if np.isnan(d) else float(d), "basis": f"dataset:{len(records)}"}
            for r, d in zip(records, distances)])
    session.commit()
    return ScoreRun(dataset, ["length", "mtld", "language", "nn_distance"], len(stale), reused, 0,
                    time.perf_counter() - started)


def record_scores(session: Session, *, dataset: str, names: list[str] | None = None
                  ) -> dict[int, dict[str, tuple[float | None, dict | None]]]:
    """{record id: {score name: (value, detail)}} of the dataset's scored records."""
    return stored_scores(session, _dataset_id(session, dataset), names)


def score_arrays(session: Session, *, dataset: str, names: list[str]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """(the dataset's records, {score name: values aligned with them, NaN where unscored})."""
    dataset_id = _dataset_id(session, dataset)
    records = scored_records(session, dataset_id)
    stored = stored_scores(session, dataset_id, names)
    arrays = {}
    for name in names:
        values = [stored.get(r["id"], {}).get(name, (None, None))[0] for r in records]
        arrays[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return records, arrays


def scores_of_record(session: Session, *, record_id: int
                     ) -> tuple[dict[str, tuple[float | None, dict | None]], list[str]]:
    """({score name: (value, detail)} of one record, the names scored on an earlier version of its text)."""
    record = session.get(Record, record_id)
    if record is None:
        return {}, []
    rows = session.connection().execute(select(RecordScore.name, RecordScore.value, RecordScore.detail,
                                               RecordScore.basis).where(RecordScore.record_id == record_id))
    scores, earlier = {}, []
    for name, value, detail, basis in rows:
        scores[name] = (value, detail)
        # A basis starts with the content hash it was computed on; the neighbour distance's is the whole dataset's.
        if not basis.startswith("dataset:") and basis.split(":", 1)[0] != record.content_hash:
            earlier.append(name)
    return scores, sorted(earlier)
