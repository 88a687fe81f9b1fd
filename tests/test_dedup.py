"""Near-duplicates: exact groups, semantic pairs, Self-Instruct's ROUGE-L rule, and the keep proposal."""
from __future__ import annotations

import json
import os
import random

for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_UPDATE_CHECK"):
    os.environ.setdefault(_key, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from curation import dedup  # noqa: E402
from curation.records import content_hash  # noqa: E402
from tests.conftest import SHARED_DATA, requires_shared_data  # noqa: E402

ALPACA = SHARED_DATA / "alpaca_format" / "stanford_alpaca_52k.json"


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


# ---- exact duplicates ----------------------------------------------------------------------------

def test_exact_groups_share_a_normalized_hash():
    # Whitespace is normalized away; case is kept (a different target for training).
    hashes = [content_hash(i, "", [o]) for i, o in [
        ("Name a fruit.", "Apple"), ("Name a  fruit. ", "Apple"), ("name a fruit.", "apple"), ("Name a fruit.", "Apple")]]
    assert dedup.exact_groups(hashes) == [[0, 1, 3]]


@requires_shared_data
def test_llamafactory_demo_extra_copies_form_13_exact_groups_one_of_three():
    rows = json.loads((SHARED_DATA / "alpaca_format" / "llamafactory_alpaca_en_demo.json").read_text())
    groups = dedup.exact_groups([content_hash(r["instruction"], r["input"], [r["output"]]) for r in rows])
    assert len(groups) == 13
    assert sorted(len(g) for g in groups) == [2] * 12 + [3]
    assert sum(len(g) - 1 for g in groups) == 14  # the 14 extra copies


# ---- semantic pairs -------------------------------------------------------------------------------

def test_semantic_pairs_need_every_part_to_match():
    # Records 0 and 1 reword one task on one passage; 2 asks something else about that passage;
    # 3 is unrelated. Joined text would pair 0 and 2 through the long shared input.
    instruction = np.stack([unit(1, 0, 0), unit(1, 0.1, 0), unit(0, 1, 0), unit(0, 0, 1)])
    passage = np.stack([unit(1, 1, 0), unit(1, 1, 0), unit(1, 1, 0), unit(0, 1, 1)])
    pairs = dedup.semantic_pairs([instruction, passage], threshold=0.95)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]
    assert pairs[0][2] == pytest.approx(float(instruction[0] @ instruction[1]))


def test_semantic_pairs_with_the_hnsw_index_match_exact_search():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 16)).astype(np.float32)
    near = base + rng.normal(scale=0.05, size=base.shape).astype(np.float32)  # 300 close copies
    vectors = np.vstack([base, near])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = dedup.semantic_pairs([vectors], 0.95, exact=True)
    approximate = dedup.semantic_pairs([vectors], 0.95, exact=False)
    assert {(i, j) for i, j, _ in exact} == {(i, i + 300) for i in range(300)}
    assert {(i, j) for i, j, _ in approximate} == {(i, j) for i, j, _ in exact}


def test_groups_are_connected_components_largest_first():
    pairs = [(5, 6, 0.97), (1, 2, 0.99), (2, 3, 0.96), (8, 9, 0.95)]
    assert dedup.connected_groups(pairs) == [[1, 2, 3], [5, 6], [8, 9]]


def test_keep_proposal_prefers_approved_then_longer_output_then_older():
    members = [
        {"id": 1, "status": "draft", "output": "a much longer answer", "created_at": "2024-01-01"},
        {"id": 2, "status": "submitted", "output": "short", "created_at": "2024-01-03"},
        {"id": 3, "status": "submitted", "output": "longer one", "created_at": "2024-01-02"},
        {"id": 4, "status": "submitted", "output": "longer two", "created_at": "2024-01-01"},
    ]
    assert dedup.proposed_keep(members) == 4
    assert dedup.proposed_keep(members + [{"id": 5, "status": "approved", "output": "", "created_at": "2025"}]) == 5


