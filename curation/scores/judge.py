"""The LLM judge: AlpaGasus's rating of a response (0 to 5, with the model's reason) as a chat request, and its
reading back. The rubric is text a curator may edit per dataset; for an SNI task's instances, the task's
definition and its negative examples with their explanations become the rubric.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from curation.llm.chat import ChatRequest

# AlpaGasus (Chen et al., 2023), the accuracy prompt, asked to answer in a fixed "Score:" / "Reason:" shape.
SYSTEM = ("We would like to request your feedback on the performance of an AI assistant in response to the "
          "instruction and the given input displayed following.")
DEFAULT_RUBRIC = ("Please rate according to the accuracy and helpfulness of the response to the instruction and "
                  "the input. Each assistant receives a score on a scale of 0 to 5, where a higher score indicates "
                  "a higher level of accuracy and helpfulness.")
ANSWER_SHAPE = ("First output a single line \"Score: <0-5>\". In the subsequent line, write \"Reason: \" and a "
                "comprehensive explanation of your evaluation, avoiding any potential bias.")
HIGHEST = 5.0

_SCORE = re.compile(r"score\s*[:=]?\s*\**\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_FIRST_NUMBER = re.compile(r"^\s*\**\s*(-?\d+(?:\.\d+)?)")
_REASON = re.compile(r"reason\s*[:=]\s*", re.IGNORECASE)


class UnreadableRating(ValueError):
    """The judge's reply holds no score from 0 to 5."""


@dataclass(frozen=True)
class Rating:
    score: float
    reason: str


def sni_rubric(definition: str, negatives: list[tuple[str, str, str]]) -> str:
    """The rubric for an SNI task's instances: its definition, then each negative (input, output, explanation)."""
    parts = [f"The task the instruction belongs to is defined as follows:\n{definition.strip()}"]
    if negatives:
        parts.append("These are examples of bad responses to this task, and why they are bad:")
        for number, (input, output, explanation) in enumerate(negatives, 1):
            parts.append(f"Bad example {number}\nInput: {input}\nResponse: {output}\nWhy it is bad: {explanation}")
    parts.append(DEFAULT_RUBRIC + " A response that makes the mistakes of the bad examples scores low.")
    return "\n\n".join(parts)


def judge_request(instruction: str, input: str, output: str, rubric: str = DEFAULT_RUBRIC) -> ChatRequest:
    """The chat request asking the judge to rate one record's response under `rubric`."""
    shown = f"Instruction: {instruction}\nInput: {input}\nResponse: {output}"
    return ChatRequest([{"role": "system", "content": SYSTEM},
                        {"role": "user", "content": f"{shown}\n\n{rubric}\n\n{ANSWER_SHAPE}"}],
                       temperature=0.0, max_tokens=512)


def parse_rating(text: str) -> Rating:
    """The score (0 to 5) and the reason in a judge's reply; UnreadableRating when no such score is there."""
    found = _SCORE.search(text) or _FIRST_NUMBER.search(text)
    if found is None:
        raise UnreadableRating(f"no score in the judge's reply: {text[:80]!r}")
    score = float(found.group(1))
    if not 0.0 <= score <= HIGHEST:
        raise UnreadableRating(f"the judge's score {score:g} is outside 0 to 5")
    rest = text[found.end():]
    reason = _REASON.search(rest)
    reason_text = rest[reason.end():] if reason else rest
    return Rating(score, reason_text.strip().lstrip("*").strip())
