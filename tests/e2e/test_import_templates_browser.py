"""Issue 12's acceptance, in a real browser: a curator uploads a CSV, maps its columns, imports, and downloads the
rejected rows; then imports a labelled dataset (SuperGLUE RTE, string labels) from the loopback Hub, maps its
string labels to the ids PromptSource's templates expect, previews an RTE template from PromptSource, applies 3
templates, and sees the records in Browse with their template named."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, REPO, requires_shared_data
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, box, choose  # noqa: F401  (skips without chromium)

pytestmark = [pytest.mark.browser, pytest.mark.slow, requires_shared_data]

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.hub_server import HubServer  # noqa: E402
from tests.template_mappings import FITS  # noqa: E402
from tests.ui_server import PASSWORDS, free_port, seed  # noqa: E402

TOKEN = "hf_templates_token"
RTE = FITS["rte"]
PUSH = r"""
import json, sys
import datasets

rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                              "label": datasets.ClassLabel(names=["entailment", "not_entailment"]),
                              "idx": datasets.Value("int32")})
datasets.DatasetDict({"validation": datasets.Dataset.from_list(rows, features=features)}).push_to_hub("tester/rte")
"""
APPLIED = ["MNLI crowdsource", "can we infer", "does it follow that"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The app in its own process (its Hub clients reach the loopback Hub, which holds tester/rte)."""
    from tests.test_hub_import import wait_until_serving

    folder = tmp_path_factory.mktemp("import-templates-browser")
    database = f"sqlite:///{folder / 'studio.db'}"
    seed(database)
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        env = hub.client_env(token=TOKEN) | {"HF_HOME": str(folder / "hf")}
        pushed = subprocess.run([sys.executable, "-c", PUSH, str(RTE.data_path)], env=env, capture_output=True,
                                text=True, timeout=300)
        assert pushed.returncode == 0, pushed.stderr
        port = free_port()
        process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO,
                                   env=env | {"DATABASE_URL": database, "GRADIO_ANALYTICS_ENABLED": "False"},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_serving(url, process)
            yield {"url": url, "database": database}
        finally:
            process.terminate()
            process.wait(30)


def type_choice(page, elem_id: str, value: str) -> None:
    """Type a value a dropdown does not list (its allow_custom_value) and confirm it."""
    field = page.locator(f"#{elem_id} input")
    field.fill(value)
    field.press("Enter")


def stored(database: str, dataset: str) -> list[dict]:
    from db import repo
    from db.engine import open_database, session_for

    engine = open_database(database)
    with session_for(engine) as session:
        found = repo.get_dataset(session, dataset)
        records = [{"instruction": r.instruction, "outputs": r.outputs, "origin": r.origin, "provenance": r.provenance}
                   for r in repo.iter_records(session, found.id)] if found else []
    engine.dispose()
    return records


