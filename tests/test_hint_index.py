"""The editor's near-duplicate index is kept current, never rebuilt per save: a save is one row written, a change
made elsewhere is taken in by a refresh, and while the first build runs the hint says so in words."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest


def unit(*values):
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_the_vectors_kept_for_typing_keep_the_ones_each_keystroke_uses():
    """The input's vector (here the empty text's) is asked at every keystroke: typing more distinct instructions than
    the hint keeps must not push it out, nor fail the next hint."""
    from curation.dedup import NearDuplicateIndex
    from curation.embeddings import DEFAULT_FIELDS, Embedder
    from curation.services.coverage import RECENT_TEXTS, NearDuplicateHint

    hint = NearDuplicateHint(dataset_id=1, fields=DEFAULT_FIELDS, embedder=Embedder(),
                             index=NearDuplicateIndex.empty(parts=2, dim=384, capacity=8))
    typed = [f"Name {n} birds that cannot fly" for n in range(RECENT_TEXTS + 10)]
    vectors = [hint.encode((text, "")) for text in typed]
    assert len(hint.recent) == RECENT_TEXTS and "" in hint.recent and typed[0] not in hint.recent
    assert all(np.array_equal(v[1], vectors[0][1]) for v in vectors)  # one vector for the empty input throughout
    assert np.allclose(hint.encode((typed[0], ""))[0], vectors[0][0], atol=1e-3)  # a forgotten text is embedded anew


# ---- the index in memory ---------------------------------------------------------------------------------

def test_a_record_taken_in_copies_one_row_and_the_matrix_only_when_it_is_full():
    from curation.dedup import NearDuplicateIndex

    index = NearDuplicateIndex.empty(parts=2, dim=2, capacity=1000)
    index.extend(range(1000), [np.tile(unit(0, 1), (1000, 1)), np.tile(unit(0, 1), (1000, 1))])
    buffers = set()
    for record_id in range(1000, 3000):
        index.put(record_id, [unit(1, 0), unit(1, 0)])
        buffers.add(id(index._parts[0]))

    assert len(index) == 3000 and index.parts[0].shape == (3000, 2)
    # 1,000 rows, then room for 2,274, then 3,866: two copies of the matrix for 2,000 records taken in
    assert len(buffers) == 2
    assert [i for i, _ in index.closest([unit(1, 0), unit(1, 0)], 0.95, k=3)] == [1000, 1001, 1002]


def test_an_edited_record_replaces_its_vectors_and_a_removed_one_is_never_found():
    from curation.dedup import NearDuplicateIndex

    index = NearDuplicateIndex([10, 11, 12], [np.stack([unit(1, 0), unit(0, 1), unit(1, 1)]),
                                              np.stack([unit(1, 0), unit(1, 0), unit(1, 0)])])
    index.put(11, [unit(1, 0.02), unit(1, 0)])  # record 11 re-worded: now it repeats record 10
    assert [i for i, _ in index.closest([unit(1, 0), unit(1, 0)], 0.95)] == [10, 11]

    index.remove(10)
    assert 10 not in index and len(index) == 2 and sorted(index.ids.tolist()) == [11, 12]
    assert [i for i, _ in index.closest([unit(1, 0), unit(1, 0)], 0.95)] == [11]
    assert index.closest([unit(1, 1), unit(1, 0)], 0.95) == [(12, pytest.approx(1.0))]


def test_every_part_must_reach_the_threshold_and_ties_keep_the_order_of_the_records():
    from curation.dedup import NearDuplicateIndex

    same = np.tile(unit(1, 0), (6, 1))
    inputs = np.stack([unit(1, 0)] * 5 + [unit(0, 1)])  # the last record's (id 0) input differs
    index = NearDuplicateIndex([5, 4, 3, 2, 1, 0], [same, inputs])

    assert [i for i, _ in index.closest([unit(1, 0), unit(1, 0)], 0.95, k=3)] == [5, 4, 3]
    assert [i for i, _ in index.closest([unit(1, 0), unit(0, 1)], 0.95)] == [0]
    assert [i for i, _ in index.closest([unit(1, 0), unit(1, 0)], 0.95, k=10, exclude=[4, 99])] == [5, 3, 2, 1]
    assert [i for i, _ in index.closest([unit(1, 0), unit(1, 0)], 0.0, k=10)] == [5, 4, 3, 2, 1, 0]


# ---- kept current in the app ----------------------------------------------------------------------------

RECORDS = [("Give three tips for staying healthy.", "Eat well, sleep, move."),
           ("Name the capital of France.", "Paris"),
           ("Translate 'good morning' into Spanish.", "Buenos días"),
           ("Write a haiku about autumn leaves.", "Red leaves drift..."),
           ("Explain what photosynthesis is.", "Plants turn light into sugar.")]


@pytest.fixture
def app(tmp_path, monkeypatch):
    """An AppContext on a fresh database holding RECORDS in dataset demo, and the hint module with no index."""
    from curation.config import Settings
    from curation.records import RecordDraft
    from curation.ui import near_duplicate_hint as hint
    from curation.ui.context import AppContext
    from db import repo
    from db.engine import open_database, session_for
    from tests.ui_server import seed

    monkeypatch.setattr(hint, "_indexes", {})
    url = f"sqlite:///{tmp_path / 'studio.db'}"
    seed(url)
    engine = open_database(url)
    with session_for(engine) as session:
        dataset = repo.get_dataset(session, "demo")
        ids = repo.insert_records(session, dataset.id, [RecordDraft(i, "", [o]) for i, o in RECORDS], by="ann",
                                  reason="test")
        session.commit()
    ctx = AppContext(settings=Settings.from_env(database_url=url), engine=engine)
    ctx.ids = ids
    yield ctx, hint
    wait_for_background(hint, ctx)
    engine.dispose()


def slot_of(hint, ctx):
    return hint._existing_slot(ctx, "demo", hint.DEFAULT_FIELDS)


def wait_for_background(hint, ctx):
    """Until the slot's build or refresh in the background (if any) has ended."""
    slot = slot_of(hint, ctx)
    while slot is not None and slot.building.locked():
        time.sleep(0.05)


