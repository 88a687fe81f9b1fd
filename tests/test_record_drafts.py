"""The record editor's model: drafts streamed into the output, their provenance through edits and approval,
and every way a model can fail, through the services and through gradio_client against a launched app."""
from __future__ import annotations

import json
import time

import pytest
from gradio_client import Client
from sqlmodel import select

from curation.config import Settings
from curation.drafting import DRAFT_OUTPUT, draft_output_request
from curation.services import annotation, drafting
from curation.services.annotation import RecordForm
from curation.services.permissions import Actor
from db import repo
from db.llm_tables import LLMReply
from db.models import Record, Role
from tests.openai_server import CutOff, Failure, Garbage, OpenAIServer, Reply
from tests.ui_server import PASSWORDS, free_port, running_studio, seed, SLOW_LOAD

SECRET = "sk-editor-SECRET-42e1"
ANN, CURA = Actor("ann", Role.annotator), Actor("cura", Role.curator)


def settings_for(url: str, **more) -> Settings:
    return Settings(llm_models=f"Loopback=openai:loopback-model@{url}", **more)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", SECRET)
    with OpenAIServer(api_key=SECRET, models=["loopback-model"]) as running:
        yield running


@pytest.fixture
def demo(session):
    repo.get_or_create_dataset(session, "demo")
    session.commit()
    return session


def drafted(session, server, actor=ANN, instruction="Name the capital of France.", reply="Paris is the capital."):
    """A whole streamed draft for `instruction`, as the editor gets it."""
    server.script(Reply(reply))
    _, backend = drafting.backend_of(settings_for(server.url), "Loopback")
    stream = drafting.stream_draft(session, actor, backend, draft_output_request(instruction), DRAFT_OUTPUT)
    texts = list(stream)
    return stream.result, texts


# Provenance through the services -------------------------------------------------------------------------------

def test_an_untouched_draft_is_saved_as_machine_written_and_unreviewed(demo, server):
    session = demo
    result, texts = drafted(session, server, reply="Paris is the capital of France.")
    assert texts[-1] == "Paris is the capital of France." and len(texts) > 2  # it arrived word by word

    view = annotation.save_record(session, ANN, RecordForm("demo", "Name the capital of France.",
                                                           outputs=["Paris is the capital of France."]),
                                  drafts={"output": result.key})
    session.commit()

    record = session.get(Record, view.id)
    entry = record.provenance["outputs"][0]
    assert (record.origin, record.machine_draft, record.created_by) == ("human", "unreviewed", "ann")
    assert {k: entry[k] for k in ("by", "backend", "model", "prompt", "prompt_version", "cache_key", "state")} == {
        "by": "model", "backend": "openai", "model": "loopback-model", "prompt": "draft_output",
        "prompt_version": 1, "cache_key": result.key, "state": "unreviewed"}
    assert entry["parameters"] == {"temperature": 0.7, "max_tokens": 512, "seed": 0}
    [revision] = repo.history(session, "record", view.id)
    assert revision.reason == "created with a draft by openai · loopback-model"


def test_an_edited_draft_keeps_the_models_words_then_the_persons_edit_in_the_history(demo, server):
    session = demo
    result, _ = drafted(session, server, reply="Paris.")
    view = annotation.save_record(session, ANN, RecordForm("demo", "Name the capital of France.",
                                                           outputs=["The capital of France is Paris."]),
                                  drafts={"output": result.key})
    session.commit()

    first, second = repo.history(session, "record", view.id)
    assert (first.snapshot["outputs"], first.changed_by, first.reason) == (
        ["Paris."], "ann", "created with a draft by openai · loopback-model")
    assert (second.snapshot["outputs"], second.changed_by, second.reason) == (
        ["The capital of France is Paris."], "ann", "edited the model's draft")
    record = session.get(Record, view.id)
    entry = record.provenance["outputs"][0]
    assert (record.machine_draft, entry["state"], entry["edited_by"], entry["text"]) == (
        "edited", "edited", "ann", "Paris.")
    assert view.version == 2


