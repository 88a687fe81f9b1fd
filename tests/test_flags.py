"""Quality flags are stored with each record, kept current on edit, filtered in browse and counted in stats."""
from __future__ import annotations

import sqlalchemy as sa

import pytest
from sqlalchemy import insert, select

from curation.quality.records import CHECKS
from curation.records import RecordDraft
from curation.services import browse, review, tasks
from curation.services.permissions import Actor
from db import repo
from db.flag_tables import RecordFlag
from db.models import Dataset, Record, RecordStatus, Role, utcnow

NO_FLAGS = {name: 0 for name in CHECKS}
SHELF = [  # (instruction, input, outputs): the flags each record fails are in stored_flags' expected values
    ("Name the capital of France.", "", ["Paris."]),
    ("Name the capital of Spain.", "", [""]),
    ("Describe the image below in detail.", "", ["A cat sleeps on a mat."]),
    ("Sort these.", "", ["<nooutput>"]),
    ("Translate this sentence into French, please.", "N/A", ["Bonjour."]),
    ("Describe the picture of the harbour.", "", ["Boats rest in calm water."]),
]


def stored_flags(session, ids: list[int]) -> list[list[str]]:
    rows = session.execute(select(RecordFlag.record_id, RecordFlag.flag).where(RecordFlag.record_id.in_(ids))).all()
    return [sorted(flag for record_id, flag in rows if record_id == i) for i in ids]


@pytest.fixture
def shelf(session) -> list[int]:
    """The SHELF records, imported in one batch; the harbour picture is then discarded."""
    dataset = repo.get_or_create_dataset(session, "shelf")
    ids = repo.insert_records(session, dataset.id, [RecordDraft(i, n, o) for i, n, o in SHELF], by="ana",
                              reason="imported")
    repo.update_record(session, ids[5], expected_version=1, changes={"status": RecordStatus.discarded}, by="cura")
    session.commit()
    return ids


def browsed(session, **filters) -> list[int]:
    page = browse.browse(session, browse.BrowseQuery(dataset="shelf", sort="Oldest", **filters))
    assert page.total == len(page.rows)
    return [row[0] for row in page.rows]


def test_an_import_stores_the_checks_each_record_fails(session, shelf):
    assert stored_flags(session, shelf) == [[], ["empty_output"], ["blacklisted_word"],
                                            ["instruction_length", "placeholder_output"], ["placeholder_input"],
                                            ["blacklisted_word"]]


def test_an_edit_of_the_text_recomputes_the_flags_and_a_status_change_keeps_them(session, shelf):
    france, spain, image, sort, translate, harbour = shelf
    repo.update_record(session, spain, expected_version=1, changes={"outputs": ["Madrid."]}, by="ana")
    repo.update_record(session, sort, expected_version=1, changes={"status": RecordStatus.submitted}, by="ana")
    assert stored_flags(session, [spain, sort]) == [[], ["instruction_length", "placeholder_output"]]
    repo.update_record(session, sort, expected_version=2, by="ana",
                       changes={"instruction": "Sort these numbers from smallest to largest."})
    repo.update_record(session, france, expected_version=1, changes={"input": "N/A"}, by="ana")
    session.commit()
    assert stored_flags(session, [spain, sort, france]) == [[], ["placeholder_output"], ["placeholder_input"]]
    assert browsed(session, flag="empty_output") == []


def test_browse_filters_by_one_flag_or_by_any_flag(session, shelf):
    france, spain, image, sort, translate, harbour = shelf
    assert browsed(session, flag="blacklisted_word") == [image, harbour]
    assert browsed(session, flag="blacklisted_word", status="draft") == [image]
    assert browsed(session, flag="instruction_length") == [sort]
    assert browsed(session, flag=browse.ANY_FLAG) == [spain, image, sort, translate, harbour]
    assert browsed(session, flag=browse.ANY_FLAG, text="capital") == [spain]
    assert browsed(session, flag="url_only_input") == []
    assert browsed(session) == shelf


