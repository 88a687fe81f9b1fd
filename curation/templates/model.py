"""A prompt template as PromptSource writes one: Jinja with `|||` between the prompt and the target.

`answer_choices` is Jinja too (`Yes ||| No`, or `{{choice1}} ||| {{choice2}}`), rendered per row into the
list the template indexes (`answer_choices[label]`). The metadata is PromptSource's: whether the template
asks the dataset's original task, whether the prompt lists the choices, and the metrics it is scored with.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

SOURCES = ("promptsource", "flan", "user")
SEPARATOR = "|||"


class TemplateError(ValueError):
    """A template cannot be read or rendered; the message names the template and the line, field or row."""


@dataclass(frozen=True)
class Template:
    """One template and what is known about it; `version` counts its saved changes (1 for a fresh import)."""

    name: str
    jinja: str
    answer_choices: str | None = None
    source: str = "user"  # one of SOURCES
    collection: str = ""  # the dataset it was written for, e.g. super_glue/rte
    id: str = ""  # PromptSource's uuid, flan:<task>:<n>, or user:<stored id>
    original_task: bool | None = None
    choices_in_prompt: bool | None = None
    metrics: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    reference: str = ""
    version: int = 1
    stored_id: int | None = None  # its row in the store, once saved

    @property
    def label(self) -> str:
        """How a person names it: “name” (collection)."""
        return f"“{self.name}”" + (f" ({self.collection})" if self.collection else "")

    def provenance(self) -> dict:
        """What a record made by this template keeps of it (enough to find this exact version again)."""
        entry = {"name": self.name, "id": self.id, "version": self.version, "source": self.source,
                 "collection": self.collection}
        if self.stored_id is not None:
            entry["stored_id"] = self.stored_id
        return entry

    def with_version(self, version: int, stored_id: int | None = None) -> "Template":
        return replace(self, version=version, stored_id=stored_id if stored_id is not None else self.stored_id)


def parts(jinja: str) -> tuple[str, str]:
    """The prompt part and the target part of a template's source (the target is "" when there is no |||)."""
    prompt, _, target = jinja.partition(SEPARATOR)
    return prompt, target
