"""The semantic search's stages: the reference (the sentence model embeds every record, instructions first) and
the cascade (static vectors find the records that may have a near-duplicate; the sentence model confirms).

Both take an `embed(texts) -> unit vectors` function, so the studio (with its vector cache), a test and an engine's
task (plain Embedder.encode) run the same stages and find the same pairs.

Near-duplicates are rare (on the Alpaca 52k, 6% of the records are in a pair at 0.90), and the sentence model is
what costs: so every record gets a static vector (distilled from that same model, ~10,000 texts a second), the
records with a static neighbour at a lower, recall-safe threshold become candidates, and only the candidates are
embedded by the sentence model and searched as the reference search would. Every pair it reports is therefore a
pair the reference search scores the same way (precision is the reference's); what the cascade can lose is a pair
whose records the static look did not flag, which bench/dedup.py measures against the full reference.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from curation import dedup

# Measured on the Alpaca 52k against MiniLM fp32's pairs (bench/results/dedup_scale.txt). Static vectors miss
# paraphrases ("Form an antonym for X" / "What is the opposite of X?" score 0.50 statically, 0.90 in MiniLM), so
# the static threshold must sit far below: at 0.70, 55% of the records are candidates and they hold 99.6% of the
# 0.95 pairs and 98.4% of the 0.90 pairs; at 0.75, 40% hold 98.5% and 94.4%; at 0.80, 24% hold 94.8% and 84.2%.
CANDIDATE_MARGIN = 0.20  # the static threshold sits this far below the sentence model's floor
CANDIDATE_K = 10  # static neighbours looked at per record (20 found the same candidates on the Alpaca 52k)
MIN_RECORDS = 10_000  # below this, embedding every record costs less than distilling and then searching twice


Embed = Callable[[list[str], "Progress | None"], np.ndarray]
Progress = Callable[[int, int], None]
Found = tuple[np.ndarray, np.ndarray, np.ndarray]  # (first, second, score), indices into the records, first < second


def _empty() -> Found:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)


def staged_pair_arrays(texts: Sequence[tuple[str, ...]], embed: Embed, floor: float,
                       progress: Progress | None = None) -> Found:
    """Pairs of records (each a tuple of part texts) at or above `floor` on every part: the reference search.

    Instructions are embedded first; only records whose instruction has a neighbour at `floor` can be in a
    pair, so only theirs get the other parts embedded (on the Alpaca 52k that skips most inputs, the longest
    texts: bench/results/dedup.txt). The search then runs over those records alone.
    """
    n, rest = len(texts), len(texts[0]) - 1 if texts else 0

    def phase(start: int, share: int) -> Progress | None:
        """Progress of one embedding step as its share of the bar (instructions: n of n*(rest+1) steps)."""
        if progress is None:
            return None
        return lambda done, of: progress(start + done * share // max(of, 1), n * (rest + 1))

    if n < 2:
        return _empty()
    instructions = embed([t[0] for t in texts], phase(0, n))
    if not rest:
        return dedup.semantic_pair_arrays([instructions], floor)
    candidates = np.flatnonzero(dedup.with_close_neighbour(instructions, floor))
    if len(candidates) < 2:
        return _empty()
    instructions = instructions[candidates] if len(candidates) < n else instructions  # the rest is freed here
    more = [texts[i][p] for i in candidates for p in range(1, rest + 1)]
    others = embed(more, phase(n, n * rest)).reshape(len(candidates), rest, -1)
    parts = [instructions] + [others[:, p] for p in range(rest)]
    first, second, scores = dedup.semantic_pair_arrays(parts, floor)
    return candidates[first], candidates[second], scores


def candidate_floor(floor: float, margin: float = CANDIDATE_MARGIN) -> float:
    """The static threshold for a sentence-model floor: `margin` below it."""
    return max(0.0, floor - margin)


def candidate_rows(static_parts: Sequence[np.ndarray], threshold: float, k: int = CANDIDATE_K,
                   exact: bool | None = None) -> np.ndarray:
    """Sorted indices of the records with a static neighbour whose every part has cosine >= threshold."""
    if len(static_parts[0]) < 2:
        return np.zeros(0, np.int64)
    first, second, _ = dedup.semantic_pair_arrays(static_parts, threshold, k, exact)
    return np.unique(np.concatenate([first, second]))


def cascade_pair_arrays(texts: Sequence[tuple[str, ...]], static_parts: Sequence[np.ndarray], embed: Embed,
                        floor: float, margin: float = CANDIDATE_MARGIN, progress: Progress | None = None) -> Found:
    """Pairs (first, second, score) at or above `floor`: staged_pair_arrays over the static candidates only.

    `static_parts` are the records' static vectors, one array per part; `embed` is the sentence model.
    """
    rows = candidate_rows(static_parts, candidate_floor(floor, margin))
    if len(rows) < 2:
        return _empty()
    first, second, scores = staged_pair_arrays([texts[i] for i in rows], embed, floor, progress)
    return rows[first], rows[second], scores
