"""The app through gradio_client, as a script would drive it: every public endpoint, role rules, conflicts."""
from __future__ import annotations

import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.ui_server import PASSWORDS, running_studio, seed, SLOW_LOAD  # noqa: E402

PUBLIC_ENDPOINTS = {
    "/browse", "/my_queue", "/my_queue_next", "/my_queue_save", "/my_queue_submit", "/my_queue_skip",
    "/assign_split", "/assign_move", "/assign_progress", "/reconcile_keep", "/overview_agreement", "/record_comment", "/record_tag_add",
    "/browse_bulk_apply", "/browse_bulk_undo", "/record_find_similar", "/guidelines_save", "/record_open", "/record_save", "/record_submit", "/record_approve", "/record_reject",
    "/record_discard", "/task_open", "/task_save", "/task_submit", "/task_approve", "/task_reject", "/task_discard",
    "/review_queue", "/review_open", "/review_approve", "/review_reject", "/overview", "/admin_add_user",
    "/admin_set_role", "/admin_create_dataset", "/record_save_anyway",
}
EXAMPLES = {"headers": ["Kind", "Input", "Output", "Explanation"], "data": [
    ["positive", "France", "Paris", "Paris is the capital of France."],
    ["positive", "Japan", "Tokyo", "Tokyo is the capital of Japan."],
    ["negative", "Italy", "Milan", "Milan is not the capital of Italy; Rome is."]]}


def instances(n: int) -> dict:
    return {"headers": ["ID", "Input", "Output", "Other outputs"],
            "data": [[f"cap-{i}", f"Country {i}", f"Capital {i}", ""] for i in range(n)]}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'studio.db'}"
    seed(url)
    with running_studio(url, max_upload_mb=1) as running:
        yield running


@pytest.fixture(scope="module")
def clients(studio):
    return {name: Client(studio.url, auth=(name, password), verbose=False, httpx_kwargs=SLOW_LOAD) for name, password in PASSWORDS.items()}


def value(update):
    """The value of a component in an endpoint's answer (a plain value or a gr.update dict)."""
    return update["value"] if isinstance(update, dict) and "__type__" in update else update


def save(client, record_id=None, version=None, *, output="Paris", instruction="Name the capital of France.",
         api="/record_save", **extra):
    return client.predict(record_id, version, "demo", "geography", "", instruction, "", output, "", *extra.values(),
                          api_name=api)


def test_the_api_lists_exactly_the_public_actions(clients):
    from curation.ui.app import tab_modules

    api = clients["ann"].view_api(return_format="dict", print_info=False)
    named = set(api["named_endpoints"])
    assert PUBLIC_ENDPOINTS <= named
    plug_in_prefixes = tuple("/" + m.__name__.rsplit(".", 1)[-1].removesuffix("_tab") + "_" for m in tab_modules())
    assert all(name.startswith(plug_in_prefixes) for name in named - PUBLIC_ENDPOINTS), named - PUBLIC_ENDPOINTS
    assert api["unnamed_endpoints"] == {}


def test_no_client_gets_in_without_signing_in(studio):
    with pytest.raises(Exception):
        Client(studio.url, verbose=False, httpx_kwargs=SLOW_LOAD).predict("Records", "", "", "", "", "", "Last updated", 1, api_name="/browse")
    with pytest.raises(Exception):
        Client(studio.url, auth=("ann", "wrong-password"), verbose=False, httpx_kwargs=SLOW_LOAD)


