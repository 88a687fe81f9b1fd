"""Publish & train: the counts a curator sees before publishing, and the tab's listeners are for curators only."""
from __future__ import annotations

import logging

import pytest

from tests.test_publish import seed_dataset
from tests.ui_server import SLOW_LOAD


def record_ids(session) -> dict[int, int]:
    """{fruit number: record id} of seed_dataset's records."""
    from sqlmodel import select

    from db.models import Record

    return {int(instruction.split()[-1].rstrip(".")): record_id
            for record_id, instruction in session.exec(select(Record.id, Record.instruction))}


def pair_up_as_near_duplicates(session, pairs: list[tuple[int, int]]) -> None:
    """A stored semantic search of demo that found these record pairs."""
    from db import repo
    from db.dedup_tables import DedupRun, DuplicatePair

    run = DedupRun(dataset_id=repo.get_dataset(session, "demo").id, method="semantic", fields="instruction",
                   threshold=0.9, floor=0.9, record_count=20, pair_count=len(pairs))
    session.add(run)
    session.flush()
    session.add_all(DuplicatePair(run_id=run.id, record_a=min(a, b), record_b=max(a, b), score=0.97)
                    for a, b in pairs)
    session.commit()


def counts(session, statuses, configs=("messages",), actor=None):
    from curation.services.permissions import Actor
    from curation.services.publishing import publication_counts
    from db.models import Role

    return publication_counts(session, dataset="demo", statuses=statuses, configs=configs,
                              actor=actor or Actor("cura", Role.curator))


def split_counts(session, statuses) -> dict[str, int]:
    from curation.publish import plan_publication

    return plan_publication(session, dataset="demo", repo_id="tester/demo", statuses=statuses).split_counts


def test_the_counts_are_those_publishing_would_send_by_status_and_split(db_url, session):
    seed_dataset(db_url)  # 16 approved (8 qa, 8 brainstorm), 2 drafts, 2 discarded
    assert counts(session, ["approved"]) == {"total": 16, "by_status": {"approved": 16},
                                             "splits": {"train": 14, "test": 2}, "configs": ["messages"]}
    assert counts(session, ["approved", "draft", "submitted"], ["messages", "alpaca"]) == {
        "total": 18, "by_status": {"approved": 16, "draft": 2, "submitted": 0},
        "splits": {"train": 16, "test": 2}, "configs": ["messages", "alpaca"]}
    assert split_counts(session, ["approved", "draft"]) == {"train": 16, "test": 2}
    assert counts(session, []) == {"total": 0, "by_status": {}, "splits": {"train": 0, "test": 0},
                                   "configs": ["messages"]}


def test_the_split_keeps_near_duplicates_together_as_publishing_does(db_url, session):
    seed_dataset(db_url)
    ids = record_ids(session)
    # The 8 approved qa records in 4 pairs: a pair is bigger than qa's test share (1), so qa stays in train.
    pair_up_as_near_duplicates(session, [(ids[1], ids[3]), (ids[5], ids[7]), (ids[11], ids[13]), (ids[15], ids[17])])
    assert counts(session, ["approved"])["splits"] == {"train": 15, "test": 1}
    assert split_counts(session, ["approved"]) == {"train": 15, "test": 1}


def test_only_curators_and_admins_see_the_counts_and_mistakes_are_named(db_url, session):
    from curation.publish import PublishError
    from curation.services.permissions import Actor, PermissionDenied
    from curation.services.publishing import publication_counts
    from db.models import Role

    seed_dataset(db_url)
    with pytest.raises(PermissionDenied, match="only a curator or admin publishes"):
        counts(session, ["approved"], actor=Actor("ann", Role.annotator))
    assert counts(session, ["approved"], actor=Actor("root", Role.admin))["total"] == 16
    with pytest.raises(PublishError, match="discarded records are never published"):
        counts(session, ["approved", "discarded"])
    with pytest.raises(PublishError, match="unknown status 'kept'; choose from draft, submitted"):
        counts(session, ["kept"])
    with pytest.raises(PublishError, match="unknown format 'parquet'; choose from messages, alpaca"):
        counts(session, ["approved"], ["parquet"])
    with pytest.raises(PublishError, match="no dataset named 'nope'"):
        publication_counts(session, dataset="nope", statuses=["approved"], actor=None)


def test_a_missing_job_is_not_found():
    from curation.services.publishing import cancel_training, refresh_job
    from db import repo
    from db.engine import open_database, session_for

    engine = open_database("sqlite://")
    with session_for(engine) as session:
        with pytest.raises(repo.NotFoundError, match="no training job 7"):
            refresh_job(session, 7)
        with pytest.raises(repo.NotFoundError, match="no training job 7"):
            cancel_training(session, 7)
    engine.dispose()


