"""The diversity tab through gradio_client: find duplicates, decide, undo; the editor's live hint."""
from __future__ import annotations

import re

import json

import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.ui_server import PASSWORDS, running_studio, seed, SLOW_LOAD  # noqa: E402

SEMANTIC, BOTH = "Meaning (embeddings)", "Instruction + input"
# (instruction, output, status): three rewordings pairs (cosine 0.97-1.0 with MiniLM), one exact copy,
# flagged and unrelated records, and one whose text must be shown as text.
RECORDS = [
    ("Name the capital of France.", "Paris", "approved"),
    ("Name the capital city of France.", "Paris is the capital.", "draft"),
    ("Give three tips for staying healthy.", "Eat well, sleep, move.", "draft"),
    ("Give 3 tips for staying healthy.", "Sleep, eat vegetables and walk daily.", "submitted"),
    ('Translate "good morning" into Spanish.', "Buenos días", "draft"),
    ('Translate "good morning" to Spanish.', "Buenos días.", "draft"),
    ("List three primary colors.", "red, blue, yellow", "draft"),
    ("List three primary colors.", "red, blue, yellow", "draft"),
    ("Explain what <script>alert(1)</script> does in an HTML page.", "It runs a script.", "draft"),
    ("Draw a picture of a cat sitting on a mat.", "<nooutput>", "draft"),
    ("Write a haiku about the autumn rain.", "Cold rain on the roof", "draft"),
    ("Sort the list [3, 1, 2] in ascending order.", "[1, 2, 3]", "draft"),
]


def seed_records(database_url: str) -> list[int]:
    """The users of tests.ui_server and RECORDS in the dataset demo; returns the record ids in order."""
    from curation.records import RecordDraft
    from db import repo
    from db.engine import open_database, session_for
    from db.models import RecordStatus

    seed(database_url)
    engine = open_database(database_url)
    ids = []
    with session_for(engine) as session:
        dataset = repo.get_dataset(session, "demo")
        for instruction, output, status in RECORDS:
            ids += repo.insert_records(session, dataset.id, [RecordDraft(instruction, "", [output], category="misc")],
                                       by="ann", reason="test", status=RecordStatus(status))
        session.commit()
    engine.dispose()
    return ids


def statuses(database_url: str, ids: list[int]) -> list[str]:
    from db import repo
    from db.engine import open_database, session_for

    engine = open_database(database_url)
    with session_for(engine) as session:
        found = [repo.get_record(session, i).status.value for i in ids]
    engine.dispose()
    return found


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('diversity') / 'studio.db'}"
    ids = seed_records(url)
    with running_studio(url) as running:
        running.ids = ids
        yield running


@pytest.fixture(scope="module")
def clients(studio):
    return {name: Client(studio.url, auth=(name, PASSWORDS[name]), verbose=False, httpx_kwargs=SLOW_LOAD) for name in ("cura", "ann")}


def groups_of(table: dict) -> list[tuple[str, str]]:
    return [(row[1], row[3]) for row in table["data"]]


def test_a_search_lists_exact_then_near_duplicates_most_similar_first(clients, studio):
    i = studio.ids
    summary, table, group, keep, ids, index, decisions, _ = clients["cura"].predict(
        "demo", SEMANTIC, BOTH, 0.95, api_name="/diversity_run")
    assert summary.startswith("**3** near-duplicate groups (3 pairs) at similarity ≥ **0.95** · **1** exact-duplicate")
    assert groups_of(table) == [("exact copy", f"#{i[6]}, #{i[7]}"), ("same meaning", f"#{i[4]}, #{i[5]}"),
                                ("same meaning", f"#{i[2]}, #{i[3]}"), ("same meaning", f"#{i[0]}, #{i[1]}")]
    assert ids == f"{i[6]}@1,{i[7]}@1" and index == 0 and "Group 1 of 4" in group
    # A stricter threshold drops the France pair (0.97) without searching again.
    summary, table, *_ = clients["cura"].predict("demo", SEMANTIC, 0.98, api_name="/diversity_groups")
    assert summary.startswith("**2** near-duplicate groups (2 pairs) at similarity ≥ **0.98**")
    assert len(table["data"]) == 3
    with pytest.raises(AppError, match=r"The last search kept pairs down to 0.9; search again to go to 0.85\."):
        clients["cura"].predict("demo", SEMANTIC, 0.85, api_name="/diversity_groups")


def test_the_lexical_rule_pairs_rewordings_above_rouge_l_0_7(clients, studio):
    i = studio.ids
    summary, table, *_ = clients["cura"].predict("demo", "Wording (ROUGE-L, Self-Instruct)", "Instruction", 0.7,
                                                 api_name="/diversity_run")
    assert summary.startswith("**3** near-duplicate groups (3 pairs) at ROUGE-L > **0.70**")
    # name the capital (city) of france: 2*5/11; the other two pairs differ by one word in six and five.
    assert [(row[1], row[2], row[3]) for row in table["data"][1:]] == [
        ("similar wording", 0.909, f"#{i[0]}, #{i[1]}"), ("similar wording", 0.833, f"#{i[2]}, #{i[3]}"),
        ("similar wording", 0.8, f"#{i[4]}, #{i[5]}")]


