"""The Quality tab through gradio_client: the judge through a scripted OpenAI-compatible server with known ratings,
the histogram's counter, the budget's live counter, a saved selection with what DEITA left out, comparing and
deleting selections, and the refusals an annotator meets."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.openai_server import OpenAIServer, Reply  # noqa: E402
from tests.ui_server import PASSWORDS, running_studio, seed, SLOW_LOAD  # noqa: E402

# (instruction, output, the judge's rating). The two France records say the same thing (MiniLM cosine ~0.97):
# with a diversity threshold of 0.1 DEITA takes the better one and leaves the other out.
SHELF = [
    ("Name the capital of France.", "Paris.", 5.0),
    ("Name the capital city of France.", "The capital of France is Paris.", 4.5),
    ("Give three tips for staying healthy.", "Eat well, sleep enough and move every day.", 4.0),
    ("Write a haiku about the autumn rain.", "Cold rain on the roof / leaves fall / the year turns.", 3.5),
    ("Sort the list [3, 1, 2] in ascending order.", "[1, 2, 3]", 3.0),
    ("Translate 'good morning' into Spanish.", "Buenos días.", 2.0),
    ("List three primary colors.", "Red, blue and yellow.", 1.0),
    ("Explain photosynthesis in one sentence.", "Plants turn light, water and CO2 into sugar and oxygen.", 0.0),
]
RATING = {instruction: rating for instruction, _, rating in SHELF}


def judge_reply(body: dict) -> Reply:
    instruction = re.search(r"Instruction: (.*)", body["messages"][-1]["content"]).group(1)
    return Reply(f"Score: {RATING[instruction]:g}\nReason: rated {RATING[instruction]:g} by the script.")


def seed_shelf(database_url: str) -> list[int]:
    from curation.records import RecordDraft
    from db import repo
    from db.engine import open_database, session_for
    from db.models import RecordStatus

    seed(database_url)
    engine = open_database(database_url)
    with session_for(engine) as session:
        dataset = repo.get_or_create_dataset(session, "shelf", license="cc-by-4.0", language="en")
        ids = repo.insert_records(session, dataset.id, [RecordDraft(i, "", [o], category="misc") for i, o, _ in SHELF],
                                  by="ann", reason="test", status=RecordStatus.approved)
        session.commit()
    engine.dispose()
    return ids


def taken_ids(database_url: str, name: str) -> list[int]:
    from curation.services.selections import selected_ids
    from db.engine import open_database, session_for

    engine = open_database(database_url)
    with session_for(engine) as session:
        found = selected_ids(session, dataset="shelf", name=name)
    engine.dispose()
    return found


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('quality') / 'studio.db'}"
    ids = seed_shelf(url)
    with OpenAIServer(replies=judge_reply, models=["judge-model"]) as judge:
        with running_studio(url, llm_models=f"Judge=openai:judge-model@{judge.url}") as running:
            running.ids, running.judge = ids, judge
            yield running


@pytest.fixture(scope="module")
def cura(studio):
    return Client(studio.url, auth=("cura", PASSWORDS["cura"]), verbose=False, httpx_kwargs=SLOW_LOAD)


def test_the_judge_rates_the_dataset_and_the_counter_follows_the_minimum(studio, cura):
    status = cura.predict("shelf", "Judge", api_name="/quality_score_judge")
    assert status.startswith("Scored 'shelf' (judge): **8** records computed, 0 unchanged")
    summary, _, minimum, counter, budget, *_ = cura.predict("shelf", "judge", 4, api_name="/quality_view")
    assert summary == "**8** live records · scored: judge rating 8"
    # the slider spans the ratings in half points and starts at the median (3.25) taken down to a step
    assert (minimum["minimum"], minimum["maximum"], minimum["step"], minimum["value"]) == (0, 5, 0.5, 3)
    assert counter == "**5** of 8 records score at least **3** on judge rating (0 to 5)."
    # the counter reads the distributions the view left in this session's State, not the database
    _, counter = cura.predict("judge", 4.5, api_name="/quality_counter")
    assert counter == "**2** of 8 records score at least **4.5** on judge rating (0 to 5)."
    # a second run asks the judge nothing: every record's rating still holds
    asked = len(studio.judge.requests)
    assert "**0** records computed, 8 unchanged" in cura.predict("shelf", "Judge", api_name="/quality_score_judge")
    assert len(studio.judge.requests) == asked


def test_a_budget_is_previewed_saved_and_says_what_it_left_out(studio, cura):
    i = studio.ids
    cura.predict("shelf", "Judge", api_name="/quality_score_judge")
    preview = cura.predict("shelf", "judge", "", "deita", 3, 0.1, 0, api_name="/quality_preview")
    assert preview == "Would take **3** of 8 records; 1 left out as too close to a record already taken."
    table, chosen, _ = cura.predict("shelf", "top3", "judge", "", "deita", 3, 0.1, 0,
                                    api_name="/quality_save_selection")
    assert chosen["value"] == "top3" and table["data"][0][:2] == ["top3", 3]
    assert "DEITA's rule" in table["data"][0][2]
    assert taken_ids(studio.database_url, "top3") == [i[0], i[2], i[3]]  # the second France record is too close
    left_out = cura.predict("shelf", "top3", api_name="/quality_left_out")
    assert f'data-open-record="{i[1]}"' in left_out and f"too close to <button" in left_out
    assert f">#{i[0]}</button>" in left_out
    cura.predict("shelf", "plain3", "judge", "", "top", 3, 0.1, 0, api_name="/quality_save_selection")
    line = cura.predict("shelf", "top3", "plain3", api_name="/quality_compare")
    assert line == ("`top3` and `plain3` share **2** records (Jaccard 0.50); **1** only in `top3`, **1** only in "
                    "`plain3`.")
    table, chosen, other, left_out = cura.predict("shelf", "plain3", api_name="/quality_delete")
    assert [row[0] for row in table["data"]] == ["top3"]


def test_bad_requests_are_said_in_words_and_annotators_are_refused(studio, cura):
    with pytest.raises(AppError, match="Order by: 'judge:x': the weight after ':' must be a number"):
        cura.predict("shelf", "judge", "judge:x", "deita", 3, 0.1, 0, api_name="/quality_preview")
    with pytest.raises(AppError, match="Name the causal LM that measures IFD"):
        cura.predict("shelf", "", api_name="/quality_score_ifd")
    with pytest.raises(AppError, match="No record of 'shelf' has a 'ifd' score yet"):
        cura.predict("shelf", "x", "ifd", "", "top", 3, 0.1, 0, api_name="/quality_save_selection")
    annotator = Client(studio.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)
    with pytest.raises(AppError, match="Not allowed"):
        annotator.predict("shelf", "Judge", api_name="/quality_score_judge")
    with pytest.raises(AppError, match="Not allowed"):
        annotator.predict("shelf", "judge", 4, api_name="/quality_view")