def test_near_duplicate_index_answers_with_every_part_at_the_threshold():
    index = dedup.NearDuplicateIndex([10, 11], [np.stack([unit(1, 0), unit(0, 1)]), np.stack([unit(1, 0), unit(1, 0)])])
    assert index.closest([unit(1, 0.05), unit(1, 0)], 0.95) == [(10, pytest.approx(0.99875, abs=1e-5))]
    assert index.closest([unit(1, 0.05), unit(1, 0)], 0.95, exclude=[10]) == []
    index.add(12, [unit(1, 0.04), unit(1, 0)])
    assert [i for i, _ in index.closest([unit(1, 0.05), unit(1, 0)], 0.95)] == [12, 10]


# ---- lexical: ROUGE-L -----------------------------------------------------------------------------

def test_rouge_l_is_two_lcs_over_total_length():
    a = dedup.rouge_tokens("Give three tips for staying healthy.")
    b = dedup.rouge_tokens("Give me 3 tips for staying healthy!")
    assert a == ["give", "three", "tips", "for", "staying", "healthy"]
    assert dedup.rouge_l(a, b) == 2 * 5 / (6 + 7)
    assert dedup.rouge_l([], b) == 0.0 and dedup.rouge_l([], []) == 0.0


def test_lexical_pairs_keep_scores_exact_at_the_boundary():
    texts = ["one two three four five six seven eight nine ten",
             "one two three four five six seven zz yy xx",  # LCS 7 of 10 + 10: exactly 0.7
             "completely different words here",
             "one two three four five six seven eight nine",  # 0.947 to the first
             "", "..."]
    pairs = dedup.lexical_pairs(texts, 0.7)
    assert pairs == [(0, 1, 0.7), (0, 3, 18 / 19), (1, 3, 14 / 19)]
    assert [p for p in pairs if p[2] > 0.7] == [(0, 3, 18 / 19), (1, 3, 14 / 19)]


def test_minhash_candidates_find_a_close_rewording():
    tokens = [dedup.rouge_tokens(t) for t in ["write a short poem about the sea and its waves",
                                               "write a short poem about the sea and the waves",
                                               "list the planets of the solar system in order"]]
    assert (0, 1) in dedup.minhash_candidates(tokens)
    assert (0, 2) not in dedup.minhash_candidates(tokens)


@requires_shared_data
def test_rouge_l_equals_rouge_score_on_1000_alpaca_pairs():
    from rouge_score import rouge_scorer

    instructions = [r["instruction"] for r in json.loads(ALPACA.read_text())]
    rng = random.Random(42)
    pairs = [tuple(rng.sample(range(len(instructions)), 2)) for _ in range(1000)]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    ours = [dedup.rouge_l(dedup.rouge_tokens(instructions[i]), dedup.rouge_tokens(instructions[j])) for i, j in pairs]
    theirs = [scorer.score(instructions[i], instructions[j])["rougeL"].fmeasure for i, j in pairs]
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert max(ours) > 0.3  # the sample holds overlapping pairs, not only zeros


@requires_shared_data
def test_alpaca_has_no_instruction_pair_above_the_self_instruct_rule():
    # The first 20,000 (all 52,002 take a minute of CI; bench/dedup.py's (d) checks them all: 1,461 at exactly 0.7)
    instructions = [r["instruction"] for r in json.loads(ALPACA.read_text())[:20_000]]
    pairs = dedup.lexical_pairs(instructions, 0.7)
    assert pairs and all(score == 0.7 for _, _, score in pairs)  # the highest pair scores exactly 0.7


# ---- the curator's workflow over a stored dataset (SQLite and PostgreSQL) -------------------------

RECORDS = [
    ("Give three tips for staying healthy.", "", "Eat well, sleep, move."),
    ("Give three tips for staying healthy", "", "Drink water, rest, walk."),  # a near-duplicate of the first
    ("What is the capital of France?", "", "Paris."),
    ("Summarize the text.", "The fair opens on Monday in the park.", "The fair opens Monday."),
    ("Translate the text to French.", "The fair opens on Monday in the park.", "La foire ouvre lundi."),
    ("What is the capital of France?", "", "Paris."),  # an exact copy
]


@pytest.fixture(scope="module")
def embedder():
    from curation.embeddings import Embedder

    return Embedder(device="cpu", precision="fp32")


def add_dataset(session, name="demo", rows=RECORDS) -> list[int]:
    from curation.records import RecordDraft
    from db import repo

    dataset = repo.get_or_create_dataset(session, name)
    ids = repo.insert_records(session, dataset.id, [RecordDraft(i, n, [o]) for i, n, o in rows], by="ann",
                              reason="test")
    session.commit()
    return ids