# ---- through the app, as a script drives it ------------------------------------------------------

@pytest.fixture(scope="module")
def studio_url(tmp_path_factory):
    pytest.importorskip("gradio_client")
    from tests.ui_server import running_studio, seed

    url = f"sqlite:///{tmp_path_factory.mktemp('publish-tab') / 'studio.db'}"
    seed(url)
    seed_dataset(url)
    with running_studio(url) as running:
        yield running.url


@pytest.fixture(scope="module")
def clients(studio_url):
    from gradio_client import Client

    from tests.ui_server import PASSWORDS

    return {name: Client(studio_url, auth=(name, PASSWORDS[name]), verbose=False, httpx_kwargs=SLOW_LOAD) for name in ("ann", "cura", "root")}


def test_the_curator_sees_how_many_records_would_go_out(clients):
    cura = clients["cura"]
    assert cura.predict("demo", ["approved"], ["messages"], api_name="/publish_counts") == (
        "**16** records would go out (approved 16): train **14**, test **2**; in 1 format (messages).")
    assert clients["root"].predict("demo", ["approved", "draft"], ["messages", "alpaca"],
                                   api_name="/publish_counts") == (
        "**18** records would go out (approved 16, draft 2): train **16**, test **2**;"
        " in 2 formats (messages, alpaca).")
    assert cura.predict("demo", ["rejected"], ["messages"], api_name="/publish_counts") == (
        "No records would go out (rejected 0).")
    assert cura.predict("demo", [], ["messages"], api_name="/publish_counts") == "Choose the statuses to publish."
    assert cura.predict(None, ["approved"], ["messages"], api_name="/publish_counts") == (
        "Choose a dataset to see how many of its records would go out.")


def test_an_annotator_gets_no_counts_and_no_history(clients):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Not allowed: this needs the curator role.") as refused:
        clients["ann"].predict("demo", ["approved"], ["messages"], api_name="/publish_counts")
    assert "16" not in str(refused.value)
    with pytest.raises(AppError) as refused:
        clients["ann"].predict(None, "", api_name="/publish_refresh")
    assert str(refused.value) == "Not allowed: this needs the curator role."


def test_the_curator_refreshes_the_history_and_a_missing_job_is_a_short_message(clients, caplog):
    from gradio_client.exceptions import AppError

    status, log_tail, _, history = clients["cura"].predict(None, "", api_name="/publish_refresh")
    assert (status, log_tail, history["data"]) == ("No training job yet.", "", [])
    assert history["headers"] == ["kind", "id", "repo", "revision", "status", "when"]
    with caplog.at_level(logging.INFO):
        with pytest.raises(AppError) as missing:
            clients["cura"].predict(1, "", api_name="/publish_refresh")
    assert str(missing.value) == "Not found: no training job 1."
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == [] and "Traceback" not in caplog.text


def test_publish_errors_arrive_as_plain_text(clients):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as refused:
        clients["cura"].predict("demo", ["approved"], ["messages"], "not-a-repo", True, "",
                                api_name="/publish_dataset")
    assert str(refused.value) == "Repo id 'not-a-repo' must look like namespace/name."
    with pytest.raises(AppError) as refused:
        clients["cura"].predict("no <such> & dataset", ["approved"], ["messages"], api_name="/publish_counts")
    assert str(refused.value) == "No dataset named 'no &lt;such&gt; &amp; dataset'."


def test_the_job_timer_starts_only_for_curators_and_admins(clients, tmp_path):
    import gradio as gr

    from curation.config import Settings
    from curation.ui.app import build_app
    from curation.ui.context import AppContext
    from db.engine import open_database
    from tests.ui_server import seed

    timers = [c for c in clients["cura"].config["components"] if c.get("type") == "timer"]
    # Nobody's page polls (the job timers of Publish, Generate, Runs and Diversity's cluster search, and the map's
    # poll while it is computed, the near-duplicate hint's while its index builds) before its load says who they are.
    assert len(timers) == 6 and all(timer["props"]["active"] is False for timer in timers)

    url = f"sqlite:///{tmp_path / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    ctx = AppContext(settings=Settings.from_env(database_url=url), engine=engine)
    build_app(ctx)
    [open_tab] = [fn for fn, *_ in ctx._loads if fn.__name__ == "open_tab" and fn.__module__.endswith("publish_tab")]
    assert open_tab("demo", ["approved"], ["messages"], gr.Request(username="ann")) == (
        gr.skip(), gr.skip(), gr.skip())
    choices, counted, started = open_tab(None, ["approved"], ["messages"], gr.Request(username="cura"))
    assert choices["choices"] == ["demo"]
    assert counted == "Choose a dataset to see how many of its records would go out."
    assert started.active is True
    engine.dispose()
