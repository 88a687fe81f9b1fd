"""The cascade's four stages as datatrove steps, each reading and writing files under the job folder.

    texts/{shard}.parquet  id, row, part_0..  (written by the studio: one shard per task)
    static/{shard}.npy     the shard's static vectors, (records, parts, dim)              stage "static", N tasks
    candidates.npy         global rows with a static neighbour                             stage "candidates", 1 task
    sentence/{shard}.*     the candidates' part texts (.parquet) and their vectors (.npy)  stage "sentence", N tasks
    pairs/00000.parquet    record_a < record_b, score                                      stage "pairs", 1 task

The searches themselves are dedup_search's, so the engine finds exactly the pairs the in-process cascade does.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from datatrove.pipeline.base import PipelineStep

from curation.distributed.job import shard_name


class StageError(RuntimeError):
    """A stage that cannot do its work; the job prints its message as the reason it failed."""


def read_shard(work: Path, rank: int) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]:
    """(record ids, global rows, part texts per record) of text shard `rank`."""
    import pyarrow.parquet as pq

    path = work / "texts" / f"{shard_name(rank)}.parquet"
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow's own errors name the buffer, not the file
        raise StageError(f"cannot read the text shard {path.name}: {exc}") from None
    parts = sorted((c for c in table.column_names if c.startswith("part_")), key=lambda c: int(c[5:]))
    columns = [table.column(c).to_pylist() for c in parts]
    return (np.asarray(table.column("id").to_pylist(), np.int64), np.asarray(table.column("row").to_pylist(), np.int64),
            list(zip(*columns)))


def read_all_shards(work: Path, shards: int):
    """(ids, per-record part texts) of every shard, in global row order."""
    ids, texts = [], []
    for rank in range(shards):
        shard_ids, _, shard_texts = read_shard(work, rank)
        ids.append(shard_ids)
        texts.extend(shard_texts)
    return np.concatenate(ids) if ids else np.zeros(0, np.int64), texts


class SearchStep(PipelineStep):
    """A stage with the job's spec (a plain dict, so the engine can pickle it to its workers)."""

    type = "🔎 - DEDUP"

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = spec

    @property
    def work(self) -> Path:
        return Path(self.spec["work_dir"])

    def write_npy(self, path: Path, array: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial.npy")
        np.save(partial, array)
        partial.rename(path)  # a rerun (skip_completed) never reads half a file


class StaticVectors(SearchStep):
    name = "static vectors"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from curation.static_embeddings import StaticEmbedder

        _, _, texts = read_shard(self.work, rank)
        width = len(texts[0]) if texts else len(self.spec["parts"])
        flat = [t for parts in texts for t in parts]
        static = StaticEmbedder(self.spec["model"])
        vectors = static.encode(flat).reshape(len(texts), width, -1) if texts else np.zeros((0, width, 1), np.float32)
        self.stat_update("records", value=len(texts))
        self.write_npy(self.work / "static" / f"{shard_name(rank)}.npy", vectors)
        return iter(())


class Candidates(SearchStep):
    name = "candidates"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from curation import dedup_search

        shards = [np.load(self.work / "static" / f"{shard_name(r)}.npy") for r in range(self.spec["tasks"])]
        vectors = np.concatenate([s for s in shards if len(s)]) if any(len(s) for s in shards) else None
        rows = np.zeros(0, np.int64) if vectors is None else dedup_search.candidate_rows(
            [vectors[:, p] for p in range(vectors.shape[1])], dedup_search.candidate_floor(self.spec["floor"]))
        self.stat_update("candidates", value=len(rows))
        self.write_npy(self.work / "candidates.npy", rows.astype(np.int64))
        return iter(())


class SentenceVectors(SearchStep):
    name = "sentence vectors"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from curation.embeddings import Embedder

        _, rows, texts = read_shard(self.work, rank)
        chosen = set(np.load(self.work / "candidates.npy").tolist())
        unique = sorted({t for row, parts in zip(rows.tolist(), texts) if row in chosen for t in parts})
        import torch

        # the tasks on one machine share its cores: each takes its share, not all of them (no oversubscription)
        workers = self.spec.get("workers", -1)
        at_once = self.spec["tasks"] if workers == -1 else min(workers, self.spec["tasks"])
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, at_once)))
        embedder = Embedder(self.spec["model"], device=self.spec.get("device"),
                            precision=self.spec["precision"])
        vectors = embedder.encode(unique) if unique else np.zeros((0, 1), np.float32)
        self.stat_update("texts", value=len(unique))
        out = self.work / "sentence"
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"text": pa.array(unique, pa.string())}), out / f"{shard_name(rank)}.parquet")
        self.write_npy(out / f"{shard_name(rank)}.npy", vectors)
        return iter(())


class Pairs(SearchStep):
    name = "pairs"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from curation import dedup_search

        ids, texts = read_all_shards(self.work, self.spec["tasks"])
        rows = np.load(self.work / "candidates.npy")
        lookup: dict[str, np.ndarray] = {}
        for r in range(self.spec["tasks"]):
            names = pq.read_table(self.work / "sentence" / f"{shard_name(r)}.parquet").column("text").to_pylist()
            lookup.update(zip(names, np.load(self.work / "sentence" / f"{shard_name(r)}.npy")))

        def embed(batch, progress=None):
            missing = next((t for t in batch if t not in lookup), None)
            if missing is not None:
                raise StageError(f"no sentence vector for a candidate's text {missing[:60]!r}")
            return np.stack([lookup[t] for t in batch]).astype(np.float32)

        first = second = np.zeros(0, np.int64)
        scores = np.zeros(0, np.float32)
        if len(rows) >= 2:
            first, second, scores = dedup_search.staged_pair_arrays([texts[i] for i in rows], embed,
                                                                    self.spec["floor"])
            first, second = ids[rows[first]], ids[rows[second]]
        a, b = np.minimum(first, second), np.maximum(first, second)
        self.stat_update("pairs", value=len(scores))
        (self.work / "pairs").mkdir(parents=True, exist_ok=True)
        partial = self.work / "pairs" / "00000.parquet.partial"
        pq.write_table(pa.table({"record_a": pa.array(a, pa.int64()), "record_b": pa.array(b, pa.int64()),
                                 "score": pa.array(np.asarray(scores, np.float32), pa.float32())}), partial)
        partial.rename(self.work / "pairs" / "00000.parquet")
        return iter(())
