"""Scores where a curator reads records: the record editor's Scores panel in words (the judge's reason, IFD with both
perplexities, the signals, what each selection did with the record) and the review queue worst first by a score."""
from __future__ import annotations

import numpy as np
import pytest

from curation.services import admin, annotation, review, tasks
from curation.services.annotation import InvalidInput, RecordForm
from curation.services.permissions import Actor, PermissionDenied
from curation.services.selections import run_selection
from curation.ui.record_scores import NO_SCORES, NOT_SAVED, scores_markdown, scores_panel, short_score
from db.models import Record, Role
from db.score_tables import store_scores
from tests.ui_server import SLOW_LOAD

ANN = Actor("ann", Role.annotator)
CURA = Actor("cura", Role.curator)
ROOT = Actor("root", Role.admin)


@pytest.fixture
def studio(session):
    for actor in (ANN, CURA, ROOT):
        admin.add_user(session, actor.name, actor.role.value, "password-" + actor.name)
    admin.create_dataset(session, ROOT, "demo")
    session.commit()
    return session


def write(session, instruction: str, output: str, *, submit: bool = True) -> int:
    view = annotation.save_record(session, ANN, RecordForm(dataset="demo", instruction=instruction, outputs=[output]))
    if submit:
        annotation.change_record(session, ANN, view.id, "submit", expected_version=view.version)
    return view.id


def store(session, name: str, values: dict[int, float | None], details: dict[int, dict] | None = None) -> None:
    """Store `name` for each record as the score runs do: the basis starts with the record's content hash."""
    store_scores(session, name, [{"record_id": i, "value": v, "detail": (details or {}).get(i),
                                  "basis": f"{session.get(Record, i).content_hash}:test"} for i, v in values.items()])
    session.commit()


# --- the review queue, worst first ---------------------------------------------------------------------------

# Five submitted records, oldest first, then a submitted task; None: the record has no such score.
VALUES = {
    "judge": [4.0, 1.0, 5.0, 2.5, None],
    "ifd": [0.5, 1.2, 0.9, None, 0.7],
    "ppl": [12.0, 80.5, 30.0, None, None],
    "nn_distance": [0.3, 0.01, 0.2, 0.6, None],
    "length": [40.0, 3.0, 12.0, 3.0, None],
    "mtld": [55.0, 20.0, None, 70.0, 31.5],
}
# The worst first (by record), then the records without the score oldest first, then the task.
EXPECTED = {
    "judge": [1, 3, 0, 2, 4],  # the lowest rating first
    "ifd": [1, 2, 4, 0, 3],  # near or above 1: the instruction does not help
    "ppl": [1, 2, 0, 3, 4],  # the most surprising output first
    "nn_distance": [1, 2, 0, 3, 4],  # the closest to another record first
    "length": [1, 3, 2, 0, 4],  # the shortest first; a tie keeps the oldest first
    "mtld": [1, 4, 0, 3, 2],  # the most repetitive first
}


@pytest.fixture
def queue(studio):
    """(ids of the five submitted records, the submitted task's id), every score of VALUES stored."""
    ids = [write(studio, f"Question {n}?", f"Answer {n}.") for n in range(5)]
    write(studio, "Still a draft.", "Not in the queue.", submit=False)
    task = tasks.save_task(studio, ANN, tasks.TaskForm(
        dataset="demo", name="task_capitals", definition="Given a country, answer with its capital city.",
        categories=["Question Answering"], domains=["Geography"],
        examples=[tasks.ExampleForm("positive", "France", "Paris", "Paris is the capital of France."),
                  tasks.ExampleForm("positive", "Japan", "Tokyo", "Tokyo is the capital of Japan."),
                  tasks.ExampleForm("negative", "Italy", "Milan", "Milan is not the capital; Rome is.")],
        instances=[tasks.InstanceForm(f"Country {n}", [f"Capital {n}"], f"capitals-{n}") for n in range(26)]))
    tasks.change_task(studio, ANN, task.id, "submit", expected_version=task.version)
    for name, values in VALUES.items():
        store(studio, name, {i: v for i, v in zip(ids, values) if v is not None})
    return ids, task.id


def test_the_queue_stays_oldest_first_without_an_order(studio, queue):
    ids, task_id = queue
    items = review.review_queue(studio, CURA)
    assert [(i.kind, i.id) for i in items] == [*(("record", i) for i in ids), ("task", task_id)]
    assert {i.score for i in items} == {None}
    assert [i.id for i in review.review_queue(studio, CURA, order="")] == [*ids, task_id]


