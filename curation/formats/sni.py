"""Super-NaturalInstructions task JSON <-> TaskDraft, exactly: an export equals the imported file."""
from __future__ import annotations

from typing import Any

from curation.formats.errors import FormatError, RejectedRow
from curation.records import (SNI_LIST_FIELDS, SNI_TEXT_FIELDS, ExampleDraft, RecordDraft, TaskDraft,
                              null_byte_field, null_byte_reason, output_fields)

EXAMPLE_KEYS = {"Positive Examples": "positive", "Negative Examples": "negative"}
EXAMPLE_FIELDS = ("input", "output", "explanation", "suggestion")
REQUIRED_KEYS = ("Definition", "Positive Examples", "Negative Examples", "Instances")


def is_sni_task(document: Any) -> bool:
    return isinstance(document, dict) and "Definition" in document and "Instances" in document


def _text_value(value: Any) -> tuple[str | None, Any]:
    """SNI text fields are usually a one-string list; returns (text, how to write it back)."""
    if value is None:
        return None, "null"
    if isinstance(value, str):
        return value, "str"
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0], "list"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n\n".join(value), {"raw": value}
    raise ValueError(f"must be text or a list of text, not {type(value).__name__}")


def parse_task(document: dict, name: str, source_file: str) -> TaskDraft:
    """A task file's JSON as a TaskDraft; unknown keys and key order are kept in `extra`."""
    missing = [k for k in REQUIRED_KEYS if k not in document]
    if missing:
        raise FormatError(source_file, f"SNI task lacks {', '.join(repr(k) for k in missing)}")
    task = TaskDraft(name=name, source_file=source_file)
    shapes: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in document.items():
        if key in SNI_TEXT_FIELDS:
            try:
                text, shapes[key] = _text_value(value)
            except ValueError as exc:
                raise FormatError(source_file, f"'{key}' {exc}") from None
            if null_byte_field({key: text}):
                raise FormatError(source_file, null_byte_reason(f"'{key}'"))
            setattr(task, SNI_TEXT_FIELDS[key], text if text is not None or key != "Definition" else "")
        elif key in SNI_LIST_FIELDS:
            task.lists[SNI_LIST_FIELDS[key]] = value
        elif key in EXAMPLE_KEYS:
            if not isinstance(value, list):
                raise FormatError(source_file, f"'{key}' must be a list")
            task.examples += [_parse_example(e, EXAMPLE_KEYS[key], key, i, source_file) for i, e in enumerate(value)]
        elif key == "Instances":
            if not isinstance(value, list):
                raise FormatError(source_file, "'Instances' must be a list")
            task.instances = [_parse_instance(inst, i, task.definition, source_file) for i, inst in enumerate(value)]
        else:
            unknown[key] = value
    for record in task.instances:  # the definition may come after the instances in the file
        record.instruction = task.definition
    task.extra = {"key_order": list(document), "shapes": shapes, "unknown": unknown}
    return task


def _parse_example(example: Any, kind: str, key: str, index: int, source_file: str) -> ExampleDraft:
    if not isinstance(example, dict):
        raise FormatError(source_file, f"'{key}' item {index} is not an object")
    values = {f: example.get(f) for f in EXAMPLE_FIELDS}
    for field_name in ("input", "output"):
        if values[field_name] is not None and not isinstance(values[field_name], str):
            raise FormatError(source_file, f"'{key}' item {index}: '{field_name}' must be text")
    if unstorable := null_byte_field(values):
        raise FormatError(source_file, f"'{key}' item {index}: {null_byte_reason(unstorable)}")
    return ExampleDraft(
        kind=kind,
        input=values["input"] or "",
        output=values["output"] or "",
        explanation=values["explanation"],
        suggestion=values["suggestion"],
        extra={
            "key_order": list(example),
            "unknown": {k: v for k, v in example.items() if k not in EXAMPLE_FIELDS},
            "nulls": [f for f in ("input", "output") if f in example and example[f] is None],
        },
    )


