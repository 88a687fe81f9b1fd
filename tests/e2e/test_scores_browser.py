"""A curator orders the review queue by the judge's rating, worst first, and opens the worst record in the editor,
where the Scores panel shows the judge's reason (Debian's chromium through Playwright)."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, sign_in  # noqa: F401  (skips without chromium)

pytestmark = pytest.mark.browser

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.ui_server import running_studio, seed  # noqa: E402

RECORDS = [("Name the capital of France.", "Paris.", 5.0, "Correct and to the point."),
           ("Name the capital of Italy.", "Milan.", 1.0, "Wrong: the capital of Italy is Rome.")]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from curation.services import annotation
    from curation.services.permissions import Actor
    from db.engine import open_database, session_for
    from db.models import Record, Role
    from db.score_tables import store_scores

    url = f"sqlite:///{tmp_path_factory.mktemp('scores-browser') / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    ann = Actor("ann", Role.annotator)
    with session_for(engine) as session:
        rows = []
        for instruction, output, rating, reason in RECORDS:
            view = annotation.save_record(session, ann, annotation.RecordForm("demo", instruction, outputs=[output]))
            annotation.change_record(session, ann, view.id, "submit", expected_version=view.version)
            rows.append({"record_id": view.id, "value": rating, "detail": {"reason": reason, "model": "judge-model"},
                         "basis": f"{session.get(Record, view.id).content_hash}:test"})
        store_scores(session, "judge", rows)
        session.commit()
    engine.dispose()
    with running_studio(url) as running:
        yield running


def test_the_worst_rated_record_comes_first_and_the_editor_shows_why(studio):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, dialogs = sign_in(browser, studio, "cura")
        page.get_by_role("tab", name="Review").click()
        expect(page.locator("#review-item")).to_contain_text("Name the capital of France.", timeout=15_000)
        page.locator("#review-order input").click()
        page.locator("#review-order").get_by_role("option", name="Judge rating, lowest first").click()
        expect(page.locator("#review-item")).to_contain_text("Name the capital of Italy.", timeout=15_000)
        expect(page.locator("#review-queue")).to_contain_text("1 / 5")
        expect(page.locator("#review-queue")).to_contain_text("5 / 5")
        page.screenshot(path=str(ARTIFACTS / "review-by-score.png"), full_page=False)
        page.locator("#review-edit").click()
        panel = page.locator("#record-scores")
        expect(panel).to_contain_text("1 of 5: “Wrong: the capital of Italy is Rome.”", timeout=15_000)
        expect(page.locator("#record-instruction textarea")).to_have_value("Name the capital of Italy.")
        page.screenshot(path=str(ARTIFACTS / "record-scores.png"), full_page=True)
        assert dialogs == []
        browser.close()
