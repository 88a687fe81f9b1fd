"""Drafting a task's instances and explanations with a model: proposals to review, accepted one by one into the
task with the model credited, and every failure leaving the task as it was. The model is a loopback server."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from curation.config import Settings
from curation.services import admin, history, task_drafting, tasks
from curation.services.annotation import InvalidInput
from curation.services.drafting import ModelFailed
from curation.services.errors import ConflictError, PermissionDenied
from curation.services.permissions import Actor
from curation.services.task_drafting import Proposal
from curation.services.task_instances import live_instances
from db import repo
from db.models import Revision, Role
from tests.openai_server import Failure, OpenAIServer, Reply
from tests.ui_server import SLOW_LOAD

ANN, BEN = Actor("ann", Role.annotator), Actor("ben", Role.annotator)
DEFINITION = "Given the name of a country, answer with the name of its capital city."
THREE = [{"input": "Spain", "output": "Madrid"}, {"input": "france ", "output": "Paris"},
         {"input": "Peru", "output": "Lima"}]


@pytest.fixture
def server():
    with OpenAIServer() as running:
        yield running


@pytest.fixture
def settings(server):
    return Settings(llm_models=f"Loopback=openai:tiny@{server.url}")


@pytest.fixture
def task(session):
    """ann's draft task: a definition, two examples (the negative one unexplained) and one instance, France."""
    admin.create_dataset(session, Actor("root", Role.admin), "demo")
    view = tasks.save_task(session, ANN, tasks.TaskForm(
        "demo", "task_country_capital", DEFINITION,
        examples=[tasks.ExampleForm("positive", "Japan", "Tokyo", "Tokyo is the capital of Japan."),
                  tasks.ExampleForm("negative", "Italy", "Milan")],
        instances=[tasks.InstanceForm("France", ["Paris"])]))
    session.commit()
    return view


def propose(session, settings, task, count=3):
    return task_drafting.propose_instances(session, ANN, settings, task_id=task.id, count=count)


def test_drafted_instances_become_proposals_without_the_repeat_and_the_task_is_unchanged(session, server, settings,
                                                                                        task):
    server.script(Reply("Here they are:\n```json\n" + json.dumps(THREE) + "\n```"))
    before = repo.table_counts(session)

    found = propose(session, settings, task)

    key = found.proposals[0].cache_key
    assert found.proposals == [Proposal(key, 0, "Spain", "Madrid"), Proposal(key, 2, "Peru", "Lima")]
    assert found.repeats == 1
    assert found.note() == "2 proposals to review; 1 left out: its input repeats one the task already has."
    assert repo.table_counts(session) == before
    assert tasks.open_task(session, ANN, task.id).version == task.version
    asked = server.requests[0]["messages"][1]["content"]
    assert asked == (f"Definition:\n{DEFINITION}\n\n"
                     "Positive examples:\n- Input: Japan\n  Output: Tokyo\n"
                     "  Explanation: Tokyo is the capital of Japan."
                     "\n\nNegative examples (do not answer like these):\n- Input: Italy\n  Output: Milan\n\n"
                     "Inputs the task already has (write different ones):\n- France\n\nWrite 3 new instances.")


def test_a_reply_that_is_not_a_list_says_so_and_asking_again_asks_the_model_again(session, server, settings, task):
    server.script(Reply("Sure! Spain: Madrid. Peru: Lima."), Reply(json.dumps(THREE[:1])))
    before = repo.table_counts(session)

    with pytest.raises(ModelFailed) as refused:
        propose(session, settings, task)

    assert str(refused.value) == "the model did not reply with a list of instances; try again or lower the temperature"
    assert repo.table_counts(session) == before
    assert [p.input for p in propose(session, settings, task).proposals] == ["Spain"]
    assert len(server.requests) == 2  # the unusable reply was not kept in the cache


def test_a_model_that_fails_leaves_the_task_as_it_was(session, server, settings, task):
    server.script(Failure(400, "this model does not exist"))
    before = repo.table_counts(session)

    with pytest.raises(ModelFailed) as refused:
        propose(session, settings, task)

    assert "tiny did not answer" in str(refused.value)  # the wording is services/drafting.py's
    assert str(refused.value).endswith("(400): this model does not exist")
    assert repo.table_counts(session) == before