def test_only_records_whose_instruction_has_a_close_neighbour_are_candidates():
    vectors = np.stack([unit(1, 0, 0), unit(1, 0.05, 0), unit(0, 1, 0), unit(0, 0.3, 1)])
    assert dedup.with_close_neighbour(vectors, 0.95).tolist() == [True, True, False, False]
    assert dedup.with_close_neighbour(vectors, 0.999).tolist() == [False, False, False, False]


def test_a_search_embeds_no_input_whose_instruction_is_unlike_every_other(session, embedder):
    from curation.embeddings import Embedder
    from curation.services.dedup import run_dedup

    class Counting(Embedder):
        def encode_in_chunks(self, texts, progress=None, chunk=1024):
            seen.extend(texts)
            return super().encode_in_chunks(texts, progress, chunk)

    seen: list[str] = []
    counting = Counting(device="cpu", precision="fp32")
    counting.model = embedder.model
    ids = add_dataset(session)
    report = run_dedup(session, dataset="demo", embedder=counting)
    assert member_ids(report.groups) == [[ids[0], ids[1]]]
    # "Summarize the text." and "Translate the text to French." match nothing: their passage is never embedded
    assert sorted(set(seen)) == sorted({r[0] for r in RECORDS} | {""})


def member_ids(groups) -> list[list[int]]:
    return [[r["id"] for r in g.records] for g in groups]


def test_a_search_lists_exact_and_near_duplicate_groups_with_a_proposal(session, embedder):
    from curation.services.dedup import DedupError, duplicate_counts, run_dedup

    ids = add_dataset(session)
    report = run_dedup(session, dataset="demo", embedder=embedder)
    assert member_ids(report.exact_groups) == [[ids[2], ids[5]]]
    assert report.exact_groups[0].keep_id == ids[2]  # same status and output: the older
    # The shared passage does not pair "Summarize" with "Translate": instruction and input must both match.
    assert member_ids(report.groups) == [[ids[0], ids[1]]]
    assert report.groups[0].keep_id == ids[1]  # the longer output
    assert 0.95 <= report.groups[0].score < 1.0
    assert (report.records, report.fields, report.threshold) == (6, "instruction+input", 0.95)
    assert duplicate_counts(session, dataset="demo") == {"groups": 1, "pairs": 1, "records": 2}
    assert duplicate_counts(session, dataset="demo", threshold=1.0) == {"groups": 0, "pairs": 0, "records": 0}
    with pytest.raises(DedupError, match="the last search kept pairs down to 0.9; search again to go to 0.8"):
        duplicate_counts(session, dataset="demo", threshold=0.8)


def test_decisions_survive_a_rerun_and_a_restart_and_are_undoable(db_url, embedder):
    from curation.services import dedup as service
    from db import repo
    from db.engine import open_database, session_for

    engine = open_database(db_url)
    with session_for(engine) as session:
        ids = add_dataset(session)
        service.run_dedup(session, dataset="demo", embedder=embedder)
        decision = service.decide(session, dataset="demo", record_ids=[ids[0], ids[1]], decision="keep_one",
                                  keep_id=ids[1], by="cur", versions={ids[0]: 1, ids[1]: 1})
        discarded = repo.get_record(session, ids[0])
        assert (discarded.status.value, discarded.version) == ("discarded", 2)
        assert repo.history(session, "record", ids[0])[-1].reason == f"duplicate of record {ids[1]}"
        assert service.run_dedup(session, dataset="demo", embedder=embedder).groups == []
    engine.dispose()

    engine = open_database(db_url)  # a restart
    with session_for(engine) as session:
        assert service.duplicate_groups(session, dataset="demo") == []
        assert [d["kind"] for d in service.list_decisions(session, dataset="demo")] == ["keep_one"]
        service.undo_decision(session, decision_id=decision, by="cur")
        restored = repo.get_record(session, ids[0])
        assert (restored.status.value, restored.version) == ("draft", 3)
        assert member_ids(service.duplicate_groups(session, dataset="demo")) == [[ids[0], ids[1]]]
        with pytest.raises(service.DedupError, match=f"decision {decision} does not exist or was already undone"):
            service.undo_decision(session, decision_id=decision, by="cur")
    engine.dispose()


