"""The annotator and curator flow in a real browser (Debian's chromium through Playwright)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from tests.ui_server import PASSWORDS, running_studio, seed  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
XSS_OUTPUT = "<img src=x onerror=alert(1)> and <script>alert(2)</script>"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from curation.services import annotation
    from curation.services.permissions import Actor
    from db.engine import open_database, session_for
    from db.models import Role

    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    with session_for(engine) as session:
        annotation.save_record(session, Actor("ben", Role.annotator), annotation.RecordForm(
            "demo", "Repeat the markup exactly as given.", outputs=[XSS_OUTPUT], category="xss"))
        session.commit()
    engine.dispose()
    with running_studio(url) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def sign_in(browser, studio, name: str) -> tuple[Page, list[str]]:
    """A fresh browser context signed in as `name`; the list collects any dialog that opens."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(studio.url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#signed-in")).to_contain_text(f"Signed in as {name}", timeout=60_000)
    return page, dialogs


def box(page: Page, elem_id: str):
    return page.locator(f"#{elem_id}").get_by_role("textbox")


def choose(page: Page, elem_id: str, *options: str) -> None:
    """Pick options of a dropdown, one after the other (the options of one opened before may still be closing:
    this one's are those listed under it)."""
    for option in options:
        page.locator(f"#{elem_id} input").click()
        page.locator(f"#{elem_id}").get_by_role("option", name=option, exact=True).click()


def add_example(page: Page, kind: str, source: str, output: str, explanation: str) -> None:
    page.locator("#example-kind").get_by_label(kind).check()
    box(page, "example-input").fill(source)
    box(page, "example-output").fill(output)
    box(page, "example-explanation").fill(explanation)
    page.locator("#example-add").click()
    expect(box(page, "example-input")).to_have_value("", timeout=10_000)


def test_write_save_reload_submit_approve_and_see_the_history(studio, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page, dialogs = sign_in(browser, studio, "ann")
    page.get_by_role("tab", name="Task").click()
    box(page, "task-name").fill("task_country_capital")
    box(page, "task-definition").fill("Given the name of a country, answer with the name of its **capital city**.")
    box(page, "task-emphasis").fill("Use the English name of the city.")
    add_example(page, "positive", "France", "Paris", "Paris is the capital of France.")
    add_example(page, "positive", "Japan", "Tokyo", "Tokyo is the capital of Japan.")
    add_example(page, "negative", "Italy", "Milan", "Milan is a large city, but the capital of Italy is Rome.")
    expect(page.locator("#task-examples-title")).to_contain_text("2 positive, 1 negative")
    page.get_by_text("Paste instances from a spreadsheet").click()
    box(page, "task-paste").fill("\n".join(f"Country {n}\tCapital {n}" for n in range(26)))
    page.locator("#task-paste-add").click()
    expect(page.locator("#task-instances-title")).to_contain_text("Instances · 26", timeout=10_000)
    expect(page.locator("#task-checks")).to_contain_text("passes every check")
    page.keyboard.press("Control+s")
    expect(page.locator("#task-status")).to_contain_text("version 1", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "task-editor.png"), full_page=True)

    page.reload()
    expect(page.locator("#signed-in")).to_contain_text("Signed in as ann", timeout=60_000)
    page.get_by_role("tab", name="Task").click()
    expect(page.locator("#task-status")).to_contain_text("version 1", timeout=15_000)
    expect(box(page, "task-name")).to_have_value("task_country_capital")
    expect(box(page, "task-definition")).to_have_value(
        "Given the name of a country, answer with the name of its **capital city**.")
    expect(page.locator("#task-examples-title")).to_contain_text("2 positive, 1 negative")
    expect(page.locator("#task-instances-title")).to_contain_text("Instances · 26")
    expect(page.locator("#task-examples")).to_contain_text("Milan is a large city")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#task-status")).to_contain_text("submitted", timeout=15_000)

    curator, curator_dialogs = sign_in(browser, studio, "cura")
    curator.get_by_role("tab", name="Review").click()
    expect(curator.locator("#review-item")).to_contain_text("task_country_capital", timeout=15_000)
    expect(curator.locator("#review-item")).to_contain_text("Milan is a large city")
    curator.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)
    curator.locator("#review-approve").click()
    expect(curator.locator("#review-count")).to_contain_text("Nothing waiting", timeout=15_000)

    page.reload()
    expect(page.locator("#signed-in")).to_contain_text("Signed in as ann", timeout=60_000)
    page.get_by_role("tab", name="Task").click()
    history = page.locator("#task-history")
    expect(history).to_contain_text("approved", timeout=15_000)
    expect(history.locator(".rev").nth(0)).to_contain_text("cura")
    expect(history.locator(".rev").nth(0)).to_contain_text("approved")
    expect(history.locator(".rev").nth(1)).to_contain_text("ann")
    expect(history.locator(".rev").nth(1)).to_contain_text("submitted")
    page.screenshot(path=str(ARTIFACTS / "task-history.png"), full_page=True)
    assert dialogs == [] and curator_dialogs == []