def _parse_instance(instance: Any, index: int, definition: str, source_file: str) -> RecordDraft:
    if not isinstance(instance, dict):
        raise FormatError(source_file, f"instance {index} is not an object")
    output = instance.get("output")
    outputs = output if isinstance(output, list) else ([] if output is None else [output])
    if not all(isinstance(o, str) for o in outputs) or not isinstance(instance.get("input", ""), str):
        raise FormatError(source_file, f"instance {index}: input and output must be text")
    return RecordDraft(
        instruction=definition,
        input=instance.get("input", ""),
        outputs=list(outputs),
        external_id=str(instance["id"]) if "id" in instance else None,
        source_file=source_file,
        source_line=index,
        extra={
            "key_order": list(instance),
            "output_shape": "list" if isinstance(output, list) else ("str" if output is not None else "missing"),
            "unknown": {k: v for k, v in instance.items() if k not in ("id", "input", "output")},
        },
    )


def take_unstorable_instances(task: TaskDraft) -> list[RejectedRow]:
    """Take out of the task the instances whose text cannot be stored (a null byte); returns them as rejected.

    Unlike a bad definition or example, which refuses the whole file, a bad instance costs only itself.
    """
    kept, rejected = [], []
    for record in task.instances:
        unstorable = null_byte_field({"input": record.input, **output_fields(record.outputs), "id": record.external_id})
        if unstorable:
            rejected.append(RejectedRow(f"instance {record.source_line}", null_byte_reason(unstorable)))
        else:
            kept.append(record)
    task.instances = kept
    return rejected


def _write_text(text: str | None, shape: Any) -> Any:
    if isinstance(shape, dict) and "raw" in shape:
        return shape["raw"] if "\n\n".join(shape["raw"]) == text else [text]
    if shape == "str":
        return text
    if shape == "null" and text is None:
        return None
    return [text] if text is not None else None


def _ordered(values: dict[str, Any], key_order: list[str]) -> dict[str, Any]:
    """Values in the file's key order, then any new keys."""
    ordered = {k: values[k] for k in key_order if k in values}
    ordered.update({k: v for k, v in values.items() if k not in ordered})
    return ordered


def task_to_json(task: TaskDraft) -> dict:
    """The SNI task JSON for a task, in the key order it was imported with."""
    extra = task.extra or {}
    shapes = extra.get("shapes", {})
    values: dict[str, Any] = {}
    for key, column in SNI_TEXT_FIELDS.items():
        text = getattr(task, column)
        if key in shapes or (text and key != "Definition") or key == "Definition":
            values[key] = _write_text(text, shapes.get(key, "list"))
    for key, column in SNI_LIST_FIELDS.items():
        if column in task.lists:
            values[key] = task.lists[column]
    for key, kind in EXAMPLE_KEYS.items():
        values[key] = [_example_to_json(e) for e in task.examples if e.kind == kind]
    values["Instances"] = [_instance_to_json(r) for r in task.instances]
    values.update(extra.get("unknown", {}))
    return _ordered(values, extra.get("key_order", []))


def _example_to_json(example: ExampleDraft) -> dict:
    extra = example.extra or {}
    order = extra.get("key_order", ["input", "output", "explanation"])
    values: dict[str, Any] = {"input": example.input, "output": example.output}
    for name in extra.get("nulls", []):
        values[name] = None
    if "explanation" in order or example.explanation is not None:
        values["explanation"] = example.explanation
    if "suggestion" in order or example.suggestion is not None:
        values["suggestion"] = example.suggestion
    values.update(extra.get("unknown", {}))
    return _ordered(values, order)


def _instance_to_json(record: RecordDraft) -> dict:
    extra = record.extra or {}
    shape = extra.get("output_shape", "list")
    values: dict[str, Any] = {}
    if record.external_id is not None:
        values["id"] = record.external_id
    values["input"] = record.input
    if shape == "str" and len(record.outputs) == 1:
        values["output"] = record.outputs[0]
    elif shape != "missing" or record.outputs:
        values["output"] = list(record.outputs)
    values.update(extra.get("unknown", {}))
    return _ordered(values, extra.get("key_order", ["id", "input", "output"]))
