"""The 2-D map of a dataset by meaning: UMAP, which keeps each record beside its neighbours so that the named
clusters stand apart, and PCA, the linear view kept for sets too small for a neighbour graph and as the baseline
UMAP is measured against (tests/test_map.py, bench/map_build.py).

Both are deterministic for a given seed. UMAP with a seed runs its layout on one thread (umap-learn's rule). The
vectors are first reduced to PCA_DIMENSIONS by PCA, which keeps the neighbours and makes the neighbour search
(faiss, nearest_neighbours) a few seconds at 52k records, and past FEW_EPOCHS_FROM records the layout runs
fewer epochs (bench/map_build.py measures both).
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import numpy as np

PROJECTIONS = ("auto", "umap", "pca")
UMAP_FROM = 15  # rows: fewer cannot fill a neighbour graph of NEIGHBOURS, and PCA reads as well there
NEIGHBOURS = 15
MIN_DIST = 0.1
PCA_DIMENSIONS = 50  # before the neighbour search, when the vectors have more
FEW_EPOCHS_FROM = 10_000  # rows: umap-learn's own default drops to 200 epochs here; we take fewer
# At 52k Alpaca records, of each record's 15 neighbours in the search space, 80 epochs keep 22% beside it in 2-D,
# 120 keep 24%, 200 keep 25% (PCA: 7%), at the same silhouette of the clusters; each epoch costs ~0.2 s there.
FEW_EPOCHS = 80
EXACT_UP_TO = 20_000  # rows: an exact neighbour search up to here (3 s), an inverted-file one past it
# Bump when the layout changes (parameters, library), so stored maps are laid out again.
LAYOUT_VERSION = "umap-0.5.12/n15/d0.1/pca50/knn-exact20k-ivf/e80"


def projection_for(rows: int, projection: str = "auto") -> str:
    """Which projection draws `rows` rows: "umap" or "pca" ("auto": UMAP from UMAP_FROM rows)."""
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}: choose one of {', '.join(PROJECTIONS)}")
    if projection == "auto":
        return "umap" if rows >= UMAP_FROM else "pca"
    return "pca" if rows < UMAP_FROM else projection  # a neighbour graph needs more rows than neighbours


def pca_map(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """Two coordinates per row by PCA: the directions of largest variance, fast at any size."""
    from sklearn.decomposition import PCA

    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) < 2:
        return np.zeros((len(vectors), 2), dtype=np.float32)
    xy = PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if xy.shape[1] < 2:  # vectors of one dimension
        xy = np.hstack([xy, np.zeros((len(xy), 2 - xy.shape[1]))])
    return xy.astype(np.float32)


def nearest_neighbours(vectors: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of each row's k nearest rows by euclidean distance, itself among them.

    Exact (faiss) up to EXACT_UP_TO rows; past that an inverted-file search that looks in the ~5% of the space
    nearest each row (98% of the exact neighbours at 52k, 4 s where the exact search takes 20). Either way the
    same answer every time. UMAP's own search (pynndescent) is compiled anew by numba in every process: tens of
    seconds before the first map.
    """
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) <= EXACT_UP_TO:
        index = faiss.IndexFlatL2(vectors.shape[1])
    else:
        lists = max(64, int(2 * len(vectors) ** 0.5))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(vectors.shape[1]), vectors.shape[1], lists)
        index.cp.seed = seed
        index.train(vectors)
        index.nprobe = max(8, lists // 20)
    index.add(vectors)
    squared, indices = index.search(vectors, k)
    missing = indices < 0  # a row whose lists held fewer than k others: itself, at distance 0
    if missing.any():
        rows = np.nonzero(missing)[0]
        indices[missing], squared[missing] = rows, 0.0
    return indices.astype(np.int32), np.sqrt(np.maximum(squared, 0)).astype(np.float32)


def umap_map(vectors: np.ndarray, seed: int = 0, *, neighbours: int = NEIGHBOURS,
             epochs: int | None = None) -> np.ndarray:
    """Two coordinates per row by UMAP over each row's cosine neighbours (euclidean ones of the normalized
    vectors, after PCA to PCA_DIMENSIONS when they have more)."""
    import warnings

    from sklearn.decomposition import PCA

    vectors = np.asarray(vectors, dtype=np.float32)
    rows = len(vectors)
    if rows < UMAP_FROM:
        return pca_map(vectors, seed)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if vectors.shape[1] > PCA_DIMENSIONS and rows > PCA_DIMENSIONS:
        vectors = PCA(PCA_DIMENSIONS, random_state=seed).fit_transform(vectors).astype(np.float32)
    k = min(neighbours, rows - 1)
    if epochs is None and rows >= FEW_EPOCHS_FROM:
        epochs = FEW_EPOCHS
    model = _umap()(n_neighbors=k, n_components=2, min_dist=MIN_DIST, metric="euclidean", random_state=seed,
                    n_epochs=epochs, init="spectral", precomputed_knn=nearest_neighbours(vectors, k, seed))
    with warnings.catch_warnings():  # a seed runs on one thread; no search index is kept (we never transform)
        warnings.simplefilter("ignore", UserWarning)
        xy = model.fit_transform(vectors)
    return np.asarray(xy, dtype=np.float32)


def _umap():
    """umap.UMAP, with numba's on-disk cache turned on for umap-learn's compiled functions that lack it: the
    first map in a process otherwise spends ~25 s compiling them (once per machine with the cache)."""
    global _UMAP
    if _UMAP is None:
        import sys

        import umap  # noqa: F401  (its modules below are loaded by it)
        from numba.core.caching import NullCache
        from numba.core.registry import CPUDispatcher

        for name, module in list(sys.modules.items()):
            if name == "umap" or name.startswith("umap."):
                for function in vars(module).values():
                    if isinstance(function, CPUDispatcher) and isinstance(function._cache, NullCache):
                        function.enable_caching()
        _UMAP = umap.UMAP
    return _UMAP


_UMAP = None


def compile_ahead() -> None:
    """Draw one small map so numba compiles (and caches on disk) UMAP's loops now, e.g. when installing."""
    rng = np.random.default_rng(0)
    umap_map(rng.normal(size=(200, 16)).astype(np.float32))


def map_2d(vectors: np.ndarray, seed: int = 0, projection: str = "auto") -> np.ndarray:
    """Two coordinates per row: UMAP from UMAP_FROM rows, PCA below (or as asked); the same seed, the same map."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if projection_for(len(vectors), projection) == "umap":
        return umap_map(vectors, seed)
    return pca_map(vectors, seed)


def separation(xy: np.ndarray, labels: Sequence[int], *, sample: int = 5_000, seed: int = 0) -> float:
    """How far apart the clusters sit on the map: the silhouette of `labels` in 2-D, in [-1, 1], higher is better
    (on `sample` points past that many: the exact one is quadratic)."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    if len(set(labels.tolist())) < 2 or len(labels) < 3:
        return 0.0
    size = sample if len(labels) > sample else None
    return float(silhouette_score(np.asarray(xy, dtype=np.float64), labels, sample_size=size, random_state=seed))


def neighbours_kept(vectors: np.ndarray, xy: np.ndarray, *, k: int = NEIGHBOURS, sample: int = 3_000,
                    seed: int = 0) -> float:
    """The share of each record's k nearest records by meaning (cosine) that are among its k nearest on the map,
    averaged over `sample` records: what a reader of the map can trust a point's neighbours to be."""
    import faiss

    vectors = np.asarray(vectors, dtype=np.float32)
    vectors = np.ascontiguousarray(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))
    k = min(k, len(vectors) - 1)
    if k < 1:
        return 1.0
    rows = np.random.default_rng(seed).choice(len(vectors), min(sample, len(vectors)), replace=False)
    found = []
    for space in (vectors, np.ascontiguousarray(xy, dtype=np.float32)):
        index = faiss.IndexFlatL2(space.shape[1])
        index.add(space)
        found.append(index.search(space[rows], k + 1)[1])
    return float(np.mean([len((set(a) - {r}) & (set(b) - {r})) / k for r, a, b in zip(rows, *found)]))


def map_fingerprint(texts: Iterable[tuple[int, Sequence[str]]], *, model: str, fields: str, projection: str,
                    clusters: int | None, seed: int = 0) -> str:
    """A hex digest of what a map is laid out from: each record's id and the texts embedded for it, the model,
    the fields, the projection and clusters asked for, and LAYOUT_VERSION. Another status changes nothing."""
    digest = hashlib.sha256(f"{LAYOUT_VERSION}|{model}|{fields}|{projection}|{clusters}|{seed}".encode())
    for record_id, parts in texts:
        digest.update(f"\n{int(record_id)}".encode())
        for part in parts:  # each text length-prefixed: no two different records hash alike
            data = (part or "").encode("utf-8", "surrogatepass")
            digest.update(f"|{len(data)}|".encode() + data)
    return digest.hexdigest()
