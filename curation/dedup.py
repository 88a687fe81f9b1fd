"""Near-duplicates: exact groups by content hash, semantic pairs by nearest neighbours, lexical pairs by exact ROUGE-L.

Plain values in and out: indices into the lists given, pairs as (i, j, score) with i < j.
"""
from __future__ import annotations

import os
import re
from array import array
from collections import defaultdict
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

Pair = tuple[int, int, float]
Progress = Callable[[int, int], None]
DEFAULT_THRESHOLD = 0.95
SELF_INSTRUCT_ROUGE = 0.7
EXACT_SEARCH_LIMIT = 5000  # below this many records, exact search is as fast as building an index
ALL_PAIRS_LIMIT = 100_000  # above this, lexical pairs come from MinHash LSH candidates (all pairs: ~70 s here)
STATUS_RANK = {"approved": 0, "submitted": 1, "draft": 2, "rejected": 3, "discarded": 4}


def exact_groups(hashes: Sequence[str]) -> list[list[int]]:
    """Indices that share a content hash, groups of two or more, in order of first appearance."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        by_hash[h].append(i)
    return [group for group in by_hash.values() if len(group) > 1]


def connected_groups(pairs: Iterable[Pair]) -> list[list[int]]:
    """The connected components of the pair graph, each sorted, largest first."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, _ in pairs:
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for x in parent:
        groups[root(x)].append(x)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g[0]))


def keep_preference(member: dict) -> tuple:
    """The sort key of the keep rule: approved over submitted over draft, then the longer output, then the older."""
    return (STATUS_RANK.get(member["status"], 9), -len(member.get("output") or ""), member.get("created_at") or "",
            member["id"])


def proposed_keep(members: Sequence[dict]) -> int:
    """The id to keep in a group: approved over submitted over draft, then the longer output, then the older."""
    return min(members, key=keep_preference)["id"]


def review_groups(pairs: Iterable[Pair], keep_order: Sequence[int]) -> list[list[int]]:
    """Groups that do not chain, each [kept record, then its members in id order], largest first.

    SemDeDup's greedy rule: records are taken in `keep_order` (the one a person would keep first); a record
    close to a record already kept joins the kept record it is closest to, otherwise it is kept itself.
    So every member is within the threshold of its own group's kept record (a pair joins them), the kept
    records are never close to one another (keeping them all leaves no pair behind), and no group is larger
    than one plus its kept record's number of neighbours. A pair between two members, or between a member
    and another group's kept record, is not shown: one of its records is already proposed for removal.
    Records in pairs but missing from `keep_order` come after it, in id order.
    """
    neighbours: dict[int, dict[int, float]] = defaultdict(dict)
    for i, j, score in pairs:
        neighbours[i][j] = neighbours[j][i] = max(score, neighbours[i].get(j, score))
    rank = {record: n for n, record in enumerate(keep_order)}
    order = sorted(neighbours, key=lambda r: (rank.get(r, len(rank)), r))
    members: dict[int, list[int]] = {}
    for record in order:
        close = [(score, -rank.get(k, len(rank)), -k) for k, score in neighbours[record].items() if k in members]
        if close:
            members[-max(close)[2]].append(record)
        else:
            members[record] = []
    groups = [[kept, *sorted(rest)] for kept, rest in members.items() if rest]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


# ---- shared text: a prefix or suffix most records carry, left out of what is compared -------------

MIN_SHARED_CHARS = 20  # shorter common starts ("Write a ", "What is the") are the tasks themselves
MIN_SHARED_RECORDS = 20  # in a small dataset, 30% can be one group of near-duplicates, which must stay compared


