"""Distributed near-duplicate searches: export a dataset's texts as shards, hand them to an engine, follow the job,
and read its pairs back into a dedup run, so the groups and decisions are the ones the curator already uses.

The job (curation.distributed.job) runs under start_supervised like a local training job: its folder holds the
spec, the shards, the engine's logs and completion markers, and the exit code the supervisor writes. A search's
row is refreshed from that folder, so an app that restarts picks up searches it did not start.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

import numpy as np
from sqlalchemy import insert
from sqlmodel import Session, select

from curation.distributed import job as search_job
from curation.embeddings import DEFAULT_FIELDS, DEFAULT_MODEL, FIELDS, default_device, default_precision
from curation.services import dedup as dedup_service
from curation.services.permissions import Actor, PermissionDenied
from curation.training.launchers import LocalLauncher, start_supervised
from db.dedup_tables import DedupRun, DuplicatePair
from db.distributed_tables import DistributedSearch
from db.jobs_tables import FINISHED, JobStatus
from db.models import utcnow

STAGE_WORDS = {"static": "static vectors", "candidates": "picking candidates", "sentence": "sentence vectors",
               "pairs": "pairs"}


class DistributedSearchError(dedup_service.DedupError):
    """A distributed search that cannot be started, found or read back, said in the user's words."""


@dataclass
class SearchStatus:
    id: int
    status: str  # queued | running | completed | failed | cancelled
    stage: str  # static | candidates | sentence | pairs
    done: int  # tasks of that stage done
    total: int
    sentence: str  # the status line the page and the command line show
    run_id: int | None = None
    error: str | None = None


def _may_search(actor: Actor | None) -> None:
    # None is the command line: whoever can open the database there already holds every role.
    if actor is not None and not actor.reviews:
        raise PermissionDenied("only a curator or admin searches a dataset on a cluster")


