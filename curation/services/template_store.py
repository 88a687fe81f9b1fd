"""The template store: PromptSource and FLAN imports and the templates people write, each change a version.

A template is stored under (collection, name); a changed text raises its version and leaves a Revision
(entity_type "template") with the full text, so the version a record names can be read back.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from curation.services.annotation import InvalidInput, refuse_null_bytes
from curation.services.permissions import Actor, PermissionDenied
from curation.templates import Template, TemplateError, compile_template, load_flan, read_promptsource
from db import repo
from db.models import Revision, Role, utcnow
from db.template_tables import PromptTemplate


def require_curator(actor: Actor | None) -> Actor:
    """The actor, if a curator or an admin; PermissionDenied otherwise."""
    if actor is None:
        raise PermissionDenied("sign in first")
    if actor.role not in (Role.curator, Role.admin):
        raise PermissionDenied("only a curator or an admin works with templates")
    return actor


def refused(error: TemplateError) -> InvalidInput:
    """The template's fault as the UI and the CLI show a bad input."""
    return InvalidInput(str(error))



def template_of(row: PromptTemplate) -> Template:
    """The stored template as the renderer takes it (its version and row id included)."""
    return Template(name=row.name, jinja=row.jinja, answer_choices=row.answer_choices, source=row.source,
                    collection=row.collection, id=row.external_id or f"user:{row.id}",
                    original_task=row.original_task, choices_in_prompt=row.choices_in_prompt,
                    metrics=tuple(row.metrics or ()), languages=tuple(row.languages or ()),
                    reference=row.reference or "", version=row.version, stored_id=row.id)


def _snapshot(row: PromptTemplate) -> dict:
    return {"collection": row.collection, "name": row.name, "source": row.source, "external_id": row.external_id,
            "jinja": row.jinja, "answer_choices": row.answer_choices, "original_task": row.original_task,
            "choices_in_prompt": row.choices_in_prompt, "metrics": list(row.metrics or []),
            "languages": list(row.languages or []), "reference": row.reference, "version": row.version}


_TEXT = ("jinja", "answer_choices", "original_task", "choices_in_prompt", "metrics", "languages", "reference")


def _values(template: Template) -> dict:
    return {"jinja": template.jinja, "answer_choices": template.answer_choices,
            "original_task": template.original_task, "choices_in_prompt": template.choices_in_prompt,
            "metrics": list(template.metrics), "languages": list(template.languages), "reference": template.reference}


@dataclass
class StoreReport:
    templates: list[Template] = field(default_factory=list)  # as stored now, in the order given
    created: int = 0
    changed: int = 0  # a new version of a template already stored under that name
    unchanged: int = 0


def store_templates(session: Session, actor: Actor, templates: list[Template], *, reason: str) -> StoreReport:
    """Store templates by (collection, name): new ones at version 1, changed ones one version up.

    Every template is compiled first, so one that cannot render is refused before anything is written.
    """
    require_curator(actor)
    for template in templates:
        refuse_null_bytes({"template name": template.name, "template": template.jinja,
                           "answer choices": template.answer_choices, "collection": template.collection})
        if not template.name.strip() or not template.collection.strip():
            raise InvalidInput("a template needs a name and a collection (the dataset it is written for)")
        try:
            compile_template(template)
        except TemplateError as error:
            raise refused(error) from None
    report = StoreReport()
    for template in templates:
        row = session.execute(select(PromptTemplate).where(PromptTemplate.collection == template.collection,
                                                           PromptTemplate.name == template.name)).scalars().first()
        values = _values(template)
        if row is None:
            row = PromptTemplate(collection=template.collection, name=template.name, source=template.source,
                                 external_id=template.id or None, created_by=actor.name, updated_by=actor.name,
                                 **values)
            session.add(row)
            report.created += 1
        elif all(getattr(row, key) == value for key, value in values.items()):
            report.unchanged += 1
            report.templates.append(template_of(row))
            continue
        else:
            for key, value in values.items():
                setattr(row, key, value)
            row.version, row.updated_by, row.updated_at = row.version + 1, actor.name, utcnow()
            report.changed += 1
        session.flush()
        session.add(Revision(entity_type="template", entity_id=row.id, version=row.version, snapshot=_snapshot(row),
                             changed_by=actor.name, reason=reason))
        report.templates.append(template_of(row))
    session.flush()
    return report


def import_templates(session: Session, actor: Actor, path: str | Path, *, flan_task: str | None = None,
                     options: list[str] | None = None, collection: str | None = None) -> StoreReport:
    """Store the templates of a PromptSource templates.yaml, or of one task of FLAN's templates.py."""
    require_curator(actor)
    path = Path(path)
    try:
        if path.suffix == ".py":
            if not flan_task:
                raise InvalidInput("a FLAN templates.py holds many tasks: name the one to import (e.g. rte)")
            templates = load_flan(path, flan_task, options=options, collection=collection)
        else:
            templates = read_promptsource(path.read_text(encoding="utf-8"), origin=path.name)
            if collection:
                templates = [replace(t, collection=collection) for t in templates]
    except TemplateError as error:
        raise refused(error) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path.name} cannot be read: {error}") from None
    return store_templates(session, actor, templates, reason=f"imported from {path.name}")


def save_template(session: Session, actor: Actor, template: Template, *, expected_version: int | None = None) -> Template:
    """Store a template a person wrote; saving over a newer version than `expected_version` is a conflict."""
    require_curator(actor)
    current = session.execute(select(PromptTemplate).where(PromptTemplate.collection == template.collection,
                                                           PromptTemplate.name == template.name)).scalars().first()
    if current is not None and expected_version is None:
        raise InvalidInput(f"there is already a template {template.label}: pick it to edit it, or choose "
                           "another name")
    if current is not None and current.version != int(expected_version):
        raise repo.ConflictError("template", current.id, int(expected_version),
                                 {**_snapshot(current), "updated_by": current.updated_by})
    # An edited import keeps its lineage (promptsource, flan); its version says it was changed here.
    source = current.source if current is not None else "user"
    [stored] = store_templates(session, actor, [replace(template, source=source)],
                               reason="written in the studio").templates
    return stored


def list_templates(session: Session, actor: Actor, collection: str | None = None) -> list[Template]:
    """The stored templates (of one collection), by collection then name."""
    require_curator(actor)
    query = select(PromptTemplate).order_by(PromptTemplate.collection, PromptTemplate.name)
    if collection:
        query = query.where(PromptTemplate.collection == collection)
    return [template_of(row) for row in session.execute(query).scalars()]


def collections(session: Session, actor: Actor) -> list[str]:
    require_curator(actor)
    return list(session.execute(select(PromptTemplate.collection).distinct().order_by(PromptTemplate.collection))
                .scalars())


def get_templates(session: Session, actor: Actor, ids: list[int]) -> list[Template]:
    """The stored templates with these ids, in that order; NotFoundError naming one that is not there."""
    require_curator(actor)
    rows = {row.id: row for row in session.execute(select(PromptTemplate).where(PromptTemplate.id.in_(ids))).scalars()}
    if missing := [i for i in ids if i not in rows]:
        raise repo.NotFoundError(f"template {missing[0]} does not exist")
    return [template_of(rows[i]) for i in ids]