def _longest_common_prefix(a: str, b: str) -> int:
    """By bisection over slice comparisons, which run in C: a 2,000-character preamble costs 11 of them."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def shared_prefix(texts: Sequence[str], share: float = 0.3) -> tuple[str, float]:
    """(the prefix held by at least `share` of the texts that covers the most characters, the share holding it).

    ("", 0.0) if none, or if fewer than MIN_SHARED_RECORDS texts hold it. Texts sharing a prefix are adjacent once sorted, so each window of ceil(share * n)
    consecutive sorted texts gives a candidate, their longest common prefix. The candidate that covers the
    most characters (length times holders) wins: a preamble all records carry, not that preamble plus the
    opening words a few near-duplicates share. It is cut back to a word or line break, and kept only when it
    is at least MIN_SHARED_CHARS long.
    """
    from bisect import bisect_left

    n = len(texts)
    need = max(MIN_SHARED_RECORDS, int(np.ceil(share * n)))
    if n < need:
        return "", 0.0
    ordered = sorted(texts)
    best, best_cover = "", 0
    for start in range(n - need + 1):
        length = _longest_common_prefix(ordered[start], ordered[start + need - 1])
        if length < MIN_SHARED_CHARS or length * n <= best_cover:
            continue
        prefix = ordered[start][:length]
        if length < len(ordered[start]) and not prefix[-1].isspace():
            prefix = prefix[:max(prefix.rfind(" "), prefix.rfind("\n")) + 1]
        first = bisect_left(ordered, prefix)
        holders = bisect_left(ordered, prefix + "\U0010ffff", lo=first) - first
        if len(prefix) >= MIN_SHARED_CHARS and len(prefix) * holders > best_cover:
            best, best_cover = prefix, len(prefix) * holders
    return (best, sum(t.startswith(best) for t in texts) / n) if best else ("", 0.0)


def shared_suffix(texts: Sequence[str], share: float = 0.3) -> tuple[str, float]:
    """shared_prefix from the end: (the longest suffix held by at least `share` of the texts, its share)."""
    suffix, held = shared_prefix([t[::-1] for t in texts], share)
    return suffix[::-1], held


def shared_text(texts: Sequence[str], share: float = 0.3) -> tuple[tuple[str, float], tuple[str, float]]:
    """((shared prefix, share), (shared suffix, share)) of the texts: see shared_prefix."""
    prefix = shared_prefix(texts, share)
    rest = [t[len(prefix[0]):] if prefix[0] and t.startswith(prefix[0]) else t for t in texts]
    return prefix, shared_suffix(rest, share)


def without_shared_text(texts: Sequence[str], prefix: str, suffix: str) -> list[str]:
    """The texts with `prefix` and `suffix` cut from those that carry them: what is compared."""
    out = []
    for text in texts:
        if prefix and text.startswith(prefix):
            text = text[len(prefix):]
        if suffix and text.endswith(suffix) and len(text) > len(suffix):
            text = text[:-len(suffix)]
        out.append(text)
    return out


# ---- semantic: cosine over embeddings ----------------------------------------------------------

def joined_vectors(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Part vectors side by side, scaled so that a dot product is the mean of the parts' cosines."""
    return np.hstack(parts).astype(np.float32) / np.float32(np.sqrt(len(parts)))


LARGE_INDEX = 200_000  # rows from which the graph search looks wider (efSearch): see _index