def test_approving_an_untouched_draft_marks_it_approved_and_a_persons_output_stays_theirs(demo, server):
    session = demo
    result, _ = drafted(session, server, reply="Paris.")
    view = annotation.save_record(session, ANN, RecordForm("demo", "Name the capital of France.", outputs=["Paris."]),
                                  drafts={"output": result.key})
    view = annotation.change_record(session, ANN, view.id, "submit", expected_version=view.version)
    view = annotation.change_record(session, CURA, view.id, "approve", expected_version=view.version)
    session.commit()
    record = session.get(Record, view.id)
    assert (record.machine_draft, record.provenance["outputs"][0]["approved_by"]) == ("approved", "cura")

    human = annotation.save_record(session, ANN, RecordForm("demo", "Name the capital of Spain.", outputs=["Madrid"]))
    human = annotation.save_record(session, ANN, RecordForm("demo", "Name the capital of Spain.",
                                                            outputs=["Madrid", "It is Madrid."]),
                                   record_id=human.id, expected_version=human.version)
    record = session.get(Record, human.id)
    assert record.machine_draft is None
    assert record.provenance["outputs"] == [{"by": "person", "name": "ann"}, {"by": "person", "name": "ann"}]


def test_a_draft_key_the_cache_does_not_hold_is_refused_and_nothing_is_saved(demo):
    session = demo
    before = repo.table_counts(session)
    with pytest.raises(annotation.InvalidInput, match="the draft for the output is no longer in the model cache"):
        annotation.save_record(session, ANN, RecordForm("demo", "Name a color.", outputs=["Red"]),
                               drafts={"output": "0" * 64})
    session.rollback()
    assert repo.table_counts(session) == before


def test_the_same_draft_again_comes_from_the_cache_without_a_request(demo, server):
    session = demo
    first, _ = drafted(session, server, reply="Paris.")
    again, texts = drafted(session, server, reply="something else")
    assert (again.cached, again.text, texts, again.key) == (True, "Paris.", ["Paris."], first.key)
    assert len(server.requests) == 1


def test_a_cancelled_draft_closes_the_connection_and_stores_nothing(demo, server):
    session = demo
    server.script(Reply(" ".join(["word"] * 300), chunk_delay=0.02))
    _, backend = drafting.backend_of(settings_for(server.url), "Loopback")
    stream = drafting.stream_draft(session, ANN, backend, draft_output_request("Write a long story."), DRAFT_OUTPUT)
    pieces = iter(stream)
    assert next(pieces) == "word "
    stream.close()
    deadline = time.monotonic() + 3
    while server.dropped_by_client == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.dropped_by_client == 1 and stream.result is None
    assert session.exec(select(LLMReply)).all() == []


def test_a_reply_in_another_script_than_the_datasets_language_is_flagged(demo, server):
    session = demo
    repo.get_dataset(session, "demo").language = "en"
    session.commit()
    server.script(Reply("Столица Франции — Париж."))
    _, backend = drafting.backend_of(settings_for(server.url), "Loopback")
    stream = drafting.stream_draft(session, ANN, backend, draft_output_request("Name the capital of France."),
                                   DRAFT_OUTPUT, language=drafting.dataset_language(session, "demo"))
    list(stream)
    assert stream.result.warnings == ["the reply is written in cyrillic script, not in the dataset's language (en)"]


# Through the launched app ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_server():
    with OpenAIServer(api_key=SECRET, models=["loopback-model"]) as running:
        yield running


@pytest.fixture(scope="module")
def slow_server():
    with OpenAIServer(latency=3.0) as running:
        yield running


@pytest.fixture(scope="module")
def studio(tmp_path_factory, app_server, slow_server):
    import os

    os.environ["LLM_API_KEY"] = SECRET
    url = f"sqlite:///{tmp_path_factory.mktemp('drafts') / 'studio.db'}"
    seed(url)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    models = "; ".join([f"Loopback=openai:loopback-model@{app_server.url} $1/$2",
                        f"Down=openai:loopback-model@{dead}",
                        f"Wrong URL=openai:loopback-model@{app_server.url.removesuffix('/v1')}/api",
                        f"Unknown model=openai:no-such-model@{app_server.url}",
                        f"Wrong key=openai:loopback-model@{app_server.url} key=WRONG_KEY_FOR_TESTS",
                        f"Slow=openai:loopback-model@{slow_server.url}"])
    os.environ["WRONG_KEY_FOR_TESTS"] = "sk-wrong-" + SECRET
    try:
        with running_studio(url, llm_models=models, llm_timeout=1.0) as running:
            yield running
    finally:
        os.environ.pop("WRONG_KEY_FOR_TESTS", None)


@pytest.fixture(scope="module")
def ann(studio):
    return Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)


