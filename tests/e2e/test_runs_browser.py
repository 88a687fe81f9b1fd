"""Issue 14's acceptance, in a real browser: after two local training runs have completed (one on a selection, one
on everything), a curator starts an evaluation from the Runs tab and watches its progress, compares the two runs
(per-metric deltas, answers side by side, the nearest training records one click from the editor), and the
model card on the loopback Hub shows the evaluation table."""
from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, sign_in  # noqa: F401  (skips without chromium)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.conftest import REPO  # noqa: E402
from tests.e2e.test_publish_browser import wait_until_serving  # noqa: E402
from tests.test_evaluation_jobs import hub, judge, open_session, wait_for, world  # noqa: E402,F401  (fixtures)
from tests.ui_server import PASSWORDS, ROLES, free_port  # noqa: E402


@pytest.fixture(scope="module")
def studio(world, judge):
    """The app in its own process over the world's database and jobs folder; run B already evaluated."""
    from curation.config import Settings
    from curation.services import admin
    from curation.services.evaluation import start_evaluation

    with open_session(world["url"]) as session:
        admin.add_user(session, "cura", ROLES["cura"], PASSWORDS["cura"])
        session.commit()
        b = start_evaluation(session, training_job_id=world["b"], judge_label="Judge", actor=None,
                             settings=Settings(llm_models=world["env"]["LLM_MODELS"]), jobs_root=str(world["jobs"]),
                             env=world["env"], max_new_tokens=12)
        assert wait_for(session, b.id, world["jobs"]).status.value == "completed"
    port = free_port()
    # world["env"] is this process's environment pointed at the loopback Hub (its offline switches taken out)
    env = world["env"] | {"DATABASE_URL": world["url"], "JOBS_DIR": str(world["jobs"]),
                          "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, process)
        yield SimpleNamespace(url=url)
    finally:
        process.terminate()
        process.wait(30)
        print(process.stdout.read()[-5000:])


def choose(page, elem_id: str, starts: str) -> None:
    """Pick the option of dropdown `elem_id` whose label starts with `starts` (its own list: several may be open)."""
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id}").get_by_role("option", name=re.compile("^" + re.escape(starts))).first.click()


def test_a_curator_evaluates_a_run_then_compares_it_with_another(studio, world, hub):
    a, b = world["a"], world["b"]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, dialogs = sign_in(browser, studio, "cura")
        page.get_by_role("tab", name="Runs").click()
        table = page.locator("#runs-table")
        expect(table).to_contain_text("selection long", timeout=30_000)
        expect(table).to_contain_text("everything")

        choose(page, "runs-run", f"Run {a} ·")
        choose(page, "runs-judge", "Judge")
        page.locator("#runs-evaluate").click()
        status = page.locator("#runs-status")
        expect(status).to_contain_text("running", timeout=60_000)  # the timer follows it while it runs
        page.screenshot(path=str(ARTIFACTS / "runs-evaluating.png"), full_page=True)
        expect(status).to_contain_text(re.compile("completed|failed|cancelled"), timeout=300_000)
        expect(status).to_contain_text("completed", timeout=1)
        expect(table).to_contain_text("completed")

        choose(page, "runs-a", f"Run {a} ·")
        choose(page, "runs-b", f"Run {b} ·")
        page.locator("#runs-compare").click()
        deltas = page.locator("#runs-deltas")
        expect(deltas).to_contain_text("Test loss", timeout=60_000)
        expect(deltas).to_contain_text(f"Δ (run {b} − run {a})")
        expect(deltas).to_contain_text("Win rate against the base model")
        pairs = page.locator("#runs-side-by-side")
        expect(pairs).to_contain_text("test prompts answered by both runs")
        expect(pairs).to_contain_text(f"Run {a} · ROUGE-L")
        expect(pairs).to_contain_text(f"Run {b} · ROUGE-L")
        page.screenshot(path=str(ARTIFACTS / "runs-compared.png"), full_page=True)
        # From a prompt, one click opens the nearest training record in the editor.
        pairs.locator("[data-open-record]").first.click()
        expect(page.get_by_role("tab", name="Record")).to_have_attribute("aria-selected", "true", timeout=15_000)
        browser.close()
    assert dialogs == []
    card = hub.repo("model", "tester/eval-a").resolve("main").files["README.md"].data.decode()
    assert "<!-- instruct-studio-evaluation -->" in card and "| metric | tuned | base |" in card
    assert "| loss |" in card and "| judge win rate vs base model |" in card
