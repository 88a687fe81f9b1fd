"""Assignment with overlap 2 (issue 16): a curator splits three records between two annotators, each answers from
My queue with the keyboard, the curator compares the answers side by side and keeps one, and the Overview shows
the agreement (a real browser: Debian's chromium through Playwright)."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import ARTIFACTS, CHROMIUM, box, choose, sign_in  # noqa: F401  (skips without chromium)

pytestmark = pytest.mark.browser
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.e2e.test_browser import ARGS  # noqa: E402
from tests.ui_server import PASSWORDS, SLOW_LOAD, add_records, running_studio, seed  # noqa: E402

LONG = {"timeout": 60_000}
QUESTIONS = ["Name the largest planet.", "Say hello in French.", "Give a synonym of quick."]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from curation.records import RecordDraft
    from db.models import RecordStatus

    url = f"sqlite:///{tmp_path_factory.mktemp('assign') / 'studio.db'}"
    seed(url)
    ids = add_records(url, [RecordDraft(instruction=q, outputs=["?"]) for q in QUESTIONS], by="root",
                      reason="imported", status=RecordStatus.submitted)
    with running_studio(url) as running:
        running.ids = ids
        yield running



def test_split_with_overlap_two_answer_from_the_queue_and_reconcile_side_by_side(studio):
    from gradio_client import Client

    ARTIFACTS.mkdir(exist_ok=True)
    first = studio.ids[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        cura, cura_dialogs = sign_in(browser, studio, "cura")
        cura.get_by_role("tab", name="Assignments", exact=True).click()
        expect(cura.locator("#assign-dataset input")).to_have_value("demo", **LONG)
        choose(cura, "assign-annotators", "ann", "ben")
        cura.locator("#assign-overlap input").fill("2")
        cura.locator("#assign-split").click()
        expect(cura.locator("#assign-split-result")).to_have_text(
            "Assigned 3 items as 6 assignments; open per annotator: ann 3, ben 3.", **LONG)
        expect(cura.locator("#assign-progress")).to_contain_text("ann", **LONG)

        # ann works through the queue with the keyboard: Alt+N opens, Ctrl+Enter submits and opens the next,
        # Alt+K skips
        ann, ann_dialogs = sign_in(browser, studio, "ann")
        ann.get_by_role("tab", name="My queue", exact=True).click()
        expect(ann.locator("#queue-progress")).to_contain_text("0 of 3 submitted", **LONG)
        ann.keyboard.press("Alt+KeyN")
        expect(box(ann, "queue-instruction")).to_have_value(QUESTIONS[0], **LONG)
        expect(ann.locator("#queue-header")).to_contain_text("1 other annotator answers it too")
        box(ann, "queue-answer").fill("Jupiter is the largest planet.")
        ann.locator("#queue-rating").get_by_label("1 poor").check()
        box(ann, "queue-answer").press("Control+Enter")
        expect(box(ann, "queue-instruction")).to_have_value(QUESTIONS[1], **LONG)
        expect(ann.locator("#queue-status")).to_contain_text("Submitted #", **LONG)
        ann.keyboard.press("Alt+KeyK")
        expect(box(ann, "queue-instruction")).to_have_value(QUESTIONS[2], **LONG)
        expect(ann.locator("#queue-progress")).to_contain_text("1 of 3 submitted · 1 open · 1 skipped", **LONG)
        ann.screenshot(path=str(ARTIFACTS / "my-queue.png"), full_page=True)

        # ben answers the same record from his queue (through the API the page uses)
        ben = Client(studio.url, auth=("ben", PASSWORDS["ben"]), verbose=False, httpx_kwargs=SLOW_LOAD)
        opened = ben.predict("", None, api_name="/my_queue_next")
        assert opened[3] == QUESTIONS[0]
        ben.predict("", opened[0], "The largest planet is Jupiter.", "2", api_name="/my_queue_submit")

        # the curator compares the two answers and keeps ann's
        cura.locator("#assign-refresh").click()
        table = cura.locator("#reconcile-table")
        expect(table).to_contain_text(QUESTIONS[0], **LONG)
        answers = cura.locator("#reconcile-answers")
        expect(answers).to_contain_text("Jupiter is the largest planet.", **LONG)
        expect(answers).to_contain_text("The largest planet is Jupiter.")
        expect(answers.locator(".answer-card")).to_have_count(3)  # the current output and the two answers
        cura.screenshot(path=str(ARTIFACTS / "reconcile.png"), full_page=True)
        choose(cura, "reconcile-keep-from", "ann")
        cura.locator("#reconcile-keep").click()
        expect(cura.locator("#reconcile-result")).to_have_text(
            f"Record #{first} is now version 2: kept ann's answer.", **LONG)
        expect(table).not_to_contain_text(QUESTIONS[0], **LONG)

        # the Overview shows the agreement of the two answers
        cura.get_by_role("tab", name="Overview", exact=True).click()
        choose(cura, "overview-dataset", "demo")
        agreement = cura.locator("#overview-agreement")
        # by hand: "jupiter is the largest planet" / "the largest planet is jupiter" share "the largest planet",
        # 3 of 5 words each way, so ROUGE-L F = 0.60
        expect(agreement).to_contain_text(
            "1 record answered by two or more annotators: mean agreement of outputs 0.60 (ROUGE-L)", **LONG)
        expect(agreement).to_contain_text("ann")
        browser.close()
    assert cura_dialogs == [] and ann_dialogs == []


def test_an_annotator_cannot_split_the_work(studio):
    from gradio_client import Client

    ann = Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)
    with pytest.raises(Exception, match="only a curator can assign work"):
        ann.predict("demo", "record", [], 1, api_name="/assign_split")
