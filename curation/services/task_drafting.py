"""A model beside the task editor: propose new instances or an example's explanation; a person accepts each.

Proposals are never written to the task on their own. Accepting one saves the task through the task service
(version check, revision, status), so accepting one by one gives one version per accepted proposal. The page
names a proposal by its reply's cache key and its place in the reply; what the model wrote is read back from the
server's cache, so the provenance is the model's own words, and a person's change to them is marked "edited".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from sqlalchemy import delete, update
from sqlmodel import Session

from curation.drafting import DRAFT_EXPLANATION, DRAFT_INSTANCES, DraftUnusable, Sampling, \
    draft_explanation_request, draft_instances_request, parse_instances
from curation.provenance import EDITED, MachineText, machine_draft_state
from curation.services.annotation import InvalidInput
from curation.services.drafting import ModelFailed, backend_of, complete_draft, machine_texts
from curation.services.permissions import Actor, authorize
from curation.services.task_instances import live_instances
from curation.services.tasks import ExampleForm, InstanceForm, TaskForm, TaskView, change_task, get_task, open_task
from db import repo
from db.llm_tables import LLMReply
from db.models import Dataset, Record, RecordStatus, Revision


@dataclass(frozen=True)
class Proposal:
    """What a model proposed: an instance (input, output), or an explanation (text) of the example at `index`."""

    cache_key: str
    index: int  # the instance's place in the parsed reply, or the example's position in the task
    input: str
    output: str
    text: str = ""


@dataclass
class Proposals:
    """The new instances a model proposed, and what was left out of them."""

    proposals: list[Proposal]
    repeats: int = 0  # proposals whose input the task already has (or an earlier proposal of the same reply)
    warnings: list[str] = field(default_factory=list)

    def note(self) -> str:
        """A line for the person: how many proposals, and why some were left out."""
        count = len(self.proposals)
        line = f"{count} proposal{'s' if count != 1 else ''} to review"
        if self.repeats:
            line += (f"; {self.repeats} left out: {'its' if self.repeats == 1 else 'their'} input repeats one the "
                     "task already has")
        return "; ".join([line, *self.warnings]) + "."


def _same(text: str) -> str:
    return " ".join((text or "").split()).casefold()


def instance_tokens(count: int) -> int:
    """Room for `count` instances in one reply: a cut-off JSON list cannot be read at all."""
    return min(8192, 256 + 192 * count)


def _editable_task(session: Session, actor: Actor, task_id: int | None):
    if not task_id:
        raise InvalidInput("save the task first: the model drafts from its saved definition and examples")
    task = get_task(session, task_id)
    authorize(actor, "save", created_by=task.created_by, status=RecordStatus(task.status))
    return task


def _forget(session: Session, key: str) -> None:
    """Drop an unusable reply from the cache, so that asking again asks the model again."""
    session.execute(delete(LLMReply.__table__).where(LLMReply.__table__.c.key == key))
    session.commit()


def _language(session: Session, task) -> str | None:
    dataset = session.get(Dataset, task.dataset_id)
    return dataset.language if dataset else None


def propose_instances(session: Session, actor: Actor, settings, *, task_id: int, count: int,
                      model_label: str | None = None, sampling: Sampling | None = None) -> Proposals:
    """`count` new instances a model proposes for the saved task, less those repeating an input it has."""
    task = _editable_task(session, actor, task_id)
    form = open_task(session, actor, task.id).form
    try:
        request = draft_instances_request(
            form.definition, [asdict(e) for e in form.examples if e.kind == "positive"],
            [asdict(e) for e in form.examples if e.kind == "negative"], [i.input for i in form.instances],
            int(count or 0), sampling=sampling or Sampling(max_tokens=instance_tokens(int(count or 0))))
    except DraftUnusable as why:
        raise InvalidInput(str(why)) from None
    _, backend = backend_of(settings, model_label)
    drafted, reply = complete_draft(session, actor, backend, request, DRAFT_INSTANCES,
                                    language=_language(session, task))
    try:
        parsed = parse_instances(drafted.text)
    except DraftUnusable as why:
        _forget(session, drafted.key)
        cut = " (the reply stopped at the token limit: ask for fewer at a time)" if reply.truncated else ""
        raise ModelFailed(f"{why}{cut}") from None
    seen = {_same(i.input) for i in form.instances}
    proposals, repeats = [], 0
    for index, instance in enumerate(parsed):
        if _same(instance["input"]) in seen:
            repeats += 1
            continue
        seen.add(_same(instance["input"]))
        proposals.append(Proposal(drafted.key, index, instance["input"], instance["output"]))
    return Proposals(proposals, repeats, list(drafted.warnings))


def _proposed(session: Session, cache_key: str, prompt_name: str, what: str) -> MachineText:
    """The MachineText the cache holds under `cache_key`, if it was drafted with `prompt_name`."""
    if not cache_key:
        raise InvalidInput(f"say which {what} to accept: its cache key is missing")
    machine = machine_texts(session, {what: cache_key})[what]
    if machine.prompt != prompt_name:
        raise InvalidInput(f"that cache key holds no proposed {what}")
    return machine


def accept_instance(session: Session, actor: Actor, *, task_id: int, expected_version: int | None, cache_key: str,
                    index: int, input: str, output: str) -> TaskView:
    """The task once the proposal (edited or not) is its last instance, with the model credited for its output."""
    task = _editable_task(session, actor, task_id)
    input, output = (input or "").strip(), (output or "").strip()
    if not input or not output:
        raise InvalidInput("the instance needs an input and an output")
    machine = _proposed(session, cache_key, DRAFT_INSTANCES.name, "instance")
    parsed = parse_instances(machine.text)  # it parsed when proposed: the cache holds the same words
    if not isinstance(index, int) or not 0 <= index < len(parsed):
        raise InvalidInput(f"the model's reply holds no instance {index!r}")
    proposed = parsed[index]
    form = open_task(session, actor, task.id).form
    if any(_same(i.input) == _same(input) for i in form.instances):
        raise InvalidInput("the task already has an instance with this input")
    entry = {**replace(machine, text=proposed["output"]).entry(), "index": index}
    edited = (input, output) != (proposed["input"], proposed["output"])
    if edited:
        entry.update(state=EDITED, edited_by=actor.name)
    form.instances.append(InstanceForm(input, [output]))
    view = change_task(session, actor, task.id, "save", expected_version=expected_version, form=form,
                       reason=f"{'edited and ' if edited else ''}accepted an instance drafted by {machine.model}")
    _credit_model(session, live_instances(session, task.id)[-1], {"outputs": [entry]},
                  f"drafted by {machine.backend} · {machine.model}" + (f", edited by {actor.name}" if edited else ""))
    return view


def _credit_model(session: Session, record: Record, provenance: dict, reason: str) -> None:
    """Give a just-added instance its origin and provenance, in its first revision too (nobody has seen it yet)."""
    session.execute(update(Record).where(Record.id == record.id).values(
        origin="generated", provenance=provenance, machine_draft=machine_draft_state(provenance))
        .execution_options(synchronize_session=False))
    session.refresh(record)
    session.execute(update(Revision).where(Revision.entity_type == "record", Revision.entity_id == record.id,
                                           Revision.version == record.version)
                    .values(snapshot=repo.snapshot(record), reason=reason))
    session.flush()


def unsaved_edits(session: Session, actor: Actor, task_id: int, form: TaskForm) -> bool:
    """Whether the editor's `form` differs from the saved task (accepting a proposal would replace it)."""
    return form.cleaned() != open_task(session, actor, task_id).form