def test_annotator_saves_submits_and_cannot_approve_then_curator_approves(clients):
    ann, cura = clients["ann"], clients["cura"]
    saved = save(ann)
    record_id, version = saved[0], saved[1]
    assert version == 1 and "draft" in saved[2]
    saved = save(ann, record_id, version, output="Paris.")
    assert saved[1:2] + saved[3:10] + saved[11:12] == (
        2, "demo", "geography", "", "Name the capital of France.", "", "Paris.", "", "edit")
    submitted = save(ann, record_id, 2, output="Paris.", api="/record_submit")
    assert submitted[1] == 3 and "submitted" in submitted[2]
    with pytest.raises(AppError, match="Not allowed: only a curator can approve"):
        save(ann, record_id, 3, output="Paris.", api="/record_approve")
    with pytest.raises(AppError, match="Not allowed: this item is submitted"):
        save(ann, record_id, 3, output="Lyon")
    approved = save(cura, record_id, 3, output="Paris.", api="/record_approve")
    assert approved[1] == 4 and "approved" in approved[2]
    opened = ann.predict(record_id, api_name="/record_open")
    assert opened[11] == "read-only"
    history = opened[10]
    assert history.index("approved") < history.index("submitted") < history.index("edited") < history.index("created")
    assert "<del>Paris</del>" not in history and "<ins>.</ins>" in history


def test_annotators_cannot_touch_each_others_drafts_or_admin(clients):
    record_id = save(clients["ann"], instruction="Who painted the Mona Lisa?", output="Leonardo da Vinci")[0]
    with pytest.raises(AppError, match="belongs to ann; annotators edit only their own"):
        save(clients["ben"], record_id, 1, instruction="Who painted the Mona Lisa?", output="Raphael")
    with pytest.raises(AppError, match="only an admin manages users"):
        clients["cura"].predict("eve", "admin", "eve-password", api_name="/admin_add_user")
    with pytest.raises(AppError, match="this needs the curator role"):
        clients["ann"].predict("", api_name="/review_queue")
    users, _, _ = clients["root"].predict("eve", "annotator", "eve-password", api_name="/admin_add_user")
    assert ["eve", "annotator"] in [row[:2] for row in users["data"]]


def test_the_second_save_of_a_version_is_refused_with_their_change(clients):
    boiling = "At what temperature does water boil at sea level?"
    record_id = save(clients["ann"], instruction=boiling, output="100 °C")[0]
    save(clients["cura"], record_id, 1, instruction=boiling, output="100 °C (212 °F)")
    with pytest.raises(AppError) as refused:
        save(clients["ann"], record_id, 1, instruction=boiling, output="100 degrees")
    message = str(refused.value)
    assert "Not saved: cura saved this record first (now version 2)" in message
    assert "Their change: Output: now “100 °C (212 °F)”" in message
    assert value(clients["ann"].predict(record_id, api_name="/record_open")[8]) == "100 °C (212 °F)"


def test_a_rejected_record_shows_the_note_and_can_be_resubmitted(clients):
    ann, cura = clients["ann"], clients["cura"]
    record_id = save(ann, instruction="List three primary colors.", output="red, blue, yellow")[0]
    save(ann, record_id, 1, instruction="List three primary colors.", output="red, blue, yellow", api="/record_submit")
    with pytest.raises(AppError, match="Say why it is rejected"):
        save(cura, record_id, 2, instruction="List three primary colors.", output="red, blue, yellow",
             api="/record_reject", note="")
    save(cura, record_id, 2, instruction="List three primary colors.", output="red, blue, yellow",
         api="/record_reject", note="Say which color model")
    opened = ann.predict(record_id, api_name="/record_open")
    assert "rejected" in opened[2] and "Say which color model" in opened[2]
    discarded = save(cura, record_id, 3, instruction="List three primary colors.", output="red, blue, yellow",
                     api="/record_discard")
    assert "discarded" in discarded[2]


