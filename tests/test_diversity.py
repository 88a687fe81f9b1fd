"""Coverage: clusters named by their distinctive words, a 2-D map, and counts per category, status and author."""
from __future__ import annotations

import os

for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_UPDATE_CHECK"):
    os.environ.setdefault(_key, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from curation import diversity  # noqa: E402

COOKING = ["Write a recipe for tomato soup.", "Suggest a recipe for a quick pasta dinner.",
           "Give a recipe for vegetable soup with tomato."]
CODE = ["Write a Python function that reverses a list.", "Explain this Python function to a beginner.",
        "Fix the bug in this Python loop."]


def test_cluster_count_grows_with_the_data_within_bounds():
    assert [diversity.cluster_count(n) for n in (2, 4, 50, 5000, 10**6)] == [1, 2, 5, 50, 50]


def test_clusters_are_named_by_their_distinctive_words():
    names = diversity.cluster_names(COOKING + CODE, [0, 0, 0, 1, 1, 1], top=2)
    assert names == {0: ["recipe", "soup"], 1: ["python", "function"]}


def test_two_separated_blobs_give_two_clusters_and_a_map_that_separates_them():
    rng = np.random.default_rng(0)
    vectors = np.vstack([rng.normal(0, 0.01, (5, 8)) + np.eye(8)[0], rng.normal(0, 0.01, (5, 8)) + np.eye(8)[1]])
    labels = diversity.cluster_labels(vectors, 2)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:])) == 1 and labels[0] != labels[5]
    xy = diversity.map_2d(vectors)
    assert xy.shape == (10, 2)
    assert abs(xy[:5, 0].mean() - xy[5:, 0].mean()) > 1.0  # the first axis separates the blobs


@pytest.mark.parametrize("instruction, word", [
    ("Write a poem.", "write"), ('"Classify" the sentence', "classify"), ("  ", ""), ("- List three colours", "list"),
])
def test_leading_word(instruction, word):
    assert diversity.leading_word(instruction) == word


def test_coverage_gives_points_clusters_and_counts():
    records = [{"id": i + 1, "instruction": text, "category": category, "status": "draft", "created_by": author}
               for i, (text, category, author) in enumerate(
                   [(t, "cooking", "ann") for t in COOKING] + [(t, "code", "bob") for t in CODE[:2]] +
                   [(CODE[2], None, "bob")])]
    vectors = np.vstack([np.tile(np.eye(4)[0], (3, 1)), np.tile(np.eye(4)[1], (3, 1))]).astype(np.float32)
    report = diversity.coverage(records, vectors, n_clusters=2)
    clusters = {c["id"]: c for c in report["clusters"]}
    cooking = report["points"][0]["cluster"]
    assert [p["cluster"] == cooking for p in report["points"]] == [True] * 3 + [False] * 3
    assert clusters[cooking]["size"] == 3 and clusters[cooking]["words"][:2] == ["recipe", "soup"]
    assert report["counts"]["category"] == {"cooking": 3, "code": 2, "(none)": 1}
    assert report["counts"]["author"] == {"bob": 3, "ann": 3}
    assert report["counts"]["status"] == {"draft": 6}
    assert report["counts"]["leading_word"] == {"write": 2, "explain": 1, "fix": 1, "give": 1, "suggest": 1}
    assert diversity.coverage([], np.zeros((0, 4)))["points"] == []


def test_coverage_report_of_a_stored_dataset(session):
    from curation.embeddings import Embedder
    from curation.records import RecordDraft
    from curation.services.coverage import coverage_report
    from db import repo

    dataset = repo.get_or_create_dataset(session, "mix")
    ids = repo.insert_records(session, dataset.id, [RecordDraft(t, "", ["ok then"]) for t in COOKING + CODE],
                              by="ann", reason="test")
    session.commit()
    report = coverage_report(session, dataset="mix", embedder=Embedder(device="cpu", precision="fp32"), n_clusters=2)
    by_id = {p["id"]: p for p in report["points"]}
    assert sorted(by_id) == ids and report["records"] == 6
    assert len({by_id[i]["cluster"] for i in ids[:3]}) == 1 and len({by_id[i]["cluster"] for i in ids[3:]}) == 1
    assert by_id[ids[0]]["cluster"] != by_id[ids[3]]["cluster"]
    assert by_id[ids[0]]["instruction"] == COOKING[0] and by_id[ids[0]]["flags"] == []
