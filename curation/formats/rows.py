"""One row of each record format -> RecordDraft. Each converter raises RowError with the reason."""
from __future__ import annotations

import json
from typing import Any, Callable

from curation.formats.chats import SHAREGPT_ROLES, chat_message, from_messages, user_turns
from curation.formats.errors import RowError
from curation.formats.tools import function_call_message, name_tool_result, parse_tools
from curation.records import RecordDraft


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


ALPACA_KEYS = {"instruction", "input", "output", "response", "system", "category", "skill", "outputs", "messages",
               "tools"}


def alpaca(row: dict) -> list[RecordDraft]:
    if row.get("messages"):  # a multi-turn record in our own Parquet export
        [draft] = messages({"messages": row["messages"], "tools": row.get("tools")})
        draft.category = _text(row, "category") or None
        return [draft]
    lowered = {str(k).lower(): k for k in row}
    if "instruction" in lowered and (turns := user_turns(row[lowered["instruction"]])) is not None:
        # --map instruction=turns on a benchmark question file: the user turns are the conversation,
        # and an output, if mapped, is the reply that closes it.
        if _text(row, "input"):
            raise RowError("an input cannot go with a list of user turns; map it into the turns")
        output = _text(row, "output", "response")
        draft = from_messages(turns + ([{"role": "assistant", "content": output}] if output else []),
                              _extras(row, ALPACA_KEYS))
        draft.category, draft.tools = _text(row, "category", "skill") or None, parse_tools(row.get("tools"))
        return [draft]
    instruction = _require_instruction(_text(row, "instruction", required=True))
    output = _text(row, "output", "response")
    return [RecordDraft(
        instruction=instruction,
        input=_text(row, "input"),
        outputs=[output] if output else [],
        system_prompt=_text(row, "system") or None,
        tools=parse_tools(row.get("tools")),
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


def sharegpt(row: dict) -> list[RecordDraft]:
    turns = row.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise RowError("'conversations' must be a non-empty list")
    messages: list[dict] = []
    for number, turn in enumerate(turns):
        message = chat_message(turn, number, "from", "value", SHAREGPT_ROLES)
        if str(turn.get("from")).lower() == "function_call":
            message = function_call_message(message, number)
        elif message["role"] == "tool":
            message = name_tool_result(message, messages)
        messages.append(message)
    if isinstance(row.get("system"), str) and row["system"] and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": row["system"]})
    return [from_messages(messages, _extras(row, {"conversations", "system", "tools"}),
                          parse_tools(row.get("tools")))]


def messages(row: dict) -> list[RecordDraft]:
    turns = row.get("messages")
    if isinstance(turns, str):
        try:
            turns = json.loads(turns)
        except json.JSONDecodeError:
            raise RowError("'messages' is text but not JSON") from None
    if not isinstance(turns, list) or not turns:
        raise RowError("'messages' must be a non-empty list")
    # --map messages=turns on a benchmark question file gives a list of texts: the user's turns.
    parsed = user_turns(turns) or [chat_message(t, i, "role", "content", None) for i, t in enumerate(turns)]
    # A text category (a benchmark question's) is the record's category; anything else stays verbatim in extra.
    category = row.get("category") if isinstance(row.get("category"), str) and row["category"] else None
    known = {"messages", "tools"} | ({"category"} if category else set())
    draft = from_messages(parsed, _extras(row, known), parse_tools(row.get("tools")))
    draft.category = category
    return [draft]


def prompt_completion(row: dict) -> list[RecordDraft]:
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, list) and isinstance(completion, list):
        turns = [chat_message(t, i, "role", "content", None) for i, t in enumerate(prompt + completion)]
        return [from_messages(turns, _extras(row, {"prompt", "completion", "tools"}),
                              parse_tools(row.get("tools")))]
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
