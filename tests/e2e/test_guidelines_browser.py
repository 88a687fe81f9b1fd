"""Guidelines (issue 16): a curator writes them in Review; an annotator reads them beside the record editor
(a real browser: Debian's chromium through Playwright)."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import ARTIFACTS, CHROMIUM, box, sign_in  # noqa: F401  (skips without chromium)
from tests.test_ui_diversity import studio  # noqa: F401  (the seeded app, a fresh one for this module)

pytestmark = pytest.mark.browser
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.e2e.test_browser import ARGS  # noqa: E402

RULES = """## Answer in full sentences (`empty_output`)
Never leave the output empty. <img src=x onerror=alert(1)> stays text.

## Keep instructions self-contained
"""


def test_a_curator_writes_guidelines_and_an_annotator_reads_them_beside_the_editor(studio):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        cura, cura_dialogs = sign_in(browser, studio, "cura")
        cura.get_by_role("tab", name="Review").click()
        cura.locator("#review-dataset input").click()
        cura.get_by_role("option", name="demo").click()
        expect(cura.locator("#review-guidelines")).to_contain_text("demo has no guidelines yet", timeout=30_000)
        cura.locator("#guidelines-editor").get_by_text("Edit the guidelines").click()
        box(cura, "guidelines-text").fill(RULES)
        box(cura, "guidelines-reason").fill("first rules")
        cura.locator("#guidelines-save").click()
        expect(cura.locator("#guidelines-status")).to_contain_text("Version 1 in force", timeout=30_000)
        expect(cura.locator("#review-guidelines h2").first).to_have_text("Answer in full sentences (empty_output)",
                                                                        timeout=30_000)

        ann, ann_dialogs = sign_in(browser, studio, "ann")
        ann.get_by_role("tab", name="Record").click()
        ann.locator("#record-dataset input").click()
        ann.get_by_role("option", name="demo").click()
        panel = ann.locator("#record-guidelines")
        expect(panel).to_contain_text("Version 1 by cura", timeout=30_000)
        expect(panel.locator("h2")).to_have_count(2)
        expect(panel.locator("#guideline-answer-in-full-sentences-empty-output")).to_be_visible()
        assert panel.locator("img").count() == 0 and "<img src=x" in panel.inner_text()
        # a failed check links to the guideline that cites it
        box(ann, "record-instruction").fill("Name the capital of Peru.")
        link = ann.locator("#record-checks a.guideline-link")
        expect(link).to_have_attribute("href", "#guideline-answer-in-full-sentences-empty-output", timeout=30_000)
        link.click()
        assert ann.evaluate("location.hash") == "#guideline-answer-in-full-sentences-empty-output"
        ann.screenshot(path=str(ARTIFACTS / "guidelines.png"), full_page=True)
        # the Review tab, and with it the editor, is not the annotator's
        assert ann.get_by_role("tab", name="Review", exact=True).count() == 0
        browser.close()
    assert cura_dialogs == [] and ann_dialogs == []
