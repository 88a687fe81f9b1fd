"""An annotator writes with a model beside them, in a real browser: the draft streams in, marked machine-drafted;
they edit and save; the provenance and the history show the model and then their edit."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.e2e.test_browser import box, browser, sign_in  # noqa: E402,F401 (the browser fixture)
from tests.openai_server import OpenAIServer, Reply  # noqa: E402
from tests.ui_server import free_port, running_studio, seed  # noqa: E402

DRAFT = ("Paris is the capital of France. It lies on the Seine, in the north of the country, and is its largest "
         "city.")


@pytest.fixture(scope="module")
def model_server():
    with OpenAIServer() as running:
        yield running


@pytest.fixture(scope="module")
def studio(tmp_path_factory, model_server):
    url = f"sqlite:///{tmp_path_factory.mktemp('drafts-browser') / 'studio.db'}"
    seed(url)
    models = (f"Nothing here=openai:gone@http://127.0.0.1:{free_port()}/v1; "
              f"Loopback=openai:loopback-model@{model_server.url}")
    with running_studio(url, llm_models=models) as running:
        yield running


def test_draft_output_streams_in_is_marked_then_edited_saved_and_credited(studio, browser, model_server):
    page, dialogs = sign_in(browser, studio, "ann")
    page.get_by_role("tab", name="Record").click()
    box(page, "record-instruction").fill("Name the capital of France and say one thing about it.")

    page.locator("#record-model input").click()
    page.get_by_role("option", name="Loopback").click()
    page.locator("#record-test-model").click()
    expect(page.locator("#record-model-status")).to_contain_text("Loopback answers: loopback-model replied in",
                                                                 timeout=15_000)

    model_server.script(Reply(DRAFT, chunk_delay=0.15))
    page.locator("#record-draft-output").click()
    output = box(page, "record-output")
    # Part of the answer shows before the whole of it: the text streams in.
    page.wait_for_function(
        "() => { const v = document.querySelector('#record-output textarea').value;"
        " return v.length > 0 && v.length < %d; }" % len(DRAFT), timeout=15_000)
    expect(output).to_have_value(DRAFT, timeout=20_000)
    expect(page.locator("#record-output-mark")).to_contain_text("Machine-drafted by loopback-model")
    expect(page.locator("#record-usage")).to_contain_text("This session: 1 draft")

    output.fill(DRAFT + " About two million people live there.")
    page.locator("#record-save").click()
    expect(page.locator("#record-status")).to_contain_text("version 2", timeout=15_000)

    provenance = page.locator("#record-provenance")
    expect(provenance).to_contain_text("Written in the studio by ann")
    expect(provenance).to_contain_text("Output: machine-drafted, then edited by ann · openai · loopback-model")
    history = page.locator("#record-history")
    expect(history.locator(".rev").nth(1)).to_contain_text("created with a draft by openai · loopback-model")
    expect(history.locator(".rev").nth(0)).to_contain_text("edited the model's draft")
    expect(history.locator(".rev").nth(0).locator("ins").first).to_contain_text("About two million people live there.")
    expect(history.locator(".rev").nth(0)).to_contain_text("Written by")  # and who wrote it changed
    # Saved and reviewed by a person now: no longer marked as an unread draft.
    expect(page.locator("#record-output-mark")).to_have_text("")
    assert dialogs == []


def test_stop_cancels_a_long_draft_and_puts_the_output_back(studio, browser, model_server):
    page, dialogs = sign_in(browser, studio, "ann")
    page.get_by_role("tab", name="Record").click()
    box(page, "record-instruction").fill("Write a long story about a lighthouse keeper.")
    box(page, "record-output").fill("My own opening line.")
    page.locator("#record-model input").click()
    page.get_by_role("option", name="Loopback").click()
    dropped = model_server.dropped_by_client
    # long enough (5 minutes) that on a loaded machine it is still streaming when Stop is pressed
    model_server.script(Reply(" ".join(["wave"] * 6000), chunk_delay=0.05))

    page.locator("#record-draft-output").click()
    expect(box(page, "record-output")).to_have_value(re.compile(r"^wave wave"), timeout=15_000)
    # The output box grows as the draft streams, so the panel below it (Stop included) moves down line by line:
    # with this machine's chromium a pointer click lands on the row above it. The click event goes to the button.
    page.locator("#record-draft-stop").dispatch_event("click")

    expect(page.locator("#record-model-status")).to_contain_text("Stopped: the request was cancelled", timeout=30_000)
    expect(box(page, "record-output")).to_have_value("My own opening line.")
    page.wait_for_timeout(1000)
    assert model_server.dropped_by_client == dropped + 1  # the connection to the model was closed
    assert box(page, "record-output").input_value() == "My own opening line."  # and nothing more arrived
    assert dialogs == []
