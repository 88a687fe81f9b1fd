"""Re-running a near-duplicate search: only the records that changed since the last run are searched again."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from curation import dedup_search
from tests.conftest import requires_shared_data
from tests.test_dedup import RECORDS, add_dataset, member_ids
from tests.test_dedup_search import ALPACA, Remembering, pairs_of, reworded


@pytest.fixture(scope="module")
def embedder():
    from curation.embeddings import Embedder

    return Embedder(device="cpu")


@pytest.fixture(scope="module")
def static():
    from curation.static_embeddings import StaticEmbedder

    return StaticEmbedder()


def stored_pairs(session, run_id: int) -> dict[tuple[int, int], float]:
    from sqlmodel import select

    from db.dedup_tables import DuplicatePair

    rows = session.exec(select(DuplicatePair).where(DuplicatePair.run_id == run_id))
    return {(p.record_a, p.record_b): p.score for p in rows}


@pytest.mark.parametrize("mode", ["reference", "cascade"])
def test_a_rerun_carries_unchanged_pairs_and_searches_only_what_changed(session, embedder, static, mode):
    from curation.records import RecordDraft
    from curation.services.dedup import duplicate_groups, forget_runs, latest_run, rerun_words, run_dedup
    from db import repo

    ids = add_dataset(session)
    first = run_dedup(session, dataset="demo", embedder=embedder, static=static, mode=mode)
    assert first.carried_from is None and first.searched is None
    again = run_dedup(session, dataset="demo", embedder=embedder, static=static, mode=mode)
    assert again.carried_from == first.run_id and again.searched == 0
    assert stored_pairs(session, again.run_id) == stored_pairs(session, first.run_id)
    assert member_ids(again.groups) == member_ids(first.groups) == [[ids[0], ids[1]]]

    # an edit makes the "Translate" record a near-duplicate of "Summarize"; a new record copies the first one
    record = repo.get_record(session, ids[4])
    repo.update_record(session, ids[4], expected_version=record.version, by="ann", reason="test",
                       changes={"instruction": "Summarize the text!"})
    new_id = repo.insert_records(session, first_dataset_id(session), [RecordDraft(
        "Give three tips for staying healthy!", "", ["Sleep."])], by="ann", reason="test")[0]
    session.commit()
    third = run_dedup(session, dataset="demo", embedder=embedder, static=static, mode=mode)
    assert third.carried_from == again.run_id and third.searched == 2
    assert rerun_words(session, latest_run(session, dataset="demo")) == \
        f"searched only the 2 records changed since search #{again.run_id}, its other pairs kept"
    groups = member_ids(duplicate_groups(session, dataset="demo", threshold=0.90))  # the edit scores 0.93
    assert [ids[3], ids[4]] in groups and any({ids[0], ids[1], new_id} <= set(g) for g in groups)

    # the same pairs, scored the same, as a full search of the dataset as it is now
    incremental = stored_pairs(session, third.run_id)
    forget_runs(session, dataset="demo")
    full = run_dedup(session, dataset="demo", embedder=embedder, static=static, mode=mode)
    assert full.carried_from is None and rerun_words(session, latest_run(session, dataset="demo")) is None
    assert incremental.keys() == stored_pairs(session, full.run_id).keys()
    assert all(incremental[k] == pytest.approx(s, abs=1e-5) for k, s in stored_pairs(session, full.run_id).items())


def first_dataset_id(session) -> int:
    from db import repo

    return repo.get_dataset(session, "demo").id


def test_a_rerun_is_a_full_search_when_the_way_of_searching_changed(session, embedder):
    from curation.services.dedup import run_dedup

    add_dataset(session)
    run_dedup(session, dataset="demo", embedder=embedder, mode="reference")
    assert run_dedup(session, dataset="demo", embedder=embedder, mode="reference", fields="record").carried_from is None
    assert run_dedup(session, dataset="demo", embedder=embedder, mode="reference", threshold=0.85).carried_from is None


def test_a_rerun_searches_alone_only_while_that_costs_less_than_a_full_search():
    assert dedup_search.worth_searching_alone(100, 200)  # a handful: always
    assert dedup_search.worth_searching_alone(13_000, 52_002) and not dedup_search.worth_searching_alone(14_000, 52_002)
    assert dedup_search.worth_searching_alone(40_000, 1_000_000)
    assert not dedup_search.worth_searching_alone(50_000, 1_000_000)  # exact products of 50k x 1M: a full search


def test_only_the_latest_run_keeps_what_it_compared(session, embedder):
    from sqlmodel import select

    from curation.services.dedup import run_dedup
    from db.dedup_tables import SearchedRecords

    add_dataset(session)
    runs = [run_dedup(session, dataset="demo", embedder=embedder, mode="reference").run_id for _ in range(3)]
    assert [s.run_id for s in session.exec(select(SearchedRecords))] == [runs[-1]]


@requires_shared_data
def test_changed_records_find_what_a_full_cascade_finds_on_1500_alpaca_records(embedder, static):
    rows = json.loads(ALPACA.read_text())[:1500]
    rng = random.Random(11)
    # the last 100 records are the ones that changed: 40 of them reword earlier records (said here)
    rows[-40:] = [{**r, "instruction": reworded(r["instruction"], rng)} for r in rows[:40]]
    texts = [(r["instruction"], r["input"]) for r in rows]
    model = Remembering(embedder)
    static_parts = static.encode([t for pair in texts for t in pair]).reshape(len(texts), 2, -1)
    parts = [static_parts[:, 0], static_parts[:, 1]]
    full, _ = dedup_search.cascade_search(texts, parts, model, 0.90)
    full = pairs_of(full)
    before, rows_before = dedup_search.cascade_search(texts[:1400], [p[:1400] for p in parts], model, 0.90)
    candidates = np.zeros(len(texts), dtype=bool)
    candidates[rows_before] = True
    model.asked.clear()
    changed = np.arange(1400, 1500)
    found, now = dedup_search.changed_pair_arrays(texts, changed, candidates, model, 0.90, parts)
    assert now[changed].sum() >= 40 and now[rows_before].all()  # the rewordings became candidates
    assert len(set(model.asked)) < len(texts)  # the sentence model scored the candidates, not every record
    rerun = pairs_of(before) | pairs_of(found)
    for level in (0.95, 0.90):
        wanted = {p for p, s in full.items() if s >= level}
        got = {p for p, s in rerun.items() if s >= level}
        assert len(wanted) >= 30 and len(got & wanted) / len(wanted) >= 0.97
    # every pair it reports scores at the floor with the full search's vectors
    assert all(s >= 0.90 - 1e-6 for s in rerun.values())
    assert all(rerun[p] == pytest.approx(full[p], abs=1e-5) for p in rerun.keys() & full.keys())


def test_the_dedup_command_says_a_rerun_searched_only_what_changed(sqlite_url, capsys):
    from curation.cli import main
    from db.engine import open_database, session_for

    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        add_dataset(session)
    engine.dispose()
    assert main(["--db", sqlite_url, "dedup", "--dataset", "demo", "--mode", "reference"]) == 0
    assert "were searched again" not in capsys.readouterr().out
    assert main(["--db", sqlite_url, "dedup", "--dataset", "demo", "--mode", "reference"]) == 0
    assert "only the 0 records changed since search #1 were searched again" in capsys.readouterr().out
