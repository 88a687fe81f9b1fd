"""Evaluation use cases for the UI and the CLI: evaluate a trained model, follow it, list runs, compare two.

An evaluation row is written before the job starts (queued) and updated from the job's folder on every refresh:
progress while it runs, metrics and one EvaluationAnswer per test prompt once it completes, the log tail and a
message in words when it fails (a Hugging Face Job's from the Jobs API: its state, its log, and the results.json
it uploads to the user's private jobs repo). Nothing here writes to the training job it evaluates. Tokens and API
keys live in the job's environment (a Hugging Face Job's secrets) only: the spec names the variable that holds a
key, never the key.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, insert
from sqlmodel import Session, select

from curation.evaluation import job as evaluation_job
from curation.evaluation.launchers import HFJobsEvaluations, remote_secrets
from curation.publish import CONFIGS
from curation.services.permissions import Actor, PermissionDenied
from curation.training.launchers import LaunchError, LocalLauncher
from db import repo
from db.evaluation_tables import Evaluation, EvaluationAnswer
from db.jobs_tables import FINISHED, JobStatus, Publication, TrainingJob
from db.models import Dataset, utcnow
from db.score_tables import Selection

CARD_START, CARD_END = "<!-- instruct-studio-evaluation -->", "<!-- /instruct-studio-evaluation -->"
# The headline scores a run shows: name -> the path of keys to it in an evaluation's metrics.
HEADLINE = {
    "loss": ("tuned", "loss"), "perplexity": ("tuned", "perplexity"), "rouge_l": ("tuned", "rouge_l"),
    "exact_match": ("tuned", "exact_match"), "base_loss": ("base", "loss"), "base_perplexity": ("base", "perplexity"),
    "base_rouge_l": ("base", "rouge_l"), "base_exact_match": ("base", "exact_match"),
    "win_rate_vs_base": ("judge", "vs_base", "win_rate"),
    "lc_win_rate_vs_base": ("judge", "vs_base", "length_controlled_win_rate"),
    "win_rate_vs_reference": ("judge", "vs_reference", "win_rate"),
    "lc_win_rate_vs_reference": ("judge", "vs_reference", "length_controlled_win_rate"),
}
LOWER_IS_BETTER = ("loss", "perplexity", "base_loss", "base_perplexity")


class EvaluationError(ValueError):
    """An evaluation that cannot be started or found, said in the user's words."""


def _may_evaluate(actor: Actor | None) -> None:
    if actor is not None and not actor.reviews:
        raise PermissionDenied("only a curator or admin evaluates models")


# Starting -----------------------------------------------------------------------------------------------------

def _selection_recipe(session: Session, dataset_id: int | None, config: str | None) -> dict | None:
    """The recipe of the selection a config is named after, with its "name" and "size" (None: a whole-dataset format
    config); {"name", "missing": True} alone when no selection of that name is stored (any more)."""
    if not config or config in CONFIGS:
        return None
    row = session.exec(select(Selection).where(Selection.dataset_id == dataset_id, Selection.name == config)
                       ).first() if dataset_id is not None else None
    if row is None:
        return {"name": config, "missing": True}
    return dict(row.recipe) | {"name": row.name, "size": row.size}


def _eval_config(session: Session, job: TrainingJob, trained_config: str) -> str:
    """The config whose test split the job is evaluated on: the trained format, else the publication's first.

    A selection config's test split holds only the selection's own records, so runs on different selections
    would be scored on different prompts; every run of a dataset is scored on the whole publication's test split.
    """
    if trained_config in CONFIGS:
        return trained_config
    publication = session.get(Publication, job.publication_id) if job.publication_id else None
    # a selection's own publication holds only its config: the dataset's format beside it is "messages"
    return next((c for c in (publication.configs if publication else []) if c in CONFIGS), "messages")