@pytest.mark.parametrize("order", list(EXPECTED))
def test_ordered_by_a_score_the_worst_come_first_and_the_unscored_last(studio, queue, order):
    ids, task_id = queue
    items = review.review_queue(studio, CURA, order=order)
    assert [(i.kind, i.id) for i in items] == [*(("record", ids[n]) for n in EXPECTED[order]), ("task", task_id)]
    assert [i.score for i in items] == [VALUES[order][n] for n in EXPECTED[order]] + [None]


def test_the_limit_keeps_the_worst_records_not_the_oldest(studio, queue):
    ids, _ = queue
    assert [i.id for i in review.review_queue(studio, CURA, order="judge", limit=2)] == [ids[1], ids[3]]
    assert [i.id for i in review.review_queue(studio, CURA, limit=2)] == [ids[0], ids[1]]


def test_a_failed_rating_counts_as_unscored_and_another_dataset_is_left_out(studio, queue):
    ids, task_id = queue
    store(studio, "judge", {ids[1]: None}, {ids[1]: {"reason": "no score in the reply"}})
    assert [i.id for i in review.review_queue(studio, CURA, order="judge")] == [ids[3], ids[0], ids[2], ids[1],
                                                                                  ids[4], task_id]
    admin.create_dataset(studio, ROOT, "other")
    studio.commit()
    assert review.review_queue(studio, CURA, dataset="other", order="judge") == []


def test_an_unknown_order_is_refused_and_annotators_do_not_review(studio, queue):
    with pytest.raises(InvalidInput, match="the queue cannot be ordered by 'newest'; choose one of judge, ifd"):
        review.review_queue(studio, CURA, order="newest")
    with pytest.raises(PermissionDenied, match="only a curator reviews"):
        review.review_queue(studio, ANN, order="judge")


def test_the_queue_shows_the_score_beside_each_item():
    assert [short_score(name, value) for name, value in [("judge", 2.5), ("judge", 4.0), ("ifd", 1.2345),
                                                         ("ppl", 80.54), ("nn_distance", 0.012), ("length", 1234.0),
                                                         ("mtld", 20.0), ("judge", None)]] == [
        "2.5 / 5", "4 / 5", "1.23", "80.5", "0.01", "1,234 words", "20.0", ""]


# --- the record editor's Scores panel ------------------------------------------------------------------------

def unit(*xy):
    v = np.array(xy, dtype=np.float32)
    return v / np.linalg.norm(v)


# Records 0 and 1 say almost the same thing; record 2 something else.
VECTORS = [unit(1, 0), unit(0.99, 0.14), unit(0, 1)]


@pytest.fixture
def shelf(studio):
    """Three drafts, judged 5, 4 and 3; selection `best` (DEITA, 2) skips record 1, `top1` (top-1) takes record 0."""
    ids = [write(studio, f"Explain topic {n}.", f"Topic {n} is explained here.", submit=False) for n in range(3)]
    store(studio, "judge", dict(zip(ids, [5.0, 4.0, 3.0])),
          {i: {"reason": f"Reason {n}: clear and *correct*.", "model": "judge-model"} for n, i in enumerate(ids)})
    vectors = lambda records: np.stack([VECTORS[ids.index(r["id"])] for r in records])  # noqa: E731
    run_selection(studio, dataset="demo", name="best", weights={"judge": 1.0}, n=2, threshold=0.1, actor=CURA,
                  vectors=vectors)
    run_selection(studio, dataset="demo", name="top1", method="top", weights={"judge": 1.0}, n=1, actor=CURA)
    return ids


def test_the_panel_says_every_score_in_words_with_the_judges_reason_and_the_selections(studio, shelf):
    first, skipped, _ = shelf
    store(studio, "ifd", {first: 0.8123}, {first: {"ppl_given_instruction": 12.34, "ppl_alone": 15.19}})
    store(studio, "ppl", {first: 15.19})
    store(studio, "length", {first: 5.0})
    store(studio, "mtld", {first: 42.25})
    store(studio, "language", {first: None}, {first: {"language": "en", "output_language": "fr"}})
    store_scores(studio, "nn_distance", [{"record_id": first, "value": 0.0099, "basis": "dataset:3"}])
    studio.commit()
    assert scores_panel(studio, first).split("\n\n") == [
        "**Judge** (judge-model): 5 of 5: “Reason 0: clear and \\*correct\\*.”",
        "**IFD**: 0.81 (perplexity of the output 12.3 given the instruction, 15.2 alone)",
        "**Length**: 5 words in the output",
        "**Lexical diversity (MTLD)**: 42.2",
        "**Nearest neighbour**: cosine distance 0.01 (similarity 0.99)",
        "**Language**: prompt English, output French",
        "- Selection `top1`: taken, 1 of 1",
        "- Selection `best`: taken, 1 of 2",
    ]
    assert scores_panel(studio, skipped).split("\n\n") == [
        "**Judge** (judge-model): 4 of 5: “Reason 1: clear and \\*correct\\*.”",
        "- Selection `top1`: not taken",
        f"- Selection `best`: left out: too close to #{first} (similarity 0.99)",
    ]


