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

import hashlib
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
# A re-run searches only the records that changed since the last run, against all of them by exact products,
# while they are at most a quarter of the dataset (or a handful) and (changed x all records) stays under
# CHANGED_CELLS (40,000 changed records of a million); past that, a full search costs less.
INCREMENTAL_SHARE = 0.25
INCREMENTAL_FEW = 100
CHANGED_CELLS = 4e10
CHANGED_K = 50  # neighbours looked at per changed record: exact search, so a wide look costs little more
SCORE_CELLS = 1 << 26  # the (changed block x all records) score matrix's size at a time: 256 MB of float32


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


def cascade_search(texts: Sequence[tuple[str, ...]], static_parts: Sequence[np.ndarray], embed: Embed,
                   floor: float, margin: float = CANDIDATE_MARGIN,
                   progress: Progress | None = None) -> tuple[Found, np.ndarray]:
    """(pairs at or above `floor`, the candidate rows): staged_pair_arrays over the static candidates only.

    `static_parts` are the records' static vectors, one array per part; `embed` is the sentence model.
    """
    rows = candidate_rows(static_parts, candidate_floor(floor, margin))
    if len(rows) < 2:
        return _empty(), rows
    first, second, scores = staged_pair_arrays([texts[i] for i in rows], embed, floor, progress)
    return (rows[first], rows[second], scores), rows


def cascade_pair_arrays(texts: Sequence[tuple[str, ...]], static_parts: Sequence[np.ndarray], embed: Embed,
                        floor: float, margin: float = CANDIDATE_MARGIN, progress: Progress | None = None) -> Found:
    """Pairs (first, second, score) at or above `floor` found by the cascade (cascade_search)."""
    return cascade_search(texts, static_parts, embed, floor, margin, progress)[0]


# ---- re-runs: only what changed ---------------------------------------------------------------------------

def text_fingerprints(texts: Sequence[tuple[str, ...]]) -> np.ndarray:
    """A 64-bit hash of each record's compared parts: a record whose hash is the one the last run saw is unchanged."""
    out = np.empty(len(texts), dtype=np.uint64)
    for row, parts in enumerate(texts):
        digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).digest()
        out[row] = int.from_bytes(digest, "little")
    return out


def worth_searching_alone(changed: int, records: int) -> bool:
    """Whether a re-run should search only the `changed` records (against all) rather than every record again."""
    return changed <= max(INCREMENTAL_SHARE * records, INCREMENTAL_FEW) and changed * records <= CHANGED_CELLS


def close_to(queries: np.ndarray, parts: Sequence[np.ndarray], threshold: float, k: int = CHANGED_K) -> Found:
    """Pairs (first, second, lowest part cosine) between the `queries` rows and every other row, at or above
    `threshold` on every part, among each query row's top-k by its first part; exact blocked matrix products."""
    n = len(parts[0])
    found: list[Found] = []
    block = max(1, SCORE_CELLS // max(n, 1))
    for start in range(0, len(queries), block):
        rows = queries[start:start + block]
        scores = parts[0][rows] @ parts[0].T  # (block, n)
        scores[np.arange(len(rows)), rows] = -1.0  # not itself
        top = min(k, n - 1)
        best = np.argpartition(-scores, top - 1, axis=1)[:, :top] if top < n else np.argsort(-scores, axis=1)
        i = np.repeat(rows, best.shape[1])
        j = best.ravel()
        keep = scores[np.repeat(np.arange(len(rows)), best.shape[1]), j] >= threshold - 1e-6
        i, j = i[keep], j[keep]
        lowest = np.min([np.einsum("ij,ij->i", p[i], p[j]) for p in parts], axis=0) if len(i) else \
            np.zeros(0, np.float32)
        keep = lowest >= threshold - 1e-6
        found.append((np.minimum(i, j)[keep], np.maximum(i, j)[keep], lowest[keep].astype(np.float32)))
    return unique_pairs(found)


def unique_pairs(found: list[Found]) -> Found:
    """The pairs of several searches once each, sorted by (first, second)."""
    if not found:
        return _empty()
    first, second, scores = (np.concatenate(column) for column in zip(*found))
    keys, at = np.unique(first.astype(np.int64) * (1 << 32) + second, return_index=True)
    return keys >> 32, keys & 0xFFFFFFFF, scores[at]


def changed_pair_arrays(texts: Sequence[tuple[str, ...]], changed: np.ndarray, candidates: np.ndarray,
                        embed: Embed, floor: float, static_parts: Sequence[np.ndarray] | None = None,
                        margin: float = CANDIDATE_MARGIN, progress: Progress | None = None) -> tuple[Found, np.ndarray]:
    """(the pairs a changed record is in, the candidate mask now), for a re-run that keeps the other pairs.

    `changed` are the rows whose text the last run did not see, `candidates` the last run's candidate mask (rows
    the cascade's static look flagged; all true for the reference search). With `static_parts`, a changed row
    is a candidate when it has a static neighbour at the cascade's threshold, and so is that neighbour; every row
    that has just become a candidate is searched too, so no pair the cascade would now find is left out.
    The sentence model then scores each searched row against every candidate.
    """
    candidates = candidates.copy()
    searched = np.asarray(changed, dtype=np.int64)
    if static_parts is not None and len(searched):
        candidates[searched] = False
        first, second, _ = close_to(searched, static_parts, candidate_floor(floor, margin))
        flagged = np.unique(np.concatenate([first, second]))
        fresh = flagged[~candidates[flagged]]
        candidates[flagged] = True
        searched = np.union1d(searched, fresh)
    searched = searched[candidates[searched]]
    rows = np.flatnonzero(candidates)
    if not len(searched) or len(rows) < 2:
        return _empty(), candidates
    # instructions first, as in the full search: only the rows of an instruction pair need their other parts
    instructions = embed([texts[r][0] for r in rows], progress)
    first, second, scores = close_to(np.searchsorted(rows, searched), [instructions], floor)
    if len(texts[0]) > 1 and len(first):
        involved = np.union1d(first, second)
        others = embed([t for r in rows[involved] for t in texts[r][1:]], None).reshape(len(involved), -1,
                                                                                    instructions.shape[1])
        a, b = np.searchsorted(involved, first), np.searchsorted(involved, second)
        scores = np.min([scores] + [np.einsum("ij,ij->i", others[a, p], others[b, p])
                                    for p in range(others.shape[1])], axis=0)
        keep = scores >= floor - 1e-6
        first, second, scores = first[keep], second[keep], scores[keep]
    return (rows[first], rows[second], scores.astype(np.float32)), candidates