def propose_explanation(session: Session, actor: Actor, settings, *, task_id: int, example_position: int | None,
                        model_label: str | None = None) -> Proposal:
    """An explanation a model proposes for the saved example at `example_position` (which has none yet).

    With no position, the first example that lacks an explanation.
    """
    task = _editable_task(session, actor, task_id)
    examples = open_task(session, actor, task.id).form.examples
    if example_position is None:
        example_position = next((n for n, e in enumerate(examples) if not e.explanation.strip()), None)
        if example_position is None:
            raise InvalidInput("every saved example already has an explanation")
    example = _example(examples, example_position)
    if example.explanation.strip():
        raise InvalidInput(f"example {example_position + 1} already has an explanation")
    request = draft_explanation_request(task.definition, example.kind, example.input, example.output)
    _, backend = backend_of(settings, model_label)
    drafted, _ = complete_draft(session, actor, backend, request, DRAFT_EXPLANATION, language=_language(session, task))
    return Proposal(drafted.key, example_position, example.input, example.output, drafted.text)


def _example(examples: list[ExampleForm], position) -> ExampleForm:
    if not isinstance(position, int) or not 0 <= position < len(examples):
        raise InvalidInput(f"the saved task has no example {position + 1 if isinstance(position, int) else position!r}"
                           f" (it has {len(examples)})")
    return examples[position]


def accept_explanation(session: Session, actor: Actor, *, task_id: int, expected_version: int | None,
                       example_position: int, text: str, cache_key: str | None = None) -> TaskView:
    """The task once the example at `example_position` has `text` as its explanation.

    With the proposal's `cache_key`, the history names the model (and whether the person changed its words).
    """
    task = _editable_task(session, actor, task_id)
    text = (text or "").strip()
    if not text:
        raise InvalidInput("the explanation is empty")
    form = open_task(session, actor, task.id).form
    example = _example(form.examples, example_position)
    reason = f"wrote the explanation of example {example_position + 1}"
    if cache_key:
        machine = _proposed(session, cache_key, DRAFT_EXPLANATION.name, "explanation")
        verb = "accepted" if machine.text.strip() == text else "edited and accepted"
        reason = f"{verb} an explanation of example {example_position + 1} drafted by {machine.model}"
    example.explanation = text
    return change_task(session, actor, task.id, "save", expected_version=expected_version, form=form, reason=reason)