def _card_facts(model: str, revision: str | None, token: str | None) -> dict:
    """{"base_model", "dataset_repo", "dataset_revision", "dataset_config"} from a model card Instruct Studio wrote."""
    text = ""
    try:
        if Path(model).is_dir():
            text = (Path(model) / "README.md").read_text(errors="replace") if (Path(model) / "README.md").exists() else ""
        else:
            from huggingface_hub import hf_hub_download

            text = Path(hf_hub_download(model, "README.md", revision=revision, token=token)).read_text(errors="replace")
    except Exception:  # noqa: BLE001 - no card: the caller says what is missing
        return {}
    facts = {}
    if found := re.search(r"^base_model:\s*(\S+)", text, re.M):
        facts["base_model"] = found.group(1)
    if found := re.search(r"^datasets:\s*\n-\s*(\S+)", text, re.M):
        facts["dataset_repo"] = found.group(1)
    if found := re.search(r"^Dataset revision:\s*(\S+)", text, re.M):
        facts["dataset_revision"] = None if found.group(1) == "unrecorded" else found.group(1)
    if found := re.search(r"\(config `([^`]+)`\)", text):
        facts["dataset_config"] = found.group(1)
    return facts


def _judge_spec(settings, label: str | None) -> dict | None:
    if not label:
        return None
    from curation.llm.choices import choice_named

    if settings is None:
        raise EvaluationError("no settings to look the judge up in: the judge is one of the configured models")
    try:
        choice = choice_named(settings, label)
    except LookupError as error:
        raise EvaluationError(str(error)) from None
    return {"label": choice.label, "kind": choice.kind, "model": choice.model, "base_url": choice.base_url,
            "api_key_env": choice.api_key_env}


