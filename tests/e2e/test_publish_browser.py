"""One click from curated data to a trained model, in a real browser: the curator publishes to the
(loopback) Hub and a local training job of the tiny model runs to completion with its loss curve drawn."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.conftest import REPO  # noqa: E402
from tests.e2e.test_browser import ARGS, ARTIFACTS  # noqa: E402
from tests.hub_server import HubServer  # noqa: E402
from tests.test_publish import GOOD, publications, seed_dataset  # noqa: E402
from tests.tiny_model import build_tiny_model  # noqa: E402
from tests.ui_server import PASSWORDS, free_port, seed  # noqa: E402


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited: {process.stdout.read()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the app did not start serving")


@pytest.fixture(scope="module")
def studio_with_hub(tmp_path_factory):
    """The app in its own process, its Hub clients pointed at a loopback Hub, HF_TOKEN set."""
    folder = tmp_path_factory.mktemp("publish-e2e")
    database = f"sqlite:///{folder / 'studio.db'}"
    seed(database)
    seed_dataset(database, name="fruits")
    model = build_tiny_model(folder / "tiny-model")
    with HubServer(tokens={GOOD: "tester"}) as hub:
        port = free_port()
        env = hub.client_env(token=GOOD, base=dict(os.environ)) | {
            "DATABASE_URL": database, "JOBS_DIR": str(folder / "jobs"), "HF_HOME": str(folder / "hf"),
            "GRADIO_ANALYTICS_ENABLED": "False"}
        process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_serving(url, process)
            yield url, database, model, hub
        finally:
            process.terminate()
            process.wait(30)


def test_one_click_publishes_and_trains_to_completion_with_a_loss_curve(studio_with_hub):
    url, database, model, hub = studio_with_hub
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        page.get_by_label("username").fill("cura")
        page.get_by_label("password").fill(PASSWORDS["cura"])
        page.get_by_role("button", name="Login").click()
        expect(page.locator("#signed-in")).to_contain_text("Signed in as cura", timeout=30_000)

        page.get_by_role("tab", name="Publish & train").click()
        page.locator("#publish-dataset input").click()
        page.get_by_role("option", name="fruits").click()
        page.locator("#publish-repo").get_by_role("textbox").fill("tester/fruits-sft")
        page.locator("#publish-model").get_by_role("textbox").fill(str(model))
        page.locator("#publish-steps").get_by_role("spinbutton").fill("4")
        page.locator("#publish-go").click()

        expect(page.locator("#publish-progress")).to_contain_text("Published tester/fruits-sft at revision",
                                                                  timeout=120_000)
        expect(page.locator("#publish-job-status")).to_contain_text("completed", timeout=240_000)
        # The loss curve: the plot holds drawn marks once metrics arrive.
        expect(page.locator("#publish-loss").locator("svg, canvas").first).to_be_visible(timeout=30_000)
        expect(page.locator("#publish-history")).to_contain_text("tester/fruits-sft")
        page.screenshot(path=str(ARTIFACTS / "publish-and-train.png"), full_page=True)
        browser.close()
    assert dialogs == []
    [publication] = publications(database)
    assert publication.repo_id == "tester/fruits-sft"
    assert hub.repo("dataset", "tester/fruits-sft").resolve("main").sha == publication.commit_id
    from curation.services.publishing import training_jobs
    from db.engine import open_database, session_for

    with session_for(open_database(database)) as session:
        [job] = training_jobs(session)
        losses = [m["loss"] for m in job.metrics if "loss" in m]
    assert job.status.value == "completed" and job.dataset_revision == publication.commit_id
    assert len(losses) == 4  # every step of a short run is a point on the curve