def draft_output(client, model="Loopback", instruction="Name the capital of France.", output=""):
    job = client.submit(model, 0.7, 512, "demo", instruction, "", "", output, "{}", api_name="/record_draft_output")
    final = job.result()
    return job.outputs(), final


def database_rows(studio):
    from db.engine import open_database, session_for

    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        counts = repo.table_counts(session)
        counts["llm_reply"] = len(session.exec(select(LLMReply)).all())
    engine.dispose()
    return counts


def test_draft_output_streams_then_saves_with_the_models_provenance(studio, ann, app_server):
    # pieces further apart than the page's updates (SHOW_EVERY_SECONDS): each reaches the page
    app_server.script(Reply("Paris is the capital of France, on the Seine.", chunk_delay=0.3))
    steps, (text, held, mark, status, usage) = draft_output(ann)
    assert text == "Paris is the capital of France, on the Seine."
    growing = [step[0] for step in steps]
    assert len(set(growing)) > 2 and all(text.startswith(part) for part in growing)  # it streamed in
    assert "Machine-drafted by loopback-model" in mark
    assert status == "Drafted by Loopback"
    key = json.loads(held)["output"]
    assert usage.startswith("This session: 1 draft · ") and "$0.0000" in usage

    saved = ann.predict(None, None, "demo", "", "", "Name the capital of France.", "", text + " It is large.", "",
                        held, api_name="/record_save")
    record_id = saved[0]
    from db.engine import open_database, session_for

    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        record = session.get(Record, record_id)
        assert (record.machine_draft, record.provenance["outputs"][0]["cache_key"]) == ("edited", key)
        assert [r.reason for r in repo.history(session, "record", record_id)] == [
            "created with a draft by openai · loopback-model", "edited the model's draft"]
    engine.dispose()


