"""Records -> the formats trainers take (Alpaca, messages, prompt/completion), SNI tasks and Parquet."""
from __future__ import annotations

import json

import orjson
from pathlib import Path
from typing import Any, Iterable

from curation.formats import sni
from curation.records import RecordDraft, TaskDraft

EXPORT_FORMATS = ("alpaca", "messages", "prompt-completion", "sni", "parquet")


def user_prompt(record: RecordDraft) -> str:
    """The user turn of a single-exchange record: the instruction, then the input if any."""
    return f"{record.instruction}\n\n{record.input}" if record.input else record.instruction


def to_alpaca(record: RecordDraft) -> dict[str, Any]:
    row = {"instruction": record.instruction, "input": record.input, "output": record.output}
    if record.system_prompt:
        row["system"] = record.system_prompt
    return row


def to_chat(record: RecordDraft) -> list[dict[str, Any]]:
    """The conversation as chat messages (roles system/user/assistant/tool)."""
    if record.messages:
        return [dict(m) for m in record.messages]
    chat = [{"role": "system", "content": record.system_prompt}] if record.system_prompt else []
    chat.append({"role": "user", "content": user_prompt(record)})
    chat.append({"role": "assistant", "content": record.output})
    return chat


def _with_tools(row: dict[str, Any], record: RecordDraft) -> dict[str, Any]:
    """The row with the record's tool schemas as TRL's `tools` column, which the chat template renders."""
    # Left out (not null) when there are none: TRL then passes no tools, and rows without them read as before.
    return {**row, "tools": record.tools} if record.tools else row


def to_messages(record: RecordDraft) -> dict[str, Any]:
    """TRL's conversational language-modeling row (with `tools` when the record offers tools)."""
    return _with_tools({"messages": to_chat(record)}, record)


def to_prompt_completion(record: RecordDraft) -> dict[str, Any]:
    """TRL's conversational prompt-completion row: the loss falls on the completion (the last reply)."""
    chat = to_chat(record)
    last_reply = max((i for i, m in enumerate(chat) if m["role"] == "assistant"), default=len(chat))
    return _with_tools({"prompt": chat[:last_reply], "completion": chat[last_reply:]}, record)


ROW_WRITERS = {"alpaca": to_alpaca, "messages": to_messages, "prompt-completion": to_prompt_completion}


def write_jsonl(records: Iterable[RecordDraft], path: Path, format: str) -> int:
    """Write one JSON line per record; returns the count."""
    convert = ROW_WRITERS[format]
    count = 0
    with open(path, "wb") as out:
        for record in records:
            out.write(orjson.dumps(convert(record)))
            out.write(b"\n")
            count += 1
    return count


PARQUET_BATCH = 10_000  # rows per row group: memory stays flat however large the export


def write_parquet(records: Iterable[RecordDraft], path: Path) -> int:
    """Write `records` as Parquet a batch at a time; returns how many were written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("instruction", pa.string()), ("input", pa.string()), ("output", pa.string()),
        ("outputs", pa.list_(pa.string())), ("system", pa.string()), ("category", pa.string()),
        ("messages", pa.string()), ("tools", pa.string()),
    ])
    written = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict] = []
        for r in records:
            batch.append({
                "instruction": r.instruction, "input": r.input, "output": r.output, "outputs": list(r.outputs),
                "system": r.system_prompt, "category": r.category,
                "messages": json.dumps(r.messages, ensure_ascii=False) if r.messages else None,
                # JSON text, as messages is: each record's schemas keep their own keys in one Arrow column.
                "tools": json.dumps(r.tools, ensure_ascii=False) if r.tools else None,
            })
            if len(batch) == PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                written, batch = written + len(batch), []
        if batch or not written:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            written += len(batch)
    return written


def write_sni_tasks(tasks: list[TaskDraft], out: Path) -> list[Path]:
    """One task JSON per task: `out` is the file for a single task, else a folder."""
    if len(tasks) == 1 and out.suffix == ".json":
        targets = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        targets = [out / f"{task.name}.json" for task in tasks]
    for task, target in zip(tasks, targets):
        target.write_text(json.dumps(sni.task_to_json(task), ensure_ascii=False, indent=4) + "\n", encoding="utf-8")
    return targets
