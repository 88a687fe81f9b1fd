"""Publish-and-train use cases for the UI and the CLI; the session is passed in, tokens are never stored.

A publication is recorded only after the Hub returned its commit; a training job row is written before the
launcher starts (queued) and updated from the launcher's state on every refresh. `reconcile_jobs` runs at app
start: jobs that were running are polled again, and those that cannot be found are marked failed.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

from sqlmodel import Session, select

from curation.publish import (CONFIGS, DEFAULT_CONFIGS, DEFAULT_STATUSES, PublishError, near_duplicate_groups,
                              PublicationPlan, plan_publication, push_publication, split_records)
from curation.services.permissions import Actor, PermissionDenied
from curation.training.launchers import JobState, LaunchError, Launcher, launcher_for
from curation.training.spec import SFTJob, build_spec, spec_from_dict
from db import repo
from db.jobs_tables import FINISHED, JobStatus, Publication, TrainingJob
from db.models import Record, RecordStatus, utcnow

LauncherFactory = Callable[[str, dict], Launcher]


def _may_publish(actor: Actor | None) -> None:
    if actor is not None and not actor.reviews:
        raise PermissionDenied("only a curator or admin publishes datasets and starts training")


def publish_dataset(session: Session, *, dataset: str, repo_id: str, token: str | None, private: bool = True,
                    statuses: Iterable[str] = DEFAULT_STATUSES, configs: Iterable[str] = DEFAULT_CONFIGS,
                    test_fraction: float = 0.1, actor: Actor | None = None,
                    progress: Callable[[str], None] | None = None) -> Publication:
    """Push the dataset to `repo_id` and record the commit with the record versions that went in."""
    _may_publish(actor)
    if "/" not in repo_id or repo_id.count("/") != 1:
        raise PublishError(f"repo id {repo_id!r} must look like namespace/name")
    plan = plan_publication(session, dataset=dataset, repo_id=repo_id, statuses=statuses, configs=configs,
                            test_fraction=test_fraction)
    commit_id = push_publication(plan, repo_id=repo_id, private=private, token=token, progress=progress)
    return record_publication(session, plan, repo_id=repo_id, commit_id=commit_id, private=private,
                              configs=plan.configs, actor=actor)


def record_publication(session: Session, plan: PublicationPlan, *, repo_id: str, commit_id: str, private: bool,
                       configs: list[str], actor: Actor | None) -> Publication:
    """The stored Publication of what `plan` pushed to `repo_id` at `commit_id`, as the Hub configs `configs`."""
    from huggingface_hub import constants

    publication = Publication(dataset_id=plan.dataset_id, repo_id=repo_id, endpoint=constants.ENDPOINT,
                              commit_id=commit_id, private=private, configs=list(configs), statuses=plan.statuses,
                              snapshot=plan.snapshot, split_counts=plan.split_counts,
                              created_by=actor.name if actor else None)
    session.add(publication)
    session.commit()
    session.refresh(publication)
    return publication


def selection_published(publication: Publication) -> str | None:
    """The name of the selection a publication holds (its one config, named after it); None for the dataset's
    own formats."""
    configs = publication.configs or []
    return configs[0] if len(configs) == 1 and configs[0] not in CONFIGS else None


def publication_counts(session: Session, *, dataset: str, statuses: Iterable[str], actor: Actor | None,
                       configs: Iterable[str] = DEFAULT_CONFIGS, test_fraction: float = 0.1,
                       seed: int = 0) -> dict:
    """How many records publishing would send: {"total", "by_status", "splits": {"train", "test"}, "configs"}.

    The split is publish_dataset's own (plan_publication's near-duplicate groups and split_records) over the
    records' ids and categories alone: no rows, card or token lengths are built. Every chosen status is listed,
    0 included; no status chosen counts nothing. Each config (format) holds every one of these records.
    """
    _may_publish(actor)
    configs = list(dict.fromkeys(configs))
    unknown_configs = [c for c in configs if c not in CONFIGS]
    if unknown_configs:
        raise PublishError(f"unknown format {unknown_configs[0]!r}; choose from {', '.join(CONFIGS)}")
    names = [getattr(s, "value", s) for s in statuses]
    known = [s.value for s in RecordStatus]
    unknown = [s for s in names if s not in known]
    if unknown:
        raise PublishError(f"unknown status {unknown[0]!r}; choose from {', '.join(known)}")
    chosen = [RecordStatus(s) for s in dict.fromkeys(names)]
    if RecordStatus.discarded in chosen:
        raise PublishError("discarded records are never published")
    found = repo.get_dataset(session, dataset)
    if found is None:
        raise PublishError(f"no dataset named {dataset!r}")
    records = session.exec(select(Record.id, Record.category, Record.status).where(
        Record.dataset_id == found.id, Record.status.in_(chosen)).order_by(Record.id)).all() if chosen else []
    by_status = dict.fromkeys((s.value for s in chosen), 0)
    for record in records:
        by_status[RecordStatus(record.status).value] += 1
    splits = {"train": 0, "test": 0}
    if records:
        groups, _ = near_duplicate_groups(session, dataset)
        side = split_records([(r.id, r.category) for r in records], groups, test_fraction=test_fraction,
                             seed=seed)
        for where in side.values():
            splits[where] += 1
    return {"total": len(records), "by_status": by_status, "splits": splits, "configs": configs}


def publications(session: Session, *, dataset: str | None = None) -> list[Publication]:
    query = select(Publication).order_by(Publication.id.desc())
    if dataset is not None:
        found = repo.get_dataset(session, dataset)
        if found is None:
            return []
        query = query.where(Publication.dataset_id == found.id)
    return list(session.exec(query))


def latest_publication(session: Session, *, dataset: str, selection: str | None = None) -> Publication | None:
    """The dataset's latest publication of everything (its formats), or of the selection `selection`."""
    return next((p for p in publications(session, dataset=dataset) if selection_published(p) == selection), None)