def _write_shards(work: Path, ids: list[int], compared: list[tuple[str, ...]], tasks: int) -> None:
    """One Parquet shard per task: id, row (the record's place in id order), part_0.. (the compared texts)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (work / "texts").mkdir(parents=True)
    width = len(compared[0])
    for rank, rows in enumerate(np.array_split(np.arange(len(ids)), tasks)):
        columns = {"id": pa.array([ids[i] for i in rows], pa.int64()), "row": pa.array(rows, pa.int64())}
        columns |= {f"part_{p}": pa.array([compared[i][p] for i in rows], pa.string()) for p in range(width)}
        pq.write_table(pa.table(columns), work / "texts" / f"{search_job.shard_name(rank)}.parquet")


def start_distributed_search(session: Session, actor: Actor | None, *, dataset: str, threshold: float | None = None,
                             fields: str | None = None, tasks: int = 2, executor: str = "local",
                             work_root: str | Path = "data/jobs", workers: int = -1, model: str | None = None,
                             precision: str | None = None, partition: str | None = None,
                             env: dict[str, str] | None = None) -> DistributedSearch:
    """Export the dataset's compared texts as `tasks` shards, start the engine's job on them; returns the row."""
    _may_search(actor)
    # the studio's own default (bf16 where this CPU runs it fast, else fp32), fixed in the spec so every task agrees
    precision = precision or default_precision(default_device())
    fields = fields or DEFAULT_FIELDS
    threshold = dedup_service.dedup.DEFAULT_THRESHOLD if threshold is None else float(threshold)
    if fields not in FIELDS:
        raise DistributedSearchError(f"unknown fields {fields!r}: choose one of {', '.join(FIELDS)}")
    if not 0.0 < threshold <= 1.0:
        raise DistributedSearchError(f"threshold must be above 0 and at most 1, got {threshold}")
    if executor not in search_job.EXECUTORS:
        raise DistributedSearchError(f"unknown executor {executor!r}: choose one of {', '.join(search_job.EXECUTORS)}")
    if not 1 <= int(tasks) <= 1024:
        raise DistributedSearchError(f"tasks must be between 1 and 1024, got {tasks}")
    if executor == "slurm" and not partition:
        raise DistributedSearchError("a Slurm search needs a partition")
    if executor == "hf-jobs":  # its tasks would read shards from this machine's disk, which a Job cannot reach
        raise DistributedSearchError("a search on Hugging Face Jobs needs its shards on the Hub, which the studio does "
                                     "not write yet: run it here (local) or on Slurm")
    dataset_id = dedup_service.dataset_id_of(session, dataset)
    records = dedup_service.searched_records(session, dataset_id, fields)
    if len(records) < 2:
        raise DistributedSearchError(f"dataset {dataset!r} has {len(records)} record(s): nothing to compare")
    compared, left_out = dedup_service.compared_texts(records, fields)
    tasks = min(int(tasks), len(records))
    floor = min(threshold, dedup_service.SEMANTIC_FLOOR)
    work = Path(work_root).resolve() / f"dedup-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
    try:
        _write_shards(work, [r["id"] for r in records], compared, tasks)
        (work / "left_out.json").write_text(json.dumps(left_out))
        spec = search_job.SearchJob(work_dir=str(work), tasks=tasks, workers=workers, executor=executor, floor=floor,
                                    model=model or os.environ.get("EMBED_MODEL") or DEFAULT_MODEL,
                                    precision=precision, parts=list(FIELDS[fields]), partition=partition)
        spec.save(work / "spec.json")
    except OSError as error:
        raise DistributedSearchError(f"the texts could not be written to {work}: {error.strerror or error}") from None
    search = DistributedSearch(dataset_id=dataset_id, fields=fields, threshold=threshold, floor=floor,
                               executor=executor, tasks=tasks, work_dir=str(work), record_count=len(records),
                               created_by=actor.name if actor else None)
    session.add(search)
    session.commit()
    try:
        start_supervised(work, [sys.executable, "-m", "curation.distributed.job", str(work / "spec.json")],
                         token=None, env=env)
    except OSError as error:
        search.status, search.finished_at = JobStatus.failed, utcnow()
        search.error = f"the search could not start: {error.strerror or error}"
        session.commit()
        raise DistributedSearchError(search.error) from None
    search.status = JobStatus.running
    session.commit()
    session.refresh(search)
    return search


def _get(session: Session, search_id: int) -> DistributedSearch:
    search = session.get(DistributedSearch, int(search_id))
    if search is None:
        raise DistributedSearchError(f"there is no distributed search {search_id}")
    return search


def _failure(work: Path) -> str:
    """Why the job failed, in one line: the job's own reason, else the last line of its log."""
    log = work / "log.txt"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    reason = next((line for line in reversed(lines) if line.startswith(search_job.FAILED)), None)
    if reason:
        return reason[len(search_job.FAILED):][:500]
    code = (work / "exit_code").read_text().strip() if (work / "exit_code").exists() else None
    last = next((line for line in reversed(lines) if line.strip()), "")
    return f"the search exited with code {code}: {last[:300]}" if code else "the search stopped without an exit code"


def _import_pairs(session: Session, search: DistributedSearch) -> None:
    """Store the job's pairs as a DedupRun(mode="distributed") with its DuplicatePair rows, all or nothing."""
    import pyarrow.parquet as pq

    work = Path(search.work_dir)
    spec = search_job.SearchJob.load(work / "spec.json")
    try:
        table = pq.read_table(work / "pairs" / "00000.parquet")
        first, second = (np.asarray(table.column(c).to_pylist(), np.int64) for c in ("record_a", "record_b"))
        scores = np.asarray(table.column("score").to_pylist(), np.float32)
        if np.any(first >= second):
            raise ValueError("a pair does not have its smaller record id first")
        left_out = json.loads((work / "left_out.json").read_text())
        created = search.created_at if search.created_at.tzinfo else search.created_at.replace(tzinfo=timezone.utc)
        run = DedupRun(dataset_id=search.dataset_id, method="semantic", fields=search.fields,
                       threshold=search.threshold, floor=search.floor, record_count=search.record_count,
                       pair_count=len(scores), seconds=(utcnow() - created).total_seconds(), left_out=left_out,
                       mode="distributed", model=spec.model, precision=spec.precision, created_by=search.created_by)
        session.add(run)
        session.flush()
        for start in range(0, len(scores), dedup_service.PAIR_INSERT_CHUNK):
            end = start + dedup_service.PAIR_INSERT_CHUNK
            session.execute(insert(DuplicatePair), [
                {"run_id": run.id, "record_a": a, "record_b": b, "score": s} for a, b, s in
                zip(first[start:end].tolist(), second[start:end].tolist(), scores[start:end].tolist())])
        search.run_id, search.status = run.id, JobStatus.completed
        search.finished_at = utcnow()
        session.commit()
    except Exception as error:  # a half-read file must leave the dedup tables as they were
        session.rollback()
        search = session.get(DistributedSearch, search.id)
        search.status, search.finished_at = JobStatus.failed, utcnow()
        search.error = f"the pairs could not be read back: {type(error).__name__}: {str(error)[:300]}"
        session.commit()


