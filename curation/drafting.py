"""What the studio asks a model for, and how it reads the replies: drafts, rewrites, SNI instances, explanations.

Each prompt has a name and a version; both go into the provenance of every field it fills, so a change of
wording is visible (bump the version whenever the words change: the cache keys change with them anyway).
Parsers raise DraftUnusable with words for the person when a reply cannot be used as asked.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass

from curation.llm.chat import ChatRequest


class DraftUnusable(ValueError):
    """The model answered, but not with something the studio can use; the message says how."""


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    system: str


DRAFT_OUTPUT = Prompt("draft_output", 1, "You write the ideal response to an instruction for an instruction-tuning "
                      "dataset: helpful, correct, complete and concise. Reply with the response only.")
SUGGEST_INSTRUCTION = Prompt("suggest_instruction", 1, "You rewrite rough instructions for an instruction-tuning "
                             "dataset into one clear, specific, self-contained instruction with the same intent. "
                             "Reply with the rewritten instruction only.")
DRAFT_INSTANCES = Prompt("draft_instances", 1, "You write new instances for a task of Super-NaturalInstructions. "
                         "Follow the definition; be as correct as the positive examples and avoid the mistakes of "
                         "the negative ones; make each instance different from the others. Reply with a JSON "
                         "array only: [{\"input\": \"...\", \"output\": \"...\"}, ...].")
DRAFT_EXPLANATION = Prompt("draft_explanation", 1, "You explain, in one or two sentences, why an example output of "
                           "a Super-NaturalInstructions task is right (positive example) or wrong (negative "
                           "example) for its definition. Reply with the explanation only.")
PROMPTS = {p.name: p for p in (DRAFT_OUTPUT, SUGGEST_INSTRUCTION, DRAFT_INSTANCES, DRAFT_EXPLANATION)}


@dataclass(frozen=True)
class Sampling:
    """The sampling settings a person picks beside the editor."""

    temperature: float = 0.7
    top_p: float | None = None
    max_tokens: int = 512
    seed: int | None = 0


def _request(prompt: Prompt, user: str, sampling: Sampling, system_prompt: str | None = None) -> ChatRequest:
    system = prompt.system if not system_prompt else f"{prompt.system}\n\nThe assistant's own instructions:\n{system_prompt}"
    return ChatRequest([{"role": "system", "content": system}, {"role": "user", "content": user}],
                       temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens,
                       seed=sampling.seed)


def draft_output_request(instruction: str, input: str = "", *, system_prompt: str | None = None,
                         sampling: Sampling = Sampling()) -> ChatRequest:
    """The request for a response to `instruction` (with its input, if any)."""
    if not (instruction or "").strip():
        raise DraftUnusable("write an instruction first: the model drafts the output from it")
    user = instruction.strip() if not (input or "").strip() else f"{instruction.strip()}\n\nInput:\n{input.strip()}"
    return _request(DRAFT_OUTPUT, user, sampling, system_prompt)


def suggest_instruction_request(instruction: str, input: str = "", *, sampling: Sampling = Sampling()) -> ChatRequest:
    if not (instruction or "").strip():
        raise DraftUnusable("write a rough instruction first: the model rewrites it")
    user = f"Rough instruction:\n{instruction.strip()}"
    if (input or "").strip():
        user += f"\n\nIt is given this input:\n{input.strip()}"
    return _request(SUGGEST_INSTRUCTION, user, sampling)


def _example_lines(examples: list[dict]) -> str:
    return "\n".join(f"- Input: {e.get('input', '')}\n  Output: {e.get('output', '')}"
                     + (f"\n  Explanation: {e['explanation']}" if e.get("explanation") else "") for e in examples)


def draft_instances_request(definition: str, positive: list[dict], negative: list[dict], existing: list[str],
                            count: int, *, sampling: Sampling = Sampling(max_tokens=1024)) -> ChatRequest:
    """The request for `count` new instances of a task (its definition, examples and current instance inputs)."""
    if not (definition or "").strip():
        raise DraftUnusable("write the task's definition first: the model drafts instances from it")
    if not 1 <= count <= 50:
        raise DraftUnusable("ask for between 1 and 50 instances at a time")
    parts = [f"Definition:\n{definition.strip()}"]
    if positive:
        parts.append("Positive examples:\n" + _example_lines(positive))
    if negative:
        parts.append("Negative examples (do not answer like these):\n" + _example_lines(negative))
    if existing:
        parts.append("Inputs the task already has (write different ones):\n"
                     + "\n".join(f"- {text}" for text in existing[-20:]))
    parts.append(f"Write {count} new instance{'s' if count != 1 else ''}.")
    return _request(DRAFT_INSTANCES, "\n\n".join(parts), sampling)


def draft_explanation_request(definition: str, kind: str, input: str, output: str, *,
                              sampling: Sampling = Sampling(max_tokens=200)) -> ChatRequest:
    if kind not in ("positive", "negative"):
        raise ValueError("an example is positive or negative")
    user = (f"Definition:\n{(definition or '').strip()}\n\nA {kind} example.\nInput: {input}\nOutput: {output}\n\n"
            f"Why is this output {'right' if kind == 'positive' else 'wrong'}?")
    return _request(DRAFT_EXPLANATION, user, sampling)


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_LABEL = re.compile(r"^(rewritten instruction|instruction|explanation|response|output)\s*:\s*", re.IGNORECASE)


def clean_text(reply: str) -> str:
    """A reply without the wrapping models add: code fences, a leading label, enclosing quotes."""
    text = _FENCE.sub("", (reply or "").strip()).strip()
    text = _LABEL.sub("", text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] == "“" and text[-1] == "”":
        text = text[1:-1].strip()
    return text


def parse_instances(reply: str) -> list[dict[str, str]]:
    """[{"input", "output"}, ...] from a reply holding a JSON array (in a code fence or after words)."""
    text = (reply or "").strip()
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        raise DraftUnusable("the model did not reply with a list of instances; try again or lower the temperature")
    try:
        items = json.loads(text[start:end + 1])
    except ValueError:
        raise DraftUnusable("the model's list of instances is not valid JSON; try again") from None
    instances = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("input", "")).strip() and str(item.get("output", "")).strip():
            instances.append({"input": str(item["input"]).strip(), "output": str(item["output"]).strip()})
    if not instances:
        raise DraftUnusable("the model's list holds no instance with both an input and an output")
    return instances


# The script most letters of a language are written in; a reply in another script is in the wrong language.
LANGUAGE_SCRIPTS = {"en": "LATIN", "fr": "LATIN", "de": "LATIN", "es": "LATIN", "it": "LATIN", "pt": "LATIN",
                    "nl": "LATIN", "pl": "LATIN", "tr": "LATIN", "vi": "LATIN", "id": "LATIN", "sv": "LATIN",
                    "ru": "CYRILLIC", "uk": "CYRILLIC", "bg": "CYRILLIC", "el": "GREEK", "ar": "ARABIC",
                    "fa": "ARABIC", "he": "HEBREW", "hi": "DEVANAGARI", "th": "THAI", "ko": "HANGUL",
                    "zh": "CJK", "ja": "CJK"}


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    if name.startswith(("CJK", "HIRAGANA", "KATAKANA")):
        return "CJK"
    return name.split(" ")[0]


def wrong_language(text: str, language: str | None) -> str | None:
    """Why `text` is not in `language` (an ISO 639-1 code) by its script, or None when it may well be."""
    code = (language or "").strip().lower()[:2]
    wanted = LANGUAGE_SCRIPTS.get(code)
    letters = [c for c in text or "" if c.isalpha()]
    if wanted is None or len(letters) < 8:
        return None
    counts: dict[str, int] = {}
    for c in letters:
        counts[_script(c)] = counts.get(_script(c), 0) + 1
    if code == "ja":
        counts["CJK"] = counts.get("CJK", 0)
    share = counts.get(wanted, 0) / len(letters)
    if share >= 0.5:
        return None
    found = max(counts, key=counts.get).lower()
    return f"the reply is written in {found} script, not in the dataset's language ({code})"
