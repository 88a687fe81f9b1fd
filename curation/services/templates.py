"""Templates over a labelled source: read the source, preview a template on sample rows, apply templates.

The templates themselves are stored by curation.services.template_store; an SNI task is built from a
source by curation.services.template_tasks.

Every function checks the actor first: templates are curator and admin work. Applying writes nothing
until every row has rendered: the first fault (a missing field, a label the mapping lacks, an answer
choice out of range, a forbidden name) is an InvalidInput naming the template line, field or row.
Each record made keeps its template (name, id, version, source) and its source row in its provenance.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from curation.records import RecordDraft
from curation.services.annotation import InvalidInput, refuse_null_bytes
from curation.services.permissions import Actor
from curation.services.template_store import refused, require_curator
from curation.templates import (FieldMapping, Outcome, Source, Template, TemplateError, preview as preview_rows,
                                read_source, render_rows)
from curation.templates.apply import PreviewRow
from db import repo
from db.models import Record, RecordStatus

BATCH = 5000



def dataset_source(session: Session, actor: Actor, name: str) -> Source:
    """A stored dataset's records (not discarded) as rows: instruction, input, output, category, id and the
    columns an import kept beside them (e.g. premise, label), in id order."""
    require_curator(actor)
    dataset = repo.get_dataset(session, (name or "").strip())
    if dataset is None:
        raise InvalidInput(f"there is no dataset named {name!r}" if name else "choose a labelled source")
    statuses = [s for s in RecordStatus if s != RecordStatus.discarded]
    rows, ids = [], []
    for record in repo.iter_records(session, dataset.id, statuses):
        row = {"instruction": record.instruction, "input": record.input,
               "output": record.outputs[0] if record.outputs else None, "category": record.category,
               "id": record.external_id}
        row.update({k: v for k, v in (record.extra or {}).items() if k not in row})
        rows.append({k: v for k, v in row.items() if v is not None})
        ids.append(record.id)
    try:
        return Source(dataset.name, rows, record_ids=ids)
    except TemplateError as error:
        raise refused(error) from None


_HUB_ROWS: dict[tuple, list[dict]] = {}  # (repo, commit, config, split) -> rows: a commit never changes


def hub_source(actor: Actor, spec: str, *, token: str | None = None) -> Source:
    """A Hub dataset's split as a source: `hub:OWNER/NAME[@REVISION][#SPLIT or #CONFIG:SPLIT]` (split: train).

    The revision is resolved to its commit, which the source's name (and so each record's provenance) keeps;
    class labels come as their names, for the label mapping to turn into ids. Rows read once per commit.
    """
    from curation.hub_import import HubImportError, parse_source, resolve_revision, stream_rows

    require_curator(actor)
    text, _, where = spec.strip().partition("#")
    config, _, split = where.rpartition(":")
    try:
        source = parse_source(text, config=config or None, split=split or None)
        commit = resolve_revision(source, token)
        key = (source.repo_id, commit, source.config, source.split)
        if key not in _HUB_ROWS:
            _HUB_ROWS.clear()  # one Hub source kept: enough for a preview typed row after row
            _HUB_ROWS[key] = stream_rows(source, commit, token)
    except HubImportError as error:
        raise InvalidInput(str(error)) from None
    name = f"hub:{source.repo_id}@{commit}#" + (f"{source.config}:" if source.config else "") + source.split
    try:
        return Source(name, _HUB_ROWS[key])
    except TemplateError as error:
        raise refused(error) from None


def file_source(path: str | Path, *, columns: list[str] | None = None) -> Source:
    """A labelled file as a source (see curation.templates.sources.read_rows)."""
    try:
        return read_source(path, columns=columns)
    except TemplateError as error:
        raise refused(error) from None


def preview(session: Session, actor: Actor, source: Source, template: Template, mapping: FieldMapping,
            count: int = 5) -> list[PreviewRow]:
    """The template (saved or not) on `count` sample rows of the source; nothing is written."""
    require_curator(actor)
    try:
        return preview_rows(source.rows, template, mapping, columns=source.columns, count=count)
    except TemplateError as error:
        raise refused(error) from None


@dataclass
class ApplyReport:
    dataset: str
    created: int
    duplicates_skipped: int
    outcome: Outcome
    seconds: float
    record_ids: list[int] = field(default_factory=list)


def apply(session: Session, actor: Actor, source: Source, templates: list[Template], mapping: FieldMapping, *,
          dataset: str, how: str = "round_robin", seed: int = 0, cap: int | None = None) -> ApplyReport:
    """Records made by the templates from the source's rows, stored (as drafts) in `dataset`, created if new.

    Everything renders before the first insert; exact duplicates of the dataset's records are skipped.
    The caller commits; on any error nothing of this run is written.
    """
    require_curator(actor)
    name = (dataset or "").strip()
    refuse_null_bytes({"dataset name": name})
    if not name:
        raise InvalidInput("name the dataset the records go to")
    unstored = [t.label for t in templates if t.stored_id is None]
    if unstored:
        raise InvalidInput(f"save template {unstored[0]} first: a record names the template version it came from")
    started = time.perf_counter()
    outcome = Outcome()
    try:
        made = list(render_rows(source.rows, templates, mapping, how=how, seed=int(seed or 0),
                                cap=int(cap) if cap else None, columns=source.columns, outcome=outcome))
    except TemplateError as error:
        raise refused(error) from None
    target = repo.get_or_create_dataset(session, name)
    seen = repo.existing_hashes(session, target.id)
    drafts, hashes, provenances = [], [], []
    for item in made:
        if "\x00" in item.prompt or "\x00" in item.target:
            raise InvalidInput(f"template {item.template.label}, row {item.row}: the text holds a null byte (\\0), "
                               "which no database here can store; clean the source row")
        draft = RecordDraft(instruction=item.prompt, outputs=[item.target], source_file=source.name,
                            source_line=item.row)
        digest = draft.hash()
        if digest in seen:
            continue
        seen.add(digest)
        drafts.append(draft)
        hashes.append(digest)
        provenances.append({"template": item.template.provenance(), "source": source.where(item.row),
                            "outputs": [{"by": "template"}]})
    ids: list[int] = []
    for start in range(0, len(drafts), BATCH):
        ids += repo.insert_records(session, target.id, drafts[start:start + BATCH], by=actor.name,
                                   reason=f"made by templates from {source.name}", origin="template",
                                   hashes=hashes[start:start + BATCH], provenances=provenances[start:start + BATCH])
    session.flush()
    return ApplyReport(target.name, len(ids), len(made) - len(ids), outcome, time.perf_counter() - started, ids)


def records_by_template(session: Session, actor: Actor, dataset: str) -> Counter:
    """How many records of the dataset each template made ({template name: count})."""
    require_curator(actor)
    target = repo.get_dataset(session, dataset)
    if target is None:
        return Counter()
    provenances = session.execute(select(Record.provenance).where(Record.dataset_id == target.id,
                                                                  Record.origin == "template")).scalars()
    return Counter(((p or {}).get("template") or {}).get("name") for p in provenances)
