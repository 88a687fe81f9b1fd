"""Issue 15's acceptance for the engine, in a real browser: a curator opens Diversity, starts a search on a cluster
(datatrove's local executor, 2 tasks) over ~300 Alpaca records with 5 near-duplicates added, watches its status
reach completed, and sees its groups in the duplicate groups view as after any other search."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM  # noqa: F401  (skips without chromium)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.conftest import REPO, requires_shared_data  # noqa: E402
from tests.e2e.test_publish_browser import wait_until_serving  # noqa: E402
from tests.test_distributed_search import alpaca_rows  # noqa: E402
from tests.ui_server import PASSWORDS, free_port, seed  # noqa: E402

pytestmark = [pytest.mark.browser, requires_shared_data]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The app in its own process (its jobs folder comes from JOBS_DIR at import), with the dataset "small"
    imported through the import service."""
    from curation.services.importing import import_sources
    from db.engine import open_database, session_for

    folder = tmp_path_factory.mktemp("distributed-e2e")
    database = f"sqlite:///{folder / 'studio.db'}"
    seed(database)
    source = folder / "small.json"
    source.write_text(json.dumps([{"instruction": i, "input": n, "output": o} for i, n, o in alpaca_rows(300, 5)]))
    engine = open_database(database)
    with session_for(engine) as session:
        import_sources(session, dataset="small", sources=[str(source)], by="root")
    engine.dispose()
    port = free_port()
    env = dict(os.environ) | {"DATABASE_URL": database, "JOBS_DIR": str(folder / "jobs"),
                              "HF_HOME": str(folder / "hf"), "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, process)
        yield url, database
    finally:
        process.terminate()
        process.wait(30)
        print(process.stdout.read()[-5000:])


def test_a_curator_runs_a_search_on_the_engine_and_reviews_its_groups(studio):
    from curation.services.dedup import duplicate_groups
    from db.engine import open_database, session_for

    url, database = studio
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1300})
        page.goto(url)
        page.get_by_label("username").fill("cura")
        page.get_by_label("password").fill(PASSWORDS["cura"])
        page.get_by_role("button", name="Login").click()
        expect(page.locator("#signed-in")).to_contain_text("Signed in as cura", timeout=30_000)

        page.get_by_role("tab", name="Diversity").click()
        summary = page.locator("#diversity-summary")
        expect(summary).to_contain_text("exact-duplicate group", timeout=30_000)
        page.locator("#diversity-dataset input").click()
        page.get_by_role("option", name="small").click()
        expect(summary).to_contain_text("no search of this kind yet", timeout=15_000)
        threshold = page.locator("#diversity-threshold input[type=number]")
        threshold.fill("0.9")
        threshold.press("Enter")

        page.get_by_text("Search on a cluster (datatrove)").click()
        expect(page.locator("#distributed-tasks input")).to_have_value("2")
        page.locator("#distributed-start").click()
        status = page.locator("#distributed-status")
        try:
            expect(status).to_contain_text("on local (2 tasks)", timeout=30_000)  # it is followed while it runs
            expect(status).to_contain_text("completed: 305 records", timeout=180_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "distributed-search.png"), full_page=True)

        engine = open_database(database)
        with session_for(engine) as session:
            groups = duplicate_groups(session, dataset="small", threshold=0.9)
        engine.dispose()
        assert len(groups) >= 5
        expect(summary).to_contain_text(re.compile(rf"\b{len(groups)} near-duplicate groups? \("), timeout=15_000)
        expect(summary).to_contain_text("last search over 305 records")
        table = page.locator("#diversity-groups")  # Alpaca's first record and its copy with ", please." added
        expect(table).to_contain_text("#1, #301")
        expect(table).to_contain_text("Give three tips for staying healthy.")
        page.screenshot(path=str(ARTIFACTS / "distributed-groups.png"), full_page=True)
        browser.close()
