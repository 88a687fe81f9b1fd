"""A record exactly as training sees it: the Alpaca prompt, or a tokenizer's chat template, and its token count."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from curation.formats.writers import to_chat
from curation.records import RecordDraft

ALPACA_PREAMBLE_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides "
                              "further context. Write a response that appropriately completes the request.")
ALPACA_PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."


class PreviewError(Exception):
    """The preview cannot be made (e.g. the tokenizer is not available offline); the message says why."""


@dataclass(frozen=True)
class Preview:
    text: str
    tokens: int | None  # None when no tokenizer was chosen


def alpaca_prompt(record: RecordDraft) -> str:
    """The Stanford Alpaca training text: preamble (or the system prompt), instruction, input, response."""
    preamble = record.system_prompt or (ALPACA_PREAMBLE_WITH_INPUT if record.input else ALPACA_PREAMBLE)
    parts = [preamble, f"### Instruction:\n{record.instruction}"]
    if record.input:
        parts.append(f"### Input:\n{record.input}")
    parts.append(f"### Response:\n{record.output}")
    return "\n\n".join(parts)


@lru_cache(maxsize=4)
def load_tokenizer(name: str) -> Any:
    """A tokenizer from a local folder or the Hub cache (never the network at preview time)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError and more for a missing tokenizer
        raise PreviewError(f"cannot load the tokenizer {name!r} offline: {str(exc).splitlines()[0][:160]}") from None


def chat_text(record: RecordDraft, tokenizer: Any) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise PreviewError("this tokenizer has no chat template; choose the Alpaca template")
    try:
        return tokenizer.apply_chat_template(to_chat(record), tools=getattr(record, "tools", None), tokenize=False)
    except Exception as exc:  # a template may reject a conversation (e.g. no system role)
        raise PreviewError(f"the chat template rejects this record: {str(exc).splitlines()[0][:160]}") from None


def count_tokens(text: str, tokenizer: Any) -> int:
    # The template already wrote the special tokens, so none are added here.
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def preview(record: RecordDraft, *, template: str = "alpaca", tokenizer_name: str | None = None) -> Preview:
    """The training text of a record with `template` ("alpaca" or "chat"), and its token count."""
    tokenizer = load_tokenizer(tokenizer_name) if tokenizer_name else None
    if template == "chat":
        if tokenizer is None:
            raise PreviewError("choose a tokenizer to see its chat template")
        text = chat_text(record, tokenizer)
    else:
        text = alpaca_prompt(record)
    return Preview(text, count_tokens(text, tokenizer) if tokenizer is not None else None)
