"""What the Runs view reads beyond the evaluation service: the training records nearest to a test prompt, so a
curator can go from a prompt where the fine-tuned model lost to the data that taught it."""
from __future__ import annotations

import numpy as np
from sqlmodel import Session

from curation.embeddings import Embedder
from curation.services.dedup import dataset_id_of, live_records, part_vectors


def nearest_training_records(session: Session, *, dataset: str, prompts: list[str], embedder: Embedder,
                             k: int = 3) -> list[list[tuple[int, float]]]:
    """For each prompt, the `k` live records of `dataset` whose instruction is closest in meaning to it, as
    (record id, cosine similarity), most similar first. The records' vectors come from the embedding cache."""
    if not prompts:
        return []
    records = live_records(session, dataset_id_of(session, dataset))
    if not records:
        return [[] for _ in prompts]
    vectors = part_vectors(session, records, "instruction", embedder)[:, 0]
    asked = embedder.encode(list(prompts))
    similarity = np.asarray(asked, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32).T
    found = []
    for row in similarity:
        best = np.argsort(-row, kind="stable")[:k]
        found.append([(int(records[i]["id"]), float(row[i])) for i in best])
    return found
