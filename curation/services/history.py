"""An item's history as people read it: each revision with who, when, why, and what changed."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from db import repo

# Snapshot keys shown to people, in this order, with their labels; the rest is bookkeeping.
RECORD_FIELDS = {"status": "Status", "instruction": "Instruction", "input": "Input", "outputs": "Output",
                 "system_prompt": "System prompt", "category": "Category", "review_note": "Review note",
                 "provenance": "Written by"}
TASK_FIELDS = {"status": "Status", "name": "Name", "definition": "Definition",
               "emphasis_and_caution": "Emphasis & caution", "things_to_avoid": "Things to avoid",
               "categories": "Categories", "domains": "Domains", "examples": "Examples", "instances": "Instances",
               "instance_count": "Instance count"}
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass
class FieldChange:
    label: str
    old: str
    new: str
    # The word-level diff: ("equal" | "delete" | "insert", text) runs, old then new order.
    runs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RevisionEntry:
    version: int
    changed_by: str
    changed_at: datetime
    reason: str
    changes: list[FieldChange]


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """How `old` became `new`, word by word: equal, delete and insert runs."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append(("delete", "".join(a[i1:i2])))
        if j2 > j1:
            runs.append(("insert", "".join(b[j1:j2])))
    return runs


def _written_by(provenance: dict) -> str:
    """Who wrote each field, one line per field a model had a hand in (people's fields go without saying)."""
    from curation.provenance import describe

    return "\n".join(line for line in describe(provenance, "human", None)[1:] if "machine-drafted" in line)


def _as_text(key: str, value: Any) -> str:
    """A snapshot value as a person reads it."""
    if value is None:
        return ""
    if key == "provenance":
        return _written_by(value)
    if key == "outputs":
        return "\n— or —\n".join(value) if len(value) > 1 else (value[0] if value else "")
    if key == "examples":
        return "\n".join(f"{n}. {e.get('kind', '')}: {e.get('input', '')} → {e.get('output', '')}"
                         f" ({e.get('explanation') or 'no explanation'})" for n, e in enumerate(value, 1))
    if key == "instances":
        return "\n".join(f"{i.get('id') or n}: {i.get('input', '')} → {' | '.join(i.get('outputs') or [])}"
                         for n, i in enumerate(value, 1))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _changes(fields: dict[str, str], old: dict | None, new: dict) -> list[FieldChange]:
    changes = []
    for key, label in fields.items():
        if old is not None and key not in old:
            continue  # older snapshots (e.g. an import) did not record this field
        if key == "instance_count" and "instances" in new:
            continue  # the instances themselves are listed
        before = _as_text(key, old.get(key)) if old is not None else ""
        after = _as_text(key, new.get(key))
        if old is None and not after:
            continue
        if old is None and key in ("examples", "instances"):
            # At creation a list is summed up; its items appear in later diffs as they change.
            count = len(new.get(key) or [])
            changes.append(FieldChange(label, "", f"{count} {key if count != 1 else key[:-1]}",
                                       [("insert", f"{count} {key if count != 1 else key[:-1]}")]))
            continue
        if before != after:
            if key in ("examples", "instances"):
                changes.append(FieldChange(label, before, after, _line_diff(before, after)))
            else:
                changes.append(FieldChange(label, before, after, word_diff(before, after)))
    return changes


def _line_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Whole-line runs for lists (examples, instances): only the lines that changed, with a line of context."""
    a, b = old.splitlines(), new.splitlines()
    runs: list[tuple[str, str]] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(0):
        for op, i1, i2, j1, j2 in group:
            if op == "equal":
                continue
            runs += [("delete", line + "\n") for line in a[i1:i2]]
            runs += [("insert", line + "\n") for line in b[j1:j2]]
    return runs


def item_history(session: Session, kind: str, item_id: int) -> list[RevisionEntry]:
    """Every revision of a record or task, newest first, each with its changes against the one before."""
    if kind not in ("record", "task"):
        raise ValueError(f"history is kept for records and tasks, not {kind!r}")
    fields = TASK_FIELDS if kind == "task" else RECORD_FIELDS
    entries: list[RevisionEntry] = []
    previous: dict | None = None
    for revision in repo.history(session, kind, int(item_id)):
        entries.append(RevisionEntry(revision.version, revision.changed_by or "import",
                                     revision.changed_at, revision.reason or "",
                                     _changes(fields, previous, revision.snapshot)))
        previous = revision.snapshot
    if not entries:
        raise repo.NotFoundError(f"{kind} {item_id} has no history")
    return entries[::-1]


def saved_version(session: Session, kind: str, item_id: int, version: int) -> dict[str, Any]:
    """The snapshot of `kind` #item_id as it was saved at `version` ({} if there is none)."""
    for revision in repo.history(session, kind, item_id):
        if revision.version == version:
            return revision.snapshot
    return {}


def conflict_summary(kind: str, mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    """One paragraph saying how their saved version differs from what I was editing."""
    fields = TASK_FIELDS if kind == "task" else RECORD_FIELDS
    lines = []
    for change in _changes(fields, mine, theirs):
        after = change.new if len(change.new) <= 160 else change.new[:159] + "…"
        lines.append(f"{change.label}: now “{after}”")
    return "; ".join(lines) or "no visible change (only its status or bookkeeping)"