def start_evaluation(session: Session, *, training_job_id: int | None = None, model: str | None = None,
                     base_model: str | None = None, judge_label: str | None = None, settings=None,
                     harness_tasks=(), launcher: str = "local", token: str | None = None,
                     jobs_root: str = "data/jobs", actor: Actor | None, env: dict[str, str] | None = None,
                     limit: int | None = None, max_new_tokens: int = 128, dataset: str | None = None,
                     serve: dict | None = None, device: str | None = None,
                     flavor: str = "a10g-small") -> Evaluation:
    """Start evaluating a completed training job's model, or a model "REPO@REV" (or a folder); returns the row.

    The dataset is the training job's (or, for a bare model, the one its Instruct Studio card names, else the
    latest publication of `dataset`). `judge_label` is a configured model (LLM_MODEL / LLM_MODELS); `serve`
    ({"tuned"|"base": {"kind", "base_url", "model"}}) answers through a running server instead of a local
    `transformers serve`. `launcher` "hf-jobs" runs it as a Hugging Face Job on `flavor`: the model and base model
    must then be on the Hub, and a judge or server needs an address the job can reach. Raises EvaluationError,
    PermissionDenied or NotFoundError, before anything is stored.
    """
    _may_evaluate(actor)
    if launcher not in ("local", "hf-jobs"):
        raise EvaluationError(f"unknown launcher {launcher!r}: local or hf-jobs")
    if (training_job_id is None) == (model is None):
        raise EvaluationError("name either a training job or a model to evaluate")
    values: dict = {}
    if training_job_id is not None:
        job = session.get(TrainingJob, training_job_id)
        if job is None:
            raise repo.NotFoundError(f"no training job {training_job_id}")
        if job.status != JobStatus.completed:
            raise EvaluationError(f"training job {job.id} is {job.status.value}: only a completed run is evaluated")
        spec = job.spec or {}
        if job.model_repo and job.model_revision:
            values["model"], values["model_revision"] = job.model_repo, job.model_revision
        elif job.launcher == "local" and job.external_id and (Path(job.external_id) / "output").is_dir():
            values["model"], values["model_revision"] = str(Path(job.external_id) / "output"), None
        else:
            raise EvaluationError(f"training job {job.id} left no model to evaluate: it pushed none, and its "
                                  f"output folder is gone")
        trained_config = spec.get("dataset_config") or "messages"
        values |= {"training_job_id": job.id, "dataset_id": job.dataset_id,
                   "base_model": base_model or spec.get("base_model"),
                   "dataset_repo": spec.get("dataset") or job.dataset_repo,
                   "dataset_revision": spec.get("dataset_revision") or job.dataset_revision,
                   "dataset_config": _eval_config(session, job, trained_config),
                   "selection_recipe": _selection_recipe(session, job.dataset_id, trained_config)}
    else:
        name, revision = (model, None) if Path(model).is_dir() or "@" not in model else model.rsplit("@", 1)
        facts = _card_facts(name, revision, token)
        values |= {"model": name, "model_revision": revision, "base_model": base_model or facts.get("base_model"),
                   "dataset_repo": facts.get("dataset_repo"), "dataset_revision": facts.get("dataset_revision"),
                   "dataset_config": facts.get("dataset_config") or "messages"}
        if dataset is not None:
            found = repo.get_dataset(session, dataset)
            publication = session.exec(select(Publication).where(Publication.dataset_id == found.id).order_by(
                Publication.id.desc())).first() if found else None
            if publication is None:
                raise EvaluationError(f"dataset {dataset!r} has not been published: there is no test split")
            values |= {"dataset_id": found.id, "dataset_repo": publication.repo_id,
                       "dataset_revision": publication.commit_id, "dataset_config": publication.configs[0]}
        if not values["dataset_repo"]:
            raise EvaluationError(f"cannot tell which dataset {name} was trained on: name the dataset to test it on")
        if values["dataset_config"] not in CONFIGS:
            values["selection_recipe"] = _selection_recipe(session, values.get("dataset_id"), values["dataset_config"])
            values["dataset_config"] = "messages"
    run_spec = {k: values.get(k) for k in ("model", "model_revision", "base_model", "dataset_repo",
                                            "dataset_revision", "dataset_config")}
    run_spec |= {"limit": limit, "max_new_tokens": max_new_tokens, "judge": _judge_spec(settings, judge_label),
                 "harness": [t for t in harness_tasks if t], "serve": serve or {}, "device": device}
    remote = HFJobsEvaluations(flavor=flavor) if launcher == "hf-jobs" else None
    if remote is not None:
        try:
            secrets = remote_secrets(run_spec, token=token, env=env, endpoint=remote.endpoint())
        except LaunchError as error:
            raise EvaluationError(str(error)) from None
    evaluation = Evaluation(**values, spec=run_spec, launcher=launcher, status=JobStatus.queued,
                            created_by=actor.name if actor else None)
    session.add(evaluation)
    session.commit()
    if remote is not None:
        return _start_remote(session, evaluation, remote, run_spec, token=token, secrets=secrets)
    try:
        work = evaluation_job.start_local(jobs_root, run_spec, token=token, env=env)
    except OSError as error:
        evaluation.status, evaluation.finished_at = JobStatus.failed, utcnow()
        evaluation.message = f"the evaluation could not start: {error.strerror or error}"
        session.commit()
        raise EvaluationError(evaluation.message) from None
    evaluation.external_id = evaluation.work_dir = work
    evaluation.status, evaluation.started_at = JobStatus.running, utcnow()
    session.commit()
    session.refresh(evaluation)
    return evaluation


def _start_remote(session: Session, evaluation: Evaluation, remote: HFJobsEvaluations, run_spec: dict, *,
                  token: str | None, secrets: dict[str, str]) -> Evaluation:
    """Start the stored evaluation as a Hugging Face Job; the row keeps where its code and results live."""
    try:
        external_id, where = remote.start(run_spec, token=token, secrets=secrets)
    except LaunchError as error:
        evaluation.status, evaluation.finished_at = JobStatus.failed, utcnow()
        evaluation.message = f"the evaluation could not start: {error}"
        session.commit()
        raise EvaluationError(evaluation.message) from None
    evaluation.spec = dict(run_spec, hf_jobs=where | {"flavor": remote.flavor})
    evaluation.external_id, evaluation.work_dir = external_id, f"{where['repo']}/{where['folder']}"
    evaluation.status, evaluation.started_at = JobStatus.running, utcnow()
    session.commit()
    session.refresh(evaluation)
    return evaluation


