"""Records as annotators and curators change them: open, save, submit, approve, reject, discard.

Every function authorizes first (services.permissions), then changes the store through db.repo,
so the version check and the Revision history hold for the UI and the API alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from curation.records import RecordDraft, null_byte_field, null_byte_reason, record_fields
from curation.services.permissions import Actor, authorize, can_edit
from db import repo
from db.models import Record, RecordStatus

# What each review action does to an item's status.
TRANSITIONS = {
    "submit": RecordStatus.submitted,
    "approve": RecordStatus.approved,
    "reject": RecordStatus.rejected,
    "discard": RecordStatus.discarded,
}


class InvalidInput(ValueError):
    """The form cannot be saved as it is; the message says what to fix."""


def required_version(expected_version: int | None, entity: str, item_id: int) -> int:
    """The version an edit was based on; an edit without one would overwrite unseen changes, so it is refused."""
    if expected_version is None or isinstance(expected_version, bool):
        raise InvalidInput(f"an edit of {entity} #{item_id} must say which version it was based on: "
                           f"reopen the {entity} and save again")
    try:
        return int(expected_version)
    except (TypeError, ValueError):
        raise InvalidInput(f"the version of {entity} #{item_id} must be a number, not {expected_version!r}") from None


def refuse_null_bytes(fields: dict) -> None:
    """InvalidInput naming the first field whose text holds a null byte (no database here can store one)."""
    if unstorable := null_byte_field(fields):
        raise InvalidInput(f"{null_byte_reason(unstorable)}; remove it and save again")


@dataclass
class RecordForm:
    """The fields of the record editor."""

    dataset: str
    instruction: str
    input: str = ""
    outputs: list[str] = field(default_factory=list)
    system_prompt: str | None = None
    category: str | None = None

    def cleaned(self) -> "RecordForm":
        outputs = [o for o in (self.outputs or []) if o and o.strip()]
        if not (self.instruction or "").strip():
            raise InvalidInput("the instruction is empty")
        refuse_null_bytes({"dataset name": self.dataset, **record_fields(RecordDraft(
            instruction=self.instruction, input=self.input, outputs=outputs, system_prompt=self.system_prompt,
            category=self.category))})
        return RecordForm(self.dataset, self.instruction, self.input or "", outputs,
                          (self.system_prompt or "").strip() and self.system_prompt or None,
                          (self.category or "").strip() or None)

    def draft(self) -> RecordDraft:
        return RecordDraft(instruction=self.instruction, input=self.input, outputs=list(self.outputs),
                           system_prompt=self.system_prompt, category=self.category)


@dataclass
class RecordView:
    """A stored record as the editor shows it, with what the viewer may do to it."""

    id: int
    version: int
    dataset: str
    status: str
    form: RecordForm
    task_id: int | None
    created_by: str | None
    updated_by: str | None
    updated_at: datetime
    review_note: str | None
    can_edit: bool
    can_review: bool


def record_view(session: Session, actor: Actor, record: Record) -> RecordView:
    dataset = session.get(repo.Dataset, record.dataset_id)
    status = RecordStatus(record.status)
    return RecordView(
        id=record.id, version=record.version, dataset=dataset.name if dataset else "", status=status.value,
        form=RecordForm(dataset=dataset.name if dataset else "", instruction=record.instruction,
                        input=record.input, outputs=list(record.outputs or []),
                        system_prompt=record.system_prompt, category=record.category),
        task_id=record.task_id, created_by=record.created_by, updated_by=record.updated_by,
        updated_at=record.updated_at, review_note=record.review_note,
        can_edit=can_edit(actor, created_by=record.created_by, status=status),
        can_review=actor.reviews and status == RecordStatus.submitted,
    )


def open_record(session: Session, actor: Actor, record_id: int) -> RecordView:
    authorize(actor, "view")
    return record_view(session, actor, repo.get_record(session, int(record_id)))


def _dataset_id(session: Session, name: str) -> int:
    dataset = repo.get_dataset(session, (name or "").strip())
    if dataset is None:
        raise InvalidInput(f"there is no dataset named {name!r}" if name else "choose a dataset")
    return dataset.id


def _form_changes(record: Record, form: RecordForm) -> dict[str, Any]:
    wanted = {"instruction": form.instruction, "input": form.input, "outputs": list(form.outputs),
              "system_prompt": form.system_prompt, "category": form.category}
    return {k: v for k, v in wanted.items() if getattr(record, k) != v}


def save_record(session: Session, actor: Actor, form: RecordForm, *, record_id: int | None = None,
                expected_version: int | None = None) -> RecordView:
    """Create a draft (no record_id) or save edits to one; raises ConflictError if someone saved first."""
    form = form.cleaned()
    if record_id is None:
        authorize(actor, "create")
        record = repo.create_record(session, _dataset_id(session, form.dataset), form.draft(), by=actor.name,
                                    reason="created")
        return record_view(session, actor, record)
    return change_record(session, actor, record_id, "save", expected_version=expected_version, form=form)


def change_record(session: Session, actor: Actor, record_id: int, action: str, *, expected_version: int | None,
                  form: RecordForm | None = None, reason: str | None = None) -> RecordView:
    """Save, submit, approve, reject or discard a record, with the form's edits in the same revision."""
    record = repo.get_record(session, int(record_id))
    authorize(actor, action, created_by=record.created_by, status=RecordStatus(record.status))
    version = required_version(expected_version, "record", record.id)
    if action == "reject" and not (reason or "").strip():
        raise InvalidInput("say why it is rejected: the annotator sees the reason")
    refuse_null_bytes({"review note" if action == "reject" else "reason": reason})
    changes: dict[str, Any] = {}
    if form is not None and action != "discard":
        changes = _form_changes(record, form.cleaned())
    if action in TRANSITIONS:
        changes["status"] = TRANSITIONS[action]
    if action == "reject":
        changes["review_note"] = reason.strip()
    elif action == "approve":
        changes["review_note"] = None
    if not changes:
        if version != record.version:  # even a no-op must not pretend the stale form was current
            raise repo.ConflictError("record", record.id, version, repo.snapshot(record))
        return record_view(session, actor, record)
    note = {"save": "edited", "submit": "submitted", "approve": "approved", "reject": "rejected",
            "discard": "discarded"}[action]
    if action in ("approve", "reject", "submit") and set(changes) - {"status", "review_note"}:
        note += " with edits"
    if reason and reason.strip():
        note += f": {reason.strip()}"
    updated = repo.update_record(session, record.id, expected_version=version, changes=changes, by=actor.name,
                                 reason=note)
    return record_view(session, actor, updated)