def _index(dim: int, exact: bool, rows: int = 0):
    import faiss

    if exact:
        return faiss.IndexFlatIP(dim)
    # Measured on the Alpaca 52k (bench/results/dedup.txt): M=12, ef=32 finds every pair at 0.90 that exact
    # search finds, in 6.9 s; M=32, ef=64 gives a better recall@10 (0.99 against 0.92) at three times the cost.
    # At a million records ef=32 lost 13% of the planted near-duplicate pairs among the candidates (records with
    # no neighbour found at all; bench/results/dedup_scale.txt), so past LARGE_INDEX rows it looks 4x wider.
    index = faiss.IndexHNSWFlat(dim, 12, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 32
    index.hnsw.efSearch = 128 if rows >= LARGE_INDEX else 32
    return index


def nearest_neighbours(vectors: np.ndarray, k: int, *, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, indices) by inner product for every row; HNSW beyond EXACT_SEARCH_LIMIT rows."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = _index(vectors.shape[1], len(vectors) <= EXACT_SEARCH_LIMIT if exact is None else exact, len(vectors))
    index.add(vectors)
    return index.search(vectors, min(k, len(vectors)))


def semantic_pairs(parts: Sequence[np.ndarray], threshold: float = DEFAULT_THRESHOLD, k: int = 10,
                   exact: bool | None = None) -> list[Pair]:
    """Pairs whose every part (instruction, input, ...) has cosine >= threshold; the score is the lowest part cosine."""
    first, second, scores = semantic_pair_arrays(parts, threshold, k, exact)
    return list(zip(first.tolist(), second.tolist(), scores.tolist()))


def search_device() -> str:
    """cuda when torch sees a GPU (exact blocked search there: cheap on a GPU, too slow on a CPU), else cpu (faiss)."""
    from curation.embeddings import default_device

    return os.environ.get("SEARCH_DEVICE") or default_device()


GPU_SLACK = 2e-3  # fp16 scores on the GPU can sit this far below the fp32 score; the caller rescores in fp32
GPU_BLOCK = 4096  # query rows per matrix product: 4,096 x 1M fp16 scores are 8 GB of the GPU's memory


def torch_close_pairs(rows: Callable[[int, int], np.ndarray], n: int, dim: int, threshold: float, k: int,
                       device: str, block: int = GPU_BLOCK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """_close_pairs by exact blocked matrix products in torch: fp16 on a GPU, fp32 on a CPU (where tests run it)."""
    import torch

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    slack = GPU_SLACK if dtype == torch.float16 else 1e-6
    index = torch.empty((n, dim), dtype=dtype, device=device)
    for start in range(0, n, block):
        index[start:start + block] = torch.from_numpy(rows(start, start + block)).to(device=device, dtype=dtype)
    with torch.inference_mode():
        for start in range(0, n, block):
            scores, neighbours = (index[start:start + block] @ index.T).topk(min(k + 1, n), dim=1)
            scores, neighbours = scores.float().cpu().numpy(), neighbours.cpu().numpy()
            found, cols = np.nonzero(scores >= threshold - slack)
            i, j = found + start, neighbours[found, cols]
            yield i[i != j], j[i != j]


def _close_pairs(rows: Callable[[int, int], np.ndarray], n: int, dim: int, threshold: float, k: int,
                 exact: bool | None, block: int, device: str | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(i, j) arrays, a block of rows at a time, of each row i and the other rows j its top-k search finds at or
    above threshold; rows(start, end) gives the float32 vectors of those rows, so no full copy is ever made.
    On a GPU (`device` cuda, or search_device() when None) the search is exact, by blocked matrix products."""
    device = device or search_device()
    if device.startswith("cuda"):
        yield from torch_close_pairs(rows, n, dim, threshold, k, device)
        return
    index = _index(dim, n <= EXACT_SEARCH_LIMIT if exact is None else exact, n)
    for start in range(0, n, block):
        index.add(rows(start, start + block))
    for start in range(0, n, block):
        scores, neighbours = index.search(rows(start, start + block), min(k + 1, n))
        found, cols = np.nonzero((scores >= threshold - 1e-6) & (neighbours >= 0))
        i, j = found + start, neighbours[found, cols]
        yield i[i != j], j[i != j]


def with_close_neighbour(vectors: np.ndarray, threshold: float, k: int = 10, exact: bool | None = None,
                         block: int = 32_768, device: str | None = None) -> np.ndarray:
    """A mask of the rows that have another row at cosine >= threshold (found by either row's top-k search).

    Every part of a pair must reach the threshold, so a record whose instruction has no such neighbour is in
    no pair: its other parts (the longer, costlier texts) need not be embedded at all.
    """
    n = len(vectors)
    close = np.zeros(n, dtype=bool)
    if n < 2:
        return close

    def rows(start: int, end: int) -> np.ndarray:
        return np.ascontiguousarray(vectors[start:end], dtype=np.float32)

    for i, j in _close_pairs(rows, n, vectors.shape[1], threshold, k, exact, block, device):
        close[i] = close[j] = True
    return close


def semantic_pair_arrays(parts: Sequence[np.ndarray], threshold: float = DEFAULT_THRESHOLD, k: int = 10,
                         exact: bool | None = None, block: int = 32_768,
                         device: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """semantic_pairs as three arrays (first, second, score), sorted by (first, second).

    Works a block of rows at a time and keeps no Python object per pair, so 500k records with millions of
    pairs stay within a few GB: the index holds the only full copy of the joined vectors.
    """
    n = len(parts[0])
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    if n < 2:
        return empty

    def rows(start: int, end: int) -> np.ndarray:
        return joined_vectors([p[start:end] for p in parts])

    keys = [np.minimum(i, j) * n + np.maximum(i, j)
            for i, j in _close_pairs(rows, n, sum(p.shape[1] for p in parts), threshold, k, exact, block, device)]
    keys = np.unique(np.concatenate(keys))
    first, second = keys // n, keys % n
    lowest = np.empty(len(keys), dtype=np.float32)
    for start in range(0, len(keys), block):
        a, b = first[start:start + block], second[start:start + block]
        lowest[start:start + block] = np.min([np.einsum("ij,ij->i", p[a], p[b]) for p in parts], axis=0)
    keep = lowest >= threshold
    return (first[keep], second[keep], lowest[keep]) if len(keys) else empty


# ---- lexical: Self-Instruct's ROUGE-L rule, exactly -----------------------------------------------

_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """Words as rouge-score counts them: lowercased, split on anything not a-z or 0-9."""
    return _NON_ALPHANUMERIC.sub(" ", (text or "").lower()).split()


def rouge_l(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 of two token lists: 2*LCS/(|a|+|b|), which is the normalized Indel similarity."""
    from rapidfuzz.distance import Indel

    if not a or not b:
        return 0.0
    total = len(a) + len(b)
    return (total - Indel.distance(a, b)) / total


def _as_strings(token_lists: Sequence[Sequence[str]]) -> list[str]:
    """Each token becomes one character, so rapidfuzz runs its bit-parallel LCS on strings."""
    codes: dict[str, str] = {}

    def code(token: str) -> str:
        if token not in codes:
            n = len(codes) + 0x100
            codes[token] = chr(n if n < 0xD800 else n + 0x800)  # skip the surrogates
        return codes[token]

    return ["".join(code(t) for t in tokens) for tokens in token_lists]


def lexical_pairs(texts: Sequence[str], min_score: float = SELF_INSTRUCT_ROUGE, *, block: int = 2000,
                  progress: Progress | None = None) -> list[Pair]:
    """Every pair with ROUGE-L F1 >= min_score: all pairs exactly, or MinHash LSH candidates past ALL_PAIRS_LIMIT."""
    first, second, scores = lexical_pair_arrays(texts, min_score, block=block, progress=progress)
    return list(zip(first.tolist(), second.tolist(), scores.tolist()))


def lexical_pair_arrays(texts: Sequence[str], min_score: float = SELF_INSTRUCT_ROUGE, *, block: int = 2000,
                        progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lexical_pairs as three arrays (first, second, score), sorted by (first, second).

    Each candidate is scored as it is found and only pairs that pass are kept, in compact arrays.
    """
    from rapidfuzz.distance import Indel

    tokens = [rouge_tokens(t) for t in texts]
    strings = _as_strings(tokens)
    if len(strings) > ALL_PAIRS_LIMIT:
        candidates = minhash_candidates(tokens, progress=progress)
    else:
        del tokens
        candidates = _all_pair_candidates(strings, min_score, block, progress)
    first, second, scores = array("q"), array("q"), array("d")
    for i, j in candidates:
        a, b = strings[i], strings[j]
        if a and b:  # an empty text has ROUGE-L 0 with everything, as in rouge-score
            score = (len(a) + len(b) - Indel.distance(a, b)) / (len(a) + len(b))
            if score >= min_score:
                first.append(i)
                second.append(j)
                scores.append(score)
    first, second, scores = np.frombuffer(first, np.int64), np.frombuffer(second, np.int64), np.frombuffer(scores)
    order = np.lexsort((second, first))
    return first[order], second[order], scores[order]


def _all_pair_candidates(strings: list[str], min_score: float, block: int,
                         progress: Progress | None) -> Iterator[tuple[int, int]]:
    """Pairs (i < j) that rapidfuzz's bit-parallel all-pairs pass scores at or above min_score."""
    from rapidfuzz import process
    from rapidfuzz.distance import Indel

    for start in range(0, len(strings), block):
        scores = process.cdist(strings[start:start + block], strings[start:], scorer=Indel.normalized_similarity,
                               score_cutoff=min_score - 1e-6, workers=-1, dtype=np.float32)
        rows, cols = np.nonzero(scores)
        del scores
        yield from ((start + r, start + c) for r, c in zip(rows.tolist(), cols.tolist()) if c > r)
        if progress:
            progress(min(start + block, len(strings)), len(strings))


def minhash_candidates(token_lists: Sequence[Sequence[str]], jaccard: float = 0.5, num_perm: int = 64,
                       progress: Progress | None = None) -> Iterator[tuple[int, int]]:
    """Pairs (i < j), each once, whose word sets likely overlap by `jaccard` or more: ROUGE-L >= 0.7 implies about 0.54.

    Signatures are made one at a time and each text is queried before it is inserted, so nothing but the
    LSH tables grows with the number of texts.
    """
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=jaccard, num_perm=num_perm)
    word_sets = ({t.encode("utf-8") for t in tokens} for tokens in token_lists)
    for i, signature in enumerate(MinHash.generator(word_sets, num_perm=num_perm)):
        if token_lists[i]:
            yield from ((j, i) for j in sorted(lsh.query(signature)))
            lsh.insert(i, signature)
        if progress and (i + 1) % 10_000 == 0:
            progress(i + 1, len(token_lists))


class NearDuplicateIndex:
    """Part vectors of a dataset's records in memory, so the editor's hint is a few matrix products away.

    Rows live in buffers that grow by a quarter when full, so taking in a saved record costs a row's copy
    (amortised), not a copy of the whole matrix (at 500k records and two parts, 1.5 GB: about a second).
    """

    GROWTH = 0.25

    def __init__(self, ids: Sequence[int], parts: Sequence[np.ndarray]):
        ids = np.asarray(ids, dtype=np.int64)
        self._ids = ids.copy()
        self._parts = [np.array(p, dtype=np.float32, order="C", ndmin=2) for p in parts]
        self._size = len(ids)
        self._rows = {int(i): row for row, i in enumerate(ids.tolist())}

    @classmethod
    def empty(cls, parts: int, dim: int, capacity: int = 0) -> "NearDuplicateIndex":
        """An index of `parts` vectors of `dim` per record with room for `capacity` records (extend fills it)."""
        index = cls([], [np.zeros((0, dim), dtype=np.float32) for _ in range(parts)])
        index._reserve(capacity)
        return index

    @property
    def ids(self) -> np.ndarray:
        return self._ids[:self._size]

    @property
    def parts(self) -> list[np.ndarray]:
        return [p[:self._size] for p in self._parts]

    def __len__(self) -> int:
        return self._size

    def __contains__(self, record_id: int) -> bool:
        return int(record_id) in self._rows

    def _reserve(self, capacity: int) -> None:
        if capacity <= len(self._ids):
            return
        ids = np.zeros(capacity, dtype=np.int64)
        ids[:self._size] = self._ids[:self._size]
        parts = []
        for p in self._parts:  # np.empty: rows not yet written are not yet memory the process holds
            grown = np.empty((capacity, p.shape[1]), dtype=np.float32)
            grown[:self._size] = p[:self._size]
            parts.append(grown)
        self._ids, self._parts = ids, parts

    def extend(self, ids: Sequence[int], part_vectors: Sequence[np.ndarray]) -> None:
        """Append records not yet in the index: `part_vectors[k]` holds part k of each, one row per id."""
        ids = [int(i) for i in ids]
        if len(self._ids) < self._size + len(ids):
            self._reserve(max(self._size + len(ids), int(len(self._ids) * (1 + self.GROWTH)) + 1024))
        end = self._size + len(ids)
        self._ids[self._size:end] = ids
        for buffer, vectors in zip(self._parts, part_vectors):
            buffer[self._size:end] = vectors
        self._rows.update((i, row) for row, i in enumerate(ids, self._size))
        self._size = end

    def put(self, record_id: int, part_vectors: Sequence[np.ndarray]) -> None:
        """Take in a record: its row is replaced if the index holds it (an edit), else appended (a new record)."""
        row = self._rows.get(int(record_id))
        if row is None:
            self.extend([record_id], [np.asarray(v, dtype=np.float32)[None, :] for v in part_vectors])
            return
        for buffer, vector in zip(self._parts, part_vectors):
            buffer[row] = vector

    add = put

    def remove(self, record_id: int) -> None:
        """Leave a record out (a discarded one): the last row moves into its place."""
        row = self._rows.pop(int(record_id), None)
        if row is None:
            return
        last = self._size - 1
        if row != last:
            self._ids[row] = self._ids[last]
            for buffer in self._parts:
                buffer[row] = buffer[last]
            self._rows[int(self._ids[row])] = row
        self._size = last

    def closest(self, part_vectors: Sequence[np.ndarray], threshold: float = DEFAULT_THRESHOLD, k: int = 5,
                exclude: Iterable[int] = ()) -> list[tuple[int, float]]:
        """(record id, score) of the records whose every part has cosine >= threshold, most similar first.

        A record's score is its lowest part cosine, so only the records whose first part reaches the threshold
        can: the other parts are compared for those alone (one matrix product over the index, not one per part).
        """
        if not self._size or k <= 0:
            return []
        parts = self.parts
        vectors = [np.asarray(v, dtype=np.float32) for v in part_vectors]
        first = parts[0] @ vectors[0]
        rows = np.flatnonzero(first >= threshold)
        scores = first[rows]
        for part, vector in zip(parts[1:], vectors[1:]):
            if not len(rows):
                break
            # many candidates (a low threshold): one product over the index beats gathering their rows
            other = (part @ vector)[rows] if len(rows) * 8 > self._size else part[rows] @ vector
            scores = np.minimum(scores, other)
            keep = scores >= threshold
            rows, scores = rows[keep], scores[keep]
        excluded = [self._rows[int(i)] for i in exclude if int(i) in self._rows]
        if excluded and len(rows):
            keep = ~np.isin(rows, excluded)
            rows, scores = rows[keep], scores[keep]
        if len(rows) > k:  # the k best; ties with the k-th are all kept, so the order below is the stable one
            bar = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = scores >= bar
            rows, scores = rows[keep], scores[keep]
        order = np.lexsort((rows, -scores))[:k]
        return [(int(self._ids[rows[i]]), float(scores[i])) for i in order]
