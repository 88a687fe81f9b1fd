"""The task editor's tables <-> the task form: examples and instances as DataFrames, pasted rows parsed."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from curation.services.annotation import InvalidInput
from curation.services.tasks import ExampleForm, InstanceForm

EXAMPLE_COLUMNS = ["Kind", "Input", "Output", "Explanation"]
INSTANCE_COLUMNS = ["ID", "Input", "Output", "Other outputs"]
OUTPUT_SEPARATOR = " ‖ "


def _rows(table: Any) -> list[list[str]]:
    """Rows of a DataFrame (or {"headers","data"} dict, or list of lists) as text, empty rows dropped."""
    if table is None:
        return []
    if isinstance(table, pd.DataFrame):
        data = table.astype(object).where(table.notna(), "").values.tolist()
    elif isinstance(table, dict):
        data = table.get("data") or []
    else:
        data = list(table)
    rows = [["" if cell is None else str(cell) for cell in row] for row in data]
    return [row for row in rows if any(cell.strip() for cell in row)]


def examples_frame(examples: list[ExampleForm]) -> pd.DataFrame:
    return pd.DataFrame([[e.kind, e.input, e.output, e.explanation] for e in examples], columns=EXAMPLE_COLUMNS)


def examples_from(table: Any) -> list[ExampleForm]:
    examples = []
    for number, row in enumerate(_rows(table), start=1):
        row = (row + [""] * 4)[:4]
        kind = row[0].strip().lower()
        if kind not in ("positive", "negative"):
            raise InvalidInput(f"example {number} is {row[0]!r}: its kind is positive or negative")
        examples.append(ExampleForm(kind, row[1], row[2], row[3]))
    return examples


def instances_frame(instances: list[InstanceForm]) -> pd.DataFrame:
    return pd.DataFrame([[i.id or "", i.input, i.outputs[0] if i.outputs else "", OUTPUT_SEPARATOR.join(i.outputs[1:])]
                         for i in instances], columns=INSTANCE_COLUMNS)


def instances_from(table: Any) -> list[InstanceForm]:
    instances = []
    for row in _rows(table):
        row = (row + [""] * 4)[:4]
        others = [o.strip() for o in row[3].split(OUTPUT_SEPARATOR.strip())] if row[3].strip() else []
        instances.append(InstanceForm(row[1], [o for o in [row[2], *others] if o.strip()], row[0].strip() or None))
    return instances


def parse_pasted(text: str) -> list[InstanceForm]:
    """Instances from pasted lines: `input<TAB>output` (a spreadsheet copy) or JSON lines with input and output."""
    instances = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise InvalidInput(f"pasted line {number} starts like JSON but is not valid JSON") from None
            output = row.get("output", row.get("outputs", ""))
            outputs = output if isinstance(output, list) else [str(output)]
            instances.append(InstanceForm(str(row.get("input", "")), [str(o) for o in outputs if str(o).strip()],
                                          str(row["id"]) if "id" in row else None))
            continue
        if "\t" not in line:
            raise InvalidInput(f"pasted line {number} has no tab between input and output")
        source, output = line.split("\t", 1)
        outputs = [o for o in output.split("\t") if o.strip()]
        instances.append(InstanceForm(source, outputs))
    if not instances:
        raise InvalidInput("nothing to add: paste lines of input<TAB>output")
    return instances


def move(rows: list, index: int, step: int) -> tuple[list, int]:
    """The rows with row `index` moved by `step` (clamped), and its new index."""
    target = max(0, min(len(rows) - 1, index + step))
    rows = list(rows)
    rows.insert(target, rows.pop(index))
    return rows, target
