"""dedup-cluster: the near-duplicate search on a distributed engine (datatrove: local, Slurm, HF Jobs)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from curation.cli import CommandError
from curation.cli.common import open_session, progress_bar


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dedup-cluster", help="near-duplicate search on a distributed engine (datatrove)")
    commands = p.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    start = commands.add_parser("start", help="export the dataset's texts as shards and start the engine's job")
    start.add_argument("--dataset", required=True, metavar="NAME")
    start.add_argument("--threshold", type=float, default=None, metavar="T", help="cosine (default 0.95)")
    start.add_argument("--fields", default=None, choices=["instruction", "instruction+input", "record"],
                       help="what must match (default: instruction+input)")
    start.add_argument("--tasks", type=int, default=2, metavar="N", help="shards, and tasks per stage (default 2)")
    start.add_argument("--workers", type=int, default=-1, metavar="N",
                       help="local executor: tasks run at once (default: all)")
    start.add_argument("--executor", default="local", choices=["local", "slurm", "hf-jobs"],
                       help="local (this machine; the only one tested here), slurm or hf-jobs")
    start.add_argument("--partition", default=None, help="with --executor slurm: the partition")
    start.add_argument("--jobs-dir", default="data/jobs", help="where the job folders go")
    start.add_argument("--wait", action="store_true", help="follow the job, then print its groups")
    start.add_argument("--limit", type=int, default=20, metavar="N", help="groups to print with --wait")
    start.add_argument("--user", default=None, help="who runs the search (recorded with it)")
    start.set_defaults(run=run_start)
    status = commands.add_parser("status", help="where a search stands (its pairs are read back once done)")
    status.add_argument("id", type=int)
    status.set_defaults(run=run_status)
    cancel = commands.add_parser("cancel", help="stop a search")
    cancel.add_argument("id", type=int)
    cancel.set_defaults(run=run_cancel)
    listing = commands.add_parser("list", help="a dataset's distributed searches, newest first")
    listing.add_argument("--dataset", required=True, metavar="NAME")
    listing.set_defaults(run=run_list)


def _errors():
    from curation.services.dedup import DedupError
    from curation.services.errors import PermissionDenied

    return DedupError, PermissionDenied


def _follow(session, search_id: int):
    """Refresh until the search ends, with a bar over the stages' tasks; returns its final status."""
    from curation.distributed.job import STAGES
    from curation.services.distributed_search import search_status

    with progress_bar("searching", unit="task") as bar:
        while True:
            state = search_status(session, search_id)
            stage = STAGES.index(state.stage)
            bar(stage * 100 + state.done * 100 // max(state.total, 1), len(STAGES) * 100)
            if state.status in ("completed", "failed", "cancelled"):
                return state
            time.sleep(1)


def run_start(args: argparse.Namespace) -> int:
    from curation.cli.dedup import _print_groups
    from curation.services import dedup as dedup_service
    from curation.services.distributed_search import start_distributed_search

    with open_session(args) as session:
        try:
            search = start_distributed_search(
                session, None, dataset=args.dataset, threshold=args.threshold, fields=args.fields, tasks=args.tasks,
                workers=args.workers, executor=args.executor, partition=args.partition, work_root=args.jobs_dir)
        except _errors() as exc:
            raise CommandError(str(exc)) from None
        search.created_by = args.user
        session.commit()
        print(f"search {search.id} {search.status.value}: {search.work_dir}", file=sys.stderr)
        if not args.wait:
            print(json.dumps({"search": search.id, "status": search.status.value}))
            return 0
        state = _follow(session, search.id)
        print(state.sentence)
        if state.status != "completed":
            return 1
        _print_groups("exact duplicates", dedup_service.exact_duplicate_groups(session, dataset=args.dataset),
                      args.limit)
        groups = dedup_service.duplicate_groups(session, dataset=args.dataset, threshold=search.threshold)
        _print_groups(f"near-duplicates (distributed, {search.fields}, score >= {search.threshold})", groups,
                      args.limit)
    return 0


def run_status(args: argparse.Namespace) -> int:
    from curation.services.distributed_search import search_status

    with open_session(args) as session:
        try:
            state = search_status(session, args.id)
        except _errors() as exc:
            raise CommandError(str(exc)) from None
    print(state.sentence)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from curation.services.distributed_search import cancel_distributed_search

    with open_session(args) as session:
        try:
            search = cancel_distributed_search(session, None, args.id)
        except _errors() as exc:
            raise CommandError(str(exc)) from None
        print(f"search {search.id} {search.status.value}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from curation.services.distributed_search import distributed_searches

    with open_session(args) as session:
        try:
            rows = distributed_searches(session, dataset=args.dataset)
        except _errors() as exc:
            raise CommandError(str(exc)) from None
        for s in rows:
            print(f"{s.id:>5}  {s.status.value:<10} {s.executor:<8} {s.tasks:>3} tasks  {s.record_count:>8,} records  "
                  f"{s.created_at:%Y-%m-%d %H:%M}  run {s.run_id or '-'}  {s.error or ''}".rstrip())
    return 0
