"""What the commands share: the database session and terminal progress bars."""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from curation.cli import CommandError
from curation.config import Settings


@contextmanager
def open_session(args: argparse.Namespace) -> Iterator[Session]:
    from db.engine import open_database, session_for

    url = Settings.from_env(database_url=args.db).database_url
    try:
        engine = open_database(url)
    except OperationalError as exc:
        raise CommandError(f"cannot open the database: {str(exc.orig).strip().splitlines()[0]}") from None
    session = session_for(engine)
    try:
        yield session
    finally:
        session.close()
        engine.dispose()


@contextmanager
def progress_bar(description: str, unit: str = "rec"):
    """A tqdm bar on a terminal, nothing otherwise; yields a (done, total) callback."""
    from tqdm import tqdm

    bar = tqdm(desc=description, unit=unit, disable=not sys.stderr.isatty(), file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()
