"""The Import & export tab through gradio_client, as a curator drives it: drop a table, see what it holds, map its
columns (remembered for the dataset), import, read the report and download the rejected rows; the same refusals as
the CLI with nothing written; and downloads of each export format, filtered."""
from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.conftest import FIXTURES  # noqa: E402
from tests.ui_server import PASSWORDS, running_studio, seed, SLOW_LOAD  # noqa: E402

NO_MAPPING = ["", "", "", "", ""]  # instruction, input, output, system, category
TABLE_MAPPING = ["question", "context", "answer", "", "topic"]
EXPORT_ROWS = [
    {"instruction": "Name the capital of Kenya.", "output": "Nairobi", "category": "geography"},
    {"instruction": "Name the capital of Peru.", "output": "", "category": "geography"},  # flagged: empty_output
    {"instruction": "Write a haiku about the rain on a roof.", "output": "Rain taps the roof.", "category": "poetry"},
]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('import-tab') / 'studio.db'}"
    seed(url)
    with running_studio(url) as running:
        yield running


@pytest.fixture(scope="module")
def clients(studio):
    return {name: Client(studio.url, auth=(name, PASSWORDS[name]), verbose=False, httpx_kwargs=SLOW_LOAD) for name in ("ann", "cura")}


def database(studio, dataset: str | None = None):
    """(table counts, the dataset's records as (instruction, input, outputs, category, source_line))."""
    from db import repo
    from db.engine import open_database, session_for

    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        found = repo.get_dataset(session, dataset) if dataset else None
        records = [(r.instruction, r.input, r.outputs, r.category, r.source_line)
                   for r in repo.iter_records(session, found.id)] if found else []
        counted = repo.table_counts(session)
    engine.dispose()
    return counted, records


def import_form(paths, dataset, *, format="auto", strict=False, keep=False, mapping=NO_MAPPING):
    return [[handle_file(str(p)) for p in paths], dataset, format, strict, keep, *mapping]