def sign_in(browser, url: str, name: str):
    context = browser.new_context(viewport={"width": 1600, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#signed-in")).to_contain_text(f"Signed in as {name}", timeout=30_000)
    return page, dialogs


def import_a_csv_and_download_its_rejected_rows(page, tmp_path) -> None:
    page.get_by_role("tab", name="Import & export").click()
    page.locator("#import-files input[type=file]").set_input_files(str(FIXTURES / "table_small.csv"))
    expect(page.locator("#import-detected")).to_contain_text("has no instruction column", timeout=20_000)
    for field, column in (("instruction", "question"), ("input", "context"), ("output", "answer"),
                          ("category", "topic")):
        choose(page, f"import-map-{field}", column)
    expect(page.locator("#import-detected")).to_contain_text("3 rows read, 2 records, 1 rejected", timeout=20_000)
    type_choice(page, "import-dataset", "tables")
    page.locator("#import-run").click()
    expect(page.locator("#import-report")).to_contain_text("Imported 2 records into tables", timeout=30_000)
    expect(page.locator("#import-report")).to_contain_text("empty instruction")
    with page.expect_download() as download:
        page.locator("#import-rejected-download").click()
    saved = tmp_path / "rejected.csv"
    download.value.save_as(saved)
    with open(saved, encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [["source", "location", "reason"],
                                            ["table_small.csv", "line 4", "empty instruction"]]


def import_rte_from_the_hub(page) -> None:
    page.reload()
    expect(page.locator("#signed-in")).to_contain_text("Signed in as cura", timeout=30_000)
    page.get_by_role("tab", name="Import & export").click()
    box(page, "import-hub-repo").fill("tester/rte")
    box(page, "import-hub-split").fill("validation")
    box(page, "import-hub-token").fill(TOKEN)
    for field, column in (("instruction", "premise"), ("input", "hypothesis"), ("output", "label")):
        type_choice(page, f"import-map-{field}", column)
    type_choice(page, "import-dataset", "rte-hub")
    page.locator("#import-hub-run").click()
    expect(page.locator("#import-report")).to_contain_text("Imported 277 records into rte-hub", timeout=60_000)


def flow(page, studio, tmp_path) -> None:
    import_a_csv_and_download_its_rejected_rows(page, tmp_path)
    import_rte_from_the_hub(page)
    assert stored(studio["database"], "rte-hub")[0]["outputs"] == ["not_entailment"]  # labels as the Hub names them

    page.reload()
    expect(page.locator("#signed-in")).to_contain_text("Signed in as cura", timeout=30_000)
    page.get_by_role("tab", name="Templates").click()
    page.get_by_text("Import PromptSource templates.yaml or FLAN templates.py").click()
    page.locator("#templates-upload input[type=file]").set_input_files(str(RTE.templates_path))
    expect(page.locator("#templates-upload")).to_contain_text("templates.yaml", timeout=15_000)
    page.locator("#templates-import").click()
    expect(page.locator("#templates-status")).to_contain_text(
        "Imported 10 templates into super_glue/rte: 10 new", timeout=20_000)

    choose(page, "templates-open", "can we infer · v1 · promptsource")
    expect(box(page, "templates-name")).to_have_value("can we infer", timeout=15_000)
    choose(page, "templates-source", "rte-hub")
    expect(page.locator("#templates-source-info")).to_contain_text("rte-hub: 277 rows", timeout=20_000)
    box(page, "templates-fields").fill("premise = instruction\nhypothesis = input\nlabel = output")
    page.locator("#templates-read-source").click()
    labels = page.locator("#templates-labels")
    # The string labels beside the ids the template indexes its answer choices with, and what each id says.
    expect(labels).to_contain_text("not_entailment", timeout=20_000)
    expect(labels).to_contain_text(re.compile(r"\bentailment\s+146\s+0\s+Yes"))
    expect(labels).to_contain_text(re.compile(r"not_entailment\s+131\s+1\s+No"))

    page.locator("#templates-preview").click()
    preview = page.locator("#templates-preview-box")
    expect(preview.locator(".preview-row")).to_have_count(5, timeout=20_000)
    expect(preview).to_contain_text("Suppose Dana Reeve, the widow of the actor Christopher Reeve")
    expect(preview.locator(".preview-target").first).to_contain_text("No")
    page.screenshot(path=str(ARTIFACTS / "templates-preview.png"), full_page=True)

    for name in APPLIED:
        choose(page, "templates-chosen", f"{name} · v1 · promptsource")
    box(page, "templates-target").fill("rte-instructions")
    page.locator("#templates-apply").click()
    expect(page.locator("#templates-applied")).to_contain_text(
        "277 records made in dataset rte-instructions from 277 rows", timeout=30_000)

    page.reload()  # Browse lists the datasets there were when the page loaded
    expect(page.locator("#signed-in")).to_contain_text("Signed in as cura", timeout=30_000)
    page.get_by_role("tab", name="Browse").click()
    choose(page, "browse-dataset", "rte-instructions")
    expect(page.locator("#browse-info")).to_contain_text("of 277 records", timeout=20_000)
    first = "Dana Reeve, the widow of the actor Christopher Reeve"
    box(page, "browse-text").fill("Dana Reeve")  # row 1 of the source: the newest records come first
    box(page, "browse-text").press("Enter")
    expect(page.locator("#browse-info")).to_contain_text("of 1 records", timeout=20_000)
    # The table names the template each record was made by.
    expect(page.locator("#browse-table")).to_contain_text("template “MNLI crowdsource”")
    page.locator("#browse-table").get_by_text(first).filter(visible=True).first.click()
    provenance = page.locator("#record-provenance")
    expect(provenance).to_contain_text("Made by a template from dataset rte-hub, row 1", timeout=20_000)
    expect(provenance).to_contain_text("Template: “MNLI crowdsource” v1 · promptsource super_glue/rte")
    page.screenshot(path=str(ARTIFACTS / "templates-browse.png"), full_page=True)


def test_a_curator_imports_maps_previews_applies_and_browses(studio, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, dialogs = sign_in(browser, studio["url"], "cura")
        try:
            flow(page, studio, tmp_path)
        except Exception as failed:  # the page as it was, and any message it showed
            page.screenshot(path=str(ARTIFACTS / "templates-failed.png"), full_page=True)
            raise AssertionError(f"{failed}\nmessages on the page: {page.locator('.toast-wrap').all_inner_texts()}")
        browser.close()
    assert dialogs == []
    records = stored(studio["database"], "rte-instructions")
    assert len(records) == 277 and {r["origin"] for r in records} == {"template"}
    # Round robin: row n went through the (n-1) mod 3-th template chosen.
    assert [r["provenance"]["template"]["name"] for r in records[:4]] == [*APPLIED, APPLIED[0]]
    assert [r["provenance"]["source"]["row"] for r in records[:3]] == [1, 2, 3]
    assert json.dumps(records[0]["provenance"]["template"]["version"]) == "1"
