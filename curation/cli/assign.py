"""assign: give a dataset's work to annotators (split evenly with an overlap), follow progress, reassign, and read
the agreement of overlapping answers."""
from __future__ import annotations

import argparse

from curation.cli import CommandError
from curation.cli.common import open_session


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("assign", help="assign records or tasks to annotators; progress and agreement")
    commands = p.add_subparsers(dest="assign_command", required=True, metavar="ACTION")
    split = commands.add_parser("split", help="split the unassigned items evenly, OVERLAP annotators per item")
    split.add_argument("--dataset", required=True, metavar="NAME")
    split.add_argument("--annotators", required=True, metavar="A,B,C", help="comma-separated user names")
    split.add_argument("--overlap", type=int, default=1, metavar="K", help="annotators per item (default 1)")
    split.add_argument("--tasks", action="store_true", help="assign the dataset's tasks instead of its records")
    split.add_argument("--user", default="cli", help="who assigns (recorded on each assignment)")
    split.set_defaults(run=run_split)
    progress = commands.add_parser("progress", help="open, submitted and skipped items per annotator")
    progress.add_argument("--dataset", default=None, metavar="NAME")
    progress.set_defaults(run=run_progress)
    move = commands.add_parser("reassign", help="move one annotator's open items to another")
    move.add_argument("--dataset", required=True, metavar="NAME")
    move.add_argument("--from", dest="from_annotator", required=True, metavar="NAME")
    move.add_argument("--to", dest="to_annotator", required=True, metavar="NAME")
    move.add_argument("--user", default="cli")
    move.set_defaults(run=run_reassign)
    agree = commands.add_parser("agreement", help="agreement of overlapping answers, per item and per annotator")
    agree.add_argument("--dataset", required=True, metavar="NAME")
    agree.set_defaults(run=run_agreement)


def _errors():
    from curation.services.errors import ConflictError, InvalidInput, NotFoundError, PermissionDenied

    return ConflictError, InvalidInput, NotFoundError, PermissionDenied


def _curator(name: str):
    from curation.services.permissions import Actor
    from db.models import Role

    return Actor(name, Role.admin)  # whoever runs the CLI holds the database file: an admin


def run_split(args: argparse.Namespace) -> int:
    from curation.services import assignments

    with open_session(args) as session:
        try:
            done = assignments.split_evenly(session, _curator(args.user), dataset=args.dataset,
                                            annotators=args.annotators.split(","), overlap=args.overlap,
                                            item_type="task" if args.tasks else "record")
            session.commit()
        except _errors() as exc:
            session.rollback()
            raise CommandError(str(exc)) from None
    print(done.summary())
    return 0


def run_progress(args: argparse.Namespace) -> int:
    from curation.services import assignments

    with open_session(args) as session:
        try:
            rows = assignments.progress(session, _curator("cli"), dataset=args.dataset)
        except _errors() as exc:
            raise CommandError(str(exc)) from None
    if not rows:
        print("nothing is assigned yet")
        return 0
    print(f"{'annotator':<20} {'dataset':<24} {'open':>6} {'submitted':>9} {'skipped':>7}")
    for row in rows:
        print(f"{row.annotator:<20} {row.dataset:<24} {row.open:>6} {row.done:>9} {row.skipped:>7}")
    return 0


def run_reassign(args: argparse.Namespace) -> int:
    from curation.services import assignments

    with open_session(args) as session:
        try:
            moved = assignments.reassign(session, _curator(args.user), dataset=args.dataset,
                                         from_annotator=args.from_annotator, to_annotator=args.to_annotator)
            session.commit()
        except _errors() as exc:
            session.rollback()
            raise CommandError(str(exc)) from None
    print(f"moved {moved} open item{'s' * (moved != 1)} from {args.from_annotator} to {args.to_annotator}")
    return 0


def run_agreement(args: argparse.Namespace) -> int:
    from curation.services import assignments

    with open_session(args) as session:
        try:
            report = assignments.agreement_report(session, dataset=args.dataset)
        except _errors() as exc:
            raise CommandError(str(exc)) from None
    print(report.summary())
    for name, score in report.per_annotator.items():
        print(f"  {name:<20} {score:.2f}")
    return 0
