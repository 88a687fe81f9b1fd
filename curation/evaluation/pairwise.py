"""The pairwise judge (AlpacaEval's shape): which of two responses follows the instruction better, asked in both
orders to cancel position bias, and the win rates read from the verdicts, raw and length-controlled.

    judgements = judge_pairs(backend, [(instruction, reference, tuned_answer, base_answer), ...])
    preferences = [preference(j) for j in judgements]        # A's share of the two orders, None if neither read
    win_rate(preferences), length_controlled_win_rate(preferences, tuned_lengths, base_lengths)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from curation.llm import Backend, ChatRequest, ReplyCache, run_requests

Progress = Callable[[int, int], None]
Verdict = str  # "first" | "second" | "tie": which response, as shown, the judge preferred

SYSTEM = ("You are a careful and impartial judge of AI assistants. You compare two responses to the same "
          "instruction and say which one follows it better.")
RUBRIC = ("Which response follows the instruction better: more helpful, accurate, relevant and complete? Judge "
          "the content alone: the order in which the responses are shown and their length must not decide.")
WITH_REFERENCE = "A reference answer is given: it is correct, but not necessarily the best possible response."
ANSWER_SHAPE = ("First output a single line \"Verdict: 1\", \"Verdict: 2\" or \"Verdict: tie\". In the subsequent "
                "line, write \"Reason: \" and a brief explanation of your choice.")
MIN_ITEMS_TO_FIT = 5  # fewer readable pairs than this cannot separate the length effect from the model's
LENGTH_PENALTY_C = 100.0  # inverse L2 strength on the length slope, weak as AlpacaEval's C = 100 (intercept free)

_VERDICT = re.compile(r"verdict\s*[:=]?\s*\**\s*(?:response\s*)?(1|2|tie)\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"^\s*\**\s*(1|2|tie)\b", re.IGNORECASE)
_VERDICTS = {"1": "first", "2": "second", "tie": "tie"}


class UnreadableVerdict(ValueError):
    """The judge's reply names neither response, nor a tie."""


class JudgeStopped(Exception):
    """The judge cannot answer any request (wrong endpoint, key or model); `judgements` holds what came back."""

    def __init__(self, message: str, judgements: list["PairJudgement"]):
        super().__init__(message)
        self.judgements = judgements


@dataclass(frozen=True)
class PairJudgement:
    """The verdict with answer A shown first and with B shown first (None where unreadable or failed), and why."""

    a_first: Verdict | None
    b_first: Verdict | None
    a_first_reply: str | None = None  # the judge's raw reply text, kept for the record
    b_first_reply: str | None = None
    a_first_error: str | None = None  # why that order has no verdict, in words
    b_first_error: str | None = None


def pairwise_request(instruction: str, reference: str | None, first: str, second: str) -> ChatRequest:
    """The chat request asking the judge whether response 1 (`first`) or 2 (`second`) follows the instruction better."""
    parts = [f"## Instruction\n{instruction}"]
    if reference:
        parts.append(f"## Reference answer\n{reference}")
    parts += [f"## Response 1\n{first}", f"## Response 2\n{second}",
              " ".join([RUBRIC, WITH_REFERENCE] if reference else [RUBRIC]), ANSWER_SHAPE]
    return ChatRequest([{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}],
                       temperature=0.0, max_tokens=512)


def parse_verdict(text: str) -> Verdict:
    """"first", "second" or "tie" from a judge's reply; UnreadableVerdict when it says none of them."""
    found = _VERDICT.search(text or "") or _FIRST_WORD.search(text or "")
    if found is None:
        raise UnreadableVerdict(f"no verdict (1, 2 or tie) in the judge's reply: {(text or '')[:80]!r}")
    return _VERDICTS[found.group(1).lower()]


def preference(judgement: PairJudgement) -> float | None:
    """A's preference in [0, 1]: 1 per order A wins, 0 per order B wins, 0.5 per tie, averaged over readable orders.

    With A first a "first" verdict is A's win; with B first it is B's, so a judge that always picks the first
    response gives 0.5. None when neither order has a verdict.
    """
    scores = []
    if judgement.a_first is not None:
        scores.append({"first": 1.0, "second": 0.0, "tie": 0.5}[judgement.a_first])
    if judgement.b_first is not None:
        scores.append({"first": 0.0, "second": 1.0, "tie": 0.5}[judgement.b_first])
    return sum(scores) / len(scores) if scores else None


