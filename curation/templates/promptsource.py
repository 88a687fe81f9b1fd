"""PromptSource's templates.yaml read as it is published, without running anything in it.

The file tags its entries `!Template` and `!TemplateMetadata` (PromptSource's Python classes); a safe
YAML loader that knows only those two tags reads them as plain mappings.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from curation.templates.model import Template, TemplateError


class _Loader(yaml.SafeLoader):
    """SafeLoader plus PromptSource's two tags, read as mappings."""


for _tag in ("!Template", "!TemplateMetadata"):
    _Loader.add_constructor(_tag, lambda loader, node: loader.construct_mapping(node, deep=True))


def read_promptsource(text: str, *, origin: str = "templates.yaml") -> list[Template]:
    """The templates of a PromptSource templates.yaml text, in file order; TemplateError naming the line."""
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise TemplateError(f"{origin}{where}: not PromptSource YAML ({error.problem})") from None
    except yaml.YAMLError as error:
        raise TemplateError(f"{origin}: not PromptSource YAML ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("templates"), dict):
        raise TemplateError(f"{origin}: a PromptSource file has a 'templates' mapping, and this one has none")
    collection = "/".join(str(part) for part in (document.get("dataset"), document.get("subset")) if part)
    templates = []
    for key, entry in document["templates"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("jinja"), str):
            raise TemplateError(f"{origin}: template {key} has no jinja text")
        metadata = entry.get("metadata") or {}
        templates.append(Template(
            name=str(entry.get("name") or key), jinja=entry["jinja"],
            answer_choices=entry.get("answer_choices") if isinstance(entry.get("answer_choices"), str) else None,
            source="promptsource", collection=collection, id=str(entry.get("id") or key),
            original_task=metadata.get("original_task"), choices_in_prompt=metadata.get("choices_in_prompt"),
            metrics=tuple(metadata.get("metrics") or ()), languages=tuple(metadata.get("languages") or ()),
            reference=str(entry.get("reference") or ""),
        ))
    names = [t.name for t in templates]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise TemplateError(f"{origin}: two templates are named {twice[0]!r}")
    return templates


def load_promptsource(path: str | Path) -> list[Template]:
    """The templates of a templates.yaml file (see read_promptsource)."""
    path = Path(path)
    return read_promptsource(path.read_text(encoding="utf-8"), origin=path.name)
