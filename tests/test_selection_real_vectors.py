"""DEITA's rule on real vectors: the MiniLM instruction+input vectors of the first Alpaca records, as a selection
uses them. The chunked rule takes exactly the rows that a plain one-at-a-time reading of the rule takes, in the
same order, and no two records it takes are within the threshold of each other."""
from __future__ import annotations

import json

import numpy as np
import pytest

from curation import dedup, selection
from tests.conftest import SHARED_DATA, requires_shared_data

ALPACA = SHARED_DATA / "alpaca_format" / "stanford_alpaca_52k.json"
RECORDS = 2000  # about 2,800 distinct texts: some 30 s to embed on 2 shared CPUs

pytestmark = [requires_shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def alpaca_vectors() -> np.ndarray:
    """The first RECORDS Alpaca records' instruction and input vectors, joined as services.scores.default_vectors
    joins them (each distinct text embedded once: most inputs are empty)."""
    from curation.embeddings import Embedder

    rows = json.loads(ALPACA.read_text())[:RECORDS]
    texts = sorted({r[part] for r in rows for part in ("instruction", "input")})
    vector_of = dict(zip(texts, Embedder(device="cpu").encode(texts)))
    return dedup.joined_vectors([np.stack([vector_of[r[part]] for r in rows]) for part in ("instruction", "input")])


@pytest.fixture(scope="module")
def judge_like_scores() -> np.ndarray:
    """Ratings 0 to 5 (many ties, as a judge gives), one record in twenty unscored."""
    rng = np.random.default_rng(13)
    scores = rng.integers(0, 6, size=RECORDS).astype(np.float64)
    scores[rng.random(RECORDS) < 0.05] = np.nan
    return scores


def one_at_a_time(scores: np.ndarray, vectors: np.ndarray, n: int, threshold: float) -> list[int]:
    """DEITA's rule read literally: records by score, highest first (ties: the earlier record first), unscored
    ones never; each is taken when its cosine distance to every record taken so far exceeds the threshold,
    until n are taken."""
    order = sorted((i for i in range(len(scores)) if not np.isnan(scores[i])), key=lambda i: (-scores[i], i))
    taken: list[int] = []
    taken_vectors = np.empty((n, vectors.shape[1]), dtype=vectors.dtype)
    for i in order:
        if len(taken) == n:
            break
        if not taken or (1.0 - taken_vectors[:len(taken)] @ vectors[i]).min() > threshold:
            taken_vectors[len(taken)] = vectors[i]
            taken.append(i)
    return taken


# (threshold, budget, records taken): 1,898 of the records are scored. At 0.1 the candidates run out first; at
# 0.3 the budget is filled after 845 candidates. The closest call either rule makes is 5e-5 from the limit.
CASES = [(0.1, RECORDS, 1844), (0.3, 600, 600)]


@pytest.mark.parametrize("threshold, n, size", CASES)
def test_deita_on_real_vectors_takes_what_the_plain_rule_takes(alpaca_vectors, judge_like_scores, threshold, n,
                                                                size):
    taken = selection.deita_select(judge_like_scores, alpaca_vectors, n, threshold).tolist()

    assert taken == one_at_a_time(judge_like_scores, alpaca_vectors, n, threshold)
    assert len(taken) == size and not np.isnan(judge_like_scores[taken]).any()
    met = selection.top_n(judge_like_scores, RECORDS).tolist().index(taken[-1]) + 1
    assert met > len(taken)  # the threshold left records out: otherwise the test would show nothing
    similarities = alpaca_vectors[taken] @ alpaca_vectors[taken].T
    np.fill_diagonal(similarities, -1.0)
    assert 1.0 - similarities.max() > threshold
