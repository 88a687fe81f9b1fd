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
def test_alpaca_52k_has_no_instruction_pair_above_the_self_instruct_rule():
    instructions = [r["instruction"] for r in json.loads(ALPACA.read_text())]
    pairs = dedup.lexical_pairs(instructions, 0.7)
    assert pairs and all(score == 0.7 for _, _, score in pairs)  # the highest pair scores exactly 0.7
