"""Who wrote each part of a record: a person, an import, a template, or a model (and which, with what, when).

A record keeps `origin` (how it came in) and, per field, a provenance entry:
    {"by": "person", "name": "ann"}                      typed in the editor
    {"by": "import"} / {"by": "template", ...}          came in with the record
    {"by": "model", "backend": "openai", "base_url": ..., "model": ..., "parameters": {...},
     "prompt": "draft_output", "prompt_version": 1, "cache_key": ..., "at": ..., "text": the model's words,
     "state": "unreviewed" | "edited" | "approved", "edited_by"/"approved_by": ...}
A machine-written field stays "unreviewed" until a person edits it (then "edited", with the model's words kept)
or approves the record (then "approved"). `machine_draft_state` sums a record up for filters, stats and the card.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

ORIGINS = ("human", "imported", "template", "generated")
UNREVIEWED, EDITED, APPROVED = "unreviewed", "edited", "approved"
MACHINE_STATES = (UNREVIEWED, EDITED, APPROVED)


@dataclass(frozen=True)
class MachineText:
    """Text a model wrote for one field, and everything needed to say how (and to ask again from the cache)."""

    text: str
    backend: str
    base_url: str
    model: str
    parameters: dict = field(default_factory=dict)
    prompt: str = ""
    prompt_version: int = 1
    cache_key: str = ""
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def entry(self) -> dict[str, Any]:
        """The provenance entry of a field that still holds exactly this text."""
        return {"by": "model", "backend": self.backend, "base_url": self.base_url, "model": self.model,
                "parameters": dict(self.parameters), "prompt": self.prompt, "prompt_version": self.prompt_version,
                "cache_key": self.cache_key, "at": self.at, "text": self.text, "state": UNREVIEWED}


def person(name: str | None) -> dict[str, Any]:
    return {"by": "person", "name": name}


def came_in_with(origin: str) -> dict[str, Any]:
    """The entry of a field that arrived with an imported or templated record."""
    return {"by": "import"} if origin == "imported" else {"by": origin}


def _edited(entry: dict, by: str | None) -> dict:
    return {**entry, "state": EDITED, "edited_by": by}


def field_entry(before_text: str | None, before: dict | None, now_text: str, drafted: MachineText | None,
                by: str | None, origin: str, author: str | None = None) -> dict | None:
    """The provenance of one field after a save.

    `drafted` is what a model wrote into the field in this editing session; the stored entry carries over while
    the text is unchanged; any other change is a person's. A model's text a person changed stays credited to the
    model, marked edited.
    """
    if not now_text:
        return None
    if drafted is not None:
        return drafted.entry() if now_text.strip() == drafted.text.strip() else _edited(drafted.entry(), by)
    if before is not None and now_text == before_text:
        return before
    if before is None and now_text == before_text:
        # Stored before provenance was kept: the text is its author's (or came in with the record), not the saver's.
        return came_in_with(origin) if origin != "human" else person(author)
    if before is not None and before.get("by") == "model":
        return before if before.get("state") == EDITED and before.get("edited_by") == by else _edited(before, by)
    return person(by)


def after_save(record_provenance: dict | None, *, origin: str, before: dict[str, Any], now: dict[str, Any],
               drafted: dict[str, MachineText], by: str | None, author: str | None = None) -> dict:
    """The record's provenance once `now` ({"instruction", "outputs"}) replaces `before` (the same, as stored).

    `drafted` maps a field ("instruction", "output", "output 2", ...) to what a model wrote into it.
    """
    old = dict(record_provenance or {})
    old_outputs = list(old.get("outputs") or [])
    outputs = []
    for n, text in enumerate(now.get("outputs") or []):
        name = "output" if n == 0 else f"output {n + 1}"
        before_text = (before.get("outputs") or [None] * (n + 1))[n] if n < len(before.get("outputs") or []) else None
        outputs.append(field_entry(before_text, old_outputs[n] if n < len(old_outputs) else None, text,
                                   drafted.get(name), by, origin, author))
    result = {key: value for key, value in old.items() if key not in ("outputs", "instruction")}
    result["outputs"] = outputs
    instruction = field_entry(before.get("instruction"), old.get("instruction"), now.get("instruction") or "",
                              drafted.get("instruction"), by, origin, author)
    if instruction is not None and instruction.get("by") == "model":
        result["instruction"] = instruction  # only a model's instruction is worth a note: the rest is the origin's
    return result


def approved(record_provenance: dict | None, by: str | None) -> dict | None:
    """The provenance after a curator approves the record: unreviewed machine text becomes approved."""
    if not record_provenance:
        return record_provenance
    def approve(entry):
        if entry and entry.get("by") == "model" and entry.get("state") == UNREVIEWED:
            return {**entry, "state": APPROVED, "approved_by": by}
        return entry
    result = dict(record_provenance)
    result["outputs"] = [approve(e) for e in record_provenance.get("outputs") or []]
    if "instruction" in result:
        result["instruction"] = approve(result["instruction"])
    return result


def machine_entries(record_provenance: dict | None) -> list[dict]:
    entries = [*((record_provenance or {}).get("outputs") or []), (record_provenance or {}).get("instruction")]
    return [e for e in entries if e and e.get("by") == "model"]


def machine_draft_state(record_provenance: dict | None) -> str | None:
    """unreviewed if any machine-written field is, else edited, else approved; None with no machine text."""
    states = {e.get("state") for e in machine_entries(record_provenance)}
    return next((state for state in (UNREVIEWED, EDITED, APPROVED) if state in states), None)


def models_used(record_provenance: dict | None) -> list[str]:
    """The models that wrote any of the record's text, as backend:model."""
    return sorted({f"{e.get('backend')}:{e.get('model')}" for e in machine_entries(record_provenance)})


def describe(record_provenance: dict | None, origin: str, created_by: str | None) -> list[str]:
    """Lines a person reads in the editor: where the record came from and who wrote each field."""
    lines = [{"human": f"Written in the studio by {created_by or 'someone'}",
              "imported": "Imported", "template": "Made by a template", "generated": "Generated by a model"}
             .get(origin, origin)]
    source = (record_provenance or {}).get("source")
    if source:
        lines[0] += " from " + ", ".join(f"{k} {v}" for k, v in source.items() if v)
    template = (record_provenance or {}).get("template")
    if template:
        where = " ".join(str(part) for part in (template.get("source"), template.get("collection")) if part)
        lines.append(f"Template: “{template.get('name')}” v{template.get('version')}" + (f" · {where}" if where else ""))
    fields = [("Instruction", (record_provenance or {}).get("instruction"))]
    fields += [("Output" if n == 0 else f"Output {n + 1}", e)
               for n, e in enumerate((record_provenance or {}).get("outputs") or [])]
    for label, entry in fields:
        if not entry or entry.get("by") != "model":
            if entry and entry.get("by") == "person" and label.startswith("Output"):
                lines.append(f"{label}: written by {entry.get('name') or 'a person'}")
            continue
        state = {UNREVIEWED: "machine-drafted, not yet reviewed",
                 EDITED: f"machine-drafted, then edited by {entry.get('edited_by') or 'a person'}",
                 APPROVED: f"machine-drafted, approved by {entry.get('approved_by') or 'a curator'}"}[entry["state"]]
        lines.append(f"{label}: {state} · {entry.get('backend')} · {entry.get('model')} · "
                     f"{entry.get('prompt')} v{entry.get('prompt_version')} · {entry.get('at')}")
    return lines
