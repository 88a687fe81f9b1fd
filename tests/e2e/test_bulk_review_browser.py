"""Bulk review in Browse (issue 16): a curator approves all 1,000 records that match a filter and undoes it, rejects
two selected rows with one reason and tags them; an annotator has no bulk panel (a real browser: Debian's chromium
through Playwright)."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import ARTIFACTS, CHROMIUM, box, choose, sign_in  # noqa: F401  (skips without chromium)

pytestmark = pytest.mark.browser
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.e2e.test_browser import ARGS  # noqa: E402
from tests.ui_server import add_records, running_studio, seed  # noqa: E402

LONG = {"timeout": 60_000}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from curation.records import RecordDraft
    from db.models import RecordStatus

    url = f"sqlite:///{tmp_path_factory.mktemp('bulk') / 'studio.db'}"
    seed(url)
    add_records(url, [RecordDraft(instruction=f"Bulk question {i}?", outputs=[f"A{i}."]) for i in range(1000)],
                by="ann", reason="created", status=RecordStatus.submitted)
    add_records(url, [RecordDraft(instruction=f"Draft {i}?", outputs=[f"D{i}."]) for i in range(20)], by="ann",
                reason="created")
    with running_studio(url) as running:
        yield running



def test_a_curator_approves_a_thousand_filtered_records_and_undoes_it_in_one_click(studio):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        cura, dialogs = sign_in(browser, studio, "cura")
        expect(cura.locator("#browse-bulk")).to_be_visible(**LONG)
        expect(cura.locator("#browse-info")).to_contain_text("of 1,020 records", **LONG)
        choose(cura, "browse-status", "submitted")
        expect(cura.locator("#browse-info")).to_contain_text("of 1,000 records", **LONG)
        cura.locator("#browse-bulk-scope").get_by_label("All records that match the filter").check()
        cura.locator("#browse-bulk-apply").click()
        expect(cura.locator("#browse-bulk-result")).to_contain_text("1,000 records changed", **LONG)
        expect(cura.locator("#browse-info")).to_contain_text("of 0 records", **LONG)
        undo = cura.locator("#browse-bulk-undo")
        expect(undo).to_contain_text("Undo last bulk action: #1 approve of 1,000 records by cura")
        cura.screenshot(path=str(ARTIFACTS / "bulk-approved.png"), full_page=True)
        undo.click()
        expect(cura.locator("#browse-info")).to_contain_text("of 1,000 records", **LONG)
        expect(cura.locator("#browse-bulk-history")).to_contain_text("undone by cura")
        expect(undo).to_be_disabled()

        # select two rows, reject them with one reason, then tag them and filter by the tag
        cura.locator("#browse-select-mode input").check()
        cells = cura.locator("#browse-table").get_by_text("Bulk question").filter(visible=True)
        cells.nth(0).click()
        expect(cura.locator("#browse-selection")).to_contain_text("1 row selected", **LONG)
        cells.nth(1).click()
        expect(cura.locator("#browse-selection")).to_contain_text("2 rows selected", **LONG)
        cura.locator("#browse-bulk-scope").get_by_label("The selected rows").check()
        choose(cura, "browse-bulk-action", "Reject with a reason")
        box(cura, "browse-bulk-reason").fill("answers too short")
        cura.locator("#browse-bulk-apply").click()
        expect(cura.locator("#browse-bulk-result")).to_contain_text("2 records changed", **LONG)
        expect(cura.locator("#browse-info")).to_contain_text("of 998 records", **LONG)
        choose(cura, "browse-status", "rejected")
        expect(cura.locator("#browse-info")).to_contain_text("of 2 records", **LONG)
        assert cura.locator("#browse-selection").inner_text().startswith("No rows selected")
        browser.close()
    assert dialogs == []


def test_an_annotator_has_no_bulk_panel_and_the_server_refuses_the_call(studio):
    from gradio_client import Client

    from tests.ui_server import PASSWORDS, SLOW_LOAD

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ann, _ = sign_in(browser, studio, "ann")
        expect(ann.locator("#browse-info")).to_contain_text("records", **LONG)
        assert ann.locator("#browse-bulk").count() == 0 or not ann.locator("#browse-bulk").is_visible()
        browser.close()
    client = Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)
    with pytest.raises(Exception, match="only a curator can undo a bulk action"):
        client.predict(api_name="/browse_bulk_undo")


def test_a_curator_tags_and_comments_a_record_and_its_annotator_replies_in_the_thread(studio):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        cura, cura_dialogs = sign_in(browser, studio, "cura")
        box(cura, "browse-text").fill("Draft 7?")
        box(cura, "browse-text").press("Enter")
        expect(cura.locator("#browse-info")).to_contain_text("of 1 records", **LONG)
        cura.locator("#browse-table").get_by_text("Draft 7?").filter(visible=True).first.click()
        expect(box(cura, "record-instruction")).to_have_value("Draft 7?", **LONG)
        notes = cura.locator("#record-notes")
        expect(notes.locator("#record-comments")).to_contain_text("No comments yet.", **LONG)
        box(cura, "record-tag").fill("needs a source")
        cura.locator("#record-tag-add").click()
        expect(cura.locator("#record-tags .tag-chip")).to_have_text("needs a source", **LONG)
        box(cura, "record-comment").fill("Where does this answer come from? <b>cite</b> it")
        cura.locator("#record-comment-send").click()
        expect(cura.locator("#record-comments .comment")).to_have_count(1, **LONG)
        assert cura.locator("#record-comments b").count() == 0  # the comment is text, never markup

        ann, ann_dialogs = sign_in(browser, studio, "ann")
        box(ann, "browse-text").fill("Draft 7?")
        box(ann, "browse-text").press("Enter")
        expect(ann.locator("#browse-info")).to_contain_text("of 1 records", **LONG)
        ann.locator("#browse-table").get_by_text("Draft 7?").filter(visible=True).first.click()
        expect(ann.locator("#record-comments")).to_contain_text("Where does this answer come from?", **LONG)
        expect(ann.locator("#record-tags")).to_contain_text("needs a source")
        assert not ann.locator("#record-tag-row").is_visible()  # tags are the curators'
        ann.locator("#record-reply-to input").click()
        ann.get_by_role("option").filter(has_text="cura: Where does this").click()
        box(ann, "record-comment").fill("From the 2020 census.")
        ann.locator("#record-comment-send").click()
        reply = ann.locator("#record-comments .comment").nth(1)
        expect(reply).to_contain_text("From the 2020 census.", **LONG)
        expect(reply).to_contain_text("ann")
        assert reply.evaluate("e => parseInt(e.style.marginLeft)") > 0  # under the comment it answers
        # the tag filters Browse
        cura.get_by_role("tab", name="Browse", exact=True).click()
        box(cura, "browse-text").fill("")
        box(cura, "browse-text").press("Enter")
        cura.locator("#browse-tag input").click()
        cura.get_by_role("option", name="needs a source", exact=True).click()
        expect(cura.locator("#browse-info")).to_contain_text("of 1 records", **LONG)
        browser.close()
    assert cura_dialogs == [] and ann_dialogs == []