FAILURES = {
    "endpoint down": ("Down", None, "The model loopback-model did not answer: cannot reach 127.0.0.1:"),
    "wrong URL": ("Wrong URL", None, "The model loopback-model did not answer: no chat-completions API at"),
    "401": ("Wrong key", None, "The model loopback-model did not answer: the endpoint refused the API key in WRONG_KEY_FOR_TESTS (401)"),
    "404 model": ("Unknown model", None, "The model no-such-model did not answer: model 'no-such-model' not found"),
    "429 storm": ("Loopback", [Failure(429, headers={"Retry-After": "0"})] * 3,
                  "The model loopback-model did not answer: rate limited by the endpoint (429)"),
    "500s": ("Loopback", [Failure(500)] * 3, "The model loopback-model did not answer: server error (500)"),
    "timeout": ("Slow", None, "The model loopback-model did not answer: no reply from 127.0.0.1:"),
    "not JSON": ("Loopback", [Garbage()], "The model loopback-model did not answer: the reply is not a stream of JSON events"),
    "cut off": ("Loopback", [CutOff("one two three four five six", after=2)],
                "The model loopback-model did not answer: the stream was cut off before the reply finished"),
    "empty": ("Loopback", [Reply("")], "The model loopback-model did not answer: the model returned an empty reply"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_each_failure_is_a_short_message_and_the_database_is_unchanged(case, studio, ann, app_server):
    from gradio_client.exceptions import AppError

    model, items, message = FAILURES[case]
    app_server.reset()
    if items:
        app_server.script(*items)
    before = database_rows(studio)
    with pytest.raises(AppError) as raised:
        draft_output(ann, model=model, instruction=f"Explain case {case}.")
    assert message in str(raised.value)
    assert SECRET not in str(raised.value) and "Traceback" not in str(raised.value)
    assert database_rows(studio) == before


def test_a_reply_cut_at_the_token_limit_is_shown_with_a_warning(ann, app_server):
    app_server.script(Reply("The three primary colors are", finish_reason="length"))
    _, (text, _, _, status, _) = draft_output(ann, instruction="What are the three primary colors?")
    assert text == "The three primary colors are"
    assert "⚠ the reply stopped at the token limit (512): it may be cut short" in status


def test_the_test_button_says_in_words_whether_the_endpoint_answers(ann, app_server):
    from gradio_client.exceptions import AppError

    app_server.script(Reply("ready"))
    assert ann.predict("Loopback", api_name="/record_test_model").startswith(
        "✓ Loopback answers: loopback-model replied in ")
    with pytest.raises(AppError, match="Down does not answer: cannot reach 127.0.0.1"):
        ann.predict("Down", api_name="/record_test_model")
    # The page names a configured model; an address of the caller's choosing is refused before any request.
    with pytest.raises(AppError, match="http://evil.example/v1 is not in the list of choices"):
        ann.predict("http://evil.example/v1", api_name="/record_test_model")


def test_suggest_an_instruction_shows_the_differences(ann, app_server):
    app_server.script(Reply('"List three tips for staying healthy."'))
    view, status, usage = ann.predict("Loopback", 0.7, 512, "tips healthy", "", api_name="/record_suggest_instruction")
    assert ('<div class="rev-diff"><ins>List three </ins>tips <ins>for staying </ins>healthy<ins>.</ins></div>'
            in view)  # the rewrite, without the quotes the model put round it, against the rough original
    assert view.startswith('<div class="suggestion"><div class="rev-label">Suggested by Loopback</div>')


def test_draft_another_adds_an_alternative_output_credited_to_the_model(studio, ann, app_server):
    app_server.script(Reply("Rome is the capital of Italy."))
    job = ann.submit("Loopback", 0.7, 512, "demo", "Name the capital of Italy.", "", "", "Rome.", "", "{}",
                     api_name="/record_draft_another")
    more, held, mark, status, _ = job.result()
    assert more == "Rome is the capital of Italy." and list(json.loads(held)) == ["output 2"]
    seed_used = app_server.requests[-1]["seed"]

    app_server.script(Reply("Italy's capital is Rome."))
    job = ann.submit("Loopback", 0.7, 512, "demo", "Name the capital of Italy.", "", "", "Rome.", more, held,
                     api_name="/record_draft_another")
    more, held, _, _, _ = job.result()
    assert more == "Rome is the capital of Italy.\n---\nItaly's capital is Rome."
    assert list(json.loads(held)) == ["output 2", "output 3"]
    assert app_server.requests[-1]["seed"] != seed_used  # another seed, so another answer (and cache key)

    saved = ann.predict(None, None, "demo", "", "", "Name the capital of Italy.", "", "Rome.", more, held,
                        api_name="/record_save")
    from db.engine import open_database, session_for

    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        record = session.get(Record, saved[0])
        by = [entry["by"] for entry in record.provenance["outputs"]]
        states = [entry.get("state") for entry in record.provenance["outputs"]]
        assert (record.outputs, by, states, record.machine_draft) == (
            ["Rome.", "Rome is the capital of Italy.", "Italy's capital is Rome."], ["person", "model", "model"],
            [None, "unreviewed", "unreviewed"], "unreviewed")
    engine.dispose()



def test_draft_another_needs_a_first_output(ann, app_server):
    from gradio_client.exceptions import AppError

    requests = len(app_server.requests)
    with pytest.raises(AppError, match="Write or draft the output first: Draft another adds an alternative to it"):
        ann.submit("Loopback", 0.7, 512, "demo", "Name a color.", "", "", "", "", "{}",
                   api_name="/record_draft_another").result()
    assert len(app_server.requests) == requests


def test_a_curator_reviewing_sees_which_outputs_no_person_has_read(demo, server):
    from curation.ui.review_tab import item_html

    session = demo
    result, _ = drafted(session, server, reply="Paris.")
    view = annotation.save_record(session, ANN, RecordForm("demo", "Name the capital of France.",
                                                           outputs=["Paris.", "It is Paris."]),
                                  drafts={"output": result.key})
    page = item_html("record", annotation.open_record(session, CURA, view.id))
    assert "Output · 🤖 machine-drafted by loopback-model, unreviewed" in page
    assert '<div class="review-label">Other output 1</div>' in page  # the person's alternative, unmarked


def test_a_fast_stream_reaches_the_page_a_few_times_a_second_and_whole_at_the_end(ann, app_server):
    """Last in the module: it adds a draft to ann's session, which the tests above count."""
    from curation.ui.record_drafts import SHOW_EVERY_SECONDS

    words = " ".join(f"w{i}" for i in range(300))
    app_server.script(Reply(words, chunk_delay=0.005))  # 300 pieces in about 1.5 s
    steps, (text, *_) = draft_output(ann, instruction="Count from zero, one word a number.")
    assert text == words
    shown = [step[0] for step in steps[:-1]]
    assert 1 <= len(shown) <= 300 * 0.005 / SHOW_EVERY_SECONDS + 3  # not once per piece
    assert all(words.startswith(part) for part in shown)