# Following ----------------------------------------------------------------------------------------------------

def _get(session: Session, evaluation_id: int) -> Evaluation:
    evaluation = session.get(Evaluation, evaluation_id)
    if evaluation is None:
        raise repo.NotFoundError(f"no evaluation {evaluation_id}")
    return evaluation


def _store_answers(session: Session, evaluation: Evaluation, rows: list[dict]) -> None:
    table = EvaluationAnswer.__table__
    session.connection().execute(delete(table).where(table.c.evaluation_id == evaluation.id))
    answers = []
    for row in rows:
        vs_base, vs_reference = row.get("vs_base") or {}, row.get("vs_reference") or {}
        replies = {k: {"replies": v.get("replies"), "errors": v.get("errors")}
                   for k, v in (("vs_base", vs_base), ("vs_reference", vs_reference)) if v}
        answers.append({
            "evaluation_id": evaluation.id, "position": row["position"], "prompt": row["prompt"],
            "reference": row["reference"], "tuned_answer": row.get("tuned_answer"),
            "base_answer": row.get("base_answer"), "rouge_l_tuned": row.get("rouge_l_tuned"),
            "rouge_l_base": row.get("rouge_l_base"), "exact_match_tuned": row.get("exact_match_tuned"),
            "exact_match_base": row.get("exact_match_base"),
            "vs_base_a_first": vs_base.get("a_first"), "vs_base_b_first": vs_base.get("b_first"),
            "vs_base_preference": vs_base.get("preference"),
            "vs_reference_a_first": vs_reference.get("a_first"), "vs_reference_b_first": vs_reference.get("b_first"),
            "vs_reference_preference": vs_reference.get("preference"), "judge_replies": replies or None})
    for start in range(0, len(answers), 1000):
        session.connection().execute(insert(table), answers[start:start + 1000])


def refresh_evaluation(session: Session, evaluation_id: int, *, jobs_root: str = "data/jobs",
                       token: str | None = None) -> Evaluation:
    """Read the job's folder and store how it goes: progress; at the end metrics, answers (or the failure).

    On completion, with a token and a Hub model, the model card gets the evaluation table; a card that cannot be
    written is said in the message and does not fail the evaluation.
    """
    evaluation = _get(session, evaluation_id)
    if evaluation.status in FINISHED or not evaluation.external_id:
        return evaluation
    if evaluation.launcher == "hf-jobs":
        _refresh_remote(session, evaluation, token)
        return _after_refresh(session, evaluation, token)
    work = Path(evaluation.external_id)
    state = LocalLauncher(jobs_root).poll(str(work))
    lines = (work / "log.txt").read_text(errors="replace").splitlines() if (work / "log.txt").exists() else []
    latest, _, error = evaluation_job.parse_log(lines)
    evaluation.progress = latest or evaluation.progress or {}
    evaluation.log_tail = state.log_tail
    if state.status == "completed":
        results_file = work / "output" / "results.json"
        if not results_file.is_file():
            state.status, state.message = "failed", "the evaluation ended without writing its results"
        else:
            _store_results(session, evaluation, json.loads(results_file.read_text()))
    if state.status == "failed":
        code = (work / "exit_code").read_text().strip() if (work / "exit_code").exists() else None
        last = next((line for line in reversed(lines) if line.strip()), "")
        evaluation.message = error or (f"the evaluation exited with code {code}: {last[:300]}" if code else
                                       "the evaluation process stopped without an exit code")
    elif state.status == "cancelled":
        evaluation.message = "cancelled by the user"
    evaluation.status = JobStatus(state.status)
    if evaluation.status in FINISHED:
        evaluation.finished_at = evaluation.finished_at or utcnow()
    session.commit()
    return _after_refresh(session, evaluation, token)


