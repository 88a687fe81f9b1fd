"""The checks a generated candidate must pass: Self-Instruct's filters, an incremental ROUGE-L pool, and
Evol-Instruct's elimination rules. Each check returns None to keep, or a Drop with its rule and a reason."""
from __future__ import annotations

import re
import string
from array import array
from collections import Counter
from typing import Iterable

import numpy as np

from curation.dedup import SELF_INSTRUCT_ROUGE, rouge_tokens
from curation.generation.report import Drop

MIN_WORDS, MAX_WORDS = 4, 150  # Alpaca drops instructions of 3 words or fewer, or of more than 150
BLACKLIST = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
             "plot", "go to", "video", "audio", "music", "flowchart", "diagram")
_BLACKLIST = [(word, re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)) for word in BLACKLIST]
SORRY_WORDS = 80  # WizardLM: a reply that says sorry in fewer words than this could not answer
PROMPT_WORDS = ("#The Given Prompt#", "#Given Prompt#", "#Rewritten Prompt#", "#Created Prompt#", "given prompt",
                "rewritten prompt", "created prompt")
# NLTK's English stop words, as rouge_tokens splits them ("don't" -> "don", "t").
STOP_WORDS = frozenset("""
a about above after again against ain all am an and any are aren as at be because been before being below between
both but by can couldn d did didn do does doesn doing don down during each few for from further had hadn has hasn
have haven having he her here hers herself him himself his how i if in into is isn it its itself just ll m ma me
mightn more most mustn my myself needn no nor not now o of off on once only or other our ours ourselves out over own
re s same shan she should shouldn so some such t than that the their theirs them themselves then there these they
this those through to too under until up ve very was wasn we were weren what when where which while who whom why
will with won wouldn y you your yours yourself yourselves
""".split())


def _words(count: int) -> str:
    return f"{count} word" if count == 1 else f"{count} words"


def instruction_drop(text: str) -> Drop | None:
    """Self-Instruct's static filters on a new instruction: length, blacklist, first character; None keeps it."""
    count = len(text.split())
    if count < MIN_WORDS:
        return Drop("too_short", f"{_words(count)}; an instruction needs at least {MIN_WORDS}", text)
    if count > MAX_WORDS:
        return Drop("too_long", f"{_words(count)}; an instruction has at most {MAX_WORDS}", text)
    for word, pattern in _BLACKLIST:
        if pattern.search(text):
            return Drop("blacklist", f"mentions “{word}”, which a text-only model cannot see, make or do", text)
    first = text.strip()[0]
    if first in string.punctuation:
        return Drop("punctuation_start", f"starts with punctuation (“{first}”)", text)
    if not first.isascii():
        return Drop("non_ascii_start", f"starts with a non-ASCII character (“{first}”)", text)
    return None


def truncated_drop(text: str) -> Drop:
    """The drop of the last item of a reply that stopped at max_tokens (it may be cut off mid-sentence)."""
    return Drop("truncated", "the last item of a reply that stopped at max_tokens, so it may be cut off", text)


def _char(n: int) -> str:
    """The n-th token code, as curation.dedup._as_strings assigns them (from U+0100, skipping the surrogates)."""
    n += 0x100
    return chr(n if n < 0xD800 else n + 0x800)


