"""SNI tasks as people write them: definition, examples, instances; saved with a version check.

A task's Revision snapshot holds its examples and (up to SNAPSHOT_INSTANCES) its instances too, so
the history shows an example or instance edit like any other change. Instances are Records: each
change to one leaves its own Revision, and the task's status carries over to its instances.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlmodel import Session

from curation.formats import sni
from curation.quality.sni import Violation, validate_task
from curation.records import ExampleDraft, RecordDraft, TaskDraft, output_fields
from curation.services.annotation import TRANSITIONS, InvalidInput, refuse_null_bytes, required_version
from curation.services.permissions import Actor, authorize, can_edit
from curation.services.task_instances import live_instances, set_instance_status, sync_instances
from db import repo
from db.models import Dataset, Example, RecordStatus, Revision, Task, utcnow

SNAPSHOT_INSTANCES = 1000


@dataclass
class ExampleForm:
    kind: str  # "positive" | "negative"
    input: str
    output: str
    explanation: str = ""


@dataclass
class InstanceForm:
    input: str
    outputs: list[str]
    id: str | None = None


@dataclass
class TaskForm:
    """The fields of the task editor."""

    dataset: str
    name: str
    definition: str = ""
    emphasis_and_caution: str = ""
    things_to_avoid: str = ""
    categories: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    examples: list[ExampleForm] = field(default_factory=list)
    instances: list[InstanceForm] = field(default_factory=list)

    def text_fields(self) -> dict[str, Any]:
        """The task's text by the names the editor shows; examples and instances are counted from 1."""
        fields: dict[str, Any] = {
            "dataset name": self.dataset, "task name": self.name, "definition": self.definition,
            "emphasis & caution": self.emphasis_and_caution, "things to avoid": self.things_to_avoid,
            "categories": self.categories, "domains": self.domains}
        for n, e in enumerate(self.examples, start=1):
            fields.update({f"example {n} input": e.input, f"example {n} output": e.output,
                           f"example {n} explanation": e.explanation})
        for n, i in enumerate(self.instances, start=1):
            fields.update({f"instance {n} input": i.input, **output_fields(i.outputs, f"instance {n} "),
                           f"instance {n} id": i.id})
        return fields

    def cleaned(self) -> "TaskForm":
        if not (self.name or "").strip():
            raise InvalidInput("the task needs a name")
        refuse_null_bytes(self.text_fields())
        for e in self.examples:
            if e.kind not in ("positive", "negative"):
                raise InvalidInput(f"an example is {e.kind!r}: positive or negative")
        instances = [i for i in self.instances if (i.input or "").strip() or any(o.strip() for o in i.outputs)]
        return TaskForm(self.dataset, self.name.strip(), self.definition or "", self.emphasis_and_caution or "",
                        self.things_to_avoid or "", [c.strip() for c in self.categories if c and c.strip()],
                        [d.strip() for d in self.domains if d and d.strip()], list(self.examples), instances)


@dataclass
class TaskView:
    id: int
    version: int
    status: str
    form: TaskForm
    created_by: str | None
    updated_by: str | None
    updated_at: datetime
    review_note: str | None
    can_edit: bool
    can_review: bool


def task_json(form: TaskForm, *, base: TaskDraft | None = None) -> dict:
    """The SNI task JSON of the form (the shape `validate` and export see)."""
    return sni.task_to_json(_task_draft(form, base))


def violations(form: TaskForm) -> list[Violation]:
    """The SNI rules the task in the editor breaks (empty when it passes)."""
    return validate_task(task_json(form))


def _task_draft(form: TaskForm, base: TaskDraft | None = None) -> TaskDraft:
    lists = dict(base.lists) if base else {}
    lists["categories"], lists["domains"] = list(form.categories), list(form.domains)
    for column in ("contributors", "source", "url", "reasoning", "input_language", "output_language",
                   "instruction_language", "instance_license"):
        lists.setdefault(column, [])
    return TaskDraft(
        name=form.name, definition=form.definition, emphasis_and_caution=form.emphasis_and_caution or None,
        things_to_avoid=form.things_to_avoid or None, lists=lists,
        examples=[ExampleDraft(kind=e.kind, input=e.input, output=e.output, explanation=e.explanation)
                  for e in form.examples],
        instances=[RecordDraft(instruction=form.definition, input=i.input, outputs=list(i.outputs),
                               external_id=i.id or f"{form.name}-{n}", source_line=n)
                   for n, i in enumerate(form.instances)],
        extra=dict(base.extra) if base else {},
    )


