"""Quality flags for one record: each check gives None when the record is fine, else the reason in words.

The rules are Self-Instruct's filters (instructions and instances), the defects the Alpaca cleaning
effort (AlpacaDataCleaned) found, and two of our own: an output that only repeats the instruction,
extreme length, unfilled template placeholders and personal data.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Iterable

from curation.quality.personal_data import personal_data, private_person_question
from curation.quality.placeholders import unfilled_placeholder

# Self-Instruct: words that ask for something a text model cannot see or make.
BLACKLIST = ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
             "plot", "go to", "video", "audio", "music", "flowchart", "diagram"]
_BLACKLIST = re.compile(r"\b(" + "|".join(re.escape(w) for w in BLACKLIST) + r")\b", re.IGNORECASE)
_NO_OUTPUT = re.compile(r"<\s*no[\s_-]*output\s*>", re.IGNORECASE)
_PLACEHOLDER_INPUT = re.compile(
    r"<?\s*(no[\s_-]*input([\s_-]*(required|needed|given))?|n/?a|none|null|nil|empty|-+)\s*>?\s*\.?", re.IGNORECASE)
_URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
# Words as ROUGE counts them (curation.dedup.rouge_tokens) in lowercased text, found here so that the checks,
# which run on every record written, do not import numpy with curation.dedup.
_ROUGE_WORD = re.compile(r"[a-z0-9]+")
_FIRST_THREE_WORDS = re.compile(r"[^a-z0-9]*([a-z0-9]+)[^a-z0-9]+([a-z0-9]+)[^a-z0-9]+([a-z0-9]+)")
MAX_INSTRUCTION_WORDS = 150
MAX_RECORD_WORDS = 2048  # instruction, input and output together: longer is rarely what a curator meant


@dataclass(frozen=True)
class RecordText:
    instruction: str
    input: str = ""
    output: str = ""


Check = Callable[[RecordText], "str | None"]


def instruction_length(r: RecordText) -> str | None:
    words = len(r.instruction.split())
    if words <= 3:
        return f"instruction has {words} word(s): 3 or fewer"
    if words > MAX_INSTRUCTION_WORDS:
        return f"instruction has {words} words: over {MAX_INSTRUCTION_WORDS}"
    return None


def blacklisted_word(r: RecordText) -> str | None:
    # Substring tests are several times faster than the case-blind regex, and on ASCII text lower() is exactly
    # what IGNORECASE matches, so most instructions are cleared without it (this runs on every imported record).
    if r.instruction.isascii():
        lowered = r.instruction.lower()
        if not any(word in lowered for word in BLACKLIST):
            return None
    found = _BLACKLIST.search(r.instruction)
    return f"instruction mentions '{found.group(1)}', which a text model cannot see or make" if found else None


def bad_first_character(r: RecordText) -> str | None:
    first = r.instruction.lstrip()[:1]
    if first and first in string.punctuation:
        return f"instruction starts with punctuation '{first}'"
    if first and not first.isascii():
        return f"instruction starts with a non-ASCII character '{first}'"
    return None


def input_equals_output(r: RecordText) -> str | None:
    same = r.input.strip() and r.input.strip() == r.output.strip()
    return "input and output are the same" if same else None


def empty_output(r: RecordText) -> str | None:
    return "output is empty" if not r.output.strip() else None


def ends_with_colon(r: RecordText) -> str | None:
    for name in ("input", "output"):
        if getattr(r, name).strip().endswith(":"):
            return f"{name} ends with ':', usually a cut-off generation"
    return None


def placeholder_output(r: RecordText) -> str | None:
    found = _NO_OUTPUT.search(r.output)
    return f"output is a placeholder '{found.group(0)}'" if found else None


def placeholder_input(r: RecordText) -> str | None:
    text = r.input.strip()
    return f"input is a placeholder '{text}'" if text and _PLACEHOLDER_INPUT.fullmatch(text) else None


def url_only_input(r: RecordText) -> str | None:
    urls = _URL.findall(r.input)
    if not urls:
        return None
    words_left = _ROUGE_WORD.findall(_URL.sub(" ", r.input).lower())
    # "Article: <url>" is still only a link: allow a short label per link.
    if len(words_left) <= 2 * len(urls):
        return "input is only a link, which the model cannot open"
    return None


def repeats_instruction(r: RecordText) -> str | None:
    # This runs on every imported record: most are cleared by the output's first three words (it needs three,
    # each found in the instruction) before either text is split into words.
    lowered, output_lowered = r.instruction.lower(), r.output.lower()
    first = _FIRST_THREE_WORDS.match(output_lowered)
    if first is None or any(word not in lowered for word in first.groups()):
        return None
    from rapidfuzz.distance import Indel

    instruction = _ROUGE_WORD.findall(lowered)
    # Every output word must come from the instruction: one word more than it has already decides.
    output = [m.group() for m in islice(_ROUGE_WORD.finditer(output_lowered), len(instruction) + 1)]
    if len(output) > len(instruction):
        return None
    common = (len(instruction) + len(output) - Indel.distance(instruction, output)) // 2
    # Most of the instruction comes back and nothing is added: "Paris was the capital ..." adds the answer, and passes.
    if common >= 0.8 * len(instruction) and common == len(output):
        return "output only repeats the instruction"
    return None


def extreme_length(r: RecordText) -> str | None:
    texts = (r.instruction, r.input, r.output)
    # A word and its separator take two characters: most records are too short to need splitting.
    if sum((len(t) + 1) // 2 for t in texts) <= MAX_RECORD_WORDS:
        return None
    words = len(r.instruction.split()) + len(r.input.split()) + len(r.output.split())
    return f"record has {words} words: over {MAX_RECORD_WORDS}" if words > MAX_RECORD_WORDS else None


def unfilled_template_placeholder(r: RecordText) -> str | None:
    for name in ("instruction", "input", "output"):
        if found := unfilled_placeholder(getattr(r, name)):
            return f"{name} has an unfilled template placeholder '{found}'"
    return None


def personal_data_found(r: RecordText) -> str | None:
    for name in ("instruction", "input", "output"):
        if found := personal_data(getattr(r, name)):
            kind, text = found
            return f"{name} holds {kind} '{text}'"
    return None


def asks_about_a_private_person(r: RecordText) -> str | None:
    for name in ("instruction", "input"):
        if found := private_person_question(getattr(r, name)):
            return f"{name} asks for a person's birth date, home or contacts: '{found}'"
    return None


CHECKS: dict[str, Check] = {
    "instruction_length": instruction_length,
    "blacklisted_word": blacklisted_word,
    "bad_first_character": bad_first_character,
    "input_equals_output": input_equals_output,
    "empty_output": empty_output,
    "ends_with_colon": ends_with_colon,
    "placeholder_output": placeholder_output,
    "placeholder_input": placeholder_input,
    "url_only_input": url_only_input,
    "repeats_instruction": repeats_instruction,
    "extreme_length": extreme_length,
    "unfilled_placeholder": unfilled_template_placeholder,
    "personal_data": personal_data_found,
    "private_person_question": asks_about_a_private_person,
}


def record_flags(instruction: str, input: str = "", outputs: str | list[str] = "") -> dict[str, str]:
    """{check name: reason} for every check the record fails; {} when it passes them all."""
    outputs = [outputs] if isinstance(outputs, str) else (list(outputs) or [""])
    flags: dict[str, str] = {}
    for output in outputs:
        record = RecordText(instruction or "", input or "", output or "")
        for name, check in CHECKS.items():
            if name not in flags and (reason := check(record)):
                flags[name] = reason
    return flags


def flag_counts(records: Iterable[tuple[str, str, str | list[str]]]) -> dict[str, int]:
    """How many records fail each check, every check listed (0 included), given (instruction, input, outputs)."""
    counts = Counter({name: 0 for name in CHECKS})
    for instruction, input, outputs in records:
        counts.update(record_flags(instruction, input, outputs).keys())
    return dict(counts)
