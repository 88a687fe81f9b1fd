"""Passwords, sign-in, the users command, and an app that will not start without a user."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest

from curation.auth import check_login, hash_password, verify_password
from curation.cli import main as cli
from db.engine import open_database, session_for
from db.repo import get_user, table_counts
from tests.conftest import REPO


def test_a_password_is_stored_as_an_argon2id_hash_and_checked():
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse battery!")
    assert not verify_password("not a hash", "anything")
    with pytest.raises(ValueError, match="at least 8 characters"):
        hash_password("short")


def users(db_url: str, *argv: str, stdin: str = "", monkeypatch=None) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli(["--db", db_url, "users", *argv])


def test_users_add_list_and_passwd_read_the_password_from_stdin(db_url, monkeypatch, capsys):
    assert users(db_url, "add", "alice", "--role", "admin", stdin="alice-password\n", monkeypatch=monkeypatch) == 0
    assert users(db_url, "add", "bob", "--role", "annotator", stdin="bob-password\n", monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out == "user 'alice' added as admin\nuser 'bob' added as annotator\n"
    assert users(db_url, "list", monkeypatch=monkeypatch) == 0
    listed = [line.split("\t")[:2] for line in capsys.readouterr().out.splitlines()]
    assert listed == [["alice", "admin"], ["bob", "annotator"]]
    engine = open_database(db_url)
    assert check_login(engine, "alice", "alice-password")
    assert not check_login(engine, "alice", "bob-password")
    assert not check_login(engine, "nobody", "alice-password")
    assert users(db_url, "passwd", "bob", stdin="a-new-password\n", monkeypatch=monkeypatch) == 0
    assert check_login(engine, "bob", "a-new-password") and not check_login(engine, "bob", "bob-password")
    engine.dispose()


def test_users_refuses_bad_input_with_one_line_and_changes_nothing(db_url, monkeypatch, capsys):
    users(db_url, "add", "alice", "--role", "admin", stdin="alice-password\n", monkeypatch=monkeypatch)
    engine = open_database(db_url)
    with session_for(engine) as session:
        before = table_counts(session)
    capsys.readouterr()
    cases = [
        (("add", "alice", "--role", "curator"), "alice-password\n", "error: there is already a user named 'alice'\n"),
        (("add", "carol", "--role", "curator"), "short\n", "error: the password must have at least 8 characters\n"),
        (("add", "carol", "--role", "curator"), "", "error: no password on stdin"),
        (("passwd", "nobody"), "long-enough-password\n", "error: there is no user named 'nobody'\n"),
    ]
    for argv, stdin, message in cases:
        assert users(db_url, *argv, stdin=stdin, monkeypatch=monkeypatch) == 2
        assert capsys.readouterr().err.startswith(message)
    with session_for(engine) as session:
        assert table_counts(session) == before
        assert get_user(session, "alice").role.value == "admin"
    engine.dispose()


def test_the_password_is_never_an_argument(sqlite_url):
    result = subprocess.run([sys.executable, "-m", "curation", "--db", sqlite_url, "users", "add", "eve", "--role",
                             "admin", "--password", "x"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "unrecognized arguments: --password x" in result.stderr


def test_the_app_will_not_start_without_a_user_and_says_how_to_make_one(sqlite_url, monkeypatch, capsys):
    import app

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert app.main(["--port", "7999"]) == 2
    err = capsys.readouterr().err
    assert "has no users yet" in err
    assert "python -m curation users add NAME --role admin" in err


def test_a_container_makes_its_first_admin_from_its_secrets(sqlite_url, monkeypatch):
    import app

    monkeypatch.setenv("INITIAL_ADMIN", "boss")
    monkeypatch.setenv("INITIAL_ADMIN_PASSWORD", "boss-password")
    assert app.has_users(sqlite_url)
    engine = open_database(sqlite_url)
    assert check_login(engine, "boss", "boss-password")
    engine.dispose()
