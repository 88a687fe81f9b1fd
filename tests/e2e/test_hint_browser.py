"""While an annotator types, the editor shows the existing records the text already repeats; saving one
asks for confirmation first (a real browser: Debian's chromium through Playwright)."""
from __future__ import annotations

import time

import pytest

from tests.e2e.test_browser import ARTIFACTS, CHROMIUM, box, sign_in  # noqa: F401  (skips without chromium)
from tests.test_ui_diversity import studio  # noqa: F401  (the seeded app, a fresh one for this module)

pytestmark = pytest.mark.browser
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.e2e.test_browser import ARGS  # noqa: E402


def test_the_hint_appears_within_a_second_of_typing_a_known_instruction(studio):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, dialogs = sign_in(browser, studio, "ann")
        page.get_by_role("tab", name="Record").click()
        page.locator("#record-dataset input").click()
        page.get_by_role("option", name="demo").click()
        hint = page.locator("div[id^='near-duplicate-hint-']")
        # The first query loads the model and builds the dataset's index: not what the annotator waits for.
        box(page, "record-instruction").fill("List three primary colors.")
        expect(hint).to_contain_text("List three primary colors.", timeout=90_000)
        box(page, "record-instruction").fill("")
        expect(hint).not_to_contain_text("List three primary colors.", timeout=10_000)

        started = time.perf_counter()
        box(page, "record-instruction").fill('Translate "good morning" in Spanish.')
        # The one-second target is measured by bench/ui_latency.py; a test on a shared 2-core machine only checks
        # that the hint comes from the index already built (seconds, not the minute the first build took).
        expect(hint).to_contain_text('Translate "good morning" into Spanish.', timeout=10_000)
        print(f"hint shown {time.perf_counter() - started:.2f} s after typing")
        page.screenshot(path=str(ARTIFACTS / "near-duplicate-hint.png"), full_page=True)

        box(page, "record-output").fill("Buenos días")
        page.locator("#record-save").click()
        expect(page.get_by_text("This looks like a near-duplicate of record")).to_be_visible(timeout=15_000)
        expect(page.locator("#record-status")).not_to_contain_text("version 1")
        page.locator("#record-save-anyway").click()
        expect(page.locator("#record-status")).to_contain_text("version 1", timeout=15_000)
        browser.close()
    assert dialogs == []