def _examples(session: Session, task_id: int) -> list[Example]:
    return list(session.execute(select(Example).where(Example.task_id == task_id).order_by(Example.position)).scalars())


def full_snapshot(session: Session, task: Task) -> dict[str, Any]:
    """The task's columns, its examples and its instances (or their count when there are many)."""
    snap = repo.snapshot(task)
    snap["examples"] = [{"kind": getattr(e.kind, "value", e.kind), "input": e.input, "output": e.output,
                         "explanation": e.explanation} for e in _examples(session, task.id)]
    instances = live_instances(session, task.id)
    if len(instances) <= SNAPSHOT_INSTANCES:
        snap["instances"] = [{"id": r.external_id, "input": r.input, "outputs": list(r.outputs)} for r in instances]
    snap["instance_count"] = len(instances)
    return snap


def _task_view(session: Session, actor: Actor, task: Task) -> TaskView:
    dataset = session.get(Dataset, task.dataset_id)
    status = RecordStatus(task.status)
    note = (task.extra or {}).get("review_note")
    form = TaskForm(
        dataset=dataset.name if dataset else "", name=task.name, definition=task.definition,
        emphasis_and_caution=task.emphasis_and_caution or "", things_to_avoid=task.things_to_avoid or "",
        categories=list(task.categories or []), domains=list(task.domains or []),
        examples=[ExampleForm(getattr(e.kind, "value", e.kind), e.input, e.output, e.explanation or "")
                  for e in _examples(session, task.id)],
        instances=[InstanceForm(r.input, list(r.outputs), r.external_id) for r in live_instances(session, task.id)],
    )
    return TaskView(id=task.id, version=task.version, status=status.value, form=form, created_by=task.created_by,
                    updated_by=task.updated_by, updated_at=task.updated_at, review_note=note,
                    can_edit=can_edit(actor, created_by=task.created_by, status=status),
                    can_review=actor.reviews and status == RecordStatus.submitted)


def get_task(session: Session, task_id: int) -> Task:
    task = session.get(Task, int(task_id))
    if task is None:
        raise repo.NotFoundError(f"task {task_id} does not exist")
    return task


def open_task(session: Session, actor: Actor, task_id: int) -> TaskView:
    authorize(actor, "view")
    return _task_view(session, actor, get_task(session, task_id))


def _add_task_revision(session: Session, task: Task, *, by: str, reason: str) -> None:
    session.add(Revision(entity_type="task", entity_id=task.id, version=task.version,
                         snapshot=full_snapshot(session, task), changed_by=by, reason=reason))
    session.flush()


def save_task(session: Session, actor: Actor, form: TaskForm, *, task_id: int | None = None,
              expected_version: int | None = None) -> TaskView:
    """Create a task (no task_id) or save edits to one; raises ConflictError if someone saved first."""
    if task_id is None:
        authorize(actor, "create")
        form = form.cleaned()
        dataset = repo.get_dataset(session, (form.dataset or "").strip())
        if dataset is None:
            raise InvalidInput(f"there is no dataset named {form.dataset!r}" if form.dataset else "choose a dataset")
        draft = _task_draft(form)
        draft.extra = {}
        task = repo.insert_task(session, dataset.id, draft, by=actor.name, reason="created")
        session.flush()
        # insert_task's first revision lacks examples and instances: give it the full snapshot.
        first = session.execute(select(Revision).where(Revision.entity_type == "task", Revision.entity_id == task.id)
                             ).scalars().one()
        first.snapshot = full_snapshot(session, task)
        session.flush()
        return _task_view(session, actor, task)
    return change_task(session, actor, task_id, "save", expected_version=expected_version, form=form)