def test_accepted_one_by_one_the_proposals_are_added_in_order_each_a_new_version_credited_to_the_model(
        session, server, settings, task):
    server.script(Reply(json.dumps(THREE)))
    spain, peru = propose(session, settings, task).proposals

    first = task_drafting.accept_instance(session, ANN, task_id=task.id, expected_version=task.version,
                                          cache_key=spain.cache_key, index=spain.index, input=spain.input,
                                          output=spain.output)
    second = task_drafting.accept_instance(session, ANN, task_id=task.id, expected_version=first.version,
                                           cache_key=peru.cache_key, index=peru.index, input=peru.input,
                                           output=peru.output)
    session.commit()

    assert (first.version, second.version) == (task.version + 1, task.version + 2)
    assert [(i.input, i.outputs) for i in second.form.instances] == [
        ("France", ["Paris"]), ("Spain", ["Madrid"]), ("Peru", ["Lima"])]
    records = live_instances(session, task.id)
    assert [(r.origin, r.machine_draft) for r in records] == [
        ("human", None), ("generated", "unreviewed"), ("generated", "unreviewed")]
    entry = records[2].provenance["outputs"][0]
    assert {k: entry[k] for k in ("by", "backend", "base_url", "model", "prompt", "prompt_version", "cache_key",
                                  "text", "state", "index")} == {
        "by": "model", "backend": "openai", "base_url": server.url, "model": "tiny", "prompt": "draft_instances",
        "prompt_version": 1, "cache_key": peru.cache_key, "text": "Lima", "state": "unreviewed", "index": 2}
    first_revision = session.execute(select(Revision).where(Revision.entity_type == "record",
                                                            Revision.entity_id == records[2].id)).scalars().one()
    assert first_revision.reason == "drafted by openai · tiny"
    assert first_revision.snapshot["origin"] == "generated"
    assert first_revision.snapshot["provenance"] == records[2].provenance
    assert [e.reason for e in history.item_history(session, "task", task.id)][:2] == [
        "edited: accepted an instance drafted by tiny", "edited: accepted an instance drafted by tiny"]
    with pytest.raises(ConflictError):  # the first accept's version is stale once the second is in
        task_drafting.accept_instance(session, ANN, task_id=task.id, expected_version=first.version,
                                      cache_key=spain.cache_key, index=spain.index, input="Chile", output="Santiago")


def test_a_proposal_edited_before_it_is_accepted_is_credited_to_the_model_marked_edited(session, server, settings,
                                                                                       task):
    server.script(Reply(json.dumps(THREE)))
    spain = propose(session, settings, task).proposals[0]

    view = task_drafting.accept_instance(session, ANN, task_id=task.id, expected_version=task.version,
                                         cache_key=spain.cache_key, index=spain.index, input="Spain",
                                         output="Madrid (the city)")

    record = live_instances(session, task.id)[-1]
    assert view.form.instances[-1].outputs == ["Madrid (the city)"]
    assert (record.origin, record.machine_draft) == ("generated", "edited")
    entry = record.provenance["outputs"][0]
    assert (entry["text"], entry["state"], entry["edited_by"]) == ("Madrid", "edited", "ann")
    assert history.item_history(session, "task", task.id)[0].reason == (
        "edited: edited and accepted an instance drafted by tiny")


def test_an_annotator_cannot_draft_for_or_accept_into_someone_elses_task(session, server, settings, task):
    server.script(Reply(json.dumps(THREE)))
    spain = propose(session, settings, task).proposals[0]
    before = repo.table_counts(session)

    with pytest.raises(PermissionDenied) as refused:
        task_drafting.accept_instance(session, BEN, task_id=task.id, expected_version=task.version,
                                      cache_key=spain.cache_key, index=spain.index, input="Spain", output="Madrid")
    with pytest.raises(PermissionDenied):
        task_drafting.propose_instances(session, BEN, settings, task_id=task.id, count=2)

    assert str(refused.value) == "this item belongs to ann; annotators edit only their own"
    assert repo.table_counts(session) == before
    assert len(server.requests) == 1  # ben's draft never reached the model