def test_task_written_through_the_api_is_reviewed_in_the_queue(clients):
    ann, cura = clients["ann"], clients["cura"]
    fields = ["demo", "task_capitals", "Given a country, answer with its capital city.", "", "",
              ["Question Answering"], ["Geography"], EXAMPLES, instances(26)]
    saved = ann.predict(None, None, *fields, api_name="/task_save")
    task_id = saved[0]
    assert saved[1] == 1 and len(value(saved[11])["data"]) == 26 and len(value(saved[10])["data"]) == 3
    opened = ann.predict(task_id, api_name="/task_open")
    assert value(opened[11])["data"][25][:3] == ["cap-25", "Country 25", "Capital 25"]
    submitted = ann.predict(task_id, 1, *fields, api_name="/task_submit")
    assert "submitted" in submitted[2]
    with pytest.raises(AppError, match="only a curator can approve"):
        ann.predict(task_id, 2, *fields, api_name="/task_approve")
    queue, summary, item, kind, item_id, version, history, _ = cura.predict("demo", api_name="/review_queue")
    assert ["task", task_id] in [row[:2] for row in queue["data"]]
    opened = cura.predict("task", task_id, api_name="/review_open")
    assert "Given a country, answer with its capital city." in opened[0] and opened[3] == 2
    after = cura.predict("demo", "task", task_id, 2, api_name="/review_approve")
    assert ["task", task_id] not in [row[:2] for row in after[0]["data"]]
    assert "approved" in cura.predict(task_id, api_name="/task_open")[2]
    assert cura.predict(task_id, api_name="/task_open")[14] == "edit"
    assert ann.predict(task_id, api_name="/task_open")[14] == "read-only"
    table, page, info = cura.predict("Records", "demo", "approved", "", "ann", "Country 2", "Oldest", 1,
                                     api_name="/browse")
    assert "of **7** records" in info  # Country 2 and Country 20..25
    task_rows = cura.predict("Tasks", "demo", "", "Question Answering", "", "", "Newest", 1, api_name="/browse")[0]
    assert [row[1] for row in task_rows["data"]] == ["task_capitals"]


def test_browse_finds_records_by_quality_flag_and_a_fix_clears_it(clients):
    ann = clients["ann"]
    record_id = save(ann, instruction="Describe the image of the lighthouse.", output="")[0]
    clean_id = save(ann, instruction="Describe the lighthouse keeper's day.", output="He trims the wick at dusk.")[0]

    def found(flag):
        table, _, _ = ann.predict("Records", "demo", "", "", "", "lighthouse", "Oldest", 1, flag, api_name="/browse")
        return [row[0] for row in table["data"]]

    assert found("") == [record_id, clean_id]
    assert found("any") == [record_id]
    assert found("blacklisted_word") == found("empty_output") == [record_id]
    save(ann, record_id, 1, instruction="Describe the image of the lighthouse.", output="A white tower on a rock.")
    assert found("empty_output") == []
    assert found("any") == [record_id]


def test_a_task_rejected_then_discarded(clients):
    ann, cura = clients["ann"], clients["cura"]
    fields = ["demo", "task_bad", "Answer.", "", "", [], [], EXAMPLES, instances(2)]
    task_id = ann.predict(None, None, *fields, api_name="/task_submit")[0]
    queue = cura.predict("demo", api_name="/review_queue")
    version = queue[5] if queue[4] == task_id else cura.predict("task", task_id, api_name="/review_open")[3]
    cura.predict("demo", "task", task_id, version, "The definition is too short", api_name="/review_reject")
    rejected = ann.predict(task_id, api_name="/task_open")
    assert "rejected" in rejected[2] and "The definition is too short" in rejected[2]
    rejected_version = rejected[1]
    with pytest.raises(AppError, match="Not allowed: only a curator can discard"):
        ann.predict(task_id, rejected_version, *fields, api_name="/task_discard")
    with pytest.raises(AppError, match="only a submitted item can be rejected"):
        cura.predict(task_id, rejected_version, *fields, "again", api_name="/task_reject")
    assert "discarded" in cura.predict(task_id, rejected_version, *fields, api_name="/task_discard")[2]


