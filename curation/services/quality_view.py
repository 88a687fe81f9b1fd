"""What the Quality view reads: each score's distribution over a dataset, how many records clear a minimum, and
the map of the data with every point carrying its scores. The runs that compute scores are in services.scores,
the selections in services.selections.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import Session

from curation.embeddings import DEFAULT_FIELDS, Embedder
from curation.services.scores import SCORE_NAMES, Vectors, _dataset_id, scored_records
from db.score_tables import stored_scores

# The scores a histogram can show (language is a label, not a number), in the words the page uses.
NUMERIC_SCORES = {
    "judge": "Judge rating (0 to 5)",
    "ifd": "Instruction-following difficulty (IFD)",
    "ppl": "Output perplexity",
    "length": "Output length (words)",
    "mtld": "Lexical diversity (MTLD)",
    "nn_distance": "Distance to the nearest neighbour",
}
assert set(NUMERIC_SCORES) <= set(SCORE_NAMES)


@dataclass
class Distribution:
    """One score over a dataset's live records."""
    name: str
    values: np.ndarray  # the scored records' values
    ids: list[int]  # their record ids, aligned with values
    records: int  # live records, scored or not

    @property
    def unscored(self) -> int:
        return self.records - len(self.values)

    def at_least(self, minimum: float) -> int:
        return int(np.count_nonzero(self.values >= minimum))

    def counter(self, minimum: float) -> str:
        """The live counter under the histogram."""
        if not len(self.values):
            return f"No record has a score for {NUMERIC_SCORES.get(self.name, self.name).lower()} yet."
        line = (f"**{self.at_least(minimum):,}** of {self.records:,} records score at least **{minimum:g}** "
                f"on {NUMERIC_SCORES.get(self.name, self.name).lower()}")
        return line + (f" ({self.unscored:,} not scored yet)." if self.unscored else ".")


def distributions(session: Session, *, dataset: str, names=tuple(NUMERIC_SCORES)) -> dict[str, Distribution]:
    """{score name: its distribution} over the dataset's live records (a score nobody computed: no values)."""
    dataset_id = _dataset_id(session, dataset)
    records = scored_records(session, dataset_id)
    stored = stored_scores(session, dataset_id, list(names))
    found = {}
    for name in names:
        pairs = [(r["id"], stored[r["id"]][name][0]) for r in records
                 if name in stored.get(r["id"], {}) and stored[r["id"]][name][0] is not None]
        found[name] = Distribution(name, np.array([v for _, v in pairs], dtype=np.float64),
                                   [i for i, _ in pairs], len(records))
    return found


def embedder_vectors(session: Session, embedder: Embedder) -> Vectors:
    """services.scores.default_vectors with a model already loaded (the page keeps one per process)."""
    from curation.dedup import joined_vectors
    from curation.services.dedup import part_vectors

    def vectors(records: list[dict]) -> np.ndarray:
        parts = part_vectors(session, records, DEFAULT_FIELDS, embedder)
        return joined_vectors([parts[:, i] for i in range(parts.shape[1])])

    return vectors


def scored_map(session: Session, *, dataset: str, embedder: Embedder | None = None,
               progress=None) -> dict[str, Any]:
    """The Diversity map's report (every live record at its 2-D place), each point also carrying its scores.

    The same stored map as the Diversity tab's (services.maps): laid out once per state of the records (UMAP is
    most of a minute at 52k on a small machine), so both tabs place a record alike.
    """
    from curation.services.maps import map_report

    report = map_report(session, dataset=dataset, embedder=embedder, progress=progress)
    stored = stored_scores(session, _dataset_id(session, dataset), list(NUMERIC_SCORES))
    for point in report["points"]:
        point["scores"] = {name: value for name, (value, _) in stored.get(point["id"], {}).items()
                           if value is not None}
    return report
