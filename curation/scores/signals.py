"""Cheap signals that need no model: the output's length, its lexical diversity (MTLD), the distance to the
record's nearest neighbour, and the language.

MTLD (McCarthy and Jarvis, 2010) rather than a type-token ratio: TTR falls with length, MTLD does not, so long
and short outputs compare. The language is told by a light detector: the Unicode script of the letters, then, for
Latin script, the most frequent stopwords of a handful of languages; "und" when neither decides.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
MTLD_TTR = 0.72  # the factor's end, as in the paper

SCRIPTS = {"CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko", "CYRILLIC": "ru", "GREEK": "el",
           "ARABIC": "ar", "HEBREW": "he", "DEVANAGARI": "hi", "THAI": "th", "BENGALI": "bn", "TAMIL": "ta"}
STOPWORDS = {
    "en": "the and of to is in that it for you are with on this be as not have",
    "fr": "le la les et des est un une que pour dans pas du en qui sur au",
    "de": "der die und das ist nicht ein eine zu den mit sich von auf für",
    "es": "el la los las y que de en es un una por para con no del",
    "it": "il la che di e un una per non sono del della con è gli",
    "pt": "o a os as e que de em um uma para com não do da é",
    "nl": "de het een en van is dat niet op te zijn met voor die",
}
_STOP_SETS = {code: set(words.split()) for code, words in STOPWORDS.items()}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def length(text: str) -> int:
    """Words in the text."""
    return len(words(text))


def _mtld_pass(tokens: Sequence[str]) -> float:
    factors, types, count = 0.0, set(), 0
    for token in tokens:
        types.add(token)
        count += 1
        if len(types) / count <= MTLD_TTR:
            factors, types, count = factors + 1, set(), 0
    if count:
        factors += (1 - len(types) / count) / (1 - MTLD_TTR)
    return len(tokens) / factors if factors else float(len(tokens))


def mtld(text: str) -> float:
    """MTLD of the text's words: the mean length of runs whose type-token ratio stays above 0.72, both ways."""
    tokens = words(text)
    if not tokens:
        return 0.0
    return (_mtld_pass(tokens) + _mtld_pass(tokens[::-1])) / 2


def language(text: str) -> str:
    """An ISO 639-1 code for the text's language, or "und" when the detector cannot tell."""
    scripts = Counter()
    for char in text:
        if char.isalpha():
            name = unicodedata.name(char, "")
            scripts[next((s for s in SCRIPTS if name.startswith(s)), "LATIN" if "LATIN" in name else "OTHER")] += 1
    if not scripts:
        return "und"
    script, _ = scripts.most_common(1)[0]
    if script in SCRIPTS:
        if script == "CJK" and (scripts["HIRAGANA"] or scripts["KATAKANA"]):
            return "ja"
        return SCRIPTS[script]
    if script != "LATIN":
        return "und"
    tokens = words(text)
    hits = {code: sum(token in stops for token in tokens) for code, stops in _STOP_SETS.items()}
    best = max(hits, key=hits.get)
    return best if hits[best] else "und"


def nearest_neighbour_distance(vectors: np.ndarray) -> np.ndarray:
    """Each row's cosine distance to its nearest other row (unit vectors); NaN when there is no other row."""
    from curation.dedup import nearest_neighbours

    if len(vectors) < 2:
        return np.full(len(vectors), np.nan)
    scores, indices = nearest_neighbours(vectors, 2)
    rows = np.arange(len(vectors))
    # The first hit is usually the row itself; an exact duplicate may come first instead, at the same score.
    other = np.where(indices[:, 0] == rows, scores[:, 1], scores[:, 0])
    return np.clip(1.0 - other, 0.0, 2.0).astype(np.float64)
