"""Static embeddings distilled from our own sentence model: the cascade's cheap first look at every record.

model2vec's distill runs each token of the sentence model's vocabulary through it once, reduces the outputs
with PCA and weighs them by token frequency; a text's vector is then a weighted mean of its tokens' rows, some
10,000 texts a second on one CPU core. The distilled model is written once per sentence model to a folder on
this machine and loaded from there after (no download: it is made from the bundled MiniLM).
"""
from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from curation.embeddings import DEFAULT_MODEL, model_source

Progress = Callable[[int, int], None]
PCA_DIMS = 256  # model2vec's default; at 128, recall of MiniLM's 0.90 pairs fell on the Alpaca 52k (bench)
CHUNK = 20_000  # texts per progress step


def static_models_dir() -> Path:
    """Where distilled models live: STATIC_MODELS_DIR, else ~/.cache/instruct-studio/static-models."""
    configured = os.environ.get("STATIC_MODELS_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "instruct-studio" / "static-models"


def distilled_path(model: str) -> Path:
    return static_models_dir() / f"{re.sub(r'[^A-Za-z0-9._-]+', '--', model)}-m2v{PCA_DIMS}"


def distilled_model(model: str = DEFAULT_MODEL):
    """The model2vec StaticModel distilled from sentence model `model`, distilling it first if this machine lacks it.

    A file lock keeps two processes (two test workers, two engine tasks) from distilling the same model at once.
    """
    from filelock import FileLock
    from model2vec import StaticModel

    path = distilled_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not (path / "config.json").is_file():
            from model2vec.distill import distill

            partial = path.with_name(path.name + ".partial")
            distill(model_name=model_source(model), pca_dims=PCA_DIMS, device="cpu").save_pretrained(str(partial))
            partial.rename(path)  # a run killed while distilling leaves no half-written model behind
    return StaticModel.from_pretrained(str(path))


class StaticEmbedder:
    """encode() gives L2-normalized float32 rows like Embedder, from the static model distilled from `model`."""

    def __init__(self, model: str | None = None):
        self.model_name = model or os.environ.get("EMBED_MODEL") or DEFAULT_MODEL

    @cached_property
    def model(self):
        return distilled_model(self.model_name)

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """One unit vector per text. Every empty text gets the same vector, so two empty inputs match as in MiniLM."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), CHUNK):
            chunk = list(texts[start:start + CHUNK])
            vectors[start:start + len(chunk)] = self.model.encode(chunk, show_progress_bar=False)
            if progress:
                progress(start + len(chunk), len(texts))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        vectors[norms[:, 0] == 0] = 1.0 / np.sqrt(self.dim)  # empty (or all-unknown) texts: one shared direction
        return vectors
