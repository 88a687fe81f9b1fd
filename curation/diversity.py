"""Coverage of a dataset: clusters over embeddings named by their most distinctive words, a 2-D map (UMAP,
curation.maps), and counts.

The leading *verb* of Self-Instruct's diversity figure needs a parser; no well-kept library here ships its
model offline (NLTK's tagger data and spaCy's English models do not come from the package registry), so we
count the leading *word* instead, which for imperative instructions ("Write", "Classify") is mostly the verb.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Sequence

import numpy as np

MAX_CLUSTERS = 50
WORDS_PER_CLUSTER = 4


def cluster_count(n: int) -> int:
    """About sqrt(n/2) clusters, between 2 and MAX_CLUSTERS (1 for fewer than 4 records)."""
    return 1 if n < 4 else max(2, min(MAX_CLUSTERS, round(math.sqrt(n / 2))))


def cluster_labels(vectors: np.ndarray, n_clusters: int | None = None, seed: int = 0) -> np.ndarray:
    """A cluster number per row, by k-means over the (normalized) vectors; the same seed gives the same labels."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n_clusters = min(n_clusters or cluster_count(len(vectors)), len(vectors))
    if n_clusters <= 1:
        return np.zeros(len(vectors), dtype=np.int64)
    if len(vectors) > 20_000:
        model = MiniBatchKMeans(n_clusters, random_state=seed, batch_size=4096, n_init=3)
    else:
        model = KMeans(n_clusters, random_state=seed, n_init=3)
    return model.fit_predict(np.asarray(vectors, dtype=np.float32)).astype(np.int64)


def cluster_names(texts: Sequence[str], labels: Sequence[int], top: int = WORDS_PER_CLUSTER) -> dict[int, list[str]]:
    """Each cluster's most distinctive words by c-TF-IDF: a word's share of the cluster times log(1 + A / its count)."""
    from sklearn.feature_extraction.text import CountVectorizer

    labels = np.asarray(labels)
    clusters = sorted(set(labels.tolist()))
    documents = [" ".join(t for t, l in zip(texts, labels) if l == c) for c in clusters]
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
    try:
        counts = vectorizer.fit_transform(documents).toarray().astype(np.float64)
    except ValueError:  # no words at all (every text empty or stop words)
        return {c: [] for c in clusters}
    words = vectorizer.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    average_words = counts.sum() / len(clusters)
    scores = tf * np.log(1 + average_words / np.maximum(counts.sum(axis=0), 1))
    return {c: [str(words[i]) for i in np.argsort(-scores[k], kind="stable")[:top] if scores[k, i] > 0]
            for k, c in enumerate(clusters)}


def map_2d(vectors: np.ndarray, seed: int = 0, projection: str = "auto") -> np.ndarray:
    """Two coordinates per row: UMAP, so clusters stand apart (PCA for tiny sets, or when asked; curation.maps)."""
    from curation import maps

    return maps.map_2d(vectors, seed, projection)


def leading_word(instruction: str) -> str:
    """The instruction's first word, lowercased and without punctuation ('' when there is none)."""
    for word in (instruction or "").split():
        word = word.strip("\"'`.,:;!?()[]{}<>*#-").lower()
        if word:
            return word
    return ""


def counts_by(records: Sequence[dict[str, Any]], key: str) -> dict[str, int]:
    """How many records have each value of `key` (None shown as '(none)'), most common first."""
    counts = Counter("(none)" if r.get(key) is None else str(r.get(key)) for r in records)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def coverage(records: Sequence[dict[str, Any]], vectors: np.ndarray | None, n_clusters: int | None = None,
             seed: int = 0, *, labels: np.ndarray | None = None, xy: np.ndarray | None = None,
             projection: str = "auto") -> dict[str, Any]:
    """Everything the coverage view shows, as plain values.

    records: dicts with id, instruction, category, status, created_by; vectors: one row per record (None when
    `labels` and `xy`, a map laid out before, are given). Returns points (id, x, y, cluster), clusters (id, size,
    words), and counts by category, cluster, status, author and leading word.
    """
    if labels is None:
        labels = cluster_labels(vectors, n_clusters, seed) if len(records) else np.zeros(0, dtype=np.int64)
    if xy is None:
        xy = map_2d(vectors, seed, projection) if len(records) else np.zeros((0, 2))
    names = cluster_names([r["instruction"] for r in records], labels) if len(records) else {}
    sizes = Counter(labels.tolist())
    enriched = [{**r, "cluster": int(c), "leading_word": leading_word(r["instruction"])} for r, c in zip(records, labels)]
    return {
        "points": [{"id": r["id"], "x": float(x), "y": float(y), "cluster": int(c)}
                   for r, (x, y), c in zip(records, xy, labels)],
        "clusters": [{"id": c, "size": sizes[c], "words": names.get(c, [])} for c in sorted(sizes)],
        "counts": {key: counts_by(enriched, field) for key, field in (
            ("category", "category"), ("cluster", "cluster"), ("status", "status"), ("author", "created_by"),
            ("leading_word", "leading_word"))},
    }
