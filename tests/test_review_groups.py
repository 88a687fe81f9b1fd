"""Near-duplicate groups a person can review: no chaining, and a shared preamble left out of the comparison."""
from __future__ import annotations

import os
import random

for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_UPDATE_CHECK"):
    os.environ.setdefault(_key, "1")

import pytest  # noqa: E402

from curation import dedup  # noqa: E402

PREAMBLE = ("You can call these tools. search(query): looks a query up on the web and returns the top results. "
            "calculator(expression): evaluates an arithmetic expression. Answer the user's request.\n")


# ---- grouping --------------------------------------------------------------------------------------

def test_a_chain_of_close_pairs_is_split_around_kept_records():
    # 1~2, 2~3, 3~4: each close to the next, 1 and 4 far apart. Connected components chain them all.
    chain = [(1, 2, 0.96), (2, 3, 0.97), (3, 4, 0.96)]
    assert dedup.connected_groups(chain) == [[1, 2, 3, 4]]
    assert dedup.review_groups(chain, keep_order=[1, 2, 3, 4]) == [[1, 2], [3, 4]]
    # Kept first, 2 takes both its neighbours; 4 is close only to 3, which goes, so 4 stays with no group.
    assert dedup.review_groups(chain, keep_order=[2, 3, 1, 4]) == [[2, 1, 3]]


def test_a_record_joins_the_kept_record_it_is_closest_to():
    pairs = [(1, 3, 0.96), (2, 3, 0.99), (1, 4, 0.95)]
    assert dedup.review_groups(pairs, keep_order=[1, 2, 3, 4]) == [[1, 4], [2, 3]]


def test_records_missing_from_the_keep_order_come_last_in_id_order():
    assert dedup.review_groups([(5, 7, 0.97), (6, 7, 0.97)], keep_order=[7]) == [[7, 5, 6]]


def test_review_groups_keep_their_promises_on_random_pairs():
    rng = random.Random(7)
    for _ in range(50):
        pairs = {(a, b): rng.uniform(0.9, 1.0) for a, b in
                 (sorted(rng.sample(range(40), 2)) for _ in range(rng.randrange(1, 120)))}
        pair_list = [(a, b, s) for (a, b), s in pairs.items()]
        order = rng.sample(range(40), 40)
        groups = dedup.review_groups(pair_list, order)
        close = {frozenset(p) for p in pairs}
        members = [r for g in groups for r in g]
        assert len(members) == len(set(members))  # each record in one group at most
        kept = {g[0] for g in groups}
        for group in groups:
            assert all(frozenset((group[0], m)) in close for m in group[1:])  # each member close to its kept record
            assert order.index(group[0]) == min(order.index(r) for r in group)  # the kept record comes first
            assert len(group) <= 1 + sum(group[0] in p for p in close)
        # Accepting every proposal leaves no pair: each pair has a record that is some group's non-kept member.
        removed = set(members) - kept
        assert all(a in removed or b in removed for a, b in pairs)


# ---- shared text ------------------------------------------------------------------------------------

def test_a_preamble_held_by_40_percent_is_found_and_cut_back_to_a_word():
    texts = 5 * [PREAMBLE + t for t in ("Find the weather.", "Add 2 and 3.", "Search for cats.", "Add 4 and 5.")] + 5 * [
        "Name a fruit.", "Write a poem.", "Write a song.", "Give three tips.", "Name a colour.", "Sort the list."]
    assert dedup.shared_prefix(texts, share=0.3) == (PREAMBLE, 0.4)
    assert dedup.shared_prefix(texts, share=0.5) == ("", 0.0)  # "Write a " is too short to count
    assert dedup.without_shared_text(texts[:2], PREAMBLE, "") == ["Find the weather.", "Add 2 and 3."]


def test_a_few_near_duplicates_in_a_small_dataset_are_no_template():
    # Two of six records are 33%, but fewer than MIN_SHARED_RECORDS (20) hold their opening: it stays compared.
    texts = ["Give three tips for staying healthy.", "Give three tips for staying healthy", "Name a fruit.",
             "What is the capital of France?", "Summarize the text.", "Translate the text to French."]
    assert dedup.shared_text(texts) == (("", 0.0), ("", 0.0))


def test_a_shared_closing_line_is_a_suffix():
    closing = "\nAnswer in one sentence, in English, and cite no source."
    texts = 10 * [t + closing for t in ("Name a fruit.", "Name a river.", "Name a city.")] + 10 * ["Add 2 and 3."]
    (prefix, _), (suffix, held) = dedup.shared_text(texts)
    assert (prefix, suffix, held) == ("", closing, 0.75)  # ".", which "fruit." and the others end on, is cut back


