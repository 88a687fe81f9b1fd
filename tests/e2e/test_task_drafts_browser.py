"""An annotator drafts instances for their task with a model, in a real browser, and accepts two one by one."""
from __future__ import annotations

import json

import pytest

from tests.e2e.test_browser import ARTIFACTS, CHROMIUM, box, browser, sign_in  # noqa: F401 (skips without chromium)
from tests.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.browser
from playwright.sync_api import expect  # noqa: E402

DEFINITION = "Given the name of a country, answer with the name of its capital city."


@pytest.fixture(scope="module")
def model():
    with OpenAIServer() as running:
        yield running


@pytest.fixture(scope="module")
def studio(tmp_path_factory, model):
    from curation.services import tasks
    from curation.services.permissions import Actor
    from db.engine import open_database, session_for
    from db.models import Role
    from tests.ui_server import running_studio, seed

    url = f"sqlite:///{tmp_path_factory.mktemp('drafts') / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    with session_for(engine) as session:
        tasks.save_task(session, Actor("ann", Role.annotator), tasks.TaskForm(
            "demo", "task_country_capital", DEFINITION,
            examples=[tasks.ExampleForm("positive", "Japan", "Tokyo", "Tokyo is the capital of Japan.")],
            instances=[tasks.InstanceForm("France", ["Paris"])]))
        tasks.save_task(session, Actor("ann", Role.annotator), tasks.TaskForm(
            "demo", "task_capital_explained", DEFINITION,
            examples=[tasks.ExampleForm("negative", "Italy", "Milan")],
            instances=[tasks.InstanceForm("France", ["Paris"])]))
        session.commit()
    engine.dispose()
    with running_studio(url, llm_models=f"Loopback=openai:tiny@{model.url}") as running:
        yield running


def open_task(page, name: str) -> None:
    page.get_by_role("tab", name="Browse").click()
    page.locator("#browse-kind").get_by_label("Tasks").check()
    page.locator("#browse-table").get_by_text(name).filter(visible=True).first.click()
    expect(page.locator("#task-status")).to_contain_text("version 1", timeout=15_000)
    page.get_by_text("Draft with a model").click()


def test_an_annotator_drafts_instances_and_accepts_two_one_by_one(studio, model, browser):
    model.script(Reply(json.dumps([{"input": "Spain", "output": "Madrid"}, {"input": "France", "output": "Paris"},
                                   {"input": "Peru", "output": "Lima"}])))
    ARTIFACTS.mkdir(exist_ok=True)
    page, dialogs = sign_in(browser, studio, "ann")
    open_task(page, "task_country_capital")
    page.locator("#task-draft-instances").click()
    expect(page.locator("#task-draft-note")).to_contain_text(
        "2 proposals to review; 1 left out: its input repeats one the task already has.", timeout=15_000)
    expect(box(page, "task-proposal-0-input")).to_have_value("Spain")
    expect(box(page, "task-proposal-1-input")).to_have_value("Peru")
    expect(page.locator("#task-proposal-2").first).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "task-proposals.png"), full_page=True)

    page.locator("#task-proposal-0-accept").click()
    expect(page.locator("#task-status")).to_contain_text("version 2", timeout=15_000)
    expect(page.locator("#task-proposal-0").first).to_be_hidden()
    expect(page.locator("#task-instances")).to_contain_text("Madrid")
    box(page, "task-proposal-1-output").fill("Lima (the city)")
    page.locator("#task-proposal-1-accept").click()
    expect(page.locator("#task-status")).to_contain_text("version 3", timeout=15_000)
    expect(page.locator("#task-instances-title")).to_contain_text("Instances · 3", timeout=10_000)
    table = page.locator("#task-instances")
    for text in ("France", "Spain", "Madrid", "Peru", "Lima (the city)"):
        expect(table).to_contain_text(text)
    expect(page.locator("#task-proposal-1").first).to_be_hidden()
    assert dialogs == []

    from curation.services.task_instances import live_instances
    from db.engine import open_database, session_for

    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        rows = [(r.input, r.outputs, r.origin, r.machine_draft) for r in live_instances(session, 1)]
    engine.dispose()
    assert rows == [("France", ["Paris"], "human", None), ("Spain", ["Madrid"], "generated", "unreviewed"),
                    ("Peru", ["Lima (the city)"], "generated", "edited")]


def test_a_drafted_explanation_waits_for_unsaved_edits_then_is_saved_on_its_example(studio, model, browser):
    model.script(Reply("Explanation: Milan is a large city, but the capital of Italy is Rome."))
    page, dialogs = sign_in(browser, studio, "ann")
    open_task(page, "task_capital_explained")
    page.locator("#task-draft-explanation").click()
    proposed = box(page, "task-explanation-text")
    expect(proposed).to_have_value("Milan is a large city, but the capital of Italy is Rome.", timeout=15_000)
    proposal = page.locator("#task-explanation-proposal").first  # Gradio gives a group's id to two nested divs
    expect(proposal).to_contain_text("Proposed explanation of example 1 (Italy → Milan)")

    box(page, "task-emphasis").fill("Use the English name of the city.")
    page.locator("#task-explanation-accept").click()
    expect(page.get_by_text("Save the task first: accepting a proposal saves it")).to_be_visible(timeout=10_000)
    expect(page.locator("#task-status")).to_contain_text("version 1")

    page.keyboard.press("Control+s")
    expect(page.locator("#task-status")).to_contain_text("version 2", timeout=15_000)
    page.locator("#task-explanation-accept").click()
    expect(page.locator("#task-status")).to_contain_text("version 3", timeout=15_000)
    expect(page.locator("#task-examples")).to_contain_text("the capital of Italy is Rome")
    expect(proposal).to_be_hidden()
    expect(box(page, "task-emphasis")).to_have_value("Use the English name of the city.")
    assert dialogs == []
