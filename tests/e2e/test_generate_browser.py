"""Issue 11's acceptance, in a real browser: a curator uploads Self-Instruct's 175 seed tasks, previews 5, launches
a run against the scripted model, watches the bar move, cancels, resumes to the end, reads the drop report, and
approves a generated record in Review."""
from __future__ import annotations

import re

import pytest

from tests.conftest import SHARED_DATA, requires_shared_data
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, sign_in  # noqa: F401  (skips without chromium)

pytestmark = [pytest.mark.browser, requires_shared_data]

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.openai_server import OpenAIServer  # noqa: E402
from tests.test_generate_tab import database, loopback_models, scripted_reply  # noqa: E402
from tests.ui_server import running_studio, seed  # noqa: E402

SEED_FILE = SHARED_DATA / "seeds" / "self_instruct_seed_tasks.jsonl"
TARGET = 30
# Each request waits this long: a round (instructions, then classification, then instances) takes about three
# times as much, so a 30-record run takes four rounds (about 36 s): time for a loaded machine's page to see the bar
# move and to cancel half-way.
LATENCY = 3.0


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('generate-browser') / 'studio.db'}"
    seed(url)
    with OpenAIServer(replies=scripted_reply, latency=LATENCY) as model:
        with running_studio(url, llm_models=loopback_models(model.url)) as running:
            running.model = model
            yield running


def kept_on_the_bar(page) -> int:
    return int(page.locator("#generate-progress [role=progressbar]").get_attribute("aria-valuenow"))


def test_a_curator_generates_cancels_resumes_reads_the_report_and_approves(studio):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, dialogs = sign_in(browser, studio, "cura")
        page.get_by_role("tab", name="Generate").click()
        # Each pipeline shows its own fields: the seeds for Self-Instruct, the records to evolve for Evol-Instruct.
        page.locator("#generate-pipeline").get_by_label("Evol-Instruct").check()
        expect(page.locator("#generate-records")).to_be_visible()
        expect(page.locator("#generate-seed-file")).to_be_hidden()
        page.locator("#generate-pipeline").get_by_label("Self-Instruct").check()
        expect(page.locator("#generate-records")).to_be_hidden()
        page.locator("#generate-dataset input").click()
        page.get_by_role("option", name="demo").click()
        page.locator("#generate-seed-file input[type=file]").set_input_files(str(SEED_FILE))
        expect(page.locator("#generate-seed-file")).to_contain_text("self_instruct_seed_tasks", timeout=15_000)
        page.locator("#generate-target").get_by_role("spinbutton").fill(str(TARGET))

        page.locator("#generate-preview").click()
        shown = page.locator("#generate-preview-box")
        expect(shown).to_contain_text("5 records previewed; nothing was written.", timeout=30_000)
        expect(shown.locator(".gen-candidate")).to_have_count(5)
        assert database(studio) == ([], [])

        page.locator("#generate-launch").click()
        status = page.locator("#generate-status")
        expect(status).to_contain_text("Self-Instruct into demo", timeout=15_000)
        bar = page.locator("#generate-progress [role=progressbar]")
        expect(bar).to_have_attribute("aria-valuemax", str(TARGET))
        # The timer redraws the bar while the job runs: it moves off zero before the run is over.
        expect(bar).not_to_have_attribute("aria-valuenow", "0", timeout=30_000)
        moved = kept_on_the_bar(page)
        assert 0 < moved < TARGET
        page.screenshot(path=str(ARTIFACTS / "generate-running.png"), full_page=True)

        page.locator("#generate-cancel").click()
        expect(status).to_contain_text("cancelled", timeout=30_000)
        expect(status).to_contain_text("resume asks only for the rest")
        cancelled_at = kept_on_the_bar(page)
        assert moved <= cancelled_at < TARGET
        expect(page.locator("#generate-jobs")).to_contain_text("cancelled")

        page.locator("#generate-resume").click()
        expect(status).to_contain_text("completed", timeout=60_000)
        expect(bar).to_have_attribute("aria-valuenow", str(TARGET))
        report = page.locator("#generate-report")
        written_now = TARGET - cancelled_at  # those kept before the cancel come back from the cache, not twice
        expect(report).to_contain_text(f"{TARGET} asked for · {TARGET} kept ({written_now} written by this run)")
        for words in ("fewer than 4 words", "asks for what a text model cannot do", "starts with punctuation",
                      "too close to an instruction already there"):
            expect(report).to_contain_text(words)
        expect(report).to_contain_text("an instruction needs at least 4")  # an example's reason
        expect(report.locator(".gen-drop-text").first).to_be_visible()
        expect(report).to_contain_text(re.compile(r"tokens: [\d,]+ prompt \+ [\d,]+ completion"))
        page.screenshot(path=str(ARTIFACTS / "generate-report.png"), full_page=True)

        page.locator("#generate-open-review").click()
        expect(page.get_by_role("tab", name="Review")).to_have_attribute("aria-selected", "true", timeout=15_000)
        # Opening the tab reads its queue (every dataset, as the Review tab starts): the job's records wait there.
        expect(page.locator("#review-count")).to_contain_text(f"{TARGET} waiting", timeout=15_000)
        item = page.locator("#review-item")
        expect(item).to_contain_text("machine-drafted by loopback-model, unreviewed")
        expect(item).to_contain_text("Here is what was asked:")
        page.locator("#review-approve").click()
        expect(page.locator("#review-count")).to_contain_text(f"{TARGET - 1} waiting", timeout=15_000)
        page.screenshot(path=str(ARTIFACTS / "generate-review.png"), full_page=True)
        browser.close()
    assert dialogs == []
    jobs, records = database(studio)
    [(job_id, job_status)] = jobs
    assert job_status.value == "completed"
    generated = [r for r in records if r[3] == job_id]
    assert len(generated) == TARGET
    assert sorted(r[1].value for r in generated) == ["approved"] + ["submitted"] * (TARGET - 1)
