"""Find similar (issue 16): from a saved record, its nearest neighbours by meaning with their scores, each one
click away; and Browse searching by meaning (a real browser: Debian's chromium through Playwright)."""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_browser import ARTIFACTS, CHROMIUM, box, sign_in  # noqa: F401  (skips without chromium)
from tests.test_ui_diversity import studio  # noqa: F401  (the seeded app, a fresh one for this module)

pytestmark = pytest.mark.browser
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.e2e.test_browser import ARGS  # noqa: E402


def test_find_similar_lists_the_nearest_records_with_scores_and_opens_one(studio):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, dialogs = sign_in(browser, studio, "ann")
        page.get_by_role("tab", name="Record").click()
        page.locator("#record-dataset input").click()
        page.get_by_role("option", name="demo").click()
        # close in meaning to the seeded health tips, but not a near-duplicate: the save asks nothing
        box(page, "record-instruction").fill("Share some advice for living a healthier life.")
        box(page, "record-output").fill("Rest well.")
        page.locator("#record-save").click()
        expect(page.locator("#record-status")).to_contain_text("version 1", timeout=90_000)

        page.locator("#record-similar-box").get_by_text("Similar records").click()
        listed = page.locator("div[id^='find-similar-']")
        for _ in range(60):  # the first look builds the dataset's meaning index in the background
            page.locator("#record-find-similar").click()
            expect(listed).to_contain_text(re.compile("Open #|still being built"), timeout=30_000)
            if listed.locator("li").count():
                break
            page.wait_for_timeout(1000)
        rows = listed.locator("li")
        assert rows.count() >= 5
        first = rows.nth(0).inner_text()
        assert "Give three tips for staying healthy." in first or "Give 3 tips for staying healthy." in first
        scores = [float(rows.nth(i).locator(".nd-score").inner_text()) for i in range(rows.count())]
        assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1] + 0.2
        assert "Share some advice" not in listed.inner_text()  # not the record itself
        # nor does the live hint list the record just saved as its own duplicate
        assert "Share some advice" not in page.locator("div[id^='near-duplicate-hint-']").inner_text()
        page.screenshot(path=str(ARTIFACTS / "find-similar.png"), full_page=True)

        opened = re.search(r"Open #(\d+)", first).group(1)
        rows.nth(0).get_by_role("button", name=f"Open #{opened}").click()
        expect(box(page, "record-instruction")).to_have_value(re.compile("Give (three|3) tips for staying healthy."),
                                                              timeout=15_000)

        # Browse searches by meaning too: closest first, a Meaning column with the scores
        page.get_by_role("tab", name="Browse").click()
        page.locator("#browse-dataset input").click()
        page.get_by_role("option", name="demo", exact=True).click()
        page.locator("#browse-meaning input").check()
        box(page, "browse-text").fill("a short poem about the weather")
        box(page, "browse-text").press("Enter")
        expect(page.locator("#browse-info")).to_contain_text("closest in meaning", timeout=30_000)
        haiku = page.locator("#browse-table").get_by_text("Write a haiku about the autumn rain.").filter(visible=True)
        france = page.locator("#browse-table").get_by_text("Name the capital of France.").filter(visible=True)
        # the haiku (closest to the poem asked for) sits above an unrelated record
        assert haiku.first.bounding_box()["y"] < france.first.bounding_box()["y"]
        expect(page.locator("#browse-table").get_by_text("Meaning").filter(visible=True).first).to_be_visible()
        browser.close()
    assert dialogs == []