def test_overview_and_admin_datasets(clients):
    status_plot, category_plot, author_plot, day_plot, summary, flag_plot = clients["ann"].predict(
        "demo", api_name="/overview")
    assert "records" in summary and "tasks" in summary
    _, datasets = clients["root"].predict("second", "Another set", "CC-BY-4.0", "en", api_name="/admin_create_dataset")
    assert ["second", "Another set", "CC-BY-4.0", "en"] in datasets["data"]
    with pytest.raises(AppError, match="already a dataset named 'second'"):
        clients["root"].predict("second", "", "", "", api_name="/admin_create_dataset")
    with pytest.raises(AppError, match="only an admin"):
        clients["cura"].predict("third", "", "", "", api_name="/admin_create_dataset")
    assert clients["root"].predict("ben", "curator", api_name="/admin_set_role")[0]["data"]


def test_the_overview_charts_every_quality_flag_with_its_count():
    from curation.quality.records import CHECKS
    from curation.services.review import Overview
    from curation.ui.overview_tab import figures

    counts = Overview(by_status={"draft": 3}, by_category=[], by_author=[], by_day=[], tasks_by_status={},
                      flags={**{name: 0 for name in CHECKS}, "empty_output": 2, "placeholder_input": 1})
    bars = figures(counts)[5].data[0]
    assert list(bars.y) == [name.replace("_", " ") for name in CHECKS]
    assert dict(zip(bars.y, bars.x)) == {**{name.replace("_", " "): 0 for name in CHECKS}, "empty output": 2,
                                         "placeholder input": 1}


def test_user_markdown_is_shown_as_text_without_remote_images():
    from curation.ui.safe import text_markdown

    assert text_markdown("**Bold** <img src=x onerror=alert(1)> ![logo](http://example.com/a.png)") == (
        "**Bold** &lt;img src=x onerror=alert(1)&gt; !\\[logo](http://example.com/a.png)")


def test_pasted_rows_and_example_tables_become_the_task_form():
    from curation.services.annotation import InvalidInput
    from curation.services.tasks import ExampleForm, InstanceForm
    from curation.ui import task_tables

    pasted = 'France\tParis\n\n{"id": "x-1", "input": "Peru", "output": ["Lima", "Ciudad de los Reyes"]}\n'
    assert task_tables.parse_pasted(pasted) == [InstanceForm("France", ["Paris"]),
                                                InstanceForm("Peru", ["Lima", "Ciudad de los Reyes"], "x-1")]
    with pytest.raises(InvalidInput, match="pasted line 1 has no tab between input and output"):
        task_tables.parse_pasted("France Paris")
    frame = task_tables.instances_frame(task_tables.parse_pasted(pasted))
    assert frame.values.tolist()[1] == ["x-1", "Peru", "Lima", "Ciudad de los Reyes"]
    assert task_tables.instances_from(frame)[1] == InstanceForm("Peru", ["Lima", "Ciudad de los Reyes"], "x-1")
    examples = [ExampleForm("positive", "a", "b", "c"), ExampleForm("negative", "d", "e", "f")]
    assert task_tables.examples_from(task_tables.examples_frame(examples)) == examples
    assert task_tables.move(examples, 1, -1) == (examples[::-1], 0)
    with pytest.raises(InvalidInput, match="example 1 is 'maybe': its kind is positive or negative"):
        task_tables.examples_from({"data": [["maybe", "a", "b", "c"]]})


def test_a_missing_item_is_a_short_message(clients):
    with pytest.raises(AppError, match="Not found: record 999999 does not exist"):
        clients["ann"].predict(999999, api_name="/record_open")
    with pytest.raises(AppError, match="Not found: task 999999 does not exist"):
        clients["ann"].predict(999999, api_name="/task_open")