def test_an_ifd_at_or_above_one_says_the_instruction_does_not_help_and_a_failed_rating_says_why():
    text = scores_markdown({"ifd": (1.25, {"ppl_given_instruction": 25.0, "ppl_alone": 20.0}),
                            "judge": (None, {"reason": "the reply holds no score", "model": "m"}),
                            "language": (None, {"language": "de", "output_language": "de"})}, [], [])
    assert text.split("\n\n") == [
        "**Judge** (m): no readable rating: the reply holds no score",
        "**IFD**: 1.25 (perplexity of the output 25.0 given the instruction, 20.0 alone): the instruction does not "
        "help predict the output",
        "**Language**: German",
    ]


def test_a_judges_reason_cannot_lay_out_the_panel_or_run_html():
    text = scores_markdown({"judge": (2.0, {"reason": "Fine.\n\n# Big <img src=x onerror=alert(1)> [link](http://x)"})},
                           [], [])
    assert text == "**Judge**: 2 of 5: “Fine. \\# Big &lt;img src=x onerror=alert(1)&gt; \\[link\\](http://x)”"


def test_unscored_records_say_how_to_score_them_and_scores_of_an_earlier_text_say_so(studio, shelf):
    plain = write(studio, "Name a colour.", "Blue.", submit=False)
    assert scores_panel(studio, plain).split("\n\n") == [
        NO_SCORES, "- Selection `top1`: not taken", "- Selection `best`: not taken"]
    assert scores_panel(studio, None) == NOT_SAVED
    first = shelf[0]
    store_scores(studio, "nn_distance", [{"record_id": first, "value": 0.2, "basis": "dataset:3"}])
    studio.commit()
    annotation.save_record(studio, ANN, RecordForm(dataset="demo", instruction="Explain topic 0.",
                                                   outputs=["Topic 0, explained again."]),
                           record_id=first, expected_version=1)
    assert "*Scored before the last edit (judge): rescore in the Quality tab.*" in scores_panel(studio, first)


# --- through the app, as the pages call it -------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    pytest.importorskip("gradio_client")
    from tests.ui_server import running_studio, seed

    url = f"sqlite:///{tmp_path_factory.mktemp('scores-ui') / 'studio.db'}"
    seed(url)
    with running_studio(url) as running:
        yield running


def test_the_editor_shows_the_scores_on_open_and_the_queue_orders_by_them(app_server):
    from gradio_client import Client

    from db.engine import open_database, session_for
    from tests.ui_server import PASSWORDS

    ann = Client(app_server.url, auth=("ann", PASSWORDS["ann"]), verbose=False, httpx_kwargs=SLOW_LOAD)
    cura = Client(app_server.url, auth=("cura", PASSWORDS["cura"]), verbose=False, httpx_kwargs=SLOW_LOAD)
    ids = []
    for n in range(2):
        saved = ann.predict(None, None, "demo", "", "", f"Question {n}?", "", f"Answer {n}.", "",
                            api_name="/record_submit")
        assert saved[-2] == NO_SCORES  # the panel, just before the browser's copy of the form
        ids.append(saved[0])
    engine = open_database(app_server.database_url)
    with session_for(engine) as session:
        store(session, "judge", dict(zip(ids, [4.0, 2.0])), {ids[0]: {"reason": "Helpful and right."}})
    engine.dispose()
    assert ann.predict(ids[0], api_name="/record_open")[-2] == "**Judge**: 4 of 5: “Helpful and right.”"
    table = cura.predict("demo", "judge", api_name="/review_queue")[0]
    assert table["headers"][-1] == "Score"
    assert [row[1:2] + row[-1:] for row in table["data"]] == [[ids[1], "2 / 5"], [ids[0], "4 / 5"]]
    oldest = cura.predict("demo", api_name="/review_queue")[0]  # a script written before the order: as before
    assert [row[1] for row in oldest["data"]] == ids and "Score" not in oldest["headers"]
