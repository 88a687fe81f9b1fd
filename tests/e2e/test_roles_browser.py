"""Each role sees its own tabs (issue 16): annotators the writing tabs, curators all but Admin, admins every tab."""
from __future__ import annotations

import pytest

from tests.e2e.test_browser import browser  # noqa: F401  (the module's chromium; skips without it)

pytestmark = pytest.mark.browser
from playwright.sync_api import expect  # noqa: E402

from tests.ui_server import PASSWORDS, SLOW_LOAD, running_studio, seed  # noqa: E402

WRITING = ["Browse", "My queue", "Record", "Task", "Overview"]
CURATING = ["Browse", "My queue", "Record", "Task", "Review", "Assignments", "Overview", "Generate", "Diversity",
            "Import & export", "Quality", "Templates", "Publish & train", "Runs"]
SHOWN = {"ann": WRITING, "cura": CURATING, "root": CURATING[:-1] + ["Admin", "Runs"]}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('roles') / 'studio.db'}"
    seed(url)
    with running_studio(url) as running:
        yield running


def visible_tabs(page) -> list[str]:
    tabs = page.get_by_role("tab")
    return [tabs.nth(i).inner_text().strip() for i in range(tabs.count()) if tabs.nth(i).is_visible()]


@pytest.mark.parametrize("name", ["ann", "cura", "root"])
def test_each_role_sees_the_tabs_it_may_use_and_no_others(browser, studio, name):  # noqa: F811
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.goto(studio.url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#signed-in .role")).to_be_visible(timeout=60_000)
    # the role tabs appear with the page load's answer: wait for the last one this role should see
    expect(page.get_by_role("tab", name=SHOWN[name][-1], exact=True)).to_be_visible(timeout=60_000)
    assert visible_tabs(page) == SHOWN[name]
    # inside the tabs both share, the buttons too: review and bulk actions are a curator's
    reviews = name != "ann"
    page.get_by_role("tab", name="Record", exact=True).click()
    expect(page.locator("#record-save")).to_be_visible()
    expect(page.locator("#record-approve")).to_be_visible(visible=reviews)
    expect(page.locator("#record-discard")).to_be_visible(visible=reviews)
    page.get_by_role("tab", name="Browse", exact=True).click()
    expect(page.locator("#browse-bulk")).to_be_visible(visible=reviews, timeout=30_000)
    if name == "ann":  # what is not shown is not in the page's tab strip either, and the tab it has opens
        assert page.get_by_role("tab", name="Review", exact=True).count() == 0
        page.get_by_role("tab", name="Overview", exact=True).click()
        expect(page.locator("#tab-overview_tab")).to_be_visible()
    context.close()


def test_the_server_still_refuses_a_hidden_tab_to_an_annotator(studio):
    from gradio_client import Client

    client = Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)
    with pytest.raises(Exception, match="curator"):
        client.predict("demo", "Meaning (embeddings)", "Instruction + input", 0.95, api_name="/diversity_run")
