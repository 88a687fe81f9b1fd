"""The store on SQLite and PostgreSQL: history on every change, optimistic locking, migrations."""
import threading

import pytest
from sqlalchemy import inspect, text

from curation.records import RecordDraft
from db import repo
from db.engine import session_for
from db.models import RecordStatus


@pytest.fixture
def record_id(session):
    dataset = repo.get_or_create_dataset(session, "store")
    record = repo.create_record(session, dataset.id, RecordDraft("Name a fruit.", outputs=["apple"]), by="ana")
    session.commit()
    return record.id


def test_every_change_leaves_a_full_revision(session, record_id):
    repo.update_record(session, record_id, expected_version=1, changes={"outputs": ["pear"]}, by="ben",
                       reason="better fruit")
    repo.update_record(session, record_id, expected_version=2, changes={"status": RecordStatus.submitted}, by="ben")
    session.commit()
    revisions = repo.history(session, "record", record_id)
    assert [(r.version, r.changed_by, r.reason) for r in revisions] == [
        (1, "ana", "created"), (2, "ben", "better fruit"), (3, "ben", None)]
    assert [r.snapshot["outputs"] for r in revisions] == [["apple"], ["pear"], ["pear"]]
    assert [r.snapshot["status"] for r in revisions] == ["draft", "draft", "submitted"]
    assert revisions[1].snapshot["instruction"] == "Name a fruit."


def test_the_content_hash_follows_the_text(session, record_id):
    before = repo.get_record(session, record_id).content_hash
    record = repo.update_record(session, record_id, expected_version=1, changes={"outputs": ["  pear "]}, by="ben")
    assert record.content_hash == RecordDraft("Name a fruit.", outputs=["pear"]).hash() != before


def test_a_stale_save_is_refused_and_the_first_is_kept(engine, record_id):
    with session_for(engine) as first, session_for(engine) as second:
        # Both writers opened version 1.
        assert repo.get_record(first, record_id).version == repo.get_record(second, record_id).version == 1
        repo.update_record(first, record_id, expected_version=1, changes={"outputs": ["plum"]}, by="ana")
        first.commit()
        with pytest.raises(repo.ConflictError) as conflict:
            repo.update_record(second, record_id, expected_version=1, changes={"outputs": ["kiwi"]}, by="ben")
        second.rollback()
    assert str(conflict.value) == ("record %d was changed by ana (version 2, you edited version 1); "
                                   "reload to see their change" % record_id)
    assert conflict.value.current["outputs"] == ["plum"]
    with session_for(engine) as check:
        assert repo.get_record(check, record_id).outputs == ["plum"]
        assert [r.version for r in repo.history(check, "record", record_id)] == [1, 2]


def test_two_concurrent_writers_of_one_version_one_wins(engine, record_id):
    barrier = threading.Barrier(2)
    outcomes = {}

    def save(name):
        with session_for(engine) as session:
            barrier.wait()
            try:
                repo.update_record(session, record_id, expected_version=1, changes={"outputs": [name]}, by=name)
                session.commit()
                outcomes[name] = "saved"
            except repo.ConflictError:
                session.rollback()
                outcomes[name] = "conflict"

    threads = [threading.Thread(target=save, args=(n,)) for n in ("ana", "ben")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes.values()) == ["conflict", "saved"]
    winner = next(n for n, o in outcomes.items() if o == "saved")
    with session_for(engine) as check:
        record = repo.get_record(check, record_id)
        assert (record.outputs, record.version) == ([winner], 2)
        assert [r.changed_by for r in repo.history(check, "record", record_id)] == ["ana", winner]


def test_unknown_fields_cannot_be_changed(session, record_id):
    with pytest.raises(ValueError, match="cannot change content_hash"):
        repo.update_record(session, record_id, expected_version=1, changes={"content_hash": "x"}, by="ana")


def test_the_migrations_build_exactly_the_models(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []
    assert {"dataset", "task", "example", "record", "revision", "user"} <= set(inspect(engine).get_table_names())


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url):
    from db.engine import open_database

    engine = open_database(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
