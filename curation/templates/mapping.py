"""From a source's rows to the rows a template expects: fields renamed or composed, labels turned into ids.

A field maps to a column of the source (`sentence = text`) or to a small Jinja text over the row
(`text = {{ title }} {{ description }}`), rendered in the same sandbox as the templates. A label field
maps each value the source holds (as text: "entailment", "3") to the id the template indexes its
answer choices with. Columns not named pass through under their own names.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from curation.templates.model import Template, TemplateError
from jinja2 import TemplateSyntaxError

from curation.templates.sandbox import ENVIRONMENT, MISSING_NAME, forbidden_name, fresh_allowance

DEFAULT_LABEL_FIELD = "label"


class MappingError(TemplateError):
    """The mapping does not fit the source; the message names the field, the column or the row."""


def label_key(value) -> str:
    """A label value as the mapping lists it: its text, trimmed ("entailment", "1", "True")."""
    return str(value).strip()


def is_expression(spec: str) -> bool:
    return "{{" in spec or "{%" in spec


@dataclass(frozen=True)
class FieldMapping:
    """fields: template field -> source column or Jinja text; labels: field -> {source value: id}."""

    fields: dict[str, str] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"fields": dict(self.fields), "labels": {k: dict(v) for k, v in self.labels.items()}}


class RowMapper:
    """A FieldMapping ready to map rows; checks its columns against the source's once."""

    def __init__(self, mapping: FieldMapping, columns: Iterable[str] | None = None):
        self.mapping = mapping
        self._columns: dict[str, str] = {}
        self._expressions = {}
        for name, spec in mapping.fields.items():
            if not name.isidentifier():
                raise MappingError(f"the field name {name!r} is not a name a template can use")
            if is_expression(spec):
                stand_in = Template(name=f"mapping of {name}", jinja=spec)
                tree = _parse(stand_in, spec)
                self._expressions[name] = ENVIRONMENT.from_string(tree)
            else:
                self._columns[name] = spec.strip()
        known = set(columns) if columns is not None else None
        for name, column in self._columns.items():
            if known is not None and column not in known:
                raise MappingError(f"the field '{name}' maps to the column '{column}', which the source does not "
                                   f"have (its columns: {', '.join(sorted(known)) or 'none'})")
        for name, table in mapping.labels.items():
            for value, number in table.items():
                if isinstance(number, bool) or not isinstance(number, int):
                    raise MappingError(f"the label {value!r} of '{name}' maps to {number!r}, which is not an id")

    def map(self, row: Mapping, row_number: int) -> dict:
        """The row as the templates see it; MappingError naming the row, field and value that do not map."""
        mapped = dict(row)
        for name, column in self._columns.items():
            if column not in row:
                raise MappingError(f"row {row_number} has no column '{column}' (mapped to the field '{name}')")
            mapped[name] = row[column]
        for name, expression in self._expressions.items():
            fresh_allowance()
            try:
                mapped[name] = expression.render({k: v for k, v in row.items() if v is not None})
            except Exception as error:  # the mapping's Jinja is the user's: its fault is told in words
                missing = MISSING_NAME.match(str(error))
                told = f"the column '{missing.group(1)}' is missing from the row" if missing else str(error)
                raise MappingError(f"the mapping of the field '{name}', row {row_number}: {told}") from None
        for name, table in self.mapping.labels.items():
            value = mapped.get(name)
            if value is None:
                raise MappingError(f"row {row_number} has no value for the label field '{name}'")
            key = label_key(value)
            if key not in table:
                raise MappingError(f"row {row_number}: the {name} value {key!r} has no id in the label mapping "
                                   f"(it maps {', '.join(repr(k) for k in table) or 'nothing'})")
            mapped[name] = table[key]
        return mapped


def _parse(template: Template, spec: str):
    try:
        tree = ENVIRONMENT.parse(spec)
    except TemplateSyntaxError as error:
        raise MappingError(f"the {template.name}, line {error.lineno}: {error.message}") from None
    if found := forbidden_name(tree):
        raise MappingError(f"the {template.name}, line {found[1]}: '{found[0]}' is not allowed")
    return tree


def label_counts(rows: Iterable[Mapping], mapping: FieldMapping, label_field: str) -> Counter:
    """How many rows hold each value of the label field before its labels are mapped (value as text);
    rows without the field are not counted."""
    mapper = RowMapper(FieldMapping(fields=mapping.fields))
    values = (mapper.map(row, n).get(label_field) for n, row in enumerate(rows, start=1))
    return Counter(label_key(value) for value in values if value is not None)


def suggest_ids(values: Iterable[str], choices: list[str] | None = None) -> dict[str, int]:
    """A first guess at the ids of label values: numbers keep their value, a value named like an answer
    choice takes its place, the rest are numbered in sorted order. The person checks it side by side."""
    values = sorted(set(values))
    if values and all(v.lstrip("-").isdigit() for v in values):
        return {v: int(v) for v in values}
    lowered = [c.strip().lower() for c in choices or []]
    if values and all(v.lower() in lowered for v in values):
        return {v: lowered.index(v.lower()) for v in values}
    return {v: n for n, v in enumerate(values)}


def parse_fields(pairs: Iterable[str]) -> dict[str, str]:
    """{field: column or Jinja} from "field=column" texts; MappingError naming a malformed one."""
    fields = {}
    for pair in pairs:
        if not pair.strip():
            continue
        name, sep, spec = pair.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise MappingError(f"a field mapping is field=column (or field={{{{ jinja }}}}), not {pair.strip()!r}")
        fields[name.strip()] = spec.strip()
    return fields


def parse_labels(text: str, default_field: str = DEFAULT_LABEL_FIELD) -> tuple[str, dict[str, int]]:
    """(field, {value: id}) from "[field:]id=value,id=value" (e.g. "0=entailment,1=not_entailment")."""
    text = text.strip()
    head, colon, rest = text.partition(":")
    name = default_field
    if colon and head.strip().isidentifier() and "=" not in head:
        name, text = head.strip(), rest
    table: dict[str, int] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        number, sep, value = pair.partition("=")
        if not sep or not number.strip().lstrip("-").isdigit() or not value.strip():
            raise MappingError(f"a label mapping is id=value (e.g. 0=entailment), not {pair.strip()!r}")
        table[value.strip()] = int(number)
    if not table:
        raise MappingError(f"the label mapping of '{name}' lists no value")
    return name, table