def _store_results(session: Session, evaluation: Evaluation, results: dict) -> None:
    """A finished job's results.json on the row: metrics, notes as the message, one answer per test prompt."""
    evaluation.metrics = results["metrics"]
    _store_answers(session, evaluation, results["answers"])
    evaluation.message = "; ".join(results.get("notes") or []) or None
    evaluation.progress = {"stage": "done", "done": len(results["answers"]), "total": len(results["answers"])}


def _refresh_remote(session: Session, evaluation: Evaluation, token: str | None) -> None:
    """A Hugging Face Job's state, log and (once it completed) uploaded results on the row."""
    remote = HFJobsEvaluations()
    if not token:
        evaluation.message = "following a Hugging Face Job needs a token: set HF_TOKEN or type one"
        session.commit()
        return
    try:
        state = remote.poll(evaluation.external_id, token=token)
    except LaunchError as error:  # the Hub did not answer: the job may well be fine, so say it and keep its state
        evaluation.message = str(error)
        session.commit()
        return
    latest, _, error = evaluation_job.parse_log(state.lines)
    evaluation.progress = latest or evaluation.progress or {}
    evaluation.log_tail = state.log_tail
    evaluation.message = None
    if state.status == "completed":
        try:
            _store_results(session, evaluation, remote.results((evaluation.spec or {}).get("hf_jobs") or {},
                                                               token=token))
        except (LaunchError, KeyError) as failure:
            state.status, error = "failed", (f"the evaluation ended without its results: {failure}")
    if state.status == "failed":
        last = next((line for line in reversed(state.lines) if line.strip()), "")
        evaluation.message = error or f"{state.message or 'the job failed'}: {last[:300]}"
    elif state.status == "cancelled":
        evaluation.message = "cancelled by the user"
    evaluation.status = JobStatus(state.status)
    if evaluation.status in FINISHED:
        evaluation.finished_at = evaluation.finished_at or utcnow()
    session.commit()


def _after_refresh(session: Session, evaluation: Evaluation, token: str | None) -> Evaluation:
    if evaluation.status == JobStatus.completed and token and not Path(evaluation.model).is_dir():
        try:
            update_model_card(evaluation, token)
        except Exception as failure:  # noqa: BLE001 - the scores stand; the card is said to be stale
            from huggingface_hub import constants

            from curation.publish import explain_hub_error

            why = explain_hub_error(failure, constants.ENDPOINT)
            evaluation.message = "; ".join(filter(None, [evaluation.message,
                                                         f"the model card could not be updated: {why}"]))
            session.commit()
    session.refresh(evaluation)
    return evaluation


def cancel_evaluation(session: Session, evaluation_id: int, *, jobs_root: str = "data/jobs",
                      actor: Actor | None = None, token: str | None = None) -> Evaluation:
    """Stop the job for real (its whole process group, the model server included; a Hugging Face Job through
    cancel_job, with `token` or else HF_TOKEN), then record it cancelled."""
    _may_evaluate(actor)
    evaluation = _get(session, evaluation_id)
    if evaluation.status in FINISHED:
        return evaluation
    if evaluation.launcher == "hf-jobs" and evaluation.external_id:
        import os

        remote, token = HFJobsEvaluations(), token or os.environ.get("HF_TOKEN")
        try:
            remote.cancel(evaluation.external_id, token=token)
        except LaunchError as error:
            raise EvaluationError(str(error)) from None
        evaluation.log_tail = remote.poll(evaluation.external_id, token=token).log_tail
    elif evaluation.external_id:
        LocalLauncher(jobs_root).cancel(evaluation.external_id)
        evaluation.log_tail = LocalLauncher(jobs_root).poll(evaluation.external_id).log_tail
    evaluation.status, evaluation.message = JobStatus.cancelled, "cancelled by the user"
    evaluation.finished_at = evaluation.finished_at or utcnow()
    session.commit()
    session.refresh(evaluation)
    return evaluation