def test_not_duplicates_keeps_records_apart_until_undone(session, embedder):
    from curation.services import dedup as service

    ids = add_dataset(session)
    service.run_dedup(session, dataset="demo", embedder=embedder)
    decision = service.decide(session, dataset="demo", record_ids=[ids[2], ids[5]], decision="not_duplicates",
                              versions={ids[2]: 1, ids[5]: 1})
    assert service.exact_duplicate_groups(session, dataset="demo") == []
    assert service.run_dedup(session, dataset="demo", embedder=embedder).exact_groups == []
    service.undo_decision(session, decision_id=decision)
    assert member_ids(service.exact_duplicate_groups(session, dataset="demo")) == [[ids[2], ids[5]]]


def test_merge_gathers_distinct_outputs_into_the_kept_record_and_undoes(session):
    from curation.services import dedup as service
    from db import repo

    ids = add_dataset(session, rows=RECORDS[:3] + [("Give three tips for staying healthy.", "", "Eat well,  sleep, move.")])
    decision = service.decide(session, dataset="demo", record_ids=[ids[0], ids[1], ids[3]], decision="merge",
                              keep_id=ids[0], by="cur", versions={i: 1 for i in ids})
    kept = repo.get_record(session, ids[0])
    assert kept.outputs == ["Eat well, sleep, move.", "Drink water, rest, walk."]  # the third only differs in spaces
    assert [repo.get_record(session, i).status.value for i in ids] == ["draft", "discarded", "draft", "discarded"]
    service.undo_decision(session, decision_id=decision, by="cur")
    assert repo.get_record(session, ids[0]).outputs == ["Eat well, sleep, move."]
    assert [repo.get_record(session, i).status.value for i in ids] == ["draft"] * 4


def test_a_decision_on_a_stale_version_is_refused_and_changes_nothing(session):
    from curation.services import dedup as service
    from db import repo
    from db.dedup_tables import DuplicateDecision

    ids = add_dataset(session)
    repo.update_record(session, ids[0], expected_version=1, changes={"category": "health"}, by="ann")
    session.commit()
    with pytest.raises(repo.ConflictError, match=f"record {ids[0]} was changed by ann"):
        service.decide(session, dataset="demo", record_ids=[ids[0], ids[1]], decision="keep_one", keep_id=ids[1],
                       versions={ids[0]: 1, ids[1]: 1})
    assert repo.get_record(session, ids[0]).status.value == "draft"
    assert session.query(DuplicateDecision).count() == 0


def test_a_decision_without_the_versions_seen_is_refused_and_changes_nothing(session):
    from curation.services import dedup as service
    from db import repo
    from db.dedup_tables import DuplicateDecision

    ids = add_dataset(session)
    with pytest.raises(service.DedupError) as error:
        service.decide(session, dataset="demo", record_ids=[ids[0], ids[1]], decision="keep_one", keep_id=ids[1],
                       versions={ids[1]: 1})
    assert str(error.value) == (f"say which version of record(s) {ids[0]} the decision is based on: "
                                "reload the group and decide again")
    assert [repo.get_record(session, i).status.value for i in ids[:2]] == ["draft", "draft"]
    assert session.query(DuplicateDecision).count() == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(dataset="nope", record_ids=[1, 2], decision="keep_one", keep_id=1), "dataset 'nope' does not exist"),
    (dict(dataset="demo", record_ids=[1, 2], decision="delete"), "unknown decision 'delete': choose one of keep_one, not_duplicates, merge"),
    (dict(dataset="demo", record_ids=[1, 1], decision="not_duplicates"), "a decision needs two or more records"),
    (dict(dataset="demo", record_ids=[1, 2], decision="keep_one"), "keep_one needs the id of the record to keep, one of 1, 2"),
    (dict(dataset="demo", record_ids=[1, 99], decision="not_duplicates"), "record(s) 99 are not in dataset 'demo'"),
])
def test_a_bad_decision_is_refused_with_its_reason(session, kwargs, message):
    from curation.services import dedup as service

    add_dataset(session)
    with pytest.raises(service.DedupError) as error:
        service.decide(session, versions={1: 1, 2: 1, 99: 1}, **kwargs)
    assert str(error.value) == message