def save_elsewhere(ctx, instruction, output, record_id=None, status=None):
    """A save in another session, as another process or an import makes it (nothing tells the hint)."""
    from curation.records import RecordDraft
    from db import repo
    from db.engine import session_for

    with session_for(ctx.engine) as session:
        if record_id is None:
            record_id = repo.insert_records(session, repo.get_dataset(session, "demo").id,
                                            [RecordDraft(instruction, "", [output])], by="ben", reason="test")[0]
        else:
            record = repo.get_record(session, record_id)
            changes = {"status": status} if status else {"instruction": instruction}
            repo.update_record(session, record_id, expected_version=record.version, changes=changes, by="ben",
                               reason="test")
        session.commit()
    return record_id


def found(hint, ctx, text):
    return [m["id"] for m in hint.near_duplicates_for(ctx, "demo", text)]


def test_a_saved_record_is_found_by_the_next_hint_without_a_rebuild(app):
    ctx, hint = app
    assert found(hint, ctx, "Name a bird that cannot fly.") == []
    assert slot_of(hint, ctx).builds == 1

    new_id = save_elsewhere(ctx, "Name a bird that cannot fly.", "The penguin")
    hint.remember_saved(ctx, "demo", new_id, "Name a bird that cannot fly.", "", "The penguin")
    assert found(hint, ctx, "Name a bird that can't fly.") == [new_id]

    # an edit: the record's old words no longer match, its new ones do
    assert found(hint, ctx, "Name the capital city of France.") == [ctx.ids[1]]
    save_elsewhere(ctx, "Name the capital of Italy.", "", record_id=ctx.ids[1])
    hint.remember_saved(ctx, "demo", ctx.ids[1], "Name the capital of Italy.", "", "Rome")
    assert found(hint, ctx, "Name the capital city of France.") == []
    assert found(hint, ctx, "Name the capital city of Italy.") == [ctx.ids[1]]
    assert slot_of(hint, ctx).builds == 1 and len(slot_of(hint, ctx).hint.index) == len(RECORDS) + 1


def test_changes_made_elsewhere_are_taken_in_by_a_refresh_not_a_rebuild(app):
    ctx, hint = app
    hint.warm_index(ctx, "demo")
    new_id = save_elsewhere(ctx, "Name a bird that cannot fly.", "The penguin")
    save_elsewhere(ctx, "", "", record_id=ctx.ids[0], status="discarded")
    assert found(hint, ctx, "Name a bird that can't fly.") == []  # the index has not looked yet

    hint.forget_indexes(ctx, "demo")  # as after a decision; else after REFRESH_SECONDS
    hint.warm_index(ctx, "demo", wait=False)
    wait_for_background(hint, ctx)

    assert found(hint, ctx, "Name a bird that can't fly.") == [new_id]
    assert ctx.ids[0] not in slot_of(hint, ctx).hint.index
    assert slot_of(hint, ctx).builds == 1


