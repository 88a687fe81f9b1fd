"""Generation jobs: start, run, follow, cancel and resume Self-Instruct, Evol-Instruct and SNI task expansion.

A job is a row (db.generation_tables) with a spec that holds all a rerun needs: the seeds themselves (copied in
when the job is created, so a resume sees the same ones), the model's configured label, sampling, target and
budget. The runner (run_job) calls a pipeline of curation.generation with the database's reply cache, so a job
run again after a cancel or a crash replays what it was given for free and asks only for the rest. Each kept
record is written with its provenance in a transaction of its own: it is there whole, or not at all. Cancel is
a flag in the row, read between batches, so it reaches a job running in another process (the CLI) too.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from curation.generation import Budget, Candidate, GenerationReport
from curation.provenance import MachineText
from curation.records import RecordDraft
from curation.services.annotation import InvalidInput
from curation.services.drafting import backend_of
from curation.services.permissions import Actor, PermissionDenied
from db import repo
from db.generation_tables import GenerationJob
from db.jobs_tables import FINISHED, JobStatus
from db.llm_cache import DatabaseReplyCache, reply_requests
from db.models import Record, RecordStatus, Role, Task, utcnow

log = logging.getLogger("instruct_studio.generation")
PIPELINES = {"self_instruct": "Self-Instruct", "evol_instruct": "Evol-Instruct", "expand_task": "SNI task expansion"}
EVOL_OPERATIONS = ("add_constraints", "deepen", "concretize", "reasoning", "complicate_input", "breadth")
HEARTBEAT_STALE = timedelta(seconds=90)  # a running job silent this long was interrupted (its process died)
RESUMABLE = (JobStatus.cancelled, JobStatus.failed)


@dataclass
class JobSpec:
    """What to generate: the pipeline, its seeds or parents, the model and how much."""

    pipeline: str
    dataset: str
    model: str | None = None  # a configured model label (curation.llm.choices); None: the default
    # Or an ad hoc endpoint (the CLI's --backend): kind, base URL and model name; never a key.
    backend: str | None = None
    base_url: str = ""
    model_name: str | None = None
    target: int = 100
    seed: int = 0
    temperature: float = 1.0
    top_p: float | None = None
    max_tokens: int = 1024
    budget_requests: int | None = None
    budget_tokens: int | None = None
    concurrency: int | None = None
    seeds: list[dict] = field(default_factory=list)  # Self-Instruct: the seed tasks themselves
    record_ids: list[int] = field(default_factory=list)  # Evol-Instruct: the parents
    operations: list[str] = field(default_factory=lambda: list(EVOL_OPERATIONS))
    task_id: int | None = None  # SNI expansion
    # Self-Instruct's instruction requests per round: part of how the requests are built, so a resume keeps it.
    batch_size: int = 8

    def checked(self) -> "JobSpec":
        if self.pipeline not in PIPELINES:
            raise InvalidInput(f"choose a pipeline: {', '.join(PIPELINES)}")
        if not 1 <= int(self.target) <= 100_000:
            raise InvalidInput("ask for between 1 and 100,000 records")
        for name, value in (("request budget", self.budget_requests), ("token budget", self.budget_tokens)):
            if value is not None and int(value) < 1:
                raise InvalidInput(f"the {name} must be at least 1 (or empty for none)")
        if self.pipeline == "self_instruct" and not self.seeds:
            raise InvalidInput("Self-Instruct needs seed tasks: upload a seed file or pick a seed dataset")
        if self.pipeline == "evol_instruct":
            if not self.record_ids:
                raise InvalidInput("Evol-Instruct needs records to evolve: give their ids")
            unknown = set(self.operations) - set(EVOL_OPERATIONS)
            if unknown or not self.operations:
                raise InvalidInput(f"the operations are {', '.join(EVOL_OPERATIONS)}")
        if self.pipeline == "expand_task" and not self.task_id:
            raise InvalidInput("SNI expansion needs the task to expand")
        return self


def model_of(settings, spec: JobSpec):
    """(choice, backend) of the spec: its ad hoc endpoint, or the configured model it names."""
    if spec.model_name:
        from curation.llm.choices import ModelChoice, backend_for

        if spec.backend not in ("openai", "hf", "local"):
            raise InvalidInput("an ad hoc model needs its backend: openai, hf or local")
        choice = ModelChoice(f"{spec.model_name} ({spec.backend})", spec.backend, spec.model_name, spec.base_url,
                             settings.llm_api_key_env)
        return choice, backend_for(choice, settings.llm_timeout)
    return backend_of(settings, spec.model)


def _require_curator(actor: Actor | None) -> Actor:
    if actor is None:
        raise PermissionDenied("sign in first")
    if actor.role not in (Role.curator, Role.admin):
        raise PermissionDenied("only a curator or an admin runs generation jobs")
    return actor


def create_job(session: Session, actor: Actor, spec: JobSpec, settings) -> GenerationJob:
    """A queued job for `spec` (checked: the dataset, the model, the parents or task exist); committed."""
    _require_curator(actor)
    spec = spec.checked()
    model_of(settings, spec)  # an unknown model label is refused now, not when the job starts
    dataset = repo.get_dataset(session, (spec.dataset or "").strip())
    if dataset is None:
        raise InvalidInput(f"there is no dataset named {spec.dataset!r}" if spec.dataset else "choose a dataset")
    if spec.pipeline == "evol_instruct":
        found = set(session.execute(select(Record.id).where(Record.id.in_(spec.record_ids))).scalars())
        if missing := sorted(set(spec.record_ids) - found):
            raise InvalidInput(f"no record #{missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if spec.pipeline == "expand_task":
        task = session.get(Task, int(spec.task_id))
        if task is None or task.dataset_id != dataset.id:
            raise InvalidInput(f"dataset {dataset.name} has no task #{spec.task_id}")
        if task.status in (RecordStatus.approved, RecordStatus.discarded):
            raise InvalidInput(f"task #{task.id} is {task.status.value}: new instances would skip review")
    job = GenerationJob(dataset_id=dataset.id, pipeline=spec.pipeline, spec=asdict(spec), target=int(spec.target),
                        created_by=actor.name)
    session.add(job)
    session.commit()
    return job


def get_job(session: Session, job_id: int) -> GenerationJob:
    job = session.get(GenerationJob, int(job_id))
    if job is None:
        raise repo.NotFoundError(f"no generation job {job_id}")
    return job


def job_state(job: GenerationJob, now: datetime | None = None) -> str:
    """queued, running, interrupted (a running job whose process stopped), completed, failed or cancelled."""
    status = JobStatus(job.status)
    # Running without a recent beat, or queued and never picked up: the process that had it is gone.
    last = job.heartbeat_at if status == JobStatus.running else job.created_at if status == JobStatus.queued else None
    if last is not None:
        last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
        if (now or datetime.now(timezone.utc)) - last > HEARTBEAT_STALE:
            return "interrupted"
    return status.value


def list_jobs(session: Session, actor: Actor, *, dataset: str | None = None, limit: int = 50) -> list[GenerationJob]:
    _require_curator(actor)
    query = select(GenerationJob).order_by(GenerationJob.id.desc()).limit(limit)
    if dataset:
        found = repo.get_dataset(session, dataset)
        query = query.where(GenerationJob.dataset_id == (found.id if found else -1))
    return list(session.execute(query).scalars())


def request_cancel(session: Session, actor: Actor, job_id: int) -> GenerationJob:
    """Ask the job to stop after the batch in flight (it keeps what it was given); committed."""
    _require_curator(actor)
    job = get_job(session, job_id)
    if JobStatus(job.status) in FINISHED:
        raise InvalidInput(f"job {job.id} has already ended ({job.status.value})")
    job.cancel_requested = True
    if JobStatus(job.status) == JobStatus.queued:
        job.status, job.finished_at, job.message = JobStatus.cancelled, utcnow(), "cancelled before it started"
    session.commit()
    if (running := _running_stops.get(job.id)) is not None:  # a job of this process stops at once
        running.set()
    return job


def prepare_resume(session: Session, actor: Actor, job_id: int, *, now: datetime | None = None) -> GenerationJob:
    """Queue a cancelled, failed or interrupted job again; its cached replies make the part already done free."""
    _require_curator(actor)
    job = get_job(session, job_id)
    if (state := job_state(job, now)) not in ("cancelled", "failed", "interrupted"):
        raise InvalidInput(f"job {job.id} is {state}: only a cancelled, failed or interrupted job resumes")
    job.status, job.cancel_requested, job.finished_at, job.message = JobStatus.queued, False, None, None
    session.commit()
    return job


# ---- running -------------------------------------------------------------------------------------------------

_running_stops: dict[int, threading.Event] = {}


def start_in_background(engine: Engine, settings, job_id: int) -> threading.Thread:
    """Run the job in a thread of this process (the app's way); returns the thread."""
    def run() -> None:
        try:
            run_job(engine, settings, job_id)
        except InvalidInput as why:  # cancelled before it started, say: the row already tells the story
            log.info("generation job %s not run: %s", job_id, why)
        except Exception:  # the row says failed, with the reason; the thread must not die noisily
            log.exception("generation job %s failed", job_id)

    thread = threading.Thread(target=run, name=f"generation-{job_id}", daemon=True)
    thread.start()
    return thread


class _Heartbeat:
    """Beats the job's row every few seconds from a thread of its own, so a slow round never looks like a crash."""

    def __init__(self, engine: Engine, job_id: int, every_s: float = 15.0):
        self.engine, self.job_id, self.every_s = engine, job_id, every_s
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"generation-{job_id}-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self.done.wait(self.every_s):
            try:
                with self.engine.begin() as connection:
                    connection.execute(update(GenerationJob).where(GenerationJob.id == self.job_id)
                                       .values(heartbeat_at=utcnow()))
            except Exception:  # a missed beat is not worth stopping the job for
                log.warning("generation job %s: heartbeat not written", self.job_id, exc_info=True)

    def __enter__(self) -> "_Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(timeout=5)


def run_job(engine: Engine, settings, job_id: int, *, progress: Callable[[int, int], None] | None = None,
            stop: threading.Event | None = None) -> GenerationReport:
    """Run (or resume) a queued job to its end; the job row holds the outcome and the report."""
    from curation.services import open_session

    stop = stop or threading.Event()
    _running_stops[job_id] = stop
    session = open_session(engine)
    try:
        job = get_job(session, job_id)
        if JobStatus(job.status) != JobStatus.queued:
            raise InvalidInput(f"job {job.id} is {job.status.value}, not queued")
        job.status, job.started_at, job.heartbeat_at = JobStatus.running, utcnow(), utcnow()
        session.commit()
        try:
            with _Heartbeat(engine, job_id):
                report = _run_pipeline(session, settings, job, stop, progress)
        except Exception as error:  # the job ends failed with the reason in words; nothing half-written stays
            session.rollback()
            job = get_job(session, job_id)
            job.status, job.finished_at = JobStatus.failed, utcnow()
            job.message = str(error) if isinstance(error, InvalidInput) else f"failed: {type(error).__name__}: {error}"
            session.commit()
            raise
        job = get_job(session, job_id)
        job.report = report_json(report)
        job.kept = report.kept
        job.finished_at = utcnow()
        job.status = (JobStatus.cancelled if report.stopped == "cancelled" else
                      JobStatus.failed if report.stopped not in (None, "budget", "no new candidates") else
                      JobStatus.completed)
        job.message = _ending(report, job)
        session.commit()
        return report
    finally:
        _running_stops.pop(job_id, None)
        session.close()


def _ending(report: GenerationReport, job: GenerationJob) -> str:
    line = f"kept {report.kept} of {job.target}"
    if report.stopped == "budget":
        return line + ": the budget is spent"
    if report.stopped == "no new candidates":
        return line + ": the model kept proposing what the dataset already has"
    if report.stopped == "cancelled":
        return line + ": cancelled (resume asks only for the rest)"
    return line + (f": {report.stopped}" if report.stopped else "")


def report_json(report: GenerationReport) -> dict[str, Any]:
    data = asdict(report)
    data["examples"] = {rule: [asdict(d) for d in drops] for rule, drops in report.examples.items()}
    return data


def _run_pipeline(session: Session, settings, job: GenerationJob, stop: threading.Event, progress,
                  on_keep: Callable[[Candidate], None] | None = None) -> GenerationReport:
    """The job's pipeline over its spec; `on_keep` replaces writing records (a preview)."""
    from curation.drafting import Sampling

    spec = JobSpec(**job.spec)
    choice, backend = model_of(settings, spec)
    dataset = session.get(repo.Dataset, job.dataset_id)
    # What an earlier run of this job kept (by text; Evol also by the record it became, for its children).
    written = session.execute(select(Record.id, Record.input if spec.pipeline == "expand_task" else Record.instruction)
                              .where(Record.generation_job_id == job.id)).all()
    kept_before = {text: record_id for record_id, text in written} if spec.pipeline == "evol_instruct" \
        else [text for _, text in written]
    job_id, creator = job.id, job.created_by

    def beat(kept: int, target: int) -> None:
        """Progress: the row's count and heartbeat, and whether someone asked to cancel."""
        if on_keep is not None:  # a preview has no row
            return
        session.execute(update(GenerationJob).where(GenerationJob.id == job_id)
                        .values(kept=kept, heartbeat_at=utcnow()))
        session.commit()
        if session.execute(select(GenerationJob.cancel_requested).where(GenerationJob.id == job_id)).scalar():
            stop.set()
        if progress:
            progress(kept, target)

    def keep(candidate: Candidate) -> int:
        return write_candidate(session, job_id=job_id, creator=creator, dataset_id=dataset.id, pipeline=spec.pipeline,
                        candidate=candidate, task_id=spec.task_id)

    common = dict(cache=DatabaseReplyCache(session), target=spec.target, seed=spec.seed, stop=stop,
                  budget=Budget(spec.budget_requests, spec.budget_tokens), kept_before=kept_before,
                  on_keep=on_keep or keep,
                  on_progress=beat, concurrency=spec.concurrency or settings.llm_concurrency,
                  sampling=Sampling(temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_tokens,
                                    seed=spec.seed))
    if spec.pipeline == "self_instruct":
        from curation.generation.self_instruct import SeedTask, run_self_instruct

        existing = [r for r, in session.execute(select(Record.instruction).where(
            Record.dataset_id == dataset.id, Record.generation_job_id.is_distinct_from(job_id)))]
        seeds = [SeedTask(**s) for s in spec.seeds]
        return run_self_instruct(backend, seeds, existing=existing, batch_size=spec.batch_size, **common)
    if spec.pipeline == "evol_instruct":
        from curation.generation.evol_instruct import run_evol_instruct

        rows = session.execute(select(Record.id, Record.instruction, Record.input, Record.outputs)
                               .where(Record.id.in_(spec.record_ids)).order_by(Record.id)).all()
        parents = [(r.id, r.instruction, r.input, (r.outputs or [""])[0]) for r in rows]
        return run_evol_instruct(backend, parents, operations=tuple(spec.operations), **common)
    from curation.generation.sni_expansion import run_expand_task

    task = repo.task_draft(session, session.get(Task, int(spec.task_id)))
    return run_expand_task(backend, task, **common)


def write_candidate(session: Session, *, job_id: int, creator: str | None, dataset_id: int, pipeline: str,
                    candidate: Candidate, task_id: int | None = None) -> int:
    """Store one kept candidate with its provenance, committed on its own; returns the record id."""
    machine = _machine(session, candidate, pipeline)
    provenance: dict[str, Any] = {"job": job_id, "pipeline": pipeline}
    if candidate.seeds:
        provenance["seeds"] = list(candidate.seeds)
    if candidate.parent_id is not None:
        provenance["parent"], provenance["operation"] = candidate.parent_id, candidate.operation
    if machine is not None:
        from dataclasses import replace

        provenance["outputs"] = [replace(machine, text=candidate.output).entry()] if candidate.output else []
        if pipeline != "expand_task":
            provenance["instruction"] = replace(machine, text=candidate.instruction).entry()
    try:
        if pipeline == "expand_task":
            record_id = _add_instance(session, task_id, candidate, provenance, creator, job_id)
        else:
            draft = RecordDraft(instruction=candidate.instruction, input=candidate.input or "",
                                outputs=[candidate.output] if candidate.output else [], category=candidate.category)
            [record_id] = repo.insert_records(
                session, dataset_id, [draft], by=creator, reason=f"generated by job {job_id} ({PIPELINES[pipeline]})",
                status=RecordStatus.submitted, origin="generated", provenances=[provenance], generation_job_id=job_id)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return record_id


def _machine(session: Session, candidate: Candidate, pipeline: str) -> MachineText | None:
    """Who wrote the candidate: the model of its last cached request (the one that wrote its output)."""
    if not candidate.cache_keys:
        return None
    key = candidate.cache_keys[-1]
    row = reply_requests(session, keys=[key]).get(key)
    if row is None:
        return None
    return MachineText(text="", backend=row["backend"], base_url=row["base_url"], model=row["model"],
                       parameters=row["request"].get("parameters", {}), prompt=pipeline, prompt_version=1,
                       cache_key=key, at=row["created_at"])


def _add_instance(session: Session, task_id: int, candidate: Candidate, provenance: dict, creator: str | None,
                  job_id: int) -> int:
    """A new instance at the end of the task, with the task's status and a task revision saying which job."""
    from curation.services.task_instances import instance_count

    task = session.get(Task, int(task_id))
    draft = RecordDraft(instruction=task.definition, input=candidate.input, outputs=[candidate.output],
                        external_id=f"{task.name}-job{job_id}-{instance_count(session, task.id)}",
                        source_line=instance_count(session, task.id))
    [record_id] = repo.insert_records(session, task.dataset_id, [draft], by=creator,
                                      reason=f"generated by job {job_id} (SNI task expansion)", task_id=task.id,
                                      status=RecordStatus(task.status), origin="generated", provenances=[provenance],
                                      generation_job_id=job_id)
    from curation.services.tasks import _add_task_revision

    task.version += 1
    task.updated_at, task.updated_by = utcnow(), creator
    session.flush()
    _add_task_revision(session, task, by=creator, reason=f"an instance added by generation job {job_id}")
    return record_id


def preview(session: Session, actor: Actor, settings, spec: JobSpec, count: int = 5,
            stop: threading.Event | None = None) -> tuple[list[Candidate], GenerationReport]:
    """The first `count` records the spec would keep, written nowhere (their replies are cached for the run)."""
    from dataclasses import replace

    _require_curator(actor)
    spec = replace(spec.checked(), target=count)
    dataset = repo.get_dataset(session, (spec.dataset or "").strip())
    if dataset is None:
        raise InvalidInput(f"there is no dataset named {spec.dataset!r}" if spec.dataset else "choose a dataset")
    job = GenerationJob(id=0, dataset_id=dataset.id, pipeline=spec.pipeline,
                        spec=asdict(spec), target=count, created_by=actor.name)
    kept: list[Candidate] = []
    report = _run_pipeline(session, settings, job, stop or threading.Event(), None, on_keep=kept.append)
    return kept, report


RULE_WORDS = {
    "rouge_l": "too close to an instruction already there (ROUGE-L above 0.7)",
    "too_short": "fewer than 4 words", "too_long": "more than 150 words",
    "blacklist": "asks for what a text model cannot do (image, file, audio…)",
    "punctuation_start": "starts with punctuation", "non_ascii_start": "starts with a non-ASCII character",
    "truncated": "cut off at the token limit", "unparseable": "a reply the pipeline could not read",
    "no_information_gain": "no gain over its parent (the model's own comparison)",
    "cannot_answer": "the model said it cannot answer", "only_stop_words": "only punctuation and stop words",
    "copies_prompt": "copies words of the evolving prompt", "negative_example": "repeats a negative example's mistake",
    "duplicate_input": "an input the task already has", "positive_input": "a positive example's input",
    "label_balance": "one label would outweigh the others",
}


def report_lines(job: GenerationJob) -> list[str]:
    """The job's report as lines a person reads: outcome, requests and tokens, then each drop rule with examples."""
    report = job.report or {}
    lines = [f"job {job.id} · {PIPELINES.get(job.pipeline, job.pipeline)} · {job_state(job)} · {job.message or ''}",
             f"kept {report.get('kept', job.kept)} (written now {report.get('written', 0)}), dropped "
             f"{sum((report.get('drops') or {}).values())}; {report.get('requested', 0)} requests sent, "
             f"{report.get('cached', 0)} from the cache, {report.get('failed', 0)} failed; "
             f"{report.get('prompt_tokens', 0):,} prompt + {report.get('completion_tokens', 0):,} completion tokens"]
    for rule, count in sorted((report.get("drops") or {}).items(), key=lambda item: -item[1]):
        lines.append(f"  dropped {count}: {RULE_WORDS.get(rule, rule)}")
        for example in (report.get("examples") or {}).get(rule, [])[:3]:
            text = " ".join(str(example.get("text", "")).split())
            lines.append(f"    · “{text[:100]}{'…' if len(text) > 100 else ''}” — {example.get('reason', '')}")
    return lines


def report_text(job: GenerationJob) -> str:
    return "\n".join(report_lines(job))


def seeds_of_dataset(session: Session, name: str) -> list[dict]:
    """The live records of a dataset as Self-Instruct seed tasks (id: the record's external id, else record-N)."""
    from dataclasses import asdict as as_dict

    from curation.generation.self_instruct import seeds_from_records

    dataset = repo.get_dataset(session, (name or "").strip())
    if dataset is None:
        raise InvalidInput(f"there is no dataset named {name!r}")
    rows = [(r.external_id or f"record-{r.id}", r.instruction, r.input, (r.outputs or [""])[0])
            for r in repo.iter_records(session, dataset.id) if r.status != RecordStatus.discarded]
    try:
        return [as_dict(task) for task in seeds_from_records(rows)]
    except ValueError as error:
        raise InvalidInput(f"dataset {dataset.name}: {error}") from None


def approved_record_ids(session: Session, name: str) -> list[int]:
    """The ids of a dataset's approved records (plain records, not task instances), in id order."""
    dataset = repo.get_dataset(session, (name or "").strip())
    if dataset is None:
        raise InvalidInput(f"there is no dataset named {name!r}")
    return list(session.execute(select(Record.id).where(
        Record.dataset_id == dataset.id, Record.status == RecordStatus.approved, Record.task_id.is_(None))
        .order_by(Record.id)).scalars())