def published_selections(session: Session, *, dataset: str) -> list[str]:
    """The names of the dataset's selections that were published, the latest published first."""
    names = (selection_published(p) for p in publications(session, dataset=dataset))
    return list(dict.fromkeys(name for name in names if name is not None))


def training_publication(session: Session, *, dataset: str, publication: Publication | None = None,
                         selection: str | None = None) -> tuple[Publication, str | None]:
    """(the publication a run trains on, the selection config it holds or None): the given one, else the latest
    of everything or of `selection`. LaunchError says what is missing."""
    selection = (selection or "").strip() or None
    if publication is None:
        publication = latest_publication(session, dataset=dataset, selection=selection)
        if publication is None and selection is not None:
            raise LaunchError(f"selection {selection!r} of {dataset!r} has not been published yet: "
                              "publish the selection first")
        if publication is None:
            raise LaunchError(f"dataset {dataset!r} has not been published yet: publish it first")
    held = selection_published(publication)
    if selection is not None and held != selection:
        raise LaunchError(f"publication {publication.id} does not hold selection {selection!r}"
                          f"{f' (it holds {held!r})' if held else ''}: publish the selection first")
    return publication, held


def start_training(session: Session, *, dataset: str, base_model: str, launcher: str, token: str | None,
                   publication: Publication | None = None, output_repo: str = "", flavor: str = "a10g-small",
                   jobs_root: str = "data/jobs", actor: Actor | None = None, num_processes: int = 1,
                   spec_overrides: dict | None = None, env: dict[str, str] | None = None,
                   make_launcher=None, selection: str | None = None) -> TrainingJob:
    """Start an SFT run on the dataset's latest (or given) publication; returns the job row.

    With `selection`, or a `publication` that holds a selection, the run trains on that selection's config at the
    commit its publication returned (the latest one of that selection unless `publication` is given).
    """
    _may_publish(actor)
    publication, held = training_publication(session, dataset=dataset, publication=publication,
                                             selection=selection)
    overrides = dict(spec_overrides or {})
    if held is not None:
        if overrides.get("dataset_config") not in (None, held):
            raise LaunchError(f"publication {publication.id} holds only the config {held!r}, "
                              f"not {overrides['dataset_config']!r}")
        overrides["dataset_config"] = held
    spec = build_spec(base_model=base_model, dataset_repo=publication.repo_id,
                      dataset_revision=publication.commit_id, output_repo=output_repo, **overrides)
    runner = (make_launcher or launcher_for)(launcher, root=jobs_root, flavor=flavor, num_processes=num_processes)
    job = TrainingJob(dataset_id=publication.dataset_id, publication_id=publication.id,
                      spec=dataclasses.asdict(spec) | {"flavor": flavor if launcher == "hf-jobs" else None},
                      launcher=launcher, status=JobStatus.queued, dataset_repo=publication.repo_id,
                      dataset_revision=publication.commit_id, model_repo=output_repo or None,
                      created_by=actor.name if actor else None)
    session.add(job)
    session.commit()
    try:
        job.external_id = runner.start(spec, token=token, env=env)
    except LaunchError as error:
        job.status, job.message, job.finished_at = JobStatus.failed, str(error), utcnow()
        session.commit()
        raise
    job.status, job.started_at = JobStatus.running, utcnow()
    session.commit()
    session.refresh(job)
    return job


