"""Answer metrics against the reference outputs: ROUGE-L F1 (as rouge-score computes it) and SQuAD's exact match."""
from __future__ import annotations

import re
import string

from curation import dedup

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of the prediction against the reference, equal to rouge-score's RougeScorer(["rougeL"]).

    rouge-score lowercases, splits on anything not a-z or 0-9 and takes 2*LCS/(|a|+|b|) with no stemming; the
    dedup module's exact LCS does the same, so the package is needed only as the tests' reference.
    """
    return dedup.rouge_l(dedup.rouge_tokens(prediction), dedup.rouge_tokens(reference))


def normalize_answer(text: str) -> str:
    """The text as SQuAD compares answers: lowercased, without punctuation or articles, single-spaced."""
    text = (text or "").lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> bool:
    """True when the prediction and the reference are equal after SQuAD's normalisation."""
    return normalize_answer(prediction) == normalize_answer(reference)


def answer_scores(predictions: list[str], references: list[str]) -> dict:
    """{"rouge_l": mean ROUGE-L F1, "exact_match": share of exact matches, "n": answers}; None means when n is 0."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} answers for {len(references)} reference outputs")
    n = len(predictions)
    if n == 0:
        return {"rouge_l": None, "exact_match": None, "n": 0}
    pairs = list(zip(predictions, references))
    return {"rouge_l": sum(rouge_l(p, r) for p, r in pairs) / n,
            "exact_match": sum(exact_match(p, r) for p, r in pairs) / n, "n": n}
