"""The command line: the same operations as the app, for scripts and pipelines.

Each module here with a `register(subparsers)` adds its commands; a command is a function
`(args) -> int` set with `set_defaults(run=...)`. Bad input is a one-line message and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Callable

EXIT_BAD_INPUT = 2


class CommandError(Exception):
    """A one-line message for the user; the command exits 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m curation", description="Instruct Studio command line")
    parser.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL, else the SQLite file)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in pkgutil.iter_modules(__path__):
        commands = importlib.import_module(f"{__name__}.{module.name}")
        if hasattr(commands, "register"):
            commands.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
