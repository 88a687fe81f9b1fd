"""Issue 13's acceptance, in a real browser: a curator rates a dataset with the judge (a scripted OpenAI-compatible
server with known ratings), sets a budget with the slider and reads the live counter, draws the map coloured by
the rating, saves the selection, reads what DEITA left out, and publishes it to the loopback Hub as its own config
whose card states the recipe."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM  # noqa: F401  (skips without chromium)

pytestmark = pytest.mark.browser

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.conftest import REPO  # noqa: E402
from tests.e2e.test_publish_browser import wait_until_serving  # noqa: E402
from tests.hub_server import HubServer  # noqa: E402
from tests.openai_server import OpenAIServer  # noqa: E402
from tests.test_publish import GOOD  # noqa: E402
from tests.test_quality_tab import judge_reply, seed_shelf, taken_ids  # noqa: E402
from tests.ui_server import PASSWORDS, free_port  # noqa: E402


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The app in its own process (its Hub clients read the loopback Hub's address at import), a judge beside it."""
    folder = tmp_path_factory.mktemp("quality-e2e")
    database = f"sqlite:///{folder / 'studio.db'}"
    ids = seed_shelf(database)
    with OpenAIServer(replies=judge_reply, models=["judge-model"]) as judge, HubServer(tokens={GOOD: "tester"}) as hub:
        port = free_port()
        env = hub.client_env(token=GOOD, base=dict(os.environ)) | {
            "DATABASE_URL": database, "HF_HOME": str(folder / "hf"), "GRADIO_ANALYTICS_ENABLED": "False",
            "LLM_MODELS": f"Judge=openai:judge-model@{judge.url}"}
        process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_serving(url, process)
            yield url, database, ids, hub
        finally:
            process.terminate()
            process.wait(30)
            print(process.stdout.read()[-5000:])


def test_a_curator_scores_sets_a_budget_saves_and_publishes_a_selection(studio):
    url, database, ids, hub = studio
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1300})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        page.get_by_label("username").fill("cura")
        page.get_by_label("password").fill(PASSWORDS["cura"])
        page.get_by_role("button", name="Login").click()
        expect(page.locator("#signed-in")).to_contain_text("Signed in as cura", timeout=30_000)

        page.get_by_role("tab", name="Quality").click()
        summary = page.locator("#quality-summary")
        try:
            expect(summary).to_contain_text("live records", timeout=30_000)  # the tab has read the first dataset
        finally:
            page.screenshot(path=str(ARTIFACTS / "quality-opened.png"), full_page=True)
        page.locator("#quality-dataset input").click()
        page.get_by_role("option", name="shelf").click()
        expect(summary).to_contain_text("8 live records · scored: nothing scored yet", timeout=15_000)

        page.locator("#quality-judge").click()
        expect(page.locator("#quality-score-status")).to_contain_text("8 records computed", timeout=60_000)
        expect(summary).to_contain_text("scored: judge rating 8", timeout=15_000)
        expect(page.locator("#quality-histogram")).to_contain_text("8 records scored")
        counter = page.locator("#quality-counter")
        expect(counter).to_contain_text("5 of 8 records score at least 3 on judge rating")
        page.locator("#quality-minimum").get_by_role("spinbutton").fill("4.5")
        page.locator("#quality-minimum").get_by_role("spinbutton").press("Tab")
        expect(counter).to_contain_text("2 of 8 records score at least 4.5", timeout=15_000)

        # The budget: three records, DEITA's rule at 0.1; the counter says what it would take before anything is kept.
        budget = page.locator("#quality-budget").get_by_role("spinbutton")
        budget.fill("3")
        budget.press("Tab")
        preview = page.locator("#quality-preview")
        expect(preview).to_contain_text("Would take 3 of 8 records; 1 left out as too close to a record already taken",
                                        timeout=60_000)
        page.locator("#quality-map-draw").click()
        expect(page.locator("#quality-map")).to_contain_text("coloured by judge rating", timeout=60_000)
        expect(page.locator("#quality-map")).to_contain_text("3 selected ringed")
        page.screenshot(path=str(ARTIFACTS / "quality-budget.png"), full_page=True)

        page.locator("#quality-selection-name input, #quality-selection-name textarea").first.fill("best3")
        page.locator("#quality-save").click()
        page.get_by_role("tab", name="Selections").click()
        expect(page.locator("#quality-selections")).to_contain_text("best3", timeout=30_000)
        expect(page.locator("#quality-selections")).to_contain_text("DEITA's rule")
        left_out = page.locator("#quality-left-out")
        expect(left_out).to_contain_text(f"#{ids[1]}", timeout=15_000)
        expect(left_out).to_contain_text(f"left out: too close to #{ids[0]}")

        page.locator("#quality-repo input, #quality-repo textarea").first.fill("tester/shelf")
        page.locator("#quality-publish").click()
        published = page.locator("#quality-published")
        expect(published).to_contain_text("Published selection best3 (3 records) to tester/shelf as config best3",
                                          timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "quality-published.png"), full_page=True)
        assert GOOD not in page.content()  # the token is used for the push, never shown
        browser.close()
    assert dialogs == []
    assert taken_ids(database, "best3") == [ids[0], ids[2], ids[3]]
    remote = hub.repo("dataset", "tester/shelf")
    files = remote.resolve("main").files
    assert any(path.startswith("best3/train-") for path in files)
    readme = files["README.md"].data.decode()
    assert "## Selection `best3`" in readme and "config_name: best3" in readme
    assert ("DEITA's rule: records in order of judge, each taken only if its cosine distance to every record already "
            "taken exceeds 0.1, until 3 were taken, out of 8 records.") in readme
