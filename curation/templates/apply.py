"""Rows through templates: one template per row (in turn, or at random with a seed) or every template per row.

FLAN applies about ten templates per dataset, some inverted; `how="all"` does that. A row a template
renders nothing for (its `{% if %}` does not hold, or the row is unlabelled) is counted, not an error.
The first fault (a missing field, a label the mapping lacks, an answer choice out of range) stops the
whole run with its message, so a caller writes nothing.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

from curation.templates.mapping import FieldMapping, RowMapper
from curation.templates.model import Template, TemplateError
from curation.templates.sandbox import CompiledTemplate, compile_template

HOW = {
    "round_robin": "each row through one template, taken in turn",
    "random": "each row through one template, chosen at random (seeded)",
    "all": "each row through every template (FLAN's way)",
}
PREVIEW_ROWS = 5


@dataclass(frozen=True)
class Made:
    """One render: the prompt and target a template made from row `row` (counted from 1)."""

    prompt: str
    target: str
    template: Template
    row: int


@dataclass
class Outcome:
    rows: int = 0  # rows read (after the cap)
    renders: int = 0
    made: int = 0
    nothing: Counter = field(default_factory=Counter)  # template name -> rows it rendered nothing for
    per_template: Counter = field(default_factory=Counter)  # template name -> renders kept


def compile_all(templates: Sequence[Template]) -> list[CompiledTemplate]:
    """Every template compiled; TemplateError for the first that cannot be, and for an empty choice."""
    if not templates:
        raise TemplateError("choose at least one template")
    return [compile_template(t) for t in templates]


def render_rows(rows: Sequence[Mapping], templates: Sequence[Template], mapping: FieldMapping, *,
                how: str = "round_robin", seed: int = 0, cap: int | None = None,
                columns: Sequence[str] | None = None, outcome: Outcome | None = None) -> Iterator[Made]:
    """What the templates make of the rows, row by row; `outcome` (if given) counts as it goes.

    round_robin: row n goes through template (n - 1) mod k; random: through one drawn from Random(seed);
    all: through each. `cap` keeps the first `cap` rows of the source.
    """
    if how not in HOW:
        raise TemplateError(f"apply is one of {', '.join(HOW)}, not {how!r}")
    if cap is not None and cap < 1:
        raise TemplateError("the cap is a number of rows, at least 1")
    compiled = compile_all(templates)
    mapper = RowMapper(mapping, columns)
    outcome = outcome if outcome is not None else Outcome()
    draw = random.Random(seed)
    for index, row in enumerate(rows[:cap] if cap else rows):
        number = index + 1
        mapped = mapper.map(row, number)
        outcome.rows += 1
        if how == "all":
            chosen = compiled
        elif how == "round_robin":
            chosen = [compiled[index % len(compiled)]]
        else:
            chosen = [draw.choice(compiled)]
        for template in chosen:
            rendered = template.render(mapped, number)
            outcome.renders += 1
            if rendered is None:
                outcome.nothing[template.template.name] += 1
                continue
            outcome.made += 1
            outcome.per_template[template.template.name] += 1
            yield Made(rendered[0], rendered[1], template.template, number)


@dataclass(frozen=True)
class PreviewRow:
    row: int
    source: dict  # the row as the source holds it
    mapped: dict | None  # as the template sees it (None when the mapping failed)
    prompt: str | None = None
    target: str | None = None
    choices: tuple[str, ...] = ()
    problem: str | None = None  # why it rendered nothing, or what failed, in words


def sample_rows(count_rows: int, count: int = PREVIEW_ROWS) -> list[int]:
    """Row numbers (from 1) spread over the source: the first, the last and evenly between."""
    if count_rows <= count:
        return list(range(1, count_rows + 1))
    return sorted({1 + round(i * (count_rows - 1) / (count - 1)) for i in range(count)})


def preview(rows: Sequence[Mapping], template: Template, mapping: FieldMapping, *,
            columns: Sequence[str] | None = None, count: int = PREVIEW_ROWS) -> list[PreviewRow]:
    """The template on `count` sample rows, each with its render or the fault it hit (nothing stops here).

    A template that does not compile raises TemplateError: there is no row to show it on.
    """
    compiled = compile_template(template)
    mapper = RowMapper(mapping, columns)
    shown = []
    for number in sample_rows(len(rows), count):
        source = dict(rows[number - 1])
        try:
            mapped = mapper.map(source, number)
        except TemplateError as error:
            shown.append(PreviewRow(number, source, None, problem=str(error)))
            continue
        try:
            choices = tuple(compiled.choices(mapped, number))
            rendered = compiled.render(mapped, number)
        except TemplateError as error:
            shown.append(PreviewRow(number, source, mapped, problem=str(error)))
            continue
        if rendered is None:
            shown.append(PreviewRow(number, source, mapped, choices=choices,
                                    problem="the template renders nothing for this row (an {% if %} that does not "
                                            "hold, or no label): no record is made from it"))
        else:
            shown.append(PreviewRow(number, source, mapped, rendered[0], rendered[1], choices))
    return shown
