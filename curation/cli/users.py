"""users add | list | passwd: accounts for the web app (passwords from a prompt or stdin, never argv)."""
from __future__ import annotations

import argparse
import getpass
import sys

from curation.cli import CommandError
from curation.cli.common import open_session

ROLES = ("annotator", "curator", "admin")


def register(subparsers: argparse._SubParsersAction) -> None:
    users = subparsers.add_parser("users", help="manage the web app's users")
    commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    p = commands.add_parser("add", help="add a user; the password is read from a prompt, or from stdin when piped")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.set_defaults(run=run_add)
    p = commands.add_parser("list", help="list users and their roles")
    p.set_defaults(run=run_list)
    p = commands.add_parser("passwd", help="set a user's password (prompt, or stdin when piped)")
    p.add_argument("name")
    p.set_defaults(run=run_passwd)


def read_password(name: str) -> str:
    """The new password: typed twice at a prompt on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise CommandError("the two passwords differ; nothing was changed")
        return first
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise CommandError("no password on stdin (pipe it in, e.g. `printf '%s\\n' \"$PW\" | ... users add`)")
    return password


def run_add(args: argparse.Namespace) -> int:
    from curation.services.admin import add_user
    from curation.services.annotation import InvalidInput

    password = read_password(args.name)
    with open_session(args) as session:
        try:
            user = add_user(session, args.name, args.role, password)
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None
        session.commit()
        print(f"user {user.name!r} added as {args.role}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from curation.services.admin import list_users

    with open_session(args) as session:
        users = list_users(session)
        if not users:
            print("no users yet: python -m curation users add NAME --role admin")
        for user in users:
            print(f"{user.name}\t{getattr(user.role, 'value', user.role)}\t{user.created_at:%Y-%m-%d}")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    from curation.services.admin import set_password
    from curation.services.annotation import InvalidInput

    password = read_password(args.name)
    with open_session(args) as session:
        try:
            set_password(session, args.name, password)
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None
        session.commit()
        print(f"password of {args.name!r} changed")
    return 0
