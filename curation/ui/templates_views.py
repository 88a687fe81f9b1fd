"""The Templates tab's values <-> plain values: the mapping from its boxes, the label table, preview HTML."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from curation.services.annotation import InvalidInput
from curation.services.template_tasks import ExampleRow
from curation.templates import (FieldMapping, PreviewRow, Source, Template, TemplateError, compile_template,
                                parse_fields)
from curation.templates.mapping import label_counts, suggest_ids
from curation.ui.safe import esc

LABEL_COLUMNS = ["Source value", "Rows", "Id", "Answer choice"]
EXAMPLE_COLUMNS = ["Kind", "Row", "Explanation", "Output (a negative example's wrong one)"]
SHOWN_COLUMNS = 6  # columns of a source row shown in the preview


def cells(table: Any) -> list[list[str]]:
    """The rows of a DataFrame (or {"data": ...} or a list of lists) as text, empty rows dropped."""
    if table is None:
        return []
    if isinstance(table, pd.DataFrame):
        data = table.astype(object).where(table.notna(), "").values.tolist()
    elif isinstance(table, dict):
        data = table.get("data") or []
    else:
        data = list(table)
    rows = [["" if cell is None else str(cell).strip() for cell in row] for row in data]
    return [row for row in rows if any(rows_cell for rows_cell in row)]


def mapping_from(fields_text: str | None, label_field: str | None, label_table: Any) -> FieldMapping:
    """The mapping the boxes describe: one `field = column` per line, and the label table's value -> id."""
    try:
        fields = parse_fields((fields_text or "").splitlines())
    except TemplateError as error:
        raise InvalidInput(str(error)) from None
    labels: dict[str, int] = {}
    for row in cells(label_table):
        value, number = row[0], (row + ["", "", ""])[2]
        if not number:
            continue  # a value left without an id: a row holding it is refused at apply, by name
        if not number.lstrip("-").isdigit():
            raise InvalidInput(f"the id of the label {value!r} is {number!r}, not a whole number")
        labels[value] = int(number)
    name = (label_field or "").strip()
    return FieldMapping(fields=fields, labels={name: labels} if name and labels else {})


def label_frame(source: Source, mapping: FieldMapping, label_field: str, choices: list[str],
                current: dict[str, int] | None = None) -> pd.DataFrame:
    """Each value of the label field with its row count, its id (kept from `current`, else suggested) and the
    answer choice that id names, side by side."""
    try:
        counted: Counter = label_counts(source.rows, mapping, label_field)
    except TemplateError as error:
        raise InvalidInput(str(error)) from None
    ids = {**suggest_ids(counted, choices), **(current or {})}
    rows = []
    for value in sorted(counted, key=lambda v: (ids.get(v, 10**9), v)):
        number = ids.get(value)
        choice = choices[number] if number is not None and 0 <= number < len(choices) else ""
        rows.append([value, counted[value], "" if number is None else number, choice])
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


def source_frame(source: Source, count: int = 5) -> pd.DataFrame:
    return pd.DataFrame([[n, *[_short(row.get(c)) for c in source.columns]]
                         for n, row in enumerate(source.rows[:count], start=1)], columns=["Row", *source.columns])


def source_line(source: Source) -> str:
    return f"**{source.name}**: {len(source.rows):,} rows · columns: " + ", ".join(f"`{c}`" for c in source.columns)


def _short(value: Any, limit: int = 90) -> str:
    text = " ".join(str("" if value is None else value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview_html(template: Template, rows: list[PreviewRow], fields: frozenset[str] | None = None,
                 labels: dict | None = None) -> str:
    """The template's render on each sample row: the fields it reads (a label with the choice its id names),
    then the prompt and the target, or why there is none."""
    parts = [f'<div class="template-preview"><p>{esc(template.label)} on {len(rows)} sample rows</p>']
    for shown in rows:
        values = shown.mapped or shown.source
        named = [k for k in values if k in fields] if fields else list(values)[:SHOWN_COLUMNS]
        described = []
        for key in named:
            text = f"{esc(key)}: {esc(_short(values[key], 60))}"
            if key in (labels or {}) and isinstance(values[key], int) and 0 <= values[key] < len(shown.choices):
                text += f" ({esc(shown.choices[values[key]])})"
            described.append(text)
        parts.append(f'<div class="preview-row" data-row="{shown.row}"><div class="row-fields">Row {shown.row} · '
                     f"{'; '.join(described)}</div>")
        if shown.problem:
            parts.append(f'<div class="preview-problem">{esc(shown.problem)}</div>')
        else:
            parts.append(f'<pre class="preview-prompt" style="white-space: pre-wrap">{esc(shown.prompt)}</pre>'
                         f'<div class="preview-target">→ <b>{esc(shown.target)}</b></div>')
        parts.append("</div>")
    return "".join(parts) + "</div>"


def problem_html(message: str) -> str:
    return f'<div class="template-preview"><div class="preview-problem">{esc(message)}</div></div>'


def examples_from(table: Any) -> list[ExampleRow]:
    """The SNI examples table as rows: kind, row number, explanation and (for a negative one) its output."""
    examples = []
    for number, row in enumerate(cells(table), start=1):
        kind, row_number, explanation, output = (row + ["", "", "", ""])[:4]
        if not row_number.isdigit():
            raise InvalidInput(f"example {number} names row {row_number!r}: a row is a number from 1")
        examples.append(ExampleRow(kind.lower(), int(row_number), explanation, output))
    return examples


def report_markdown(report) -> str:
    done = report.outcome
    lines = [f"**{report.created:,} records** made in dataset **{esc(report.dataset)}** from {done.rows:,} rows "
             f"({done.renders:,} renders, {sum(done.nothing.values()):,} rendered nothing, "
             f"{report.duplicates_skipped:,} duplicates skipped) in {report.seconds:.2f} s."]
    lines += [f"- {esc(name)}: {count:,}" for name, count in sorted(done.per_template.items())]
    return "\n".join(lines)


def template_choices(templates: list[Template]) -> list[tuple[str, str]]:
    """(label, stored id) of each template, as the pickers list them."""
    return [(f"{t.name} · v{t.version} · {t.source}", str(t.stored_id)) for t in templates]


def editor_template(collection, name, jinja, choices, original, in_prompt, metrics, version=None) -> Template:
    """The template in the editor (saved or not) as the services take it."""
    return Template(name=(name or "").strip(), jinja=jinja or "", answer_choices=(choices or "").strip() or None,
                    collection=(collection or "").strip(), original_task=bool(original),
                    choices_in_prompt=bool(in_prompt),
                    metrics=tuple(m.strip() for m in (metrics or "").split(",") if m.strip()),
                    version=int(version or 1))


def fixed_choices(template: Template) -> list[str]:
    """The editor template's answer choices when they are the same on every row, else []."""
    try:
        return compile_template(template).choices({})
    except TemplateError:
        return []