def test_a_proposal_the_cache_does_not_hold_or_a_repeated_input_is_refused(session, server, settings, task):
    server.script(Reply(json.dumps(THREE)))
    spain = propose(session, settings, task).proposals[0]
    before = repo.table_counts(session)

    def accept(**given):
        values = dict(cache_key=spain.cache_key, index=spain.index, input="Spain", output="Madrid") | given
        with pytest.raises(InvalidInput) as refused:
            task_drafting.accept_instance(session, ANN, task_id=task.id, expected_version=task.version, **values)
        return str(refused.value)

    assert accept(cache_key="0" * 64) == "the draft for the instance is no longer in the model cache: draft it again"
    assert accept(index=7) == "the model's reply holds no instance 7"
    assert accept(input=" FRANCE") == "the task already has an instance with this input"
    assert accept(output="  ") == "the instance needs an input and an output"
    assert repo.table_counts(session) == before


def test_a_drafted_explanation_is_proposed_then_accepted_as_the_examples_explanation(session, server, settings, task):
    server.script(Reply('Explanation: "Milan is a large city, but the capital of Italy is Rome."'))

    proposal = task_drafting.propose_explanation(session, ANN, settings, task_id=task.id, example_position=None)

    assert (proposal.index, proposal.input, proposal.output, proposal.text) == (
        1, "Italy", "Milan", "Milan is a large city, but the capital of Italy is Rome.")
    assert tasks.open_task(session, ANN, task.id).form.examples[1].explanation == ""
    view = task_drafting.accept_explanation(session, ANN, task_id=task.id, expected_version=task.version,
                                            example_position=1, text=proposal.text, cache_key=proposal.cache_key)
    assert view.version == task.version + 1
    assert view.form.examples[1].explanation == "Milan is a large city, but the capital of Italy is Rome."
    assert history.item_history(session, "task", task.id)[0].reason == (
        "edited: accepted an explanation of example 2 drafted by tiny")
    with pytest.raises(InvalidInput) as refused:
        task_drafting.propose_explanation(session, ANN, settings, task_id=task.id, example_position=0)
    assert str(refused.value) == "example 1 already has an explanation"
    assert len(server.requests) == 1


# Through the launched app, as a script drives it with gradio_client ------------------------------------------

def test_a_script_drafts_and_accepts_instances_one_by_one_and_an_explanation_through_the_app(tmp_path, server):
    from gradio_client import Client

    from db.engine import open_database, session_for
    from tests.ui_server import PASSWORDS, running_studio, seed

    url = f"sqlite:///{tmp_path / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    with session_for(engine) as session:
        view = tasks.save_task(session, ANN, tasks.TaskForm(
            "demo", "task_country_capital", DEFINITION, examples=[tasks.ExampleForm("negative", "Italy", "Milan")],
            instances=[tasks.InstanceForm("France", ["Paris"])]))
        session.commit()
    engine.dispose()
    server.script(Reply(json.dumps(THREE)), Reply("Milan is not the capital of Italy; Rome is."))
    with running_studio(url, llm_models=f"Loopback=openai:tiny@{server.url}") as studio:
        ann = Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)
        fresh, note = ann.predict(view.id, "Loopback", 3, api_name="/task_draft_instances")
        assert note == "2 proposals to review; 1 left out: its input repeats one the task already has."
        assert [(p["index"], p["input"], p["output"]) for p in fresh["proposals"]] == [
            (0, "Spain", "Madrid"), (2, "Peru", "Lima")]
        version = view.version
        for p in fresh["proposals"]:
            shown = ann.predict(view.id, version, p["cache_key"], p["index"], p["input"], p["output"],
                                api_name="/task_accept_instance")
            assert shown[1] == version + 1
            version = shown[1]
        assert [row[1:3] for row in shown[11]["data"]] == [["France", "Paris"], ["Spain", "Madrid"],
                                                           ["Peru", "Lima"]]
        ben = Client(studio.url, auth=("ben", PASSWORDS["ben"]), verbose=False, httpx_kwargs=SLOW_LOAD)
        with pytest.raises(Exception, match="annotators edit only their own"):
            ben.predict(view.id, version, fresh["proposals"][0]["cache_key"], 0, "Chile", "Santiago",
                        api_name="/task_accept_instance")

        proposal, shown_text = ann.predict(view.id, None, "Loopback", api_name="/task_draft_explanation")
        assert (proposal["example"], shown_text["value"]) == (1, "Milan is not the capital of Italy; Rome is.")
        shown = ann.predict(view.id, version, proposal, "Milan is not the capital of Italy: Rome is.",
                            api_name="/task_accept_explanation")
        assert shown[1] == version + 1
        assert shown[10]["data"] == [["negative", "Italy", "Milan", "Milan is not the capital of Italy: Rome is."]]