def test_the_view_says_what_was_left_out():
    from curation.services.dedup import compared_texts

    records = [{"instruction": PREAMBLE + t, "input": "", "output": ""} for t in 10 * ("Find the weather.", "Add 2.")]
    records += 10 * [{"instruction": "Name a fruit.", "input": "", "output": ""}]
    texts, notes = compared_texts(records, "instruction+input")
    assert texts[:3] == [("Find the weather.", ""), ("Add 2.", ""), ("Find the weather.", "")]
    assert texts[-1] == ("Name a fruit.", "")
    assert notes == [f"Left out of the comparison: a shared instruction prefix of {len(PREAMBLE)} characters held by "
                     "67% of the records: “You can call these tools. search(query): looks a query up on the web and…”"]


# ---- the service: review grouping by default, connected on request ----------------------------------

def stored_search(session, rows, pairs_by_index, threshold=0.9):
    """A dataset and a stored semantic search with the given pairs (indices into rows), as run_dedup leaves it."""
    from curation.records import RecordDraft
    from db import repo
    from db.dedup_tables import DedupRun, DuplicatePair

    dataset = repo.get_or_create_dataset(session, "demo")
    ids = repo.insert_records(session, dataset.id, [RecordDraft(i, "", [o]) for i, o in rows], by="ann", reason="t")
    run = DedupRun(dataset_id=dataset.id, method="semantic", fields="instruction+input", threshold=threshold,
                   floor=threshold, record_count=len(ids))
    session.add(run)
    session.flush()
    session.add_all([DuplicatePair(run_id=run.id, record_a=ids[a], record_b=ids[b], score=s)
                     for a, b, s in pairs_by_index])
    session.commit()
    return ids


def test_the_curator_sees_groups_around_kept_records_and_can_ask_for_components(session):
    from curation.services import dedup as service

    # Longest output first: record 1 is kept and takes 0; 3 ("Five") is kept before 2 ("5.") and takes it.
    rows = [("Add 2 and 3.", "5"), ("Add 2 and 3 please.", "It is 5, because 2 + 3 = 5."), ("Add 3 and 2.", "5."),
            ("Add 3 and 2, thanks.", "Five")]
    ids = stored_search(session, rows, [(0, 1, 0.95), (0, 2, 0.92), (2, 3, 0.93)])
    review = service.duplicate_groups(session, dataset="demo")
    assert [([r["id"] for r in g.records], g.keep_id) for g in review] == [([ids[0], ids[1]], ids[1]),
                                                                            ([ids[2], ids[3]], ids[3])]
    assert [g.pairs for g in review] == [[(ids[0], ids[1], 0.95)], [(ids[2], ids[3], 0.93)]]
    connected = service.duplicate_groups(session, dataset="demo", grouping="connected")
    assert [[r["id"] for r in g.records] for g in connected] == [ids]
    assert service.duplicate_counts(session, dataset="demo") == {"groups": 2, "pairs": 3, "records": 4}
    assert service.duplicate_counts(session, dataset="demo", grouping="connected") == {
        "groups": 1, "pairs": 3, "records": 4}
    with pytest.raises(service.DedupError, match="unknown grouping 'chained': choose one of review, connected"):
        service.duplicate_groups(session, dataset="demo", grouping="chained")


@pytest.fixture(scope="module")
def embedder():
    from curation.embeddings import Embedder

    return Embedder(device="cpu", precision="fp32")


def test_a_search_over_records_with_a_long_preamble_compares_what_follows_it(session, embedder):
    from curation.records import RecordDraft
    from curation.services.dedup import left_out_of_comparison, run_dedup
    from db import repo

    preamble = PREAMBLE * 12  # past the model's 256 tokens: left in, every record would read the same
    rows = [("Give three tips for staying healthy.", "Eat well, sleep, move."),
            ("Give three tips for staying healthy", "Drink water, rest, walk.")] + [
        (f"{verb} the number {n}.", str(n)) for verb in ("Square", "Halve", "Negate", "Spell out", "Double", "Cube")
        for n in (7, 1234, 99)]  # 20 records: MIN_SHARED_RECORDS
    dataset = repo.get_or_create_dataset(session, "demo")
    ids = repo.insert_records(session, dataset.id, [RecordDraft(preamble + i, "", [o]) for i, o in rows],
                              by="ann", reason="test")
    session.commit()
    report = run_dedup(session, dataset="demo", embedder=embedder)
    assert [[r["id"] for r in g.records] for g in report.groups if ids[0] in {r["id"] for r in g.records}] == [
        [ids[0], ids[1]]]
    assert max(len(g.records) for g in report.groups) <= 3
    sentence = (f"Left out of the comparison: a shared instruction prefix of {len(preamble):,} characters held by "
                "100% of the records: “You can call these tools. search(query): looks a query up on the web and…”")
    assert report.left_out == [sentence]
    assert left_out_of_comparison(session, dataset="demo") == [sentence]