def test_keep_one_discards_the_rest_and_undo_restores_them(clients, studio):
    i, cura = studio.ids, clients["cura"]
    cura.predict("demo", SEMANTIC, BOTH, 0.95, api_name="/diversity_run")
    # The healthy-tips pair: the submitted record is proposed (submitted beats draft).
    answer = cura.predict("demo", f"{i[2]}@1,{i[3]}@1", str(i[3]), SEMANTIC, 0.95, 2,
                          api_name="/diversity_keep_one")
    summary, table, _, _, _, _, decisions, undo = answer
    assert statuses(studio.database_url, i[2:4]) == ["discarded", "submitted"]
    assert summary.startswith("**2** near-duplicate groups") and f"#{i[2]}, #{i[3]}" not in str(table)
    assert decisions["data"][0][1:4] == ["keep one", f"#{i[2]}, #{i[3]}", f"#{i[3]}"]
    decision_id = decisions["data"][0][0]
    summary, table, *_, decisions, _ = cura.predict("demo", str(decision_id), SEMANTIC, 0.95,
                                                    api_name="/diversity_undo")
    assert statuses(studio.database_url, i[2:4]) == ["draft", "submitted"]
    assert summary.startswith("**3** near-duplicate groups") and decisions["data"][0][-1] == "undone"


def test_a_decision_must_name_the_versions_the_curator_saw(clients, studio):
    i, cura = studio.ids, clients["cura"]
    groups = cura.predict("demo", SEMANTIC, 0.95, api_name="/diversity_groups")
    assert groups[4] == f"{i[6]}@1,{i[7]}@1"  # the first group (exact copies) as the page holds it
    with pytest.raises(AppError) as refused:
        cura.predict("demo", f"{i[4]},{i[5]}", str(i[4]), SEMANTIC, 0.95, 0, api_name="/diversity_keep_one")
    assert str(refused.value) == (f"Say which version of record(s) {i[4]}, {i[5]} the decision is based on: "
                                  "reload the group and decide again.")
    with pytest.raises(AppError, match=f"record {i[5]} was changed by|saved this record first"):
        cura.predict("demo", f"{i[4]}@1,{i[5]}@7", str(i[4]), SEMANTIC, 0.95, 0, api_name="/diversity_keep_one")
    assert statuses(studio.database_url, i[4:6]) == ["draft", "draft"]


def test_not_duplicates_removes_the_group_for_good(clients, studio):
    i, cura = studio.ids, clients["cura"]
    cura.predict("demo", SEMANTIC, BOTH, 0.95, api_name="/diversity_run")
    summary, table, *_ = cura.predict("demo", f"{i[0]}@1,{i[1]}@1", "", SEMANTIC, 0.95, 0,
                                      api_name="/diversity_not_duplicates")
    assert statuses(studio.database_url, i[0:2]) == ["approved", "draft"]
    assert f"#{i[0]}, #{i[1]}" not in str(table)
    summary, table, *_ = cura.predict("demo", SEMANTIC, BOTH, 0.95, api_name="/diversity_run")
    assert f"#{i[0]}, #{i[1]}" not in str(table)  # a new search respects the decision


def test_an_annotator_cannot_search_or_decide(clients, studio):
    i, ann = studio.ids, clients["ann"]
    with pytest.raises(AppError, match="Not allowed: this needs the curator role"):
        ann.predict("demo", f"{i[4]}@1,{i[5]}@1", str(i[4]), SEMANTIC, 0.95, 0, api_name="/diversity_keep_one")
    with pytest.raises(AppError, match="Not allowed: this needs the curator role"):
        ann.predict("demo", SEMANTIC, BOTH, 0.95, api_name="/diversity_run")
    assert statuses(studio.database_url, i[4:6]) == ["draft", "draft"]


def test_groups_show_user_text_as_text_side_by_side_with_the_differences(clients, studio):
    from curation.ui.diversity_plots import group_html

    html = group_html({"kind": "semantic", "score": 0.96, "keep_id": 1, "pairs": [(1, 2, 0.96)], "records": [
        {"id": 1, "instruction": "Explain <b>bold</b> tags.", "input": "", "output": "x", "status": "draft"},
        {"id": 2, "instruction": "Explain <i>bold</i> tags.", "input": "", "output": "x", "status": "draft"}]})
    assert "<b>bold" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<del>b</del><ins>i</ins>" in html and "0.960" in html and 'data-open-record="2"' in html


