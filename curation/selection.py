"""Which records to keep within a budget: DEITA's score-first, diversity-aware rule, plain top-N, a threshold.

Pure functions over arrays: scores are float arrays aligned with the records (NaN where a record has no score,
and such records sort last), vectors are unit-normalised embeddings, results are row indices in the order taken.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

CHUNK = 256  # candidates compared with the taken set in one matrix product


def _ordered(scores: np.ndarray) -> np.ndarray:
    """Row indices by score, highest first; ties by row, unscored (NaN) rows last."""
    scores = np.asarray(scores, dtype=np.float64)
    key = np.where(np.isnan(scores), -np.inf, scores)
    return np.lexsort((np.arange(len(key)), -key))


def combined_score(scores: Mapping[str, np.ndarray], weights: Mapping[str, float] | None = None) -> np.ndarray:
    """The weighted sum of the named scores, each min-max scaled to [0, 1] first (one score: itself, unscaled).

    A record missing any weighted score gets NaN, so it sorts last rather than on a partial sum.
    """
    weights = dict(weights or {name: 1.0 for name in scores})
    if not weights:
        raise ValueError("name at least one score")
    if len(weights) == 1:
        (name, weight), = weights.items()
        return np.asarray(scores[name], dtype=np.float64) * (1.0 if weight >= 0 else -1.0)
    total = None
    for name, weight in weights.items():
        values = np.asarray(scores[name], dtype=np.float64)
        low, high = np.nanmin(values), np.nanmax(values)
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        total = weight * scaled if total is None else total + weight * scaled
    return total


def parse_weights(text: str) -> dict[str, float]:
    """{score name: weight} from "judge" or "judge:1,ifd:-0.5"; ValueError saying what cannot be read."""
    weights = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, weight = part.partition(":")
        try:
            weights[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"{part!r}: the weight after ':' must be a number") from None
    if not weights:
        raise ValueError("name at least one score to order by")
    return weights


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """The `n` highest-scored rows (scored rows only), highest first."""
    order = _ordered(scores)
    order = order[~np.isnan(np.asarray(scores, dtype=np.float64)[order])]
    return order[:n]


def above_threshold(scores: np.ndarray, minimum: float) -> np.ndarray:
    """Every row scored at or above `minimum`, highest first."""
    order = top_n(scores, len(scores))
    return order[np.asarray(scores, dtype=np.float64)[order] >= minimum]


def deita_select(scores: np.ndarray, vectors: np.ndarray, n: int, threshold: float,
                 left_out: dict[int, tuple[int, float]] | None = None) -> np.ndarray:
    """Rows taken by DEITA's rule: best score first, each only if its cosine distance to every row already
    taken exceeds `threshold`, until `n` are taken (fewer if the candidates run out). Unscored rows never count.

    `left_out`, when given, receives {row the rule skipped: (the taken row it was closest to, their cosine
    similarity)} for every candidate met before the budget was filled: what "left out: too close to #123" says.

    Exact, and fast: a chunk of candidates meets the taken set in one matrix product, then the chunk is walked
    in order against the members it itself adds (their similarities are one more small product).
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    order = top_n(scores, len(scores))
    limit = 1.0 - threshold  # distance > threshold  <=>  cosine similarity < 1 - threshold
    taken = np.empty((min(n, len(order)), vectors.shape[1]), dtype=np.float32)
    chosen: list[int] = []
    for start in range(0, len(order), CHUNK):
        if len(chosen) >= n:
            break
        rows = order[start:start + CHUNK]
        block = vectors[rows]
        against_taken = block @ taken[:len(chosen)].T
        clear = against_taken.max(axis=1, initial=-np.inf) < limit
        inner = block @ block.T
        added: list[int] = []  # positions within the chunk taken so far
        for position in range(len(rows)):
            if not clear[position]:
                if left_out is not None:  # the closest of those taken before the chunk and those it added
                    nearest = int(against_taken[position].argmax())
                    near, similarity = chosen[nearest], float(against_taken[position, nearest])
                    if added and (inside := float(inner[position, added].max())) > similarity:
                        near, similarity = int(rows[added[int(inner[position, added].argmax())]]), inside
                    left_out[int(rows[position])] = (near, similarity)
                continue
            if added and inner[position, added].max() >= limit:
                if left_out is not None:
                    nearest = added[int(inner[position, added].argmax())]
                    left_out[int(rows[position])] = (int(rows[nearest]), float(inner[position, nearest]))
                continue
            added.append(position)
            taken[len(chosen)] = block[position]
            chosen.append(int(rows[position]))
            if len(chosen) >= n:
                break
    return np.asarray(chosen, dtype=np.int64)


def describe_recipe(recipe: dict) -> str:
    """The recipe in one sentence, as the dataset card states it."""
    weights = recipe["weights"]
    by = " + ".join(f"{w:g} × {name}" for name, w in weights.items()) if len(weights) > 1 else next(iter(weights))
    scaled = " (each score min-max scaled first)" if len(weights) > 1 else ""
    if recipe["method"] == "deita":
        rule = (f"DEITA's rule: records in order of {by}{scaled}, each taken only if its cosine distance to every "
                f"record already taken exceeds {recipe['threshold']:g}, until {recipe['n']} were taken")
    elif recipe["method"] == "top":
        rule = f"the {recipe['n']} records highest by {by}{scaled}"
    else:
        rule = f"every record scoring at least {recipe['minimum']:g} by {by}{scaled}"
    return f"{rule}, out of {recipe['records_considered']} records."