def test_a_table_is_previewed_mapped_imported_and_its_mapping_remembered(clients, studio):
    cura, table = clients["cura"], FIXTURES / "table_small.csv"
    detected, preview, *choices = cura.predict([handle_file(str(table))], "auto", *NO_MAPPING,
                                               api_name="/import_preview")
    assert detected == ("- **table_small.csv** — ⚠ has no instruction column: choose below which column holds "
                        "the instruction")
    assert preview["data"] == []
    assert [value for _, value in choices[0]["choices"]] == ["", "answer", "context", "question", "topic"]

    detected, preview, *_ = cura.predict([handle_file(str(table))], "auto", *TABLE_MAPPING, api_name="/import_preview")
    assert detected == ("- **table_small.csv** — `csv:alpaca`: 3 rows read, 2 records, 1 rejected "
                        "(first: line 4: empty instruction)")
    assert preview["data"] == [["table_small.csv", 2, "Add the numbers.", "3 and 4", "7", "", "math"],
                               ["table_small.csv", 3, "Name a colour of the sky.", "", "blue", "", "general"]]
    assert database(studio, "tables")[1] == []  # a preview writes nothing

    report, button, *_ = cura.predict(*import_form([table], "tables", mapping=TABLE_MAPPING), api_name="/import_files")
    assert "<b>Imported 2 records into tables</b> (a new dataset): 0 duplicates skipped, 1 row rejected." in report
    assert "<td>table_small.csv</td><td>line 4</td><td>empty instruction</td>" in report
    with open(button["value"], encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [["source", "location", "reason"],
                                            ["table_small.csv", "line 4", "empty instruction"]]
    assert database(studio, "tables")[1] == [("Add the numbers.", "3 and 4", ["7"], "math", 2),
                                              ("Name a colour of the sky.", "", ["blue"], "general", 3)]
    # Choosing the dataset again fills in its mapping; one with none leaves the boxes as they are.
    assert cura.predict("tables", *NO_MAPPING, api_name="/import_remembered_mapping") == tuple(TABLE_MAPPING)
    assert cura.predict("demo", "prompt", "", "", "", "", api_name="/import_remembered_mapping") == (
        "prompt", "", "", "", "")


def test_the_page_refuses_what_the_cli_refuses_and_writes_nothing(clients, studio, tmp_path, capsys):
    from curation.cli import main

    cura = clients["cura"]
    all_bad = tmp_path / "all_bad.jsonl"
    all_bad.write_text('{"instruction": "", "output": "a"}\n{"instruction": " ", "output": "b"}\n', encoding="utf-8")
    before = database(studio)[0]
    report, button, *_ = cura.predict(*import_form([all_bad], "demo"), api_name="/import_files")
    assert report.startswith("<div class=\"import-refused\"><b>Nothing was imported:</b> all 2 rows of all_bad.jsonl "
                             "were rejected.</div>")
    assert "<td>all_bad.jsonl</td><td>line 2</td><td>empty instruction</td>" in report
    assert button["visible"] is True

    report, *_ = cura.predict(*import_form([FIXTURES / "dolly_small.jsonl", FIXTURES / "alpaca_small.json"], "demo",
                                             strict=True), api_name="/import_files")
    assert "<b>Nothing was imported:</b> Strict is on and 2 row(s) were rejected." in report
    assert "<td>alpaca_small.json</td><td>index 5</td><td>&#x27;input&#x27; must be text, not list</td>" in report

    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(b'[{"instruction": "a", "output": "b"}, {"instr')
    with pytest.raises(AppError) as refused:
        cura.predict(*import_form([FIXTURES / "dolly_small.jsonl", truncated], "demo"), api_name="/import_files")
    assert str(refused.value) == ("Nothing was imported: truncated.json: is not valid JSON "
                                  "(it ends early at line 1: truncated?).")
    assert database(studio)[0] == before

    # The CLI: a file whose every row is rejected exits 2, naming the first reasons.
    assert main(["--db", studio.database_url, "import", str(all_bad), "--dataset", "demo"]) == 2
    assert capsys.readouterr().err == (f"error: {all_bad}: all 2 row(s) rejected, nothing imported "
                                       "(first: line 1: empty instruction; line 2: empty instruction)\n")
    assert database(studio)[0] == before


def test_annotators_neither_import_nor_export(clients, studio):
    ann = clients["ann"]
    for api, args in (("/import_files", ([], "demo", "auto", False, False, *NO_MAPPING)),
                      ("/import_hub", ("a/b", "", "train", "", "", "demo", "auto", False, False, *NO_MAPPING)),
                      ("/import_export", ("demo", "alpaca", ["draft"], "", ""))):
        with pytest.raises(AppError) as refused:
            ann.predict(*args, api_name=api)
        assert str(refused.value) == "Not allowed: this needs the curator role."


def test_the_hub_form_says_what_is_wrong_in_words(clients):
    cura = clients["cura"]
    for repo, message in (("", "Type the Hub dataset's repo id, like owner/name."),
                          ("just-a-name", "'just-a-name' is not a Hub dataset's repo id: write it as owner/name."),
                          # These tests run offline: the page says so rather than waiting on a network.
                          ("tester/labelled", "Nothing was imported: reading tester/labelled from the Hub failed: "
                                              "this machine is offline (HF_HUB_OFFLINE is set).")):
        with pytest.raises(AppError) as refused:
            cura.predict(repo, "", "train", "", "", "demo", "auto", False, False, *NO_MAPPING, api_name="/import_hub")
        assert str(refused.value) == message


def exported(cura, *filters, format="alpaca"):
    """(the summary line, the rows of the downloaded file)."""
    button, line = cura.predict("exports", format, *filters, api_name="/import_export")
    path = button["value"]
    if format == "parquet":
        import pyarrow.parquet as pq

        return line, pq.read_table(path).select(["instruction", "output", "category"]).to_pylist()
    with open(path, encoding="utf-8") as handle:
        return line, [json.loads(line) for line in handle]


def test_exports_download_in_each_format_filtered_by_status_category_and_flag(clients, studio, tmp_path):
    cura = clients["cura"]
    rows = tmp_path / "exports.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in EXPORT_ROWS), encoding="utf-8")
    cura.predict(*import_form([rows], "exports"), api_name="/import_files")
    drafts = ["draft", "submitted", "approved", "rejected"]

    line, got = exported(cura, drafts, "geography", "")
    assert line == "Exported **2** records of exports as alpaca: `exports-alpaca.jsonl`."
    assert got == [{"instruction": "Name the capital of Kenya.", "input": "", "output": "Nairobi"},
                   {"instruction": "Name the capital of Peru.", "input": "", "output": ""}]
    assert exported(cura, drafts, "", "empty_output", format="messages")[1] == [{"messages": [
        {"role": "user", "content": "Name the capital of Peru."}, {"role": "assistant", "content": ""}]}]
    assert exported(cura, drafts, "poetry", "", format="parquet")[1] == [
        {"instruction": "Write a haiku about the rain on a roof.", "output": "Rain taps the roof.",
         "category": "poetry"}]
    assert cura.predict("exports", api_name="/import_export_categories")["choices"] == [
        ["", ""], ["geography", "geography"], ["poetry", "poetry"]]
    cura.predict(*import_form([FIXTURES / "sni_small_task.json"], "sni-tasks"), api_name="/import_files")
    button, line = cura.predict("sni-tasks", "sni", drafts, "", "", api_name="/import_export")
    assert line.startswith("Exported **1** task of sni-tasks as sni: `")
    with open(button["value"], encoding="utf-8") as handle:
        assert "Definition" in json.load(handle)
    for filters, message in (((["approved"], "", ""), "No record of exports matches these filters: nothing to export."),
                             ((drafts, "", ""), "Dataset 'exports' has no Super-NaturalInstructions tasks to export.")):
        with pytest.raises(AppError) as refused:
            cura.predict("exports", "sni" if filters[0] == drafts else "alpaca", *filters, api_name="/import_export")
        assert str(refused.value) == message
