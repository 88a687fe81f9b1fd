"""One row of each record format -> RecordDraft. Each converter raises RowError with the reason."""
from __future__ import annotations

import json
from typing import Any, Callable

from curation.formats.errors import RowError
from curation.records import RecordDraft

SHAREGPT_ROLES = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant", "bing": "assistant",
    "system": "system",
    "function_call": "assistant", "observation": "tool", "tool": "tool", "function": "tool",
}
CHAT_ROLES = {"system", "user", "assistant", "tool", "developer"}


def _text(row: dict, *keys: str, required: bool = False) -> str:
    """The first of keys present (any letter case); strings only, null read as empty."""
    lowered = {str(k).lower(): k for k in row}
    for key in keys:
        if key in lowered:
            value = row[lowered[key]]
            if value is None:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            if not isinstance(value, str):
                raise RowError(f"'{lowered[key]}' must be text, not {type(value).__name__}")
            return value
    if required:
        raise RowError(f"missing '{keys[0]}'")
    return ""


def _extras(row: dict, known: set[str]) -> dict | None:
    extra = {k: v for k, v in row.items() if str(k).lower() not in known}
    return extra or None


def _require_instruction(instruction: str) -> str:
    if not instruction.strip():
        raise RowError("empty instruction")
    return instruction


ALPACA_KEYS = {"instruction", "input", "output", "response", "system", "category", "skill", "outputs", "messages"}


def alpaca(row: dict) -> list[RecordDraft]:
    if row.get("messages"):  # a multi-turn record in our own Parquet export
        [draft] = messages({"messages": row["messages"]})
        draft.category = _text(row, "category") or None
        return [draft]
    instruction = _require_instruction(_text(row, "instruction", required=True))
    output = _text(row, "output", "response")
    return [RecordDraft(
        instruction=instruction,
        input=_text(row, "input"),
        outputs=[output] if output else [],
        system_prompt=_text(row, "system") or None,
        category=_text(row, "category", "skill") or None,
        extra=_extras(row, ALPACA_KEYS),
    )]


def dolly(row: dict) -> list[RecordDraft]:
    instruction = _require_instruction(_text(row, "instruction", required=True))
    response = _text(row, "response", required=True)
    return [RecordDraft(
        instruction=instruction,
        input=_text(row, "context"),
        outputs=[response] if response else [],
        category=_text(row, "category") or None,
        extra=_extras(row, {"instruction", "context", "response", "category"}),
    )]


def self_instruct(row: dict) -> list[RecordDraft]:
    instruction = _require_instruction(_text(row, "instruction", required=True))
    instances = row.get("instances")
    if not isinstance(instances, list) or not instances:
        raise RowError("'instances' must be a non-empty list")
    extra = _extras(row, {"instruction", "instances"})
    drafts = []
    for number, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise RowError(f"instance {number} is not an object")
        output = _text(instance, "output")
        drafts.append(RecordDraft(
            instruction=instruction,
            input=_text(instance, "input"),
            outputs=[output] if output else [],
            external_id=str(row["id"]) if "id" in row else None,
            extra=extra,
        ))
    return drafts


def _message(turn: Any, number: int, role_key: str, content_key: str, roles: dict[str, str] | None) -> dict:
    if not isinstance(turn, dict):
        raise RowError(f"turn {number} is not an object")
    role = turn.get(role_key)
    if roles is not None:
        role = roles.get(str(role).lower())
    if role not in CHAT_ROLES:
        raise RowError(f"turn {number} has unknown role {turn.get(role_key)!r}")
    content = turn.get(content_key)
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise RowError(f"turn {number} content must be text")
    message = {"role": role, "content": content}
    message.update({k: v for k, v in turn.items() if k not in (role_key, content_key)})
    return message


def from_messages(messages: list[dict], extra: dict | None = None) -> RecordDraft:
    """A conversation as a record: first user turn -> instruction, first reply -> output.

    The full conversation is kept in `messages` only when it is more than one exchange,
    since a single exchange is already all there in instruction/output.
    """
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    dialogue = [m for m in messages if m["role"] != "system"]
    if not dialogue or dialogue[0]["role"] != "user":
        raise RowError("the conversation must start with a user turn")
    if not dialogue[0]["content"].strip():
        raise RowError("empty first user turn")
    single_exchange = (
        len(dialogue) <= 2
        and all(set(m) == {"role", "content"} for m in messages)
        and (len(dialogue) == 1 or dialogue[1]["role"] == "assistant")
        and sum(m["role"] == "system" for m in messages) <= 1
    )
    reply = dialogue[1]["content"] if len(dialogue) > 1 and dialogue[1]["role"] == "assistant" else ""
    return RecordDraft(
        instruction=dialogue[0]["content"],
        outputs=[reply] if reply else [],
        system_prompt=system,
        messages=None if single_exchange else messages,
        extra=extra,
    )


def sharegpt(row: dict) -> list[RecordDraft]:
    turns = row.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise RowError("'conversations' must be a non-empty list")
    messages = [_message(t, i, "from", "value", SHAREGPT_ROLES) for i, t in enumerate(turns)]
    if isinstance(row.get("system"), str) and row["system"] and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": row["system"]})
    return [from_messages(messages, _extras(row, {"conversations", "system"}))]


def messages(row: dict) -> list[RecordDraft]:
    turns = row.get("messages")
    if isinstance(turns, str):
        try:
            turns = json.loads(turns)
        except json.JSONDecodeError:
            raise RowError("'messages' is text but not JSON") from None
    if not isinstance(turns, list) or not turns:
        raise RowError("'messages' must be a non-empty list")
    parsed = [_message(t, i, "role", "content", None) for i, t in enumerate(turns)]
    return [from_messages(parsed, _extras(row, {"messages"}))]


def prompt_completion(row: dict) -> list[RecordDraft]:
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, list) and isinstance(completion, list):
        turns = [_message(t, i, "role", "content", None) for i, t in enumerate(prompt + completion)]
        return [from_messages(turns, _extras(row, {"prompt", "completion"}))]
    instruction = _require_instruction(_text(row, "prompt", required=True))
    output = _text(row, "completion", required=True)
    return [RecordDraft(instruction=instruction, outputs=[output] if output else [],
                        extra=_extras(row, {"prompt", "completion"}))]


CONVERTERS: dict[str, Callable[[dict], list[RecordDraft]]] = {
    "alpaca": alpaca,
    "dolly": dolly,
    "self-instruct": self_instruct,
    "sharegpt": sharegpt,
    "messages": messages,
    "prompt-completion": prompt_completion,
}


def detect_row_format(row: Any) -> str | None:
    """The record format a row's keys say it is in, or None."""
    if not isinstance(row, dict):
        return None
    keys = {str(k).lower() for k, v in row.items() if v is not None}
    if "conversations" in keys:
        return "sharegpt"
    if "messages" in keys and "instruction" not in keys:
        return "messages"
    if {"prompt", "completion"} <= keys:
        return "prompt-completion"
    if {"instruction", "instances"} <= keys:
        return "self-instruct"
    if {"instruction", "context", "response"} <= keys:
        return "dolly"
    if "instruction" in keys:
        return "alpaca"
    return None


# The fields each format needs; a file in which no row has them is rejected whole.
REQUIRED_FIELDS = {
    "alpaca": ["instruction"],
    "dolly": ["instruction", "context", "response"],
    "self-instruct": ["instruction", "instances"],
    "sharegpt": ["conversations"],
    "messages": ["messages"],
    "prompt-completion": ["prompt", "completion"],
}