def judge_pairs(backend: Backend, items: Sequence[tuple[str, str | None, str, str]], *,
                cache: ReplyCache | None = None, concurrency: int = 8,
                progress: Progress | None = None) -> list[PairJudgement]:
    """Both orders' verdicts for each (instruction, reference, answer A, answer B), in the items' order.

    Two requests per pair go through run_requests (A first, then B first); `progress(done, total)` counts them.
    JudgeStopped when the backend fails in a way every request would (the replies that came are cached).
    """
    requests = []
    for instruction, reference, answer_a, answer_b in items:
        requests += [pairwise_request(instruction, reference, answer_a, answer_b),
                     pairwise_request(instruction, reference, answer_b, answer_a)]
    report = run_requests(backend, requests, concurrency=concurrency, cache=cache, progress=progress)

    def read(index: int) -> tuple[Verdict | None, str | None, str | None]:
        reply = report.replies[index]
        if reply is None:
            error = report.errors.get(index)
            return None, None, str(error) if error else "the judge was not asked (the run stopped)"
        try:
            return parse_verdict(reply.text), reply.text, None
        except UnreadableVerdict as error:
            return None, reply.text, str(error)

    judgements = []
    for pair in range(len(items)):
        (a_first, a_reply, a_error), (b_first, b_reply, b_error) = read(2 * pair), read(2 * pair + 1)
        judgements.append(PairJudgement(a_first, b_first, a_reply, b_reply, a_error, b_error))
    if report.fatal is not None:
        raise JudgeStopped(f"the judge stopped answering: {report.fatal}", judgements)
    return judgements


def win_rate(preferences: Sequence[float | None]) -> float:
    """A's win rate in [0, 1]: the mean of the readable preferences (a tie counts half); ValueError if none."""
    readable = [p for p in preferences if p is not None]
    if not readable:
        raise ValueError("no pair has a readable verdict, so there is no win rate")
    return sum(readable) / len(readable)


def length_controlled_win_rate(preferences: Sequence[float | None], lengths_a: Sequence[float],
                               lengths_b: Sequence[float]) -> float:
    """A's win rate had both answers been equally long (AlpacaEval 2's length control), in [0, 1].

    Over the pairs with a readable preference p, with d = len(A) - len(B) (characters, tokens: any one unit) and
    s the standard deviation of d over those pairs, fits P(A wins) = sigmoid(w0 + w1 * tanh(d / s)) by logistic
    regression, each pair counted as a win with weight p and a loss with weight 1 - p (so a tie is half of each);
    scikit-learn's L2 penalty (C = LENGTH_PENALTY_C) applies to w1 only. Gives sigmoid(w0), the prediction at no
    length difference. Falls back to the raw win rate when fewer than MIN_ITEMS_TO_FIT pairs are readable, when
    A never wins or never loses (nothing to fit), or when no length differs from another (s = 0: nothing to
    control for). Unlike AlpacaEval it has no per-instruction difficulty term: one model against one baseline.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if not len(preferences) == len(lengths_a) == len(lengths_b):
        raise ValueError("one preference and two answer lengths are needed per pair")
    raw = win_rate(preferences)
    kept = [(p, a - b) for p, a, b in zip(preferences, lengths_a, lengths_b) if p is not None]
    wins = np.array([p for p, _ in kept], dtype=float)
    difference = np.array([d for _, d in kept], dtype=float)
    if len(kept) < MIN_ITEMS_TO_FIT or wins.sum() == 0 or (1 - wins).sum() == 0 or difference.std() == 0:
        return raw
    feature = np.tanh(difference / difference.std())
    rows = np.concatenate([feature, feature]).reshape(-1, 1)
    labels = np.concatenate([np.ones(len(kept)), np.zeros(len(kept))])
    fit = LogisticRegression(C=LENGTH_PENALTY_C).fit(rows, labels, sample_weight=np.concatenate([wins, 1 - wins]))
    return 1.0 / (1.0 + math.exp(-float(fit.intercept_[0])))
