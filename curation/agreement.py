"""How much annotators agree when several answer the same item: free text by ROUGE-L, ratings by Krippendorff's alpha.

Free-text outputs are compared pairwise with ROUGE-L F1 (the longest common word sequence, as the evaluation scores
answers): two annotators who wrote the same answer in other words still score low, which is what a curator reading
them side by side needs to know first. Ratings and choices use the well-kept implementations: Krippendorff's alpha
(`krippendorff`, any number of annotators, missing ratings allowed) and Cohen's kappa (scikit-learn, two annotators).
"""
from __future__ import annotations

import itertools
import math
from typing import Hashable, Mapping, Sequence

from curation.evaluation.metrics import rouge_l

ItemKey = Hashable
Answers = Mapping[ItemKey, Mapping[str, str]]  # item -> annotator -> output


def text_agreement(outputs: Sequence[str]) -> float:
    """The mean ROUGE-L F1 over every pair of outputs (0..1); 1.0 for fewer than two outputs."""
    pairs = list(itertools.combinations(outputs, 2))
    if not pairs:
        return 1.0
    return sum(rouge_l(a, b) for a, b in pairs) / len(pairs)


def item_agreement(answers: Answers) -> dict[ItemKey, float]:
    """Each item answered by two or more annotators, with the mean pairwise similarity of its answers."""
    return {item: text_agreement(list(by_annotator.values()))
            for item, by_annotator in answers.items() if len(by_annotator) >= 2}


def annotator_agreement(answers: Answers) -> dict[str, float]:
    """Each annotator's mean similarity to the other annotators' answers on the items they shared."""
    totals: dict[str, list[float]] = {}
    for by_annotator in answers.values():
        for (first, a), (second, b) in itertools.combinations(sorted(by_annotator.items()), 2):
            score = rouge_l(a, b)
            totals.setdefault(first, []).append(score)
            totals.setdefault(second, []).append(score)
    return {name: sum(scores) / len(scores) for name, scores in sorted(totals.items())}


def rating_alpha(ratings: Mapping[ItemKey, Mapping[str, int]], *, level: str = "ordinal") -> float | None:
    """Krippendorff's alpha of the ratings (item -> annotator -> rating); None when it is undefined.

    Undefined: fewer than two items rated by two or more annotators, or a single value used throughout
    (no variation to agree on).
    """
    import krippendorff
    import numpy as np

    shared = {item: r for item, r in ratings.items() if len(r) >= 2}
    values = {v for r in shared.values() for v in r.values()}
    if len(shared) < 2 or len(values) < 2:
        return None
    annotators = sorted({name for r in shared.values() for name in r})
    items = list(shared)
    data = np.full((len(annotators), len(items)), np.nan)
    for column, item in enumerate(items):
        for name, value in shared[item].items():
            data[annotators.index(name), column] = value
    alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    return None if math.isnan(alpha) else alpha


def cohen_kappa(a: Sequence, b: Sequence) -> float | None:
    """Cohen's kappa of two annotators' labels on the same items, in order; None when it is undefined."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} labels against {len(b)}: kappa compares the same items")
    if len(a) < 2 or len(set(a) | set(b)) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    kappa = float(cohen_kappa_score(list(a), list(b)))
    return None if math.isnan(kappa) else kappa