def test_stats_and_the_overview_count_flagged_records_that_are_not_discarded(session, shelf):
    from curation.stats import dataset_stats

    expected = {**NO_FLAGS, "empty_output": 1, "blacklisted_word": 1, "instruction_length": 1,
                "placeholder_output": 1, "placeholder_input": 1}
    assert dataset_stats(session, "shelf")["flags"] == expected
    assert list(dataset_stats(session, "shelf")["flags"]) == list(CHECKS)
    assert review.overview(session, dataset="shelf").flags == expected
    other = repo.get_or_create_dataset(session, "other")
    repo.create_record(session, other.id, RecordDraft("Hi", outputs=["Hello"]), by="ben")
    assert review.overview(session).flags == {**expected, "instruction_length": 2}
    assert review.overview(session, dataset="missing").flags == NO_FLAGS


def test_a_task_is_found_by_the_flags_of_its_instances_and_an_edit_reflags_them(session):
    repo.get_or_create_dataset(session, "geo")
    ann = Actor("ann", Role.annotator)
    form = tasks.TaskForm(dataset="geo", name="task_capitals", definition="Given a country, answer with its capital.",
                          instances=[tasks.InstanceForm("France", ["Paris"]), tasks.InstanceForm("Peru", [""])])
    view = tasks.save_task(session, ann, form)
    query = browse.BrowseQuery(kind="tasks", dataset="geo", flag="empty_output")
    assert [row[0] for row in browse.browse(session, query).rows] == [view.id]
    form.instances[1] = tasks.InstanceForm("Peru", ["Lima"])
    tasks.save_task(session, ann, form, task_id=view.id, expected_version=1)
    assert browse.browse(session, query).rows == []
    form.definition = "Answer."
    tasks.save_task(session, ann, form, task_id=view.id, expected_version=2)
    instances = [row[0] for row in browse.browse(session, browse.BrowseQuery(dataset="geo", sort="Oldest")).rows]
    assert stored_flags(session, instances) == [["instruction_length"], ["instruction_length"]]


def test_the_migration_flags_the_records_of_a_database_made_before_it(db_url):
    from alembic import command
    from alembic.config import Config

    from db.engine import make_engine, migrate, session_for
    from tests.conftest import REPO

    engine = make_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(REPO / "db" / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        for head in ("0002_dedup", "0003_publish_train", "0004_browse_indexes"):  # the heads before record_flag
            command.upgrade(config, head)
        dataset_id = connection.execute(insert(Dataset.__table__).returning(Dataset.__table__.c.id),
                                        {"name": "old", "description": "", "created_at": utcnow()}).scalar_one()
        # The record table as it was then: today's model has columns later migrations add.
        old_record = sa.table("record", *[sa.column(name) for name in (
            "dataset_id", "instruction", "input", "status", "created_at", "updated_at", "version", "content_hash")],
            sa.column("outputs", sa.JSON))
        connection.execute(insert(old_record), [
            {"dataset_id": dataset_id, "instruction": i, "input": n, "outputs": o, "status": "draft",
             "created_at": utcnow(), "updated_at": utcnow(), "version": 1, "content_hash": str(k)}
            for k, (i, n, o) in enumerate(SHELF)])
    migrate(engine)
    with session_for(engine) as session:
        ids = list(session.execute(select(Record.id).order_by(Record.id)).scalars())
        assert stored_flags(session, ids) == [[], ["empty_output"], ["blacklisted_word"],
                                              ["instruction_length", "placeholder_output"], ["placeholder_input"],
                                              ["blacklisted_word"]]
    engine.dispose()


def test_the_quality_report_reads_the_stored_flags(session, shelf):
    from curation.services.coverage import quality_report
    from db.flags import stored_flags as stored_by_record

    # a flag stored by some other path (say a re-flag after a new check) is what the report shows
    session.execute(insert(RecordFlag), [{"record_id": shelf[0], "flag": "extreme_length"}])
    dataset_id = repo.get_dataset(session, "shelf").id
    assert stored_by_record(session, dataset_id) == {
        shelf[0]: ["extreme_length"], shelf[1]: ["empty_output"], shelf[2]: ["blacklisted_word"],
        shelf[3]: ["instruction_length", "placeholder_output"], shelf[4]: ["placeholder_input"],
        shelf[5]: ["blacklisted_word"]}
    report = quality_report(session, dataset="shelf")
    assert report["records"] == 5  # the discarded harbour picture is left out
    assert {k: v for k, v in report["flags"].items() if v} == {
        "extreme_length": 1, "empty_output": 1, "blacklisted_word": 1, "instruction_length": 1,
        "placeholder_output": 1, "placeholder_input": 1}
    assert report["examples"]["blacklisted_word"] == [shelf[2]]
