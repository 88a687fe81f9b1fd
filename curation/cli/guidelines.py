"""guidelines: a dataset's annotation guidelines (Markdown, versioned): show, set from a file, history."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.cli import CommandError
from curation.cli.common import open_session


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("guidelines", help="a dataset's annotation guidelines (Markdown, versioned)")
    commands = p.add_subparsers(dest="guidelines_command", required=True, metavar="ACTION")
    show = commands.add_parser("show", help="print the guidelines in force (or --version N)")
    show.add_argument("--dataset", required=True, metavar="NAME")
    show.add_argument("--version", type=int, default=None, metavar="N")
    show.set_defaults(run=run_show)
    put = commands.add_parser("set", help="write a new version from a Markdown file ('-': standard input)")
    put.add_argument("--dataset", required=True, metavar="NAME")
    put.add_argument("--file", required=True, metavar="PATH")
    put.add_argument("--reason", default=None, help="what changed, kept with the version")
    put.add_argument("--user", default="cli", help="who wrote it (recorded with the version)")
    put.set_defaults(run=run_set)
    history = commands.add_parser("history", help="every version, newest first")
    history.add_argument("--dataset", required=True, metavar="NAME")
    history.set_defaults(run=run_history)


def _errors():
    from curation.services.errors import ConflictError, InvalidInput, NotFoundError, PermissionDenied

    return ConflictError, InvalidInput, NotFoundError, PermissionDenied


def run_show(args: argparse.Namespace) -> int:
    from curation.services import guidelines

    with open_session(args) as session:
        try:
            view = (guidelines.current_guidelines(session, dataset=args.dataset) if args.version is None else
                    guidelines.guidelines_version(session, dataset=args.dataset, version=args.version))
        except _errors() as exc:
            raise CommandError(str(exc)) from None
    if not view.version:
        print(f"dataset {args.dataset} has no guidelines yet", file=sys.stderr)
        return 0
    print(f"version {view.version} by {view.written_by or '?'}, {view.written_at:%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    print(view.text)
    return 0


def run_set(args: argparse.Namespace) -> int:
    from curation.services import guidelines
    from curation.services.permissions import Actor
    from db.models import Role

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}") from None
    with open_session(args) as session:
        try:
            current = guidelines.current_guidelines(session, dataset=args.dataset)
            view = guidelines.save_guidelines(session, Actor(args.user, Role.admin), dataset=args.dataset, text=text,
                                              expected_version=current.version, reason=args.reason)
        except _errors() as exc:
            raise CommandError(str(exc)) from None
    same = view.version == current.version
    print(f"dataset {args.dataset}: guidelines " + ("unchanged" if same else f"saved as version {view.version}"))
    return 0


def run_history(args: argparse.Namespace) -> int:
    from curation.services import guidelines

    with open_session(args) as session:
        try:
            versions = guidelines.guidelines_history(session, dataset=args.dataset)
        except _errors() as exc:
            raise CommandError(str(exc)) from None
    for view in versions:
        print(f"v{view.version}\t{view.written_at:%Y-%m-%d %H:%M}\t{view.written_by or '?'}\t{view.reason or ''}")
    if not versions:
        print(f"dataset {args.dataset} has no guidelines yet", file=sys.stderr)
    return 0
