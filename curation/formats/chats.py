"""Conversations as records: chat messages checked and normalized, and a conversation turned into a RecordDraft."""
from __future__ import annotations

from typing import Any

from curation.formats.errors import RowError
from curation.formats.tools import normalize_tool_calls
from curation.records import RecordDraft

SHAREGPT_ROLES = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant", "bing": "assistant",
    "system": "system",
    "function_call": "assistant", "observation": "tool", "tool": "tool", "function": "tool",
}
CHAT_ROLES = {"system", "user", "assistant", "tool", "developer"}


def user_turns(value: Any) -> list[dict] | None:
    """A list of texts as that many user turns (MT-Bench's "turns"); None for anything else."""
    if isinstance(value, list) and value and all(isinstance(turn, str) for turn in value):
        return [{"role": "user", "content": turn} for turn in value]
    return None


def chat_message(turn: Any, number: int, role_key: str, content_key: str, roles: dict[str, str] | None) -> dict:
    """One turn as a chat message (role, content, its other keys, tool calls normalized); RowError if it is not one."""
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
    return normalize_tool_calls(message, number)


def first_reply(dialogue: list[dict]) -> str:
    """The assistant's text answer to the first user turn, past any tool calls and their results; else ""."""
    for message in dialogue[1:]:
        if message["role"] == "tool" or (message.get("tool_calls") and not message["content"].strip()):
            continue
        return message["content"] if message["role"] == "assistant" else ""
    return ""


def from_messages(messages: list[dict], extra: dict | None = None,
                  tools: list[dict] | None = None) -> RecordDraft:
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
    reply = first_reply(dialogue)
    return RecordDraft(
        instruction=dialogue[0]["content"],
        outputs=[reply] if reply else [],
        system_prompt=system,
        messages=None if single_exchange else messages,
        tools=tools,
        extra=extra,
    )
