"""The engine for DATABASE_URL: SQLite (WAL, foreign keys on) by default, PostgreSQL by URL."""
from __future__ import annotations

from pathlib import Path

import orjson

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (the driver we ship)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _enable_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _dump_json(value) -> str:
    # orjson: several times faster than json for the JSON columns of bulk imports.
    return orjson.dumps(value).decode()


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False},
                               json_serializer=_dump_json, json_deserializer=orjson.loads)
        event.listen(engine, "connect", _enable_sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_dump_json, json_deserializer=orjson.loads)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic, reading db.models)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


def open_database(url: str) -> Engine:
    """An engine whose schema is up to date."""
    engine = make_engine(url)
    migrate(engine)
    return engine


def session_for(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)