def reconcile_evaluations(session: Session, *, jobs_root: str = "data/jobs",
                          token: str | None = None) -> list[Evaluation]:
    """At start-up: refresh every evaluation recorded as queued or running; those whose process is gone fail."""
    open_ones = list(session.exec(select(Evaluation).where(Evaluation.status.in_([JobStatus.queued,
                                                                                  JobStatus.running]))))
    for evaluation in open_ones:
        if not evaluation.external_id:
            evaluation.status, evaluation.finished_at = JobStatus.failed, utcnow()
            evaluation.message = "never started (the app stopped)"
            session.commit()
            continue
        try:
            refresh_evaluation(session, evaluation.id, jobs_root=jobs_root, token=token)
        except Exception as error:  # noqa: BLE001 - one unreadable job folder must not stop the app from starting
            session.rollback()
            evaluation.message = f"could not check this evaluation after a restart: {type(error).__name__}"
            session.commit()
    return open_ones


def evaluations(session: Session, *, training_job_id: int | None = None) -> list[Evaluation]:
    """Evaluations, newest first (those of one training job when given)."""
    query = select(Evaluation).order_by(Evaluation.id.desc())
    if training_job_id is not None:
        query = query.where(Evaluation.training_job_id == training_job_id)
    return list(session.exec(query))


def evaluation_answers(session: Session, evaluation_id: int) -> list[EvaluationAnswer]:
    """The evaluation's answers in test-split order."""
    return list(session.exec(select(EvaluationAnswer).where(EvaluationAnswer.evaluation_id == evaluation_id)
                             .order_by(EvaluationAnswer.position)))


# Runs and their comparison ------------------------------------------------------------------------------------

