"""The record and task shapes that flow between formats, checks and storage."""
from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable

NULL_BYTE = "\x00"


def null_byte_field(fields: dict[str, str | Iterable[str] | None]) -> str | None:
    """The name of the first field whose text holds a null byte (U+0000), or None when none does.

    PostgreSQL's text type cannot store U+0000, so such text is refused on every database alike,
    never stripped: only the person who wrote it knows what it should have said. A field may be
    one text or a list of texts (categories, domains).
    """
    for name, value in fields.items():
        texts = [value] if isinstance(value, str) else list(value or [])
        if any(isinstance(text, str) and NULL_BYTE in text for text in texts):
            return name
    return None


def null_byte_reason(field_name: str) -> str:
    """Why text holding a null byte is refused, naming the field: `the output holds a null byte (\\0)`."""
    return f"the {field_name} holds a null byte (\\0)"


def output_fields(outputs: list[str], prefix: str = "") -> dict[str, str]:
    """Outputs by the names the editor shows: the first is "output", the others "output 2", "output 3"..."""
    return {f"{prefix}output" if n == 1 else f"{prefix}output {n}": o for n, o in enumerate(outputs or [], start=1)}


def record_fields(draft: "RecordDraft") -> dict[str, str | None]:
    """A record's stored text by the name a person calls each field (what null_byte_field checks)."""
    fields: dict[str, str | None] = {"instruction": draft.instruction, "input": draft.input}
    fields.update(output_fields(draft.outputs))
    fields.update({"system prompt": draft.system_prompt, "category": draft.category, "id": draft.external_id})
    # Turns are counted from 0, as the sharegpt and messages readers count them in their other reasons.
    for number, message in enumerate(draft.messages or []):
        if isinstance(message, dict):
            fields[f"content of turn {number}"] = message.get("content")
            if message.get("tool_calls"):
                fields[f"tool call of turn {number}"] = strings_in(message["tool_calls"])
    if draft.tools:
        fields["tools"] = strings_in(draft.tools)
    return fields


def strings_in(value: Any) -> list[str]:
    """Every string inside a JSON value, keys and values (what a text check reads of tool calls and schemas)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def canonical_json(value: Any) -> str:
    """JSON text that is the same for equal values, whatever key order or spacing they were written with."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def normalize_text(text: str | None) -> str:
    """Text as compared for exact duplicates: NFKC, whitespace collapsed and trimmed.

    Case is kept: for training, "Un jocheu" and "un jocheu" are different targets.
    """
    if not text:
        return ""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split())


def content_hash(instruction: str, input: str, outputs: list[str], messages: list | None = None,
                 tools: list | None = None) -> str:
    """The hash two records share when they are exact duplicates (same normalized text, calls and tools).

    Tool calls and tool schemas join the key only when a record has them, so the hashes of records
    without them (all those stored before tools were kept) stay as they were.
    """
    parts = [normalize_text(instruction), normalize_text(input), *[normalize_text(o) for o in outputs]]
    for m in messages or []:
        part = normalize_text(str(m.get("role"))) + ":" + normalize_text(str(m.get("content")))
        if m.get("tool_calls"):
            part += ":calls:" + canonical_json(m["tool_calls"])
        parts.append(part)
    if tools:
        parts.append("tools:" + canonical_json(tools))
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass
class RecordDraft:
    """One instruction record as read from a file or typed by a person, before it is stored."""

    instruction: str
    input: str = ""
    outputs: list[str] = field(default_factory=list)
    system_prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    # The function schemas the conversation may call, in TRL's shape: [{"type": "function", "function": {...}}].
    tools: list[dict[str, Any]] | None = None
    category: str | None = None
    source_file: str | None = None
    source_line: int | None = None
    external_id: str | None = None
    extra: dict[str, Any] | None = None

    @property
    def output(self) -> str:
        return self.outputs[0] if self.outputs else ""

    def hash(self) -> str:
        return content_hash(self.instruction, self.input, self.outputs, self.messages, self.tools)


@dataclass
class ExampleDraft:
    kind: str  # "positive" | "negative"
    input: str
    output: str
    explanation: str | None
    suggestion: str | None = None
    extra: dict[str, Any] | None = None


# SNI's top-level keys and the Task columns they map to; each holds a list of strings.
SNI_LIST_FIELDS = {
    "Contributors": "contributors",
    "Source": "source",
    "URL": "url",
    "Categories": "categories",
    "Reasoning": "reasoning",
    "Input_language": "input_language",
    "Output_language": "output_language",
    "Instruction_language": "instruction_language",
    "Domains": "domains",
    "Instance License": "instance_license",
}
SNI_TEXT_FIELDS = {
    "Definition": "definition",
    "Emphasis & Caution": "emphasis_and_caution",
    "Things to Avoid": "things_to_avoid",
}


@dataclass
class TaskDraft:
    """A Super-NaturalInstructions task read from its JSON file."""

    name: str
    definition: str = ""
    emphasis_and_caution: str | None = None
    things_to_avoid: str | None = None
    lists: dict[str, list | None] = field(default_factory=dict)  # column name -> value
    examples: list[ExampleDraft] = field(default_factory=list)
    instances: list[RecordDraft] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    source_file: str | None = None
