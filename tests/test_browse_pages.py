"""Browse reaches every page of a large text search, says how many match in all, and says when a page is missing."""
from __future__ import annotations

import pytest
from tests.ui_server import SLOW_LOAD

MATCHES = 2000  # lanterns; every 21st record (100 of them) is a river the search leaves out


def lantern_drafts():
    from curation.records import RecordDraft

    drafts, lantern = [], 0
    for i in range(MATCHES + MATCHES // 20):
        if i % 21 == 20:
            drafts.append(RecordDraft(instruction=f"Name river number {i}.", outputs=["The Loire."]))
        else:
            lantern += 1
            drafts.append(RecordDraft(instruction=f"Describe lantern number {lantern}.", outputs=["It glows."]))
    return drafts


def seed_lanterns(session, dataset: str = "demo") -> None:
    from db import repo

    found = repo.get_or_create_dataset(session, dataset)
    repo.insert_records(session, found.id, lantern_drafts(), by="ann", reason="test")
    session.commit()


def lanterns(rows) -> list[str]:
    return [row[1] for row in rows]


def expected(first: int, last: int) -> list[str]:
    return [f"Describe lantern number {n}." for n in range(first, last + 1)]


def test_a_text_search_counts_every_match_and_reaches_every_page(session):
    from curation.services import browse

    seed_lanterns(session)
    page = browse.browse(session, browse.BrowseQuery(dataset="demo", text="LANTERN", sort="Oldest", page=21))
    assert (page.total, page.page, page.pages, page.past_end) == (2000, 21, 40, False)
    assert lanterns(page.rows) == expected(1001, 1050)
    last = browse.browse(session, browse.BrowseQuery(dataset="demo", text="lantern", sort="Oldest", page=40))
    assert lanterns(last.rows) == expected(1951, 2000) and not last.past_end
    newest = browse.browse(session, browse.BrowseQuery(dataset="demo", text="lantern", sort="Newest", page=21))
    assert lanterns(newest.rows) == expected(951, 1000)[::-1]


def test_a_page_past_the_last_gives_the_last_page_and_says_which_was_asked(session):
    from curation.services import browse

    seed_lanterns(session)
    page = browse.browse(session, browse.BrowseQuery(dataset="demo", text="lantern", sort="Oldest", page=55))
    assert (page.total, page.page, page.pages, page.asked, page.past_end) == (2000, 40, 40, 55, True)
    assert lanterns(page.rows) == expected(1951, 2000)
    nothing = browse.browse(session, browse.BrowseQuery(dataset="demo", text="no such words", page=3))
    assert (nothing.total, nothing.page, nothing.pages, nothing.rows, nothing.past_end) == (0, 1, 1, [], True)
    everything = browse.browse(session, browse.BrowseQuery(dataset="demo", sort="Oldest", page=43))
    assert (everything.total, everything.page, everything.pages, everything.past_end) == (2100, 42, 42, True)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    pytest.importorskip("gradio_client")
    from db.engine import open_database, session_for
    from tests.ui_server import running_studio, seed

    url = f"sqlite:///{tmp_path_factory.mktemp('browse') / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    with session_for(engine) as session:
        seed_lanterns(session)
    engine.dispose()
    with running_studio(url) as running:
        yield running


@pytest.fixture(scope="module")
def ann(studio):
    from gradio_client import Client

    from tests.ui_server import PASSWORDS

    return Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)


def test_browse_through_the_api_gives_page_21_of_2000_matches(ann):
    table, page, info = ann.predict("Records", "demo", "", "", "", "lantern", "Oldest", 21, "", api_name="/browse")
    assert page == 21
    assert lanterns(table["data"]) == expected(1001, 1050)
    assert info == "**1,001–1,050** of **2,000** records · page 21 of 40"


def test_browse_through_the_api_past_the_last_page_says_so(ann):
    # Eight values, as scripts written before the quality flag call it.
    table, page, info = ann.predict("Records", "demo", "", "", "", "lantern", "Oldest", 60, api_name="/browse")
    assert page == 40
    assert lanterns(table["data"]) == expected(1951, 2000)
    assert info == ("**1,951–2,000** of **2,000** records · page 40 of 40"
                    " · page 60 does not exist; showing the last page, 40")


def test_a_search_for_a_null_byte_is_a_message_not_a_database_error(session):
    from curation.services.annotation import InvalidInput
    from curation.services.browse import BrowseQuery, browse

    with pytest.raises(InvalidInput) as refusal:  # PostgreSQL raised DataError on the query itself
        browse(session, BrowseQuery(text="Par\x00is"))
    assert str(refusal.value) == "the search text holds a null byte (\\0): no record can match it"


def seed_mixed_authorship(session) -> None:
    """Dataset "mixed": 2 by people, 2 imported, 1 template, and 3 machine-drafted (unreviewed on an imported
    record, edited, approved)."""
    from curation.provenance import MachineText
    from curation.records import RecordDraft
    from db import repo

    def drafted(state: str) -> dict:
        entry = MachineText(text="A poem.", backend="openai", base_url="http://gpu-box:8000/v1", model="m").entry()
        return {"outputs": [{**entry, "state": state}]}

    dataset = repo.get_or_create_dataset(session, "mixed")
    for instruction, origin, provenance in [
            ("Write poem 1.", "human", None), ("Write poem 2.", "human", None), ("Write poem 3.", "imported", None),
            ("Write poem 4.", "imported", None), ("Write poem 5.", "template", None),
            ("Write poem 6.", "imported", drafted("unreviewed")), ("Write poem 7.", "human", drafted("edited")),
            ("Write poem 8.", "human", drafted("approved"))]:
        repo.insert_records(session, dataset.id, [RecordDraft(instruction=instruction, outputs=["A poem."])],
                            by="ann", reason="test", origin=origin, provenances=[provenance])
    session.commit()


@pytest.mark.parametrize("written_by, poems", [
    ("people", [1, 2]), ("machine", [6, 7, 8]), ("unreviewed", [6]), ("edited", [7]), ("imported", [3, 4]),
    (None, [1, 2, 3, 4, 5, 6, 7, 8]),
])
def test_the_written_by_filter_tells_people_from_machine_drafts(session, written_by, poems):
    from curation.services import browse

    seed_mixed_authorship(session)
    page = browse.browse(session, browse.BrowseQuery(dataset="mixed", written_by=written_by, sort="Oldest"))
    assert [row[1] for row in page.rows] == [f"Write poem {n}." for n in poems] and page.total == len(poems)


def test_an_unknown_written_by_filter_says_which_there_are(session):
    from curation.services.annotation import InvalidInput
    from curation.services.browse import BrowseQuery, browse

    with pytest.raises(InvalidInput) as refusal:
        browse(session, BrowseQuery(written_by="robots"))
    assert str(refusal.value) == ("unknown 'written by' filter 'robots'; choose from people, machine, unreviewed, "
                                  "edited, imported")


def test_browse_through_the_api_filters_by_who_wrote_the_records(ann, studio):
    from db.engine import open_database, session_for

    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        seed_mixed_authorship(session)
    engine.dispose()
    table, _, info = ann.predict("Records", "mixed", "", "", "", "", "Oldest", 1, "", "machine", api_name="/browse")
    assert [row[1] for row in table["data"]] == ["Write poem 6.", "Write poem 7.", "Write poem 8."]
    assert info == "**1–3** of **3** records · page 1 of 1"
