"""`python -m curation draft`: a model drafts the outputs of many records against the loopback OpenAI server, on
SQLite and PostgreSQL; a stopped or killed run resumes from the cache, failures are short and change nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select

from curation.cli import main
from curation.drafting import Sampling, draft_output_request
from curation.llm import BackendIdentity, request_key
from db import repo
from db.engine import open_database, session_for
from db.llm_tables import LLMReply
from db.models import Record, Revision, Role, User
from tests.conftest import REPO
from tests.openai_server import Failure, OpenAIServer, Reply

SECRET = "sk-loopback-SECRET-d41c"
WRONG_KEY = "sk-wrong-ECHOED-93b7"  # the 401 echoes the key it was sent, as some providers do
MODEL = "loopback-model"


@pytest.fixture(autouse=True)
def llm_environment(monkeypatch):
    for name in ("LLM_MODEL", "LLM_MODELS", "LLM_BASE_URL", "LLM_BACKEND", "LLM_API_KEY_ENV", "LLM_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLM_API_KEY", SECRET)


@pytest.fixture
def server():
    with OpenAIServer(api_key=SECRET, models=[MODEL]) as running:
        yield running


def seed(url: str, instructions: list[str], outputs: dict[int, list[str]] | None = None,
         origin: str = "human") -> list[int]:
    """A dataset "demo" (English) with one draft record per instruction, a curator cura and an annotator ann."""
    from curation.records import RecordDraft

    engine = open_database(url)
    with session_for(engine) as session:
        dataset = repo.get_or_create_dataset(session, "demo", language="en")
        drafts = [RecordDraft(instruction=text, outputs=(outputs or {}).get(n, []))
                  for n, text in enumerate(instructions)]
        ids = repo.insert_records(session, dataset.id, drafts, by="ann", reason="test", origin=origin)
        session.add_all([User(name="cura", role=Role.curator, password_hash="-"),
                         User(name="ann", role=Role.annotator, password_hash="-")])
        session.commit()
    engine.dispose()
    return ids


def questions(count: int) -> list[str]:
    return [f"Question {n}: what is {n} squared?" for n in range(count)]


def draft(url: str, server_url: str, *extra: str, model: str = MODEL) -> int:
    return main(["--db", url, "draft", "--dataset", "demo", "--user", "cura", "--backend", "openai",
                 "--base-url", server_url, "--model-name", model, *extra])


def database_state(url: str) -> tuple:
    """Rows per table, every record as stored, and the cached replies: what a refused run must leave alone."""
    engine = open_database(url)
    with session_for(engine) as session:
        records = session.execute(select(Record.id, Record.version, Record.outputs, Record.machine_draft,
                                         Record.provenance, Record.category).order_by(Record.id)).all()
        state = (repo.table_counts(session), [tuple(r) for r in records],
                 session.execute(select(func.count()).select_from(LLMReply)).scalar_one())
    engine.dispose()
    return state


def stored_replies(url: str) -> int:
    return database_state(url)[2]


def everything_stored(url: str) -> str:
    """Every record, revision and cached reply as text (no API key may be in it)."""
    engine = open_database(url)
    with session_for(engine) as session:
        rows = [session.execute(select(model.__table__)).all() for model in (Record, Revision, LLMReply)]
    engine.dispose()
    return json.dumps([[list(map(str, row)) for row in table] for table in rows])


def assert_each_record_has_one_unreviewed_draft(url: str, server_url: str, instructions: list[str]) -> None:
    identity = BackendIdentity("openai", server_url, MODEL)
    engine = open_database(url)
    with session_for(engine) as session:
        records = session.execute(select(Record).order_by(Record.id)).scalars().all()
        assert [r.outputs for r in records] == [[f"A draft answer to: {text}"] for text in instructions]
        assert {r.machine_draft for r in records} == {"unreviewed"}
        for record, text in zip(records, instructions):
            [entry] = record.provenance["outputs"]
            assert (entry["by"], entry["backend"], entry["model"], entry["state"]) == ("model", "openai", MODEL,
                                                                                       "unreviewed")
            assert entry["cache_key"] == request_key(identity, draft_output_request(text, sampling=Sampling()))
    engine.dispose()


# (a) A restart in the middle ---------------------------------------------------------------------------------

def test_a_stopped_run_of_200_drafts_resumes_with_the_finished_ones_from_the_cache(db_url, server, capsys):
    """Stopped after about 80 replies, then run again: those come from the cache, the rest are asked once."""
    from curation.config import Settings
    from curation.services.bulk_drafting import draft_outputs
    from curation.services.permissions import Actor

    instructions = questions(200)
    seed(db_url, instructions)
    server.latency = 0.01
    settings = Settings.from_env(database_url=db_url, llm_models=f"Loopback=openai:{MODEL}@{server.url}",
                                 llm_concurrency=4)
    stop = threading.Event()
    engine = open_database(db_url)
    with session_for(engine) as session:
        first = draft_outputs(session, Actor("cura", Role.curator), settings, dataset="demo", model_label="Loopback",
                              stop=stop, progress=lambda done, total: stop.set() if done >= 80 else None)
    engine.dispose()
    stored = stored_replies(db_url)
    assert first.stopped and 80 <= first.written < 200
    assert (first.selected, first.from_cache, first.requested, first.written) == (200, 0, stored, stored)

    assert draft(db_url, server.url, "--concurrency", "4") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"drafted {200 - stored} of 200 records of demo with {MODEL} (openai): {stored} from the cache, "
                      f"{200 - stored} requested, {stored} already there, 0 rejected, 0 failed")
    assert len(server.requests) == 200
    # (a request the kill cut off before its body was sent arrives empty: it asked nothing)
    assert len({r["messages"][-1]["content"] for r in server.requests if r.get("messages")}) == 200
    assert_each_record_has_one_unreviewed_draft(db_url, server.url, instructions)
    assert SECRET not in everything_stored(db_url)


def test_a_draft_run_killed_mid_way_resumes_with_only_the_rest(sqlite_url, server):
    """SIGKILL while drafting: every reply committed before it counts as cached on the re-run, no record is lost."""
    instructions = questions(200)
    seed(sqlite_url, instructions)
    server.latency = 0.1  # 200 replies take 5 s at concurrency 4: time enough to kill it half-way
    command = [sys.executable, "-m", "curation", "--db", sqlite_url, "draft", "--dataset", "demo", "--user", "cura",
               "--backend", "openai", "--base-url", server.url, "--model-name", MODEL, "--concurrency", "4"]
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "LLM_API_KEY": SECRET},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    engine = open_database(sqlite_url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            with session_for(engine) as session:
                if session.execute(select(func.count()).select_from(LLMReply)).scalar_one() >= 80:
                    break
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    with session_for(engine) as session:
        stored = session.execute(select(func.count()).select_from(LLMReply)).scalar_one()
        written = session.execute(select(func.count()).select_from(Record).where(Record.version == 2)).scalar_one()
    engine.dispose()
    assert 80 <= stored < 200 and written in (stored - 1, stored)  # a kill between the two commits loses no reply

    from curation.config import Settings
    from curation.llm.choices import ModelChoice
    from curation.services.bulk_drafting import draft_outputs
    from curation.services.permissions import Actor

    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        again = draft_outputs(session, Actor("cura", Role.curator), Settings.from_env(database_url=sqlite_url),
                              dataset="demo", choice=ModelChoice("Loopback", "openai", MODEL, server.url),
                              concurrency=4)
    engine.dispose()
    assert (again.from_cache, again.requested, again.written, again.already_there) == (
        stored, 200 - stored, 200 - written, written)
    # (a request the kill cut off before its body was sent arrives empty: it asked nothing)
    assert len({r["messages"][-1]["content"] for r in server.requests if r.get("messages")}) == 200
    assert 200 <= len(server.requests) <= 200 + 4  # only the requests in flight at the kill were asked twice
    assert_each_record_has_one_unreviewed_draft(sqlite_url, server.url, instructions)


def test_ctrl_c_lets_the_requests_in_flight_finish_and_says_how_to_resume(sqlite_url, server):
    seed(sqlite_url, questions(100))
    server.latency = 0.05
    command = [sys.executable, "-m", "curation", "--db", sqlite_url, "draft", "--dataset", "demo", "--user", "cura",
               "--backend", "openai", "--base-url", server.url, "--model-name", MODEL, "--concurrency", "2"]
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "LLM_API_KEY": SECRET}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(server.requests) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    stored = stored_replies(sqlite_url)
    assert 10 <= stored < 100 and stored == len(server.requests)  # what was in flight was answered and kept
    lines = out.splitlines()
    assert lines[0] == (f"stopped: drafted {stored} of 100 records of demo with {MODEL} (openai): 0 from the cache, "
                        f"{stored} requested, 0 rejected, 0 failed")
    assert lines[-1] == "run the same command again to draft the rest (the replies so far come from the cache)"
    assert "stopping after the requests in flight (Ctrl-C again to stop now)" in err


# (b) A model that cannot answer ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["endpoint down", "401", "404 model"])
def test_a_fatal_model_failure_exits_2_with_a_short_message_and_changes_nothing(case, db_url, server, capsys,
                                                                                 monkeypatch):
    from tests.test_llm_backends import free_port

    seed(db_url, questions(30))
    before = database_state(db_url)
    url, model = server.url, MODEL
    if case == "endpoint down":
        url = f"http://127.0.0.1:{free_port()}/v1"
    elif case == "401":
        monkeypatch.setenv("LLM_API_KEY", WRONG_KEY)
    else:
        model = "no-such-model"

    assert draft(db_url, url, "--concurrency", "4", model=model) == 2
    printed = capsys.readouterr()
    expected = {"endpoint down": f"cannot reach {url.split('/')[2]}: is the server running and the URL right?",
                "401": "the endpoint refused the API key in LLM_API_KEY (401)",
                "404 model": f"model 'no-such-model' not found at {url} (404)"}[case]
    assert printed.err.splitlines()[-1] == f"error: {model} (openai) did not answer: {expected}"
    assert printed.out == ""
    assert WRONG_KEY not in printed.err and SECRET not in printed.err
    assert database_state(db_url) == before
    assert len(server.requests) <= 4  # the run stopped at the first refusal
    if case == "401":
        assert server.authorizations and set(server.authorizations) == {f"Bearer {WRONG_KEY}"}


# (c) Replies that cannot be used -----------------------------------------------------------------------------

def test_unusable_replies_and_conflicts_are_reported_per_record_and_the_rest_written(db_url, server, capsys):
    instructions = questions(10)
    ids = seed(db_url, instructions, outputs={8: ["An earlier answer."], 9: [f"A draft answer to: {instructions[9]}"]},
               origin="imported")
    engine = open_database(db_url)

    def meanwhile_ben_saves(record_id: int) -> Reply:
        with session_for(engine) as elsewhere:
            repo.update_record(elsewhere, record_id, expected_version=1, changes={"category": "maths"}, by="ben")
            elsewhere.commit()
        return Reply("Thirty-six.")

    scripted = {1: lambda: Reply("One squared is", finish_reason="length"), 2: lambda: Reply(""),
                3: lambda: Reply("   "), 4: lambda: Reply("Четыре в квадрате равно шестнадцати."),
                5: lambda: Failure(400, "prompt is too long: 9000 tokens > 4096"),
                6: lambda: meanwhile_ben_saves(ids[6])}

    def answer(body: dict):
        asked = body["messages"][-1]["content"]
        number = instructions.index(asked)
        return scripted[number]() if number in scripted else Reply(f"A draft answer to: {asked}")

    server.replies = answer
    assert draft(db_url, server.url) == 1  # some records failed
    out = capsys.readouterr().out.splitlines()
    engine.dispose()
    assert out == [
        f"drafted 3 of 10 records of demo with {MODEL} (openai): 0 from the cache, 10 requested, 1 already there, "
        "4 rejected (2 empty reply, 1 cut off at the token limit, 1 wrong language), 2 failed",
        out[1],
        f"  record {ids[1]}: rejected, cut off at the token limit: the reply stopped at 512 tokens",
        f"  record {ids[2]}: rejected, empty reply: the model returned no text",
        f"  record {ids[3]}: rejected, empty reply: the model returned no text",
        f"  record {ids[4]}: rejected, wrong language: the reply is written in cyrillic script, "
        "not in the dataset's language (en)",
        f"  record {ids[5]}: failed, request refused (400): prompt is too long: 9000 tokens > 4096",
        f"  record {ids[6]}: failed, record {ids[6]} was changed by ben (version 2, you edited version 1); "
        "reload to see their change",
    ]
    assert out[1].endswith(" s") and "prompt and" in out[1]

    _, records, cached = database_state(db_url)
    by_id = {r[0]: r for r in records}
    assert [by_id[i][2] for i in ids] == [
        [f"A draft answer to: {instructions[0]}"], [], [], [], [], [], [], [f"A draft answer to: {instructions[7]}"],
        ["An earlier answer.", f"A draft answer to: {instructions[8]}"], [f"A draft answer to: {instructions[9]}"]]
    assert [by_id[i][1] for i in ids] == [2, 1, 1, 1, 1, 1, 2, 2, 2, 1]  # record 6 is ben's version 2, untouched
    assert by_id[ids[6]][5] == "maths"
    assert [by_id[i][3] for i in ids] == ["unreviewed", None, None, None, None, None, None, "unreviewed",
                                          "unreviewed", None]
    earlier, drafted = by_id[ids[8]][4]["outputs"]
    assert earlier == {"by": "import"} and (drafted["by"], drafted["model"]) == ("model", MODEL)
    assert cached == 8  # every reply that came back, usable or not; not the empty one nor the refusal


# (d) Who may draft -------------------------------------------------------------------------------------------

def test_an_annotator_may_not_bulk_draft(db_url, server, capsys):
    seed(db_url, questions(5))
    before = database_state(db_url)
    assert main(["--db", db_url, "draft", "--dataset", "demo", "--user", "ann", "--backend", "openai",
                 "--base-url", server.url, "--model-name", MODEL]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "error: only a curator or admin drafts outputs in bulk"
    assert server.requests == [] and database_state(db_url) == before


@pytest.mark.parametrize("arguments, message", [
    (["--user", "nobody"], "there is no user named 'nobody' (add one with `python -m curation users add`)"),
    (["--dataset", "missing"], "there is no dataset named 'missing'"),
    (["--model", "Fast"], "choose a model by --model LABEL or by --backend with --model-name, not both"),
    (["--concurrency", "0"], "--concurrency is at least 1, not 0"),
    (["--temperature", "3"], "--temperature is between 0 and 2, not 3"),
])
def test_bad_input_is_one_line_and_exit_2(arguments, message, sqlite_url, server, capsys):
    seed(sqlite_url, questions(3))
    base = {"--dataset": "demo", "--user": "cura"}
    base.update(dict(zip(arguments[::2], arguments[1::2])))
    argv = ["--db", sqlite_url, "draft", *[x for pair in base.items() for x in pair], "--backend", "openai",
            "--base-url", server.url, "--model-name", MODEL]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {message}"
    assert server.requests == []


def test_without_backend_or_configured_model_it_says_how_to_configure_one(sqlite_url, capsys):
    seed(sqlite_url, questions(1))
    assert main(["--db", sqlite_url, "draft", "--dataset", "demo", "--user", "cura"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: no model is configured: an admin sets LLM_MODEL (and LLM_BASE_URL) or LLM_MODELS")
