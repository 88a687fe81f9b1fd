"""A Super-NaturalInstructions task built from a labelled source through one template.

The definition is written once; each row the template renders becomes an instance (its prompt the input,
its target the output); a few rows become the positive examples and, with an output a person writes,
the negative ones. The SNI validator runs before anything is saved: a task that breaks a rule is refused
with every rule it breaks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from curation.records import ExampleDraft, RecordDraft, TaskDraft
from curation.services import tasks as task_service
from curation.services.annotation import InvalidInput
from curation.services.permissions import Actor
from curation.services.tasks import ExampleForm, InstanceForm, TaskForm, TaskView
from curation.services.template_store import refused, require_curator
from curation.templates import FieldMapping, Outcome, Source, Template, TemplateError, render_rows
from db import repo
from db.models import Revision

OTHER_LISTS = ("contributors", "source", "url", "reasoning", "input_language", "output_language",
               "instruction_language", "instance_license")


@dataclass
class ExampleRow:
    """A row chosen as an example: a positive one shows the row's target (unless `output` says otherwise),
    a negative one the wrong `output` a person wrote; both explain why."""

    kind: str
    row: int
    explanation: str
    output: str = ""


@dataclass
class TaskPlan:
    dataset: str
    name: str
    definition: str
    examples: list[ExampleRow] = field(default_factory=list)
    emphasis_and_caution: str = ""
    things_to_avoid: str = ""
    categories: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    cap: int | None = None


@dataclass
class TaskBuild:
    form: TaskForm
    instance_rows: list[int]  # the source row of each instance, in order
    duplicates_skipped: int = 0  # rows whose input an earlier instance or an example already has
    outcome: Outcome = field(default_factory=Outcome)
    view: TaskView | None = None


def task_from_source(source: Source, template: Template, mapping: FieldMapping, plan: TaskPlan) -> TaskBuild:
    """The task the plan makes of the source (not validated, not stored); InvalidInput naming a bad row."""
    outcome = Outcome()
    try:
        made = {m.row: m for m in render_rows(source.rows, [template], mapping, cap=plan.cap, columns=source.columns,
                                               outcome=outcome)}
    except TemplateError as error:
        raise refused(error) from None
    examples, taken = [], set()
    for example in plan.examples:
        if example.kind not in ("positive", "negative"):
            raise InvalidInput(f"an example is positive or negative, not {example.kind!r}")
        if not 1 <= example.row <= len(source.rows):
            raise InvalidInput(f"row {example.row} is not in the source, which has rows 1 to {len(source.rows)}")
        if example.row not in made:
            raise InvalidInput(f"row {example.row} makes no text with template {template.label} "
                               "(or lies past the cap): choose another row for the example")
        render = made[example.row]
        output = (example.output or "").strip() or (render.target if example.kind == "positive" else "")
        if not output:
            raise InvalidInput(f"the negative example from row {example.row} needs the wrong output it shows")
        examples.append(ExampleForm(example.kind, render.prompt, output, example.explanation or ""))
        taken.add(example.row)
    seen = {e.input for e in examples if e.kind == "positive"}
    instances, rows, duplicates = [], [], 0
    for number, render in made.items():
        if number in taken:
            continue
        if render.prompt in seen:
            duplicates += 1
            continue
        seen.add(render.prompt)
        instances.append(InstanceForm(render.prompt, [render.target], f"{plan.name.strip()}-{number}"))
        rows.append(number)
    form = TaskForm(dataset=plan.dataset, name=plan.name, definition=plan.definition,
                    emphasis_and_caution=plan.emphasis_and_caution, things_to_avoid=plan.things_to_avoid,
                    categories=list(plan.categories), domains=list(plan.domains), examples=examples,
                    instances=instances)
    return TaskBuild(form, rows, duplicates, outcome)


def build_task(session: Session, actor: Actor, source: Source, template: Template, mapping: FieldMapping,
               plan: TaskPlan) -> TaskBuild:
    """Build the task, run the SNI validator, and store it (its instances record template and row)."""
    require_curator(actor)
    if template.stored_id is None:
        raise InvalidInput(f"save template {template.label} first: each instance names the template version")
    build = task_from_source(source, template, mapping, plan)
    form = build.form.cleaned()
    if not form.definition.strip():
        raise InvalidInput("write the task's definition: it is the instruction every instance shares")
    from curation.quality.sni import COMPLETENESS_RULES

    broken = [v for v in task_service.violations(form) if v.rule not in COMPLETENESS_RULES]
    if broken:
        raise InvalidInput("the task breaks the SNI rules, so nothing was saved: " + "; ".join(map(str, broken)))
    dataset = repo.get_or_create_dataset(session, form.dataset.strip())
    lists = {"categories": form.categories, "domains": form.domains, **{column: [] for column in OTHER_LISTS}}
    draft = TaskDraft(name=form.name, definition=form.definition,
                      emphasis_and_caution=form.emphasis_and_caution or None,
                      things_to_avoid=form.things_to_avoid or None, lists=lists,
                      examples=[ExampleDraft(kind=e.kind, input=e.input, output=e.output, explanation=e.explanation)
                                for e in form.examples])
    reason = f"built from {source.name} with template {template.name}"
    task = repo.insert_task(session, dataset.id, draft, by=actor.name, reason=reason, instances=[])
    instances = [RecordDraft(instruction=form.definition, input=i.input, outputs=list(i.outputs), external_id=i.id,
                             source_file=source.name, source_line=position)
                 for position, i in enumerate(form.instances)]
    provenances = [{"template": template.provenance(), "source": source.where(row), "outputs": [{"by": "template"}]}
                   for row in build.instance_rows]
    repo.insert_records(session, dataset.id, instances, by=actor.name, reason=reason, task_id=task.id,
                        origin="template", provenances=provenances)
    session.flush()
    # insert_task's first revision was taken before the instances: give it the full snapshot, as save_task does.
    first = session.execute(select(Revision).where(Revision.entity_type == "task", Revision.entity_id == task.id)
                            ).scalars().one()
    first.snapshot = task_service.full_snapshot(session, task)
    session.flush()
    build.view = task_service.open_task(session, actor, task.id)
    return build
