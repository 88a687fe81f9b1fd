"""`generate`: grow a dataset with a model (Self-Instruct, Evol-Instruct, SNI task expansion) as a resumable job."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from curation.cli import CommandError
from curation.cli.common import open_session, progress_bar


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="grow a dataset with a model, as a job you can follow, cancel, resume",
                              description="Generated records land as submitted, machine-drafted records in the "
                                          "review queue, each with its job, model and seeds or parent.")
    commands = p.add_subparsers(dest="generate_command", required=True, metavar="PIPELINE|JOB-COMMAND")

    def job_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dataset", required=True, metavar="NAME", help="where the generated records go")
        q.add_argument("--user", required=True, metavar="NAME", help="a curator or admin (the records' author)")
        q.add_argument("--target", type=int, default=100, metavar="N", help="how many records to keep")
        q.add_argument("--model", default=None, metavar="LABEL", help="a configured model (default: the first)")
        q.add_argument("--backend", default=None, choices=("openai", "hf", "local"),
                       help="instead of --model: an ad hoc backend with --model-name and --base-url")
        q.add_argument("--base-url", default="", metavar="URL")
        q.add_argument("--model-name", default=None, metavar="NAME")
        q.add_argument("--temperature", type=float, default=1.0, metavar="T")
        q.add_argument("--max-tokens", type=int, default=1024, metavar="N")
        q.add_argument("--budget-requests", type=int, default=None, metavar="N", help="stop after N requests")
        q.add_argument("--budget-tokens", type=int, default=None, metavar="N", help="stop after N tokens")
        q.add_argument("--concurrency", type=int, default=None, metavar="N")
        q.add_argument("--seed", type=int, default=0, help="the job's random seed (a rerun replays the same requests)")
        q.add_argument("--follow", action="store_true",
                       help="run here with a progress bar and print the report (default: start it and return)")

    q = commands.add_parser("self-instruct", help="Self-Instruct from seed tasks")
    job_options(q)
    seeds = q.add_mutually_exclusive_group(required=True)
    seeds.add_argument("--seeds", metavar="FILE", help="seed tasks as Self-Instruct's seed_tasks.jsonl")
    seeds.add_argument("--seed-dataset", metavar="NAME", help="the records of a dataset as the seed tasks")
    q.set_defaults(run=run_create, pipeline="self_instruct")
    q = commands.add_parser("evol", help="Evol-Instruct on chosen records")
    job_options(q)
    q.add_argument("--records", required=True, metavar="IDS", help="record ids to evolve, e.g. 3,5,8-20")
    q.add_argument("--operations", default=None, metavar="OPS",
                   help="comma-separated: add_constraints,deepen,concretize,reasoning,complicate_input,breadth")
    q.set_defaults(run=run_create, pipeline="evol_instruct")
    q = commands.add_parser("expand-task", help="new instances for an SNI task, checked against its negatives")
    job_options(q)
    q.add_argument("--task", required=True, type=int, metavar="ID")
    q.set_defaults(run=run_create, pipeline="expand_task")

    for name, helptext, fn in (("run", "run a queued job here (what a started job runs)", run_job_here),
                               ("follow", "show a job's progress until it ends, then its report", run_follow),
                               ("resume", "run a cancelled, failed or interrupted job again (cached replies are free)",
                                run_resume),
                               ("cancel", "ask a job to stop after the batch in flight", run_cancel)):
        q = commands.add_parser(name, help=helptext)
        q.add_argument("job", type=int, metavar="JOB")
        if name in ("resume", "cancel"):
            q.add_argument("--user", required=True, metavar="NAME")
        if name == "resume":
            q.add_argument("--follow", action="store_true")
        q.set_defaults(run=fn)
    q = commands.add_parser("list", help="the generation jobs, newest first")
    q.add_argument("--dataset", default=None, metavar="NAME")
    q.set_defaults(run=run_list)


def _ids(text: str) -> list[int]:
    ids: list[int] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            ids += list(range(int(first), int(last) + 1)) if last else [int(first)]
        except ValueError:
            raise CommandError(f"--records: {part!r} is not an id or a range like 8-20") from None
    if not ids:
        raise CommandError("--records names no record")
    return ids


def _actor(session, name: str):
    from curation.services.admin import actor_for

    actor = actor_for(session, name)
    if actor is None:
        raise CommandError(f"there is no user named {name!r}")
    return actor


def _seeds(args, session) -> list[dict]:
    from dataclasses import asdict

    from curation.generation.self_instruct import load_seed_tasks

    if args.seeds:
        try:
            return [asdict(s) for s in load_seed_tasks(Path(args.seeds))]
        except (OSError, ValueError) as error:
            raise CommandError(f"{args.seeds}: {error}") from None
    from curation.services.errors import InvalidInput
    from curation.services.generation import seeds_of_dataset

    try:
        return seeds_of_dataset(session, args.seed_dataset)
    except InvalidInput as error:
        raise CommandError(str(error)) from None


def run_create(args: argparse.Namespace) -> int:
    from curation.config import Settings
    from curation.services import generation
    from curation.services.errors import InvalidInput, PermissionDenied

    settings = Settings.from_env(database_url=args.db)
    with open_session(args) as session:
        actor = _actor(session, args.user)
        spec = generation.JobSpec(
            pipeline=args.pipeline, dataset=args.dataset, model=args.model, backend=args.backend,
            base_url=args.base_url, model_name=args.model_name, target=args.target, seed=args.seed,
            temperature=args.temperature, max_tokens=args.max_tokens, budget_requests=args.budget_requests,
            budget_tokens=args.budget_tokens, concurrency=args.concurrency)
        if args.pipeline == "self_instruct":
            spec.seeds = _seeds(args, session)
        elif args.pipeline == "evol_instruct":
            spec.record_ids = _ids(args.records)
            if args.operations:
                spec.operations = [o.strip() for o in args.operations.split(",") if o.strip()]
        else:
            spec.task_id = args.task
        try:
            job = generation.create_job(session, actor, spec, settings)
        except (InvalidInput, PermissionDenied) as error:
            raise CommandError(str(error)) from None
        job_id = job.id
    print(f"job {job_id}: {generation.PIPELINES[args.pipeline]} into {args.dataset}, target {args.target}")
    return _run_or_start(args, job_id)


def _run_or_start(args: argparse.Namespace, job_id: int) -> int:
    if args.follow:
        return _run(args, job_id)
    log = Path(os.environ.get("JOBS_DIR", "data/jobs")) / f"generation-{job_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "curation"] + (["--db", args.db] if args.db else []) + ["generate", "run",
                                                                                            str(job_id)]
    with open(log, "ab") as out:
        subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)  # outlives this command, like a training job
    print(f"started in the background (log: {log}); follow it with: python -m curation generate follow {job_id}")
    return 0


def _run(args: argparse.Namespace, job_id: int) -> int:
    from curation.config import Settings
    from curation.services import generation
    from curation.services.errors import InvalidInput
    from db.engine import open_database

    settings = Settings.from_env(database_url=args.db)
    engine = open_database(settings.database_url)
    try:
        with progress_bar(f"job {job_id}", unit="kept") as update:
            try:
                generation.run_job(engine, settings, job_id, progress=update)
            except InvalidInput as error:
                raise CommandError(str(error)) from None
            except Exception:
                pass  # the job row says why it failed; the report below shows it
    finally:
        engine.dispose()
    return _print_report(args, job_id)


def _print_report(args: argparse.Namespace, job_id: int) -> int:
    from curation.services import generation

    with open_session(args) as session:
        job = generation.get_job(session, job_id)
        print(generation.report_text(job))
        return 0 if job.status.value == "completed" else 1


def run_job_here(args: argparse.Namespace) -> int:
    return _run(args, args.job)


def run_follow(args: argparse.Namespace) -> int:
    from curation.services import generation

    with progress_bar(f"job {args.job}", unit="kept") as update:
        while True:
            with open_session(args) as session:
                try:
                    job = generation.get_job(session, args.job)
                except LookupError as error:
                    raise CommandError(str(error)) from None
                state = generation.job_state(job)
                update(job.kept, job.target)
            if state not in ("queued", "running"):
                break
            time.sleep(1.0)
    return _print_report(args, args.job)


def _on_job(args: argparse.Namespace, action) -> None:
    """Do `action(session, actor, job_id)` as --user; a refusal is the command's one-line error."""
    from curation.services.errors import InvalidInput, PermissionDenied

    with open_session(args) as session:
        try:
            action(session, _actor(session, args.user), args.job)
        except (InvalidInput, PermissionDenied, LookupError) as error:
            raise CommandError(str(error).strip("'\"")) from None


def run_resume(args: argparse.Namespace) -> int:
    from curation.services import generation

    _on_job(args, generation.prepare_resume)
    return _run_or_start(args, args.job)


def run_cancel(args: argparse.Namespace) -> int:
    from curation.services import generation

    _on_job(args, generation.request_cancel)
    print(f"job {args.job}: asked to stop after the batch in flight")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from curation.services import generation
    from curation.services.permissions import Actor
    from db.models import Role

    with open_session(args) as session:
        for job in generation.list_jobs(session, Actor("cli", Role.admin), dataset=args.dataset):
            print(f"{job.id:>5}  {generation.PIPELINES[job.pipeline]:<20} {generation.job_state(job):<12} "
                  f"kept {job.kept}/{job.target}  by {job.created_by}  {job.created_at:%Y-%m-%d %H:%M}")
    return 0
