"""Tool calling kept whole: tool schemas, assistant tool calls and tool results in TRL's conversational shape.

TRL (and the chat templates of transformers) take a call as
`{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name", "arguments"}}]}`,
a result as `{"role": "tool", "name": ..., "content": ...}`, and the schemas as a `tools` column of
`{"type": "function", "function": {"name", "description", "parameters"}}`. ShareGPT files (LLaMA-Factory's
glaive_toolcall shape) write the call as a `function_call` turn holding JSON text, the result as an
`observation` turn, and the bare function schemas as JSON text in a `tools` column; both come in here.
"""
from __future__ import annotations

import json
from typing import Any

from curation.formats.errors import RowError


def _json_or_value(value: Any, reason: str) -> Any:
    """The value, parsed first when it is JSON text; RowError(reason) when the text is not JSON."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise RowError(reason) from None


def parse_tools(value: Any) -> list[dict[str, Any]] | None:
    """A row's `tools` column as TRL's list of function schemas; None when it offers no tools."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    schemas = _json_or_value(value, "'tools' is text but not JSON")
    if isinstance(schemas, dict):  # one schema written on its own
        schemas = [schemas]
    if not isinstance(schemas, list) or not all(isinstance(s, dict) for s in schemas):
        raise RowError("'tools' must be a list of function schemas")
    tools = []
    for number, schema in enumerate(schemas):
        # A bare schema ({"name", "description", "parameters"}, or OpenAI's flat one with "type": "function")
        # is wrapped the way transformers writes one.
        bare = {k: v for k, v in schema.items() if (k, v) != ("type", "function")}
        wrapped = schema if isinstance(schema.get("function"), dict) else {"type": "function", "function": bare}
        name = wrapped["function"].get("name")
        if not isinstance(name, str) or not name.strip():
            raise RowError(f"tool {number} in 'tools' names no function")
        tools.append({"type": wrapped.get("type", "function"), **wrapped})
    return tools or None


def _call(entry: Any, number: int) -> dict[str, Any]:
    """One tool call as `{"type": "function", "function": {"name", "arguments": {...}}}`; RowError if it is not one."""
    if not isinstance(entry, dict):
        raise RowError(f"turn {number} has a tool call that is not an object")
    # Both shapes occur: OpenAI's {"id", "type", "function": {...}} and the bare {"name", "arguments"} of ShareGPT.
    if isinstance(entry.get("function"), dict):
        function, outer = entry["function"], {k: v for k, v in entry.items() if k not in ("type", "function")}
        kind = entry.get("type", "function")
    else:
        function, outer, kind = entry, {}, "function"
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RowError(f"turn {number} has a tool call that names no function")
    # Llama-style calls say "parameters"; OpenAI writes arguments as JSON text. Chat templates render them
    # with tojson, so they are kept as an object.
    key = "parameters" if "arguments" not in function and "parameters" in function else "arguments"
    not_json = f"turn {number} has a tool call whose arguments are text but not JSON"
    arguments = _json_or_value(function.get(key), not_json)
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise RowError(f"turn {number} has a tool call whose arguments are not a JSON object")
    rest = {k: v for k, v in function.items() if k not in ("name", key)}
    return {**outer, "type": kind, "function": {"name": name, "arguments": arguments, **rest}}


def normalize_tool_calls(message: dict[str, Any], number: int) -> dict[str, Any]:
    """A chat message with its `tool_calls` in TRL's shape (an empty or null `tool_calls` is dropped)."""
    calls = message.get("tool_calls")
    if "tool_calls" not in message:
        return message
    rest = {k: v for k, v in message.items() if k != "tool_calls"}
    if calls is None or calls == []:
        return rest
    if message["role"] != "assistant":
        raise RowError(f"turn {number} has tool calls but is not an assistant turn")
    if not isinstance(calls, list):
        raise RowError(f"turn {number} 'tool_calls' must be a list")
    return {**rest, "tool_calls": [_call(call, number) for call in calls]}


def function_call_message(message: dict[str, Any], number: int) -> dict[str, Any]:
    """A ShareGPT function_call turn (JSON text naming the function) as an assistant message with `tool_calls`."""
    text = message["content"]
    try:
        calls = json.loads(text)
    except json.JSONDecodeError:
        raise RowError(f"turn {number} is a function call but not JSON: {text[:60]!r}") from None
    # LLaMA-Factory writes parallel calls as a JSON list of calls.
    calls = calls if isinstance(calls, list) else [calls]
    if not calls:
        raise RowError(f"turn {number} is a function call that names no function")
    rest = {k: v for k, v in message.items() if k not in ("role", "content")}
    return {"role": "assistant", "content": "", **rest, "tool_calls": [_call(call, number) for call in calls]}


def name_tool_result(message: dict[str, Any], earlier: list[dict[str, Any]]) -> dict[str, Any]:
    """A tool message given the name of the function it answers, when the call before it made exactly one."""
    if message.get("name") or not earlier or not earlier[-1].get("tool_calls"):
        return message
    calls = earlier[-1]["tool_calls"]
    if len(calls) != 1:
        return message
    return {"role": message["role"], "name": calls[0]["function"]["name"],
            **{k: v for k, v in message.items() if k != "role"}}