def _apply(job: TrainingJob, state: JobState) -> None:
    job.status = JobStatus(state.status)
    job.log_tail = state.log_tail
    job.metrics = state.metrics
    job.message = state.message
    if state.model_revision:
        job.model_revision = state.model_revision
    if job.status in FINISHED and job.finished_at is None:
        job.finished_at = utcnow()


def _launcher_of(job: TrainingJob, jobs_root: str, make_launcher=None) -> Launcher:
    return (make_launcher or launcher_for)(job.launcher, root=jobs_root, flavor=(job.spec or {}).get("flavor") or
                                           "a10g-small", num_processes=1)


def refresh_job(session: Session, job_id: int, *, token: str | None = None, jobs_root: str = "data/jobs",
                make_launcher=None) -> TrainingJob:
    """Ask the launcher how the job is doing and store it (status, log tail, metrics, model revision)."""
    job = session.get(TrainingJob, job_id)
    if job is None:
        raise repo.NotFoundError(f"no training job {job_id}")
    if job.status in FINISHED or not job.external_id:
        return job
    try:
        state = _launcher_of(job, jobs_root, make_launcher).poll(job.external_id, token=token)
    except LaunchError as error:
        job.message = str(error)
        session.commit()
        return job
    _apply(job, state)
    session.commit()
    session.refresh(job)
    return job


def cancel_training(session: Session, job_id: int, *, token: str | None = None, jobs_root: str = "data/jobs",
                    actor: Actor | None = None, make_launcher=None) -> TrainingJob:
    """Stop the work for real, then record the job as cancelled."""
    _may_publish(actor)
    job = session.get(TrainingJob, job_id)
    if job is None:
        raise repo.NotFoundError(f"no training job {job_id}")
    if job.status in FINISHED:
        return job
    launcher = _launcher_of(job, jobs_root, make_launcher)
    if job.external_id:
        launcher.cancel(job.external_id, token=token)
        _apply(job, launcher.poll(job.external_id, token=token))
    job.status, job.message = JobStatus.cancelled, "cancelled by the user"
    job.finished_at = job.finished_at or utcnow()
    session.commit()
    session.refresh(job)
    return job


def training_jobs(session: Session, *, dataset: str | None = None, limit: int = 50) -> list[TrainingJob]:
    query = select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit)
    if dataset is not None:
        found = repo.get_dataset(session, dataset)
        if found is None:
            return []
        query = query.where(TrainingJob.dataset_id == found.id)
    return list(session.exec(query))


def reconcile_jobs(session: Session, *, token: str | None = None, jobs_root: str = "data/jobs",
                   make_launcher=None) -> list[TrainingJob]:
    """At start-up: poll every job recorded as queued or running; those that are gone end as failed."""
    open_jobs = list(session.exec(select(TrainingJob).where(TrainingJob.status.in_([JobStatus.queued,
                                                                                    JobStatus.running]))))
    for job in open_jobs:
        if not job.external_id:
            job.status, job.message, job.finished_at = JobStatus.failed, "never started (the app stopped)", utcnow()
            continue
        try:
            _apply(job, _launcher_of(job, jobs_root, make_launcher).poll(job.external_id, token=token))
        except Exception as error:  # noqa: BLE001 - one unreachable job must not stop the app from starting
            job.message = f"could not check this job after a restart: {type(error).__name__}"
    session.commit()
    return open_jobs


def job_spec(job: TrainingJob) -> SFTJob:
    return spec_from_dict(job.spec)