def test_the_lexical_rule_groups_pairs_above_its_threshold(session):
    from curation.services.dedup import run_dedup

    ids = add_dataset(session)
    report = run_dedup(session, dataset="demo", lexical=True)
    assert (report.method, report.fields, report.threshold) == ("lexical", "instruction", 0.7)
    assert member_ids(report.groups) == [[ids[0], ids[1]]]  # identical words; 2 and 5 are exact duplicates
    assert report.highest_score == 1.0


def test_the_editor_hint_finds_what_is_being_typed(session, embedder):
    from curation.services import coverage as service

    ids = add_dataset(session)
    hint = service.near_duplicate_hint(session, dataset="demo", embedder=embedder)
    found = service.closest_records(session, hint, instruction="Give three tips for staying healthy!")
    assert sorted(r["id"] for r in found) == [ids[0], ids[1]]
    assert found[0]["score"] >= found[1]["score"] >= 0.95
    assert service.closest_records(session, hint, instruction="Name a bird that cannot fly.") == []
    assert [r["id"] for r in service.closest_records(session, hint, instruction="What is the capital of France?",
                                                     exclude_id=ids[2])] == [ids[5]]
    service.remember_record(hint, record_id=999, instruction="Name a bird that cannot fly.")
    assert service.closest_records(session, hint, instruction="Name a bird that cannot fly.") == []  # 999 not stored


def test_quality_report_counts_live_records(session):
    from curation.services.coverage import quality_report

    ids = add_dataset(session, rows=RECORDS + [("Write a poem about rain.", "No input", "<nooutput>")])
    report = quality_report(session, dataset="demo")
    assert report["records"] == 7
    assert {k: v for k, v in report["flags"].items() if v} == {"instruction_length": 1, "placeholder_input": 1,
                                                               "placeholder_output": 1}
    assert report["examples"]["instruction_length"] == [ids[3]]  # "Summarize the text.": three words
    assert report["examples"]["placeholder_output"] == [ids[6]]


@requires_shared_data
def test_llamafactory_demo_imported_with_duplicates_gives_13_exact_groups(session):
    from curation.importer import import_files
    from curation.services.dedup import exact_duplicate_groups

    import_files(session, "demo", [SHARED_DATA / "alpaca_format" / "llamafactory_alpaca_en_demo.json"],
                 keep_duplicates=True)
    groups = exact_duplicate_groups(session, dataset="demo")
    assert sorted(len(g.records) for g in groups) == [2] * 12 + [3]


# ---- the command line -----------------------------------------------------------------------------

def test_dedup_and_flags_commands(sqlite_url, capsys):
    from curation.cli import main
    from db.engine import open_database, session_for

    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        ids = add_dataset(session)
    engine.dispose()
    assert main(["--db", sqlite_url, "dedup", "--dataset", "demo", "--lexical"]) == 0
    out = capsys.readouterr().out
    assert "exact duplicates: 1 groups, 2 records" in out
    assert "near-duplicates (lexical, instruction, score > 0.7): 1 groups, 2 records" in out
    assert f"  group 1 (score 1.000, keep #{ids[1]}):" in out
    assert main(["--db", sqlite_url, "dedup", "--dataset", "demo", "--lexical", "--json"]) == 0
    assert [[r["id"] for r in g["records"]] for g in json.loads(capsys.readouterr().out)["groups"]] == [ids[:2]]
    assert main(["--db", sqlite_url, "flags", "--dataset", "demo"]) == 0
    assert "dataset demo: 6 records checked" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["dedup", "--dataset", "nope"], "error: dataset 'nope' does not exist"),
    (["dedup", "--dataset", "demo", "--lexical", "--threshold", "1.5"],
     "error: threshold must be above 0 and at most 1, got 1.5"),
    (["flags", "--dataset", "nope"], "error: dataset 'nope' does not exist"),
])
def test_commands_refuse_bad_input_with_one_line_and_exit_2(sqlite_url, capsys, argv, message):
    from curation.cli import main
    from db.engine import open_database, session_for

    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        add_dataset(session)
    engine.dispose()
    assert main(["--db", sqlite_url, *argv]) == 2
    assert capsys.readouterr().err.strip() == message
