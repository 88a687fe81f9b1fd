"""The semantic search's stages: the cascade (static candidates, then the sentence model) against the reference."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from curation import dedup_search
from tests.conftest import SHARED_DATA, requires_shared_data
from tests.test_dedup import RECORDS, add_dataset, member_ids

ALPACA = SHARED_DATA / "alpaca_format" / "stanford_alpaca_52k.json"


@pytest.fixture(scope="module")
def embedder():
    from curation.embeddings import Embedder

    return Embedder(device="cpu")  # the default precision: bf16 where this CPU runs it fast


@pytest.fixture(scope="module")
def static():
    from curation.static_embeddings import StaticEmbedder

    return StaticEmbedder()


class Remembering:
    """The sentence model with a memory: the reference and the cascade score a text with the very same vector,
    and what the cascade asked for is counted."""

    def __init__(self, embedder):
        self.embedder, self.vectors, self.asked = embedder, {}, []

    def __call__(self, texts, progress=None):
        self.asked.extend(texts)
        new = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if new:
            self.vectors.update(zip(new, self.embedder.encode(new)))
        return np.stack([self.vectors[t] for t in texts])


def reworded(text: str, rng: random.Random) -> str:
    """A near-duplicate as a second annotator might write it: a word added in front, or the final mark changed."""
    if rng.random() < 0.5:
        return rng.choice(["Please", "Now,", "Kindly"]) + " " + text[:1].lower() + text[1:]
    return text.rstrip(".?!") + rng.choice(["!", "?", ""])


def pairs_of(found) -> dict[tuple[int, int], float]:
    return {(int(a), int(b)): float(s) for a, b, s in zip(*found)}


def test_static_vectors_are_unit_rows_and_empty_texts_match_each_other(static):
    vectors = static.encode(["", "Name three primary colours.", "", "name 3 primary colors"])
    assert vectors.dtype == np.float32 and vectors.shape == (4, 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[2]) == pytest.approx(1.0)  # two empty inputs are alike, as in MiniLM
    assert float(vectors[1] @ vectors[3]) > 0.8 > float(vectors[0] @ vectors[1])


def test_candidates_are_the_records_with_a_static_neighbour_at_the_lower_threshold():
    a = np.array([[1, 0, 0], [0.99, 0.141, 0], [0, 1, 0], [0, 0, 1.0]], dtype=np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    assert dedup_search.candidate_rows([a], 0.95).tolist() == [0, 1]
    assert dedup_search.candidate_rows([a, a[[0, 2, 3, 1]]], 0.95).tolist() == []  # every part must reach it
    assert dedup_search.candidate_floor(0.90) == pytest.approx(0.70)


@requires_shared_data
def test_the_cascade_finds_the_reference_pairs_of_1500_alpaca_records_and_embeds_a_fraction(embedder, static):
    rows = json.loads(ALPACA.read_text())[:1500]
    rng = random.Random(7)
    # 60 near-duplicates made from the first records, so both thresholds have pairs to find (said here)
    rows += [{**r, "instruction": reworded(r["instruction"], rng)} for r in rows[:60]]
    texts = [(r["instruction"], r["input"]) for r in rows]
    model = Remembering(embedder)
    reference = pairs_of(dedup_search.staged_pair_arrays(texts, model, 0.90))
    model.asked.clear()
    parts = static.encode([t for pair in texts for t in pair]).reshape(len(texts), 2, -1)
    cascade = pairs_of(dedup_search.cascade_pair_arrays(texts, [parts[:, 0], parts[:, 1]], model, 0.90))
    assert len(model.asked) < len(texts)  # the sentence model saw fewer texts than there are records
    for level in (0.95, 0.90):
        wanted = {p for p, s in reference.items() if s >= level}
        found = {p for p, s in cascade.items() if s >= level}
        assert len(wanted) >= 40  # 41 at 0.95, more at 0.90
        assert found <= wanted  # every pair it reports is a reference pair...
        assert len(found & wanted) / len(wanted) >= 0.95  # ...and it misses at most 5% of them
    assert all(cascade[p] == pytest.approx(reference[p]) for p in cascade)  # scored by the same vectors


def test_a_cascade_search_finds_the_same_groups_and_says_how_it_searched(session, embedder, static):
    from curation.services.dedup import latest_run, run_dedup

    ids = add_dataset(session)
    cascade = run_dedup(session, dataset="demo", embedder=embedder, static=static, mode="cascade")
    assert cascade.mode == "cascade" and latest_run(session, dataset="demo").mode == "cascade"
    reference = run_dedup(session, dataset="demo", embedder=embedder, mode="reference")
    assert member_ids(cascade.groups) == member_ids(reference.groups) == [[ids[0], ids[1]]]
    assert cascade.groups[0].score == pytest.approx(reference.groups[0].score)
    assert len(RECORDS) < dedup_search.MIN_RECORDS
    assert run_dedup(session, dataset="demo", embedder=embedder).mode == "reference"  # auto, on a small dataset


def test_an_unknown_search_mode_is_refused_before_anything_is_stored(session, embedder):
    from curation.services.dedup import DedupError, latest_run, run_dedup

    add_dataset(session)
    with pytest.raises(DedupError, match="unknown search mode 'fastest': choose one of auto, cascade, reference"):
        run_dedup(session, dataset="demo", embedder=embedder, mode="fastest")
    assert latest_run(session, dataset="demo") is None


def test_the_dedup_command_runs_the_cascade_and_says_so(sqlite_url, capsys):
    from curation.cli import main
    from db.engine import open_database, session_for

    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        ids = add_dataset(session)
    engine.dispose()
    assert main(["--db", sqlite_url, "dedup", "--dataset", "demo", "--mode", "cascade"]) == 0
    out = capsys.readouterr().out
    assert "6 records searched in" in out and "(cascade search)" in out
    assert f"#{ids[0]}" in out and f"#{ids[1]}" in out


def test_the_gpu_search_finds_what_exact_search_finds(embedder):
    """The blocked matrix-product search the GPU runs (here in fp32 on the CPU) against faiss's exact search."""
    from curation import dedup

    texts = [r[0] for r in RECORDS] + ["What's the capital city of France?", "Give me the capital of France."]
    vectors = embedder.encode(texts)
    rows = lambda start, end: vectors[start:end]  # noqa: E731
    for threshold in (0.95, 0.80):
        by_torch = sorted((int(a), int(b)) for i, j in dedup.torch_close_pairs(rows, len(texts), vectors.shape[1],
                                                                              threshold, 3, "cpu", block=3)
                          for a, b in zip(i, j))
        by_faiss = sorted((int(a), int(b)) for i, j in dedup._close_pairs(rows, len(texts), vectors.shape[1],
                                                                          threshold, 3, True, 3, "cpu")
                          for a, b in zip(i, j))
        assert by_torch == by_faiss
    assert len(by_torch) >= 4  # at 0.80 the three wordings of the question pair up