class RougePool:
    """Instructions seen so far, coded a character per token, so the nearest by ROUGE-L F1 is one rapidfuzz pass.

    The scores are those of curation.dedup.rouge_l on rouge_tokens (the Indel similarity of the token strings is
    2*LCS/(|a|+|b|)). An inverted index bounds each text's LCS with the candidate by the tokens they share, so
    rapidfuzz scores only the texts that could pass the cutoff: exact, and well under 1 ms at 50,000 texts.
    """

    def __init__(self, texts: Iterable[str] = (), cutoff: float = SELF_INSTRUCT_ROUGE):
        self.cutoff = cutoff
        self.texts: list[str] = []
        self._strings: list[str] = []
        self._codes: dict[str, str] = {}
        self._lengths = array("i")
        self._postings: dict[str, tuple[array, array]] = {}  # token -> (text indices, its count in each)
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str) -> None:
        tokens, codes, index = rouge_tokens(text), self._codes, len(self.texts)
        for token, count in Counter(tokens).items():
            if token not in codes:
                codes[token] = _char(len(codes))
                self._postings[token] = (array("i"), array("i"))
            ids, counts = self._postings[token]
            ids.append(index)
            counts.append(count)
        self.texts.append(text)
        self._strings.append("".join(codes[t] for t in tokens))
        self._lengths.append(len(tokens))

    def _query(self, tokens: list[str]) -> str:
        """`tokens` coded; a token the pool has never seen gets a code no pool text holds (and is not stored)."""
        unseen: dict[str, str] = {}
        return "".join(self._codes.get(t) or unseen.setdefault(t, _char(len(self._codes) + len(unseen)))
                       for t in tokens)

    def _candidates(self, tokens: list[str], cutoff: float) -> np.ndarray:
        """Indices of the texts whose shared tokens (a bound on the LCS) leave ROUGE-L above `cutoff` possible."""
        ids, weights = [], []
        for token, count in Counter(tokens).items():
            if token in self._postings:
                where, counts = self._postings[token]
                ids.append(np.frombuffer(where, dtype=np.intc))
                weights.append(np.minimum(np.frombuffer(counts, dtype=np.intc), count))
        if not ids:
            return np.zeros(0, dtype=np.intp)
        shared = np.bincount(np.concatenate(ids), weights=np.concatenate(weights), minlength=len(self.texts))
        lengths = np.frombuffer(self._lengths, dtype=np.intc)
        # 2*LCS/(|a|+|b|) > cutoff needs 2*shared > cutoff*(|a|+|b|); the slack only lets more through.
        return np.flatnonzero(2 * shared > cutoff * (len(tokens) + lengths) - 1e-9)

    def closest(self, text: str, cutoff: float | None = None) -> tuple[float, str] | None:
        """(score, text) of the pool text most like `text` when its ROUGE-L F1 is above the cutoff, else None."""
        from rapidfuzz import process
        from rapidfuzz.distance import Indel

        cutoff = self.cutoff if cutoff is None else cutoff
        tokens = rouge_tokens(text)
        candidates = self._candidates(tokens, cutoff) if tokens else []
        if not len(candidates):
            return None
        query = self._query(tokens)
        # rapidfuzz's float may sit a hair off the exact fraction, so it finds with some slack and we decide exactly.
        match = process.extractOne(query, [self._strings[i] for i in candidates.tolist()],
                                   scorer=Indel.normalized_similarity, score_cutoff=max(0.0, cutoff - 1e-6))
        if match is None:
            return None
        index = int(candidates[match[2]])
        found = self._strings[index]
        total = len(query) + len(found)
        score = (total - Indel.distance(query, found)) / total
        return (score, self.texts[index]) if score > cutoff else None


def rouge_drop(pool: RougePool, text: str) -> Drop | None:
    """The rouge_l drop when `text` has ROUGE-L F1 above the pool's cutoff with any pool text; None keeps it."""
    closest = pool.closest(text)
    if closest is None:
        return None
    score, other = closest
    return Drop("rouge_l", f"ROUGE-L {score:.2f} with “{other}”", text)


# ---- Evol-Instruct's elimination ----------------------------------------------------------------------------

def copies_prompt_drop(text: str) -> Drop | None:
    """The copies_prompt drop when an evolved instruction repeats words of the evolving prompt itself."""
    lowered = text.lower()
    for phrase in PROMPT_WORDS:
        if phrase.lower() in lowered:
            return Drop("copies_prompt", f"copies “{phrase}” from the evolving prompt", text)
    return None


def only_stop_words_drop(text: str, what: str = "evolved instruction", shown: str | None = None) -> Drop | None:
    """The only_stop_words drop when `text` holds nothing but punctuation and stop words (`shown` in the report)."""
    if all(token in STOP_WORDS for token in rouge_tokens(text)):
        return Drop("only_stop_words", f"the {what} holds only punctuation and stop words",
                    text if shown is None else shown)
    return None


def cannot_answer_drop(answer: str, instruction: str) -> Drop | None:
    """The cannot_answer drop when the answer says "sorry" and is short: the evolved instruction was too hard."""
    count = len(answer.split())
    if "sorry" in answer.lower() and count < SORRY_WORDS:
        return Drop("cannot_answer", f"the answer says “sorry” in {_words(count)} (under {SORRY_WORDS}): "
                                     "the model could not answer it", instruction)
    return None


def no_information_gain_drop(judgement: str, instruction: str) -> Drop | None:
    """The no_information_gain drop when the model judged the evolved instruction equal to its parent."""
    lowered = " ".join(re.findall(r"[a-z]+", (judgement or "").lower()))
    if "equal" in lowered and "not equal" not in lowered:
        return Drop("no_information_gain", "the model judged it equal to the instruction it evolved from",
                    instruction)
    return None