def test_an_edit_without_the_version_it_was_based_on_is_refused_everywhere(clients):
    ann, cura = clients["ann"], clients["cura"]
    question = "How many legs does a spider have?"
    record_id = save(ann, instruction=question, output="Eight")[0]
    save(ann, record_id, 1, instruction=question, output="Eight legs.")  # the annotator's version 2
    refusal = (f"An edit of record #{record_id} must say which version it was based on: reopen the record and "
               "save again.")
    for api in ("/record_save", "/record_submit", "/record_discard", "/record_save_anyway"):
        with pytest.raises(AppError) as refused:
            save(cura, record_id, None, instruction=question, output="Six", api=api)
        assert str(refused.value) == refusal, api
    save(ann, record_id, 2, instruction=question, output="Eight legs.", api="/record_submit")
    for api, extra in (("/record_approve", {}), ("/record_reject", {"note": "why"})):
        with pytest.raises(AppError, match="must say which version it was based on"):
            save(cura, record_id, None, instruction=question, output="Six", api=api, **extra)
    for api, extra in (("/review_approve", ()), ("/review_reject", ("Too short",))):
        with pytest.raises(AppError, match="must say which version it was based on"):
            cura.predict("demo", "record", record_id, None, *extra, api_name=api)
    opened = ann.predict(record_id, api_name="/record_open")
    assert opened[1] == 3 and value(opened[8]) == "Eight legs." and "submitted" in opened[2]

    fields = ["demo", "task_legs", "Given an animal, say how many legs it has.", "", "", [], [], EXAMPLES,
              instances(2)]
    task_id = ann.predict(None, None, *fields, api_name="/task_save")[0]
    changed = [*fields[:2], "Say how many legs.", *fields[3:]]
    for api in ("/task_save", "/task_submit", "/task_discard"):
        with pytest.raises(AppError) as refused:
            ann.predict(task_id, None, *changed, api_name=api) if api != "/task_discard" else \
                cura.predict(task_id, None, *changed, api_name=api)
        assert str(refused.value) == (f"An edit of task #{task_id} must say which version it was based on: "
                                      "reopen the task and save again."), api
    opened = ann.predict(task_id, api_name="/task_open")
    assert opened[1] == 1 and opened[5] == fields[2] and "draft" in opened[2]


def test_bad_ids_get_a_short_plain_message_and_no_traceback(clients, capfd):
    ann = clients["ann"]
    capfd.readouterr()
    for api, what in (("/record_open", "record id"), ("/task_open", "task id")):
        with pytest.raises(AppError) as refused:
            ann.predict("abc", api_name=api)
        assert str(refused.value) == f"The {what} must be a whole number, not 'abc'."
    with pytest.raises(AppError) as refused:
        save(ann, "1.5", None)
    assert str(refused.value) == "The record id must be a whole number, not '1.5'."
    with pytest.raises(AppError) as refused:  # quotes arrive as typed, not as HTML entities
        ann.predict(None, None, "nope", "", "", "Say hi.", "", "Hi", "", api_name="/record_save")
    assert str(refused.value) == "There is no dataset named 'nope'."
    assert "Traceback" not in capfd.readouterr().err


def test_only_curators_and_admins_upload_files_and_not_too_large(studio):
    import httpx

    def signed_in(name):
        client = httpx.Client(base_url=studio.url, timeout=30)
        assert client.post("/login", data={"username": name, "password": PASSWORDS[name]}).status_code == 200
        return client

    small = {"files": ("rows.jsonl", b'{"instruction": "Say hi.", "output": "Hi"}\n', "application/json")}
    refused = signed_in("ann").post("/gradio_api/upload", files=small)
    assert (refused.status_code, refused.json()) == (403, {"detail": "Not allowed: only curators and admins upload files."})
    assert httpx.post(f"{studio.url}/gradio_api/upload", files=small).status_code == 401  # nobody signed in
    curator = signed_in("cura")
    taken = curator.post("/gradio_api/upload", files=small)
    assert taken.status_code == 200 and taken.json()[0].endswith("rows.jsonl")
    too_large = curator.post("/gradio_api/upload", files={"files": ("big.jsonl", b"x" * (1024 * 1024 + 1))})
    assert too_large.status_code == 413