@pytest.fixture(scope="module")
def studio_tokenizer(tmp_path_factory):
    from tests.tiny_model import build_tiny_tokenizer

    return str(build_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer")))


def test_markup_in_a_record_shows_as_text_and_runs_nothing(studio, browser, studio_tokenizer):
    ARTIFACTS.mkdir(exist_ok=True)
    page, dialogs = sign_in(browser, studio, "cura")
    open_record(page, "Repeat the markup exactly as given.")
    expect(page.locator("#browse-table")).to_contain_text("<img src=x onerror=alert(1)>")
    expect(page.locator("#record-status")).to_contain_text("Record #", timeout=15_000)
    expect(box(page, "record-output")).to_have_value(XSS_OUTPUT)
    expect(page.locator("#record-history")).to_contain_text("<script>alert(2)</script>")
    expect(page.locator("#record-preview").get_by_role("textbox")).to_have_value(
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        f"\n\n### Instruction:\nRepeat the markup exactly as given.\n\n### Response:\n{XSS_OUTPUT}")
    page.locator("#record-template").get_by_label("Tokenizer chat template").check()
    box(page, "record-tokenizer").fill(studio_tokenizer)
    box(page, "record-tokenizer").press("Enter")
    expect(page.locator("#record-tokens")).to_contain_text("tokens with", timeout=20_000)
    expect(page.locator("#record-preview").get_by_role("textbox")).to_have_value(
        f"<|im_start|>user\nRepeat the markup exactly as given.<|im_end|>\n<|im_start|>assistant\n{XSS_OUTPUT}"
        "<|im_end|>\n")
    page.wait_for_timeout(500)
    assert page.locator("img[src='x']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "record-editor.png"), full_page=True)

    page.get_by_role("tab", name="Task").click()
    box(page, "task-definition").press_sequentially("**Say** <img src=x onerror=alert(3)> ![r](http://example.com/a.png)")
    page.get_by_text("Definition as annotators will read it").click()
    view = page.locator("#task-definition-view")
    expect(view).to_contain_text("<img src=x onerror=alert(3)>", timeout=10_000)
    expect(view.locator("strong")).to_have_text("Say")
    page.wait_for_timeout(500)
    assert page.locator("img[src='x'], img[src*='example.com']").count() == 0
    assert dialogs == []


def open_record(page: Page, instruction: str) -> None:
    page.get_by_role("tab", name="Browse").click()
    box(page, "browse-text").fill(instruction)
    box(page, "browse-text").press("Enter")
    page.locator("#browse-table").get_by_text(instruction).filter(visible=True).first.click()
    expect(box(page, "record-instruction")).to_have_value(instruction, timeout=15_000)


DRAFT_KEY = "instruct-studio-record"  # the record editor's BrowserState: the form, kept in localStorage


def wait_for_kept_draft(page, before, settle_ms: int = 1500) -> None:
    """Wait until the browser has stored a draft written after `before`, then for the last keystrokes' answer.

    The draft is stored when the server answers the form's change, which on a busy machine takes longer than
    a fixed pause. The value is encrypted (with a fresh nonce on every write, so it never holds still): the
    test can only see that a new one arrived.
    """
    page.wait_for_function("([key, before]) => localStorage.getItem(key) !== before", arg=[DRAFT_KEY, before],
                           timeout=20_000)
    page.wait_for_timeout(settle_ms)


def test_two_people_save_the_same_record_and_the_second_keeps_their_edit(studio, browser):
    ann, _ = sign_in(browser, studio, "ann")
    ann.get_by_role("tab", name="Record").click()
    box(ann, "record-instruction").press_sequentially("Name the largest ocean.")
    before = ann.evaluate("key => localStorage.getItem(key)", DRAFT_KEY)
    box(ann, "record-output").press_sequentially("The Pacific")
    expect(ann.locator("#record-checks")).to_contain_text("passes every check", timeout=10_000)
    wait_for_kept_draft(ann, before)
    ann.reload()  # unsaved typing survives a reload
    expect(ann.locator("#signed-in")).to_contain_text("Signed in as ann", timeout=60_000)
    ann.get_by_role("tab", name="Record").click()
    expect(box(ann, "record-output")).to_have_value("The Pacific", timeout=15_000)
    ann.keyboard.press("Control+s")
    expect(ann.locator("#record-status")).to_contain_text("version 1", timeout=15_000)

    cura, _ = sign_in(browser, studio, "cura")
    open_record(cura, "Name the largest ocean.")
    box(cura, "record-output").fill("The Pacific Ocean")
    cura.locator("#record-save").click()
    expect(cura.locator("#record-status")).to_contain_text("version 2", timeout=15_000)

    box(ann, "record-output").fill("The Pacific, by far")
    ann.locator("#record-save").click()
    toast = ann.get_by_text("Not saved: cura saved this record first")
    expect(toast).to_be_visible(timeout=15_000)
    expect(ann.get_by_text("Their change: Output: now “The Pacific Ocean”")).to_be_visible()
    expect(box(ann, "record-output")).to_have_value("The Pacific, by far")
    expect(ann.locator("#record-status")).to_contain_text("version 1")
    ann.wait_for_timeout(800)  # let the toast finish fading in
    ann.screenshot(path=str(ARTIFACTS / "conflict.png"), full_page=False)


def submitted_record(studio, instruction: str, output: str) -> int:
    """A record ann wrote and submitted, straight through the services (as another browser would)."""
    from curation.services import annotation
    from curation.services.permissions import Actor
    from db.engine import open_database, session_for
    from db.models import Role

    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        ann = Actor("ann", Role.annotator)
        view = annotation.save_record(session, ann, annotation.RecordForm("demo", instruction, outputs=[output]))
        annotation.change_record(session, ann, view.id, "submit", expected_version=view.version)
        session.commit()
    engine.dispose()
    return view.id


def no_error_badges(page: Page, *elem_ids: str) -> None:
    for elem_id in elem_ids:
        expect(page.locator(f"#{elem_id} .error")).to_have_count(0)
        expect(page.locator(f"#{elem_id}")).not_to_contain_text("Error")


def test_a_refused_action_leaves_the_page_as_it_was_and_says_why_once(studio, browser):
    submitted_record(studio, "Name the longest river in Africa.", "The Nile")
    cura, dialogs = sign_in(browser, studio, "cura")
    cura.get_by_role("tab", name="Review").click()
    expect(cura.locator("#review-item")).to_contain_text("Name the longest river in Africa.", timeout=15_000)
    count_before = cura.locator("#review-count").inner_text()
    cura.locator("#review-reject").click()  # no note: refused
    expect(cura.get_by_text("Say why it is rejected: the annotator sees the reason.")).to_have_count(1, timeout=15_000)
    cura.wait_for_timeout(1500)  # the follow-up that clears the badges has run by now
    expect(cura.locator("#review-item")).to_contain_text("Name the longest river in Africa.")
    expect(cura.locator("#review-queue")).to_contain_text("Name the longest river in Africa.")
    expect(cura.locator("#review-count")).to_have_text(count_before)
    expect(box(cura, "review-note")).to_be_editable()
    no_error_badges(cura, "review-item", "review-queue", "review-count", "review-note")
    cura.screenshot(path=str(ARTIFACTS / "refused-review.png"), full_page=False)

    root, _ = sign_in(browser, studio, "root")
    root.get_by_role("tab", name="Admin").click()
    expect(root.locator("#admin-users")).to_contain_text("cura", timeout=15_000)
    box(root, "admin-user-name").fill("zed")
    box(root, "admin-user-password").fill("short")
    root.get_by_role("button", name="Add user").click()
    expect(root.get_by_text("The password must have at least 8 characters.")).to_have_count(1, timeout=15_000)
    root.wait_for_timeout(1500)
    expect(root.locator("#admin-users")).to_contain_text("cura")
    expect(root.locator("#admin-datasets")).to_contain_text("demo")
    box(root, "admin-user-password").fill("long-enough-password")  # not covered: it takes typing at once
    no_error_badges(root, "admin-users", "admin-datasets", "admin-user-password")
    assert dialogs == []