def change_task(session: Session, actor: Actor, task_id: int, action: str, *, expected_version: int | None,
                form: TaskForm | None = None, reason: str | None = None) -> TaskView:
    """Save, submit, approve, reject or discard a task (its instances follow its status)."""
    task = get_task(session, task_id)
    status = RecordStatus(task.status)
    authorize(actor, action, created_by=task.created_by, status=status)
    if action == "reject" and not (reason or "").strip():
        raise InvalidInput("say why it is rejected: the annotator sees the reason")
    refuse_null_bytes({"review note" if action == "reject" else "reason": reason})
    version = required_version(expected_version, "task", task.id)
    if action == "save" and form is not None and form.cleaned() == _task_view(session, actor, task).form:
        if version != task.version:
            raise repo.ConflictError("task", task.id, version, full_snapshot(session, task))
        return _task_view(session, actor, task)  # nothing changed: no new version
    before = full_snapshot(session, task)
    values: dict[str, Any] = {}
    if form is not None and action != "discard":
        form = form.cleaned()
        values.update(name=form.name, definition=form.definition,
                      emphasis_and_caution=form.emphasis_and_caution or None,
                      things_to_avoid=form.things_to_avoid or None, categories=form.categories, domains=form.domains)
    extra = dict(task.extra or {})
    if action in TRANSITIONS:
        values["status"] = TRANSITIONS[action]
    if action == "reject":
        extra["review_note"] = reason.strip()
    elif action == "approve":
        extra.pop("review_note", None)
    if extra != (task.extra or {}):
        values["extra"] = extra
    values.update(version=Task.version + 1, updated_by=actor.name, updated_at=utcnow())
    result = session.execute(update(Task).where(Task.id == task.id, Task.version == version).values(**values)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.refresh(task)
        raise repo.ConflictError("task", task.id, version, full_snapshot(session, task))
    session.refresh(task)
    note = {"save": "edited", "submit": "submitted", "approve": "approved", "reject": "rejected",
            "discard": "discarded"}[action]
    if form is not None and action != "discard":
        _replace_examples(session, task.id, form.examples)
        sync_instances(session, task, form.definition, form.instances, by=actor.name, reason=f"task {note}")
    if "status" in values:
        set_instance_status(session, task.id, RecordStatus(values["status"]), by=actor.name, reason=f"task {note}")
    after = full_snapshot(session, task)
    if action != "save" and _changed(before, after, ignore={"status", "extra"}):
        note += " with edits"
    if reason and reason.strip():
        note += f": {reason.strip()}"
    session.add(Revision(entity_type="task", entity_id=task.id, version=task.version, snapshot=after,
                         changed_by=actor.name, reason=note))
    session.flush()
    return _task_view(session, actor, task)


_BOOKKEEPING = {"version", "updated_by", "updated_at"}


def _changed(before: dict, after: dict, ignore: set[str]) -> bool:
    skip = _BOOKKEEPING | ignore
    return any(before.get(k) != after.get(k) for k in set(before) | set(after) if k not in skip)


def _replace_examples(session: Session, task_id: int, examples: list[ExampleForm]) -> None:
    current = [(getattr(e.kind, "value", e.kind), e.input, e.output, e.explanation or "")
               for e in _examples(session, task_id)]
    if current == [(e.kind, e.input, e.output, e.explanation or "") for e in examples]:
        return
    session.execute(delete(Example).where(Example.task_id == task_id))
    if examples:
        session.execute(insert(Example), [
            {"task_id": task_id, "kind": e.kind, "position": n, "input": e.input, "output": e.output,
             "explanation": e.explanation, "suggestion": None, "extra": None} for n, e in enumerate(examples)])


def form_from_dict(data: dict[str, Any]) -> TaskForm:
    """A TaskForm from plain values (what the API and the UI's state hold)."""
    return TaskForm(
        dataset=data.get("dataset", ""), name=data.get("name", ""), definition=data.get("definition", ""),
        emphasis_and_caution=data.get("emphasis_and_caution", ""), things_to_avoid=data.get("things_to_avoid", ""),
        categories=list(data.get("categories") or []), domains=list(data.get("domains") or []),
        examples=[ExampleForm(**e) for e in data.get("examples") or []],
        instances=[InstanceForm(**i) for i in data.get("instances") or []],
    )


def form_to_dict(form: TaskForm) -> dict[str, Any]:
    return asdict(form)