def test_flags_and_coverage(clients, studio):
    i = studio.ids
    figure, table = clients["cura"].predict("demo", api_name="/diversity_flags")
    assert "blacklisted word" in table and f'data-open-record="{i[9]}"' in table
    assert "placeholder output" in table and "<script>" not in table
    plot, summary, *_ = clients["cura"].predict("demo", "Status", api_name="/diversity_coverage")
    assert summary.startswith(f"**{len(RECORDS)}** live records in **2** clusters")
    traces = json.loads(plot["plot"])["data"]
    hovers = {point[0]: text for trace in traces for point, text in zip(trace["customdata"], trace["hovertext"])}
    assert sorted(hovers) == i and "&lt;script&gt;alert(1)&lt;/script&gt;" in hovers[i[8]]


def test_the_editor_hint_finds_a_known_instruction_fast(studio):
    from app import create_app  # noqa: F401  (the same process as the launched app: the model is warm)
    from curation.config import Settings
    from curation.ui.context import AppContext
    from curation.ui.near_duplicate_hint import hint_html, near_duplicates_for
    from db.engine import open_database

    ctx = AppContext(settings=Settings.from_env(database_url=studio.database_url),
                     engine=open_database(studio.database_url))
    near_duplicates_for(ctx, "demo", "warm up")
    found = near_duplicates_for(ctx, "demo", 'Translate "good morning" in Spanish.')
    assert sorted(m["id"] for m in found) == [studio.ids[4], studio.ids[5]] and found[0]["score"] >= 0.95
    assert near_duplicates_for(ctx, "demo", "Name the capital of Peru.") == []
    shown = hint_html(near_duplicates_for(ctx, "demo", "Explain what <script>alert(1)</script> does in HTML."))
    assert "&lt;script&gt;" in shown and "<script>" not in shown and f'data-open-record="{studio.ids[8]}"' in shown


def test_saving_a_near_duplicate_asks_for_confirmation_first(clients, studio):
    from curation.ui.near_duplicate_hint import warm_index

    warm_index(studio.context, "demo")  # as the hint does while someone types; a save itself never waits for it
    annotator = Client(studio.url, auth=("ben", PASSWORDS["ben"]), verbose=False, httpx_kwargs=SLOW_LOAD)
    reworded = ("Name the capital of France, please.", "Paris")

    def save(api):
        return annotator.predict(None, None, "demo", "misc", "", reworded[0], "", reworded[1], "", api_name=api)

    with pytest.raises(AppError) as refused:
        save("/record_save")
    assert "Not saved. This looks like a near-duplicate of record" in str(refused.value)
    assert f"#{studio.ids[0]} (" in str(refused.value)
    saved = save("/record_save_anyway")
    assert statuses(studio.database_url, [saved[0]]) == ["draft"]


def test_find_similar_lists_a_records_neighbours_most_similar_first_without_itself(clients, studio):
    import time

    i = studio.ids
    for _ in range(120):  # the first look starts building the dataset's meaning index and says so
        found = clients["ann"].predict("demo", i[0], api_name="/record_find_similar")
        if "still being built" not in found:
            break
        time.sleep(1)
    opened = [int(n) for n in re.findall(r"Open #(\d+)", found)]
    assert opened[0] == i[1] and i[0] not in opened and 5 <= len(opened) <= 10  # ten at most
    scores = [float(s) for s in re.findall(r'nd-score">([0-9.]+)<', found)]
    assert scores == sorted(scores, reverse=True) and scores[0] >= 0.95
    with pytest.raises(AppError, match="Save the record first, or open one"):
        clients["ann"].predict("demo", None, api_name="/record_find_similar")


def test_browse_searches_by_meaning_closest_first_within_the_filters(clients, studio):
    import time

    i = studio.ids
    ask = ["Records", "demo", "", "", "", "a short poem about the weather", "Last updated", 1, "", "", True]
    for _ in range(120):  # the dataset's meaning index may still be building: it says so
        table, page, info = clients["ann"].predict(*ask, api_name="/browse")
        if "still being built" not in info:
            break
        time.sleep(1)
    assert table["headers"][-1] == "Meaning"
    assert table["data"][0][0] == i[10]  # "Write a haiku about the autumn rain." (no word in common)
    scores = [float(row[-1]) for row in table["data"]]
    assert scores == sorted(scores, reverse=True) and "closest in meaning to the search text" in info
    # the other filters still apply: the haiku is a draft, so a search among submitted records leaves it out
    ask[2] = "submitted"
    table, _, info = clients["ann"].predict(*ask, api_name="/browse")
    assert i[10] not in [row[0] for row in table["data"]]
    with pytest.raises(AppError, match="Choose a dataset to search it by meaning"):
        clients["ann"].predict("Records", "", "", "", "", "hello", "Last updated", 1, "", "", True, api_name="/browse")