def refresh_distributed_search(session: Session, search_id: int) -> DistributedSearch:
    """Read the job's folder: still running, failed (with its reason), or finished (its pairs imported)."""
    search = _get(session, search_id)
    if search.status in FINISHED:
        return search
    work = Path(search.work_dir)
    state = LocalLauncher(work.parent).poll(str(work))
    finished = (work / "spec.json").exists() and search_job.progress(work)["finished"]
    if state.status == "cancelled":
        search.status, search.error = JobStatus.cancelled, "cancelled by the user"
    elif finished:
        _import_pairs(session, search)
        return _get(session, search_id)
    elif state.status == "failed":
        search.status, search.error = JobStatus.failed, _failure(work) if work.is_dir() else state.message
    elif state.status == "completed" and search.executor == "local":
        search.status, search.error = JobStatus.failed, "the search ended without writing its pairs"
    # otherwise running: a Slurm or Jobs driver may have exited after submitting; the markers say when it is done
    if search.status in FINISHED:
        search.finished_at = utcnow()
    session.commit()
    return search


def search_status(session: Session, search_id: int) -> SearchStatus:
    """The search's status after a refresh, with the stage, its tasks done and a sentence that says it all."""
    search = refresh_distributed_search(session, search_id)
    work = Path(search.work_dir)
    gone = {"stage": "static", "done": 0, "total": 0}
    step = search_job.progress(work) if (work / "spec.json").exists() else gone
    status = search.status.value
    if status == "completed":
        run = session.get(DedupRun, search.run_id) if search.run_id else None
        pairs = run.pair_count if run else 0
        sentence = (f"Search {search.id} completed: {search.record_count:,} records, {pairs:,} pair"
                    f"{'s' * (pairs != 1)} at ≥ {search.floor:.2f}. Its groups are in the duplicate groups view.")
    elif status in ("failed", "cancelled"):
        sentence = f"Search {search.id} {status}: {search.error}"
    else:
        sentence = (f"Search {search.id} {status} on {search.executor} ({search.tasks} task"
                    f"{'s' * (search.tasks != 1)}): {STAGE_WORDS[step['stage']]}, {step['done']} of "
                    f"{step['total']} task{'s' * (step['total'] != 1)} done")
    return SearchStatus(search.id, status, step["stage"], step["done"], step["total"], sentence, search.run_id,
                        search.error)


def cancel_distributed_search(session: Session, actor: Actor | None, search_id: int) -> DistributedSearch:
    """Stop the job's whole process group (the engine's workers with it) and record it cancelled."""
    _may_search(actor)
    search = _get(session, search_id)
    if search.status in FINISHED:
        return search
    # A Slurm or Jobs search would also need scancel / cancel_job on the engine's ids: not done here (untested).
    LocalLauncher(Path(search.work_dir).parent).cancel(search.work_dir)
    search.status, search.error, search.finished_at = JobStatus.cancelled, "cancelled by the user", utcnow()
    session.commit()
    session.refresh(search)
    return search


def distributed_searches(session: Session, *, dataset: str) -> list[DistributedSearch]:
    """The dataset's distributed searches, newest first."""
    dataset_id = dedup_service.dataset_id_of(session, dataset)
    return list(session.exec(select(DistributedSearch).where(DistributedSearch.dataset_id == dataset_id)
                             .order_by(DistributedSearch.id.desc())))
