"""Records as annotators and curators change them: open, save, submit, approve, reject, discard.

Every function authorizes first (services.permissions), then changes the store through db.repo,
so the version check and the Revision history hold for the UI and the API alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from curation import provenance as provenance_rules
from curation.provenance import MachineText
from curation.records import RecordDraft, null_byte_field, null_byte_reason, record_fields
from curation.services.errors import InvalidInput
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
    origin: str = "human"
    machine_draft: str | None = None  # unreviewed, edited, approved: the state of its machine-written text
    provenance: dict | None = None
    source: str | None = None  # the file (and line) an imported record was read from


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
        origin=record.origin, machine_draft=record.machine_draft, provenance=record.provenance,
        source=(f"{record.source_file}" + (f", line {record.source_line}" if record.source_line else ""))
        if record.source_file else None,
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


def _field_names(form: RecordForm) -> dict[str, str]:
    """{field name: its text} as drafts name them: instruction, output, output 2, ..."""
    return {"instruction": form.instruction, **{("output" if n == 0 else f"output {n + 1}"): text
                                                 for n, text in enumerate(form.outputs)}}


def _as_drafted(form: RecordForm, machine: dict[str, MachineText]) -> RecordForm:
    """The form with every drafted field holding exactly what the model wrote (the step before a person's edit)."""
    outputs = list(form.outputs)
    instruction = form.instruction
    for name, text in machine.items():
        if name == "instruction":
            instruction = text.text
        elif name.startswith("output"):
            n = int(name.split()[1]) - 1 if " " in name else 0
            if n < len(outputs):
                outputs[n] = text.text
    return RecordForm(form.dataset, instruction, form.input, outputs, form.system_prompt, form.category)


def _drafted_by(machine: dict[str, MachineText]) -> str:
    models = sorted({f"{m.backend} · {m.model}" for m in machine.values()})
    return "with a draft by " + ", ".join(models)


def save_record(session: Session, actor: Actor, form: RecordForm, *, record_id: int | None = None,
                expected_version: int | None = None, drafts: dict[str, str] | None = None) -> RecordView:
    """Create a draft (no record_id) or save edits to one; raises ConflictError if someone saved first.

    `drafts` maps a field (instruction, output, output 2, ...) to the cache key of the model's draft it was
    filled from. When the person changed the model's words, the history gets two revisions: what the model
    wrote, then the person's edit.
    """
    from curation.services.drafting import machine_texts

    form = form.cleaned()
    fields = _field_names(form)
    machine = {name: text for name, text in machine_texts(session, drafts).items() if name in fields}
    model_form = _as_drafted(form, machine)
    edited = machine and model_form != form
    if record_id is None:
        authorize(actor, "create")
        first = model_form if edited else form
        provenance = provenance_rules.after_save(None, origin="human", before={}, drafted=machine, by=actor.name,
                                                 now={"instruction": first.instruction, "outputs": first.outputs})
        record = repo.create_record(session, _dataset_id(session, form.dataset), first.draft(), by=actor.name,
                                    reason="created " + _drafted_by(machine) if machine else "created",
                                    provenance=provenance)
        view = record_view(session, actor, record)
        if edited:
            view = change_record(session, actor, record.id, "save", expected_version=record.version, form=form,
                                 note="edited the model's draft")
        return view
    if not machine:
        return change_record(session, actor, record_id, "save", expected_version=expected_version, form=form)
    view = change_record(session, actor, record_id, "save", expected_version=expected_version, form=model_form,
                         machine=machine, note="drafted " + _drafted_by(machine)[len("with a draft "):])
    if edited:
        view = change_record(session, actor, record_id, "save", expected_version=view.version, form=form,
                             note="edited the model's draft")
    return view


def change_record(session: Session, actor: Actor, record_id: int, action: str, *, expected_version: int | None,
                  form: RecordForm | None = None, reason: str | None = None,
                  machine: dict[str, MachineText] | None = None, note: str | None = None) -> RecordView:
    """Save, submit, approve, reject or discard a record, with the form's edits in the same revision.

    `machine` says which fields a model wrote (save_record reads it from the drafts' cache keys); `note`
    replaces the history's word for the change.
    """
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
    provenance = record.provenance
    if machine or changes.keys() & {"instruction", "outputs"}:
        wanted = {"instruction": changes.get("instruction", record.instruction),
                  "outputs": changes.get("outputs", record.outputs)}
        provenance = provenance_rules.after_save(record.provenance, origin=record.origin, drafted=machine or {},
                                                 by=actor.name, author=record.created_by, now=wanted,
                                                 before={"instruction": record.instruction, "outputs": record.outputs})
    if action == "approve":
        provenance = provenance_rules.approved(provenance, actor.name)
    if provenance != record.provenance:
        changes["provenance"] = provenance
        changes["machine_draft"] = provenance_rules.machine_draft_state(provenance)
    if not changes:
        if version != record.version:  # even a no-op must not pretend the stale form was current
            raise repo.ConflictError("record", record.id, version, repo.snapshot(record))
        return record_view(session, actor, record)
    note = note or {"save": "edited", "submit": "submitted", "approve": "approved", "reject": "rejected",
                    "discard": "discarded"}[action]
    if action in ("approve", "reject", "submit") and set(changes) - {"status", "review_note"}:
        note += " with edits"
    if reason and reason.strip():
        note += f": {reason.strip()}"
    updated = repo.update_record(session, record.id, expected_version=version, changes=changes, by=actor.name,
                                 reason=note)
    return record_view(session, actor, updated)