def headline_scores(metrics: dict) -> dict[str, float | None]:
    """The flat scores a run shows (HEADLINE's names, plus "harness:TASK:METRIC" for the tuned model)."""
    scores = {}
    for name, path in HEADLINE.items():
        value = metrics
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        scores[name] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    for task, values in ((metrics.get("harness") or {}).get("tuned") or {}).items():
        for metric, value in (values or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scores[f"harness:{task}:{metric}"] = value
    return scores


@dataclass
class RunRow:
    """One training run as the Runs view lists it, with its latest completed evaluation's headline scores."""

    job_id: int
    dataset: str | None
    dataset_repo: str | None
    dataset_revision: str | None
    dataset_config: str | None
    selection_recipe: dict | None  # None: trained on everything
    base_model: str | None
    method: str | None
    tokens_trained: int | None  # TRL's num_tokens, when it logged it
    training_records: int | None  # the publication's train split, or the selection's size
    seconds: float | None
    status: str
    model: str | None
    model_revision: str | None
    evaluation_id: int | None = None
    scores: dict[str, float | None] = field(default_factory=dict)


def _tokens_trained(metrics: list[dict]) -> int | None:
    counts = [m["num_tokens"] for m in metrics or [] if isinstance(m.get("num_tokens"), (int, float))]
    return int(max(counts)) if counts else None


def _run_row(session: Session, job: TrainingJob, names: dict[int, str]) -> RunRow:
    spec = job.spec or {}
    config = spec.get("dataset_config") or "messages"
    recipe = _selection_recipe(session, job.dataset_id, config)
    records = None
    if recipe is not None:
        records = recipe.get("size")
    elif job.publication_id and (publication := session.get(Publication, job.publication_id)):
        records = (publication.split_counts or {}).get("train")
    seconds = ((job.finished_at - job.started_at).total_seconds()
               if job.finished_at and job.started_at else None)
    latest = session.exec(select(Evaluation).where(Evaluation.training_job_id == job.id,
                                                   Evaluation.status == JobStatus.completed)
                          .order_by(Evaluation.id.desc())).first()
    model = job.model_repo or (str(Path(job.external_id) / "output") if job.launcher == "local" and job.external_id
                               else None)
    return RunRow(job.id, names.get(job.dataset_id), spec.get("dataset") or job.dataset_repo,
                  spec.get("dataset_revision") or job.dataset_revision, config, recipe, spec.get("base_model"),
                  spec.get("method"), _tokens_trained(job.metrics), records, seconds, job.status.value, model,
                  job.model_revision, latest.id if latest else None,
                  headline_scores(latest.metrics) if latest else {})


def runs(session: Session, *, dataset: str | None = None) -> list[RunRow]:
    """Every training run (of `dataset` when given), newest first, with what it trained on and its scores."""
    query = select(TrainingJob).order_by(TrainingJob.id.desc())
    if dataset is not None:
        found = repo.get_dataset(session, dataset)
        if found is None:
            return []
        query = query.where(TrainingJob.dataset_id == found.id)
    names = dict(session.exec(select(Dataset.id, Dataset.name)).all())
    return [_run_row(session, job, names) for job in session.exec(query)]


@dataclass
class MetricDelta:
    name: str
    a: float | None
    b: float | None
    delta: float | None  # b - a
    better: str | None = None  # "a", "b" or None (equal or not comparable)


@dataclass
class AnswerPair:
    """One test prompt both runs answered, side by side."""

    prompt: str
    reference: str
    answer_a: str | None
    answer_b: str | None
    rouge_l_a: float | None
    rouge_l_b: float | None
    preference_a: float | None  # each run's judge preference against its base (1: the tuned answer won)
    preference_b: float | None
    gap: float  # how far apart the two runs are on this prompt (by preference when both have one, else ROUGE-L)
    by: str  # "judge" or "rouge_l"


@dataclass
class RunComparison:
    a: RunRow
    b: RunRow
    metrics: list[MetricDelta]
    differing: list[AnswerPair]  # the prompts where the two runs differ most, largest gap first
    shared_prompts: int
    note: str | None = None


def compare_runs(session: Session, a: int, b: int, *, top: int = 10) -> RunComparison:
    """Per-metric a, b and delta (b - a) of two runs' latest evaluations, and the prompts where they differ most."""
    rows = {}
    for job_id in (a, b):
        job = session.get(TrainingJob, job_id)
        if job is None:
            raise repo.NotFoundError(f"no training job {job_id}")
        rows[job_id] = _run_row(session, job, dict(session.exec(select(Dataset.id, Dataset.name)).all()))
    run_a, run_b = rows[a], rows[b]
    missing = [str(r.job_id) for r in (run_a, run_b) if r.evaluation_id is None]
    note = (f"run {' and '.join(missing)} has no completed evaluation yet" if missing else None)
    metrics = []
    for name in dict.fromkeys([*run_a.scores, *run_b.scores]):
        x, y = run_a.scores.get(name), run_b.scores.get(name)
        delta = y - x if x is not None and y is not None else None
        better = None
        if delta:
            lower = name in LOWER_IS_BETTER
            better = "b" if (delta < 0) == lower else "a"
        metrics.append(MetricDelta(name, x, y, delta, better))
    pairs, shared = [], 0
    if not missing:
        answers_a = {(r.prompt, r.reference): r for r in evaluation_answers(session, run_a.evaluation_id)}
        for row_b in evaluation_answers(session, run_b.evaluation_id):
            row_a = answers_a.get((row_b.prompt, row_b.reference))
            if row_a is None:
                continue
            shared += 1
            if row_a.vs_base_preference is not None and row_b.vs_base_preference is not None:
                gap, by = abs(row_a.vs_base_preference - row_b.vs_base_preference), "judge"
            else:
                gap, by = abs((row_a.rouge_l_tuned or 0.0) - (row_b.rouge_l_tuned or 0.0)), "rouge_l"
            pairs.append(AnswerPair(row_b.prompt, row_b.reference, row_a.tuned_answer, row_b.tuned_answer,
                                    row_a.rouge_l_tuned, row_b.rouge_l_tuned, row_a.vs_base_preference,
                                    row_b.vs_base_preference, gap, by))
        if not shared:
            note = "the two runs were evaluated on different test prompts: no answer can be set side by side"
    pairs.sort(key=lambda p: (-p.gap, p.prompt))
    return RunComparison(run_a, run_b, metrics, pairs[:top], shared, note)


# The model card -----------------------------------------------------------------------------------------------

def _number(value) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def evaluation_table(evaluation: Evaluation) -> str:
    """The Markdown section (between the markers) a model card gets for an evaluation."""
    metrics = evaluation.metrics or {}
    tuned, base, judged = metrics.get("tuned") or {}, metrics.get("base") or {}, metrics.get("judge") or {}
    recipe = evaluation.selection_recipe
    trained_on = ("everything published" if not recipe else f"selection `{recipe.get('name')}` (" + ", ".join(
        f"{k} {json.dumps(v)}" for k, v in recipe.items() if k not in ("name",) and v is not None) + ")")
    lines = [CARD_START, "## Evaluation", "",
             f"On the test split of `{evaluation.dataset_repo}` (config `{evaluation.dataset_config}`) at dataset "
             f"revision `{evaluation.dataset_revision or 'unrecorded'}`; model revision "
             f"`{evaluation.model_revision or 'unrecorded'}`; base model `{evaluation.base_model}`.", "",
             f"Selection recipe: {trained_on}.", "", "| metric | tuned | base |", "|---|---|---|"]
    for label, key in (("loss", "loss"), ("perplexity", "perplexity"), ("ROUGE-L", "rouge_l"),
                       ("exact match", "exact_match"), ("answers", "n")):
        if key in tuned or key in base:
            lines.append(f"| {label} | {_number(tuned.get(key))} | {_number(base.get(key))} |")
    for name, label in (("vs_base", "base model"), ("vs_reference", "reference")):
        if rates := judged.get(name):
            lines.append(f"| judge win rate vs {label} | {_number(rates.get('win_rate'))} |  |")
            lines.append(f"| length-controlled win rate vs {label} | "
                         f"{_number(rates.get('length_controlled_win_rate'))} |  |")
    harness = metrics.get("harness") or {}
    for task, values in (harness.get("tuned") or {}).items():
        for metric, value in (values or {}).items():
            other = ((harness.get("base") or {}).get(task) or {}).get(metric)
            lines.append(f"| {task} {metric} | {_number(value)} | {_number(other)} |")
    if judged.get("model"):
        lines += ["", f"Judge: `{judged['model']}`, each pair judged in both orders."]
    return "\n".join(lines + [CARD_END])


def update_model_card(evaluation: Evaluation, token: str | None) -> str | None:
    """Put the evaluation table into the Hub model's README (replacing an older one); returns the commit id.

    None when the evaluated model is a local folder.
    """
    from huggingface_hub import HfApi, ModelCard

    if Path(evaluation.model).is_dir():
        return None
    card = ModelCard.load(evaluation.model, token=token)
    text = card.text
    if CARD_START in text and CARD_END in text:
        text = text[:text.index(CARD_START)] + text[text.index(CARD_END) + len(CARD_END):]
    card.text = f"{text.rstrip()}\n\n{evaluation_table(evaluation)}\n"
    info = HfApi(token=token).upload_file(path_or_fileobj=str(card).encode(), path_in_repo="README.md",
                                          repo_id=evaluation.model,
                                          commit_message=f"Evaluation {evaluation.id} of revision "
                                                         f"{evaluation.model_revision}")
    return info.oid