@pytest.fixture
def paused_build(app, monkeypatch):
    """The dataset's first build, in the background, one record per step, held after its first record until
    the returned event is set."""
    from curation.services import coverage

    ctx, hint = app
    go_on, first_done = threading.Event(), threading.Event()
    real = coverage.part_vectors

    def part_vectors(*args, **kwargs):
        if first_done.is_set():
            go_on.wait(60)
        first_done.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(coverage, "HINT_BUILD_CHUNK", 1)
    monkeypatch.setattr(coverage, "part_vectors", part_vectors)
    hint.shared_embedder(ctx)  # the model loaded before the clock below starts
    assert hint.near_duplicates_for(ctx, "demo", "Name the capital city of France.", wait=False) is None
    assert first_done.wait(60)
    deadline = time.monotonic() + 30
    while hint.build_progress(ctx, "demo") != (1, len(RECORDS)) and time.monotonic() < deadline:
        time.sleep(0.02)
    yield go_on
    go_on.set()


def built_app(ctx):
    """(listener functions by name, the hint box's typing path) of the app built on ctx, to call as the browser would."""
    import gradio as gr

    from curation.ui.app import build_app

    demo = build_app(ctx)
    listeners = {block.fn.__name__: block.fn for block in demo.fns.values() if block.fn is not None}
    boxes = [b for b in demo.blocks.values() if isinstance(b, gr.HTML) and hasattr(b, "typed_hint")]
    return listeners, boxes[0].typed_hint


def test_while_the_index_is_being_built_the_hint_says_so_in_words(app, paused_build):
    import gradio as gr

    ctx, hint = app
    listeners, typed_hint = built_app(ctx)
    index_progress, show = listeners["index_progress"], listeners["show"]
    ann = gr.Request(username="ann")
    typed = {"dataset": "demo", "instruction": "Name the capital city of France.", "input": "", "output": "",
             "record_id": None}

    words, poll = index_progress("demo", None, request=ann)
    assert words == ('<div class="nd-building">Checking for near-duplicates: the index of demo is still being built '
                     "(1 of 5 records). Matches will show here when it is ready.</div>")
    assert poll.active is True  # the line is polled until the index answers
    assert show("demo", "Name the capital city of France.", "", "", None, request=ann) == ""  # nothing waits
    # None, not "": the page keeps no answer for this text, so the hint the poll shows after the build stays
    assert typed_hint(typed, request=ann) is None

    paused_build.set()
    wait_for_background(hint, ctx)
    words, poll = index_progress("demo", None, request=ann)
    assert (words, poll.active) == ("", False)
    assert f'data-open-record="{ctx.ids[1]}"' in show("demo", "Name the capital city of France.", "", "", None,
                                                      request=ann)
    assert f'data-open-record="{ctx.ids[1]}"' in typed_hint(typed, request=ann)
    assert typed_hint({**typed, "record_id": ctx.ids[1]}, request=ann) == ""  # the open record is not its duplicate
    assert typed_hint(typed, request=gr.Request(username=None)) == ""  # nobody signed in: nothing
    assert index_progress("demo", ctx.ids[1], request=ann)[0] == (
        f'<span class="nd-context" data-record="{ctx.ids[1]}" hidden></span>')
    assert hint.building_html("demo", (0, 0)).endswith("still being built (reading its records). Matches will "
                                                       "show here when it is ready.</div>")
    assert hint.building_html("demo", (12_000, 52_002)).count("(12,000 of 52,002 records)") == 1


def test_a_record_saved_while_the_index_is_being_built_is_in_it_once_built(app, paused_build):
    ctx, hint = app
    new_id = save_elsewhere(ctx, "Name a bird that cannot fly.", "The penguin")  # after the build read the records
    hint.remember_saved(ctx, "demo", new_id, "Name a bird that cannot fly.", "", "The penguin")

    paused_build.set()
    wait_for_background(hint, ctx)
    assert found(hint, ctx, "Name a bird that can't fly.") == [new_id]
    assert slot_of(hint, ctx).builds == 1
