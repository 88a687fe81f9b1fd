"""Selection use cases: choose records to a budget by stored scores (DEITA, top-N, threshold), keep the result as
a named selection with its recipe and the dataset revision it ran on, list, read and compare selections.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import delete, insert
from sqlmodel import Session, select

from curation import selection as rules
from curation.publish import DEFAULT_STATUSES, PublishError, plan_publication, push_config
from curation.services.permissions import Actor, PermissionDenied
from curation.services.scores import ScoreError, Vectors, _dataset_id, default_vectors, score_arrays
from db.models import Record, RecordStatus
from db.score_tables import Selection, SelectionLeftOut, SelectionRecord

METHODS = ("deita", "top", "threshold")
VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


class SelectionError(ScoreError):
    """A selection that cannot be made or found, said in the user's words."""


@dataclass
class SelectionSummary:
    name: str
    dataset: str
    size: int
    recipe: dict
    revision: str
    created_by: str | None
    created_at: str
    seconds: float = 0.0


@dataclass
class Comparison:
    a: SelectionSummary
    b: SelectionSummary
    both: list[int] = field(default_factory=list)
    only_a: list[int] = field(default_factory=list)
    only_b: list[int] = field(default_factory=list)

    @property
    def jaccard(self) -> float:
        union = len(self.both) + len(self.only_a) + len(self.only_b)
        return len(self.both) / union if union else 1.0


def dataset_revision(session: Session, dataset_id: int) -> str:
    """A hash of the (record id, version) pairs of the dataset's live records: what a selection ran on."""
    rows = session.connection().execute(select(Record.id, Record.version).where(
        Record.dataset_id == dataset_id, Record.status != RecordStatus.discarded).order_by(Record.id))
    digest = hashlib.sha256()
    for record_id, version in rows:
        digest.update(f"{record_id}:{version};".encode())
    return digest.hexdigest()[:16]


def _summary(row: Selection, dataset: str, seconds: float = 0.0) -> SelectionSummary:
    return SelectionSummary(row.name, dataset, row.size, row.recipe, row.revision, row.created_by,
                            row.created_at.isoformat(timespec="seconds"), seconds)


def choose(method: str, scores, vectors_of, *, n: int | None, threshold: float, minimum: float | None,
           left_out: dict | None = None):
    """Row indices a recipe takes, in the order taken (DEITA fills `left_out` with the rows it skipped)."""
    if method == "deita":
        if not n:
            raise SelectionError("DEITA selection needs a budget N")
        return rules.deita_select(scores, vectors_of(), n, threshold, left_out)
    if method == "top":
        if not n:
            raise SelectionError("top-N selection needs N")
        return rules.top_n(scores, n)
    if method == "threshold":
        if minimum is None:
            raise SelectionError("threshold selection needs a minimum score")
        taken = rules.above_threshold(scores, minimum)
        return taken[:n] if n else taken
    raise SelectionError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")


def run_selection(session: Session, *, dataset: str, name: str, weights: dict[str, float], method: str = "deita",
                  n: int | None = None, threshold: float = 0.1, minimum: float | None = None,
                  actor: Actor | None, vectors: Vectors | None = None, replace: bool = False) -> SelectionSummary:
    """Select records by the weighted stored scores and store the selection `name` with its recipe."""
    if actor is not None and not actor.reviews:
        raise PermissionDenied("only a curator or admin makes selections")
    started = time.perf_counter()
    name = name.strip()
    if not VALID_NAME.match(name):
        raise SelectionError("name the selection with letters, digits, '-' or '_' (it becomes a Hub config name)")
    if not weights:
        raise SelectionError("choose at least one score to order by")
    dataset_id = _dataset_id(session, dataset)
    existing = session.exec(select(Selection).where(Selection.dataset_id == dataset_id, Selection.name == name)).first()
    if existing is not None and not replace:
        raise SelectionError(f"a selection named {name!r} already exists in {dataset!r}")
    records, arrays = score_arrays(session, dataset=dataset, names=list(weights))
    if unscored := [s for s, values in arrays.items() if not (values == values).any()]:
        raise SelectionError(f"no record of {dataset!r} has a {unscored[0]!r} score yet: score the dataset first")
    scores = rules.combined_score(arrays, weights)
    embed = vectors or default_vectors(session)
    skipped: dict[int, tuple[int, float]] = {}
    taken = choose(method, scores, lambda: embed(records), n=n, threshold=threshold, minimum=minimum,
                   left_out=skipped)
    recipe = {"method": method, "weights": dict(weights), "n": n, "threshold": threshold if method == "deita" else None,
              "minimum": minimum, "records_considered": len(records)}
    if existing is not None:
        for table in SelectionRecord.__table__, SelectionLeftOut.__table__:
            session.connection().execute(delete(table).where(table.c.selection_id == existing.id))
        session.delete(existing)
        session.flush()
    row = Selection(dataset_id=dataset_id, name=name, recipe=recipe, revision=dataset_revision(session, dataset_id),
                    size=len(taken), created_by=actor.name if actor else None)
    session.add(row)
    session.flush()
    members = [{"selection_id": row.id, "record_id": records[i]["id"], "rank": rank} for rank, i in enumerate(taken)]
    for start in range(0, len(members), 5000):
        session.connection().execute(insert(SelectionRecord.__table__), members[start:start + 5000])
    left = [{"selection_id": row.id, "record_id": records[i]["id"], "too_close_to": records[j]["id"],
             "similarity": similarity} for i, (j, similarity) in skipped.items()]
    for start in range(0, len(left), 5000):
        session.connection().execute(insert(SelectionLeftOut.__table__), left[start:start + 5000])
    session.commit()
    session.refresh(row)
    return _summary(row, dataset, time.perf_counter() - started)


@dataclass
class Preview:
    """What a recipe would take, before anything is stored: the Quality view's live budget counter."""
    taken: int
    left_out: int  # skipped by DEITA's rule as too close to a record already taken
    considered: int  # records with every weighted score
    records: int  # live records of the dataset
    taken_ids: list[int] = field(default_factory=list)

    def sentence(self) -> str:
        line = f"Would take **{self.taken:,}** of {self.records:,} records"
        if self.considered < self.records:
            line += f" ({self.records - self.considered:,} have no score yet and are never taken)"
        if self.left_out:
            line += f"; {self.left_out:,} left out as too close to a record already taken"
        return line + "."


def preview_selection(session: Session, *, dataset: str, weights: dict[str, float], method: str = "deita",
                      n: int | None = None, threshold: float = 0.1, minimum: float | None = None,
                      vectors: Vectors | None = None) -> Preview:
    """How many records a recipe would take (and how many DEITA would leave out), without storing it."""
    if not weights:
        raise SelectionError("choose at least one score to order by")
    records, arrays = score_arrays(session, dataset=dataset, names=list(weights))
    scores = rules.combined_score(arrays, weights) if records else np.zeros(0)
    skipped: dict[int, tuple[int, float]] = {}
    embed = vectors or default_vectors(session)
    taken = choose(method, scores, lambda: embed(records), n=n, threshold=threshold, minimum=minimum,
                   left_out=skipped) if records else []
    return Preview(len(taken), len(skipped), int(np.count_nonzero(~np.isnan(scores))), len(records),
                   [records[i]["id"] for i in taken])


def _selection(session: Session, dataset: str, name: str) -> Selection:
    row = session.exec(select(Selection).where(Selection.dataset_id == _dataset_id(session, dataset),
                                               Selection.name == name)).first()
    if row is None:
        raise SelectionError(f"no selection named {name!r} in {dataset!r}")
    return row


def selections(session: Session, *, dataset: str) -> list[SelectionSummary]:
    """The dataset's selections, newest first."""
    rows = session.exec(select(Selection).where(Selection.dataset_id == _dataset_id(session, dataset))
                        .order_by(Selection.created_at.desc(), Selection.id.desc())).all()
    return [_summary(row, dataset) for row in rows]


def selection_of(session: Session, *, dataset: str, name: str) -> SelectionSummary:
    return _summary(_selection(session, dataset, name), dataset)


def selected_ids(session: Session, *, dataset: str, name: str) -> list[int]:
    """The record ids a selection took, in the order it took them."""
    row = _selection(session, dataset, name)
    return list(session.exec(select(SelectionRecord.record_id).where(SelectionRecord.selection_id == row.id)
                             .order_by(SelectionRecord.rank)).all())


def compare_selections(session: Session, *, dataset: str, a: str, b: str) -> Comparison:
    """What two selections share and what each alone took (record ids, in each one's order)."""
    ids_a, ids_b = selected_ids(session, dataset=dataset, name=a), selected_ids(session, dataset=dataset, name=b)
    set_a, set_b = set(ids_a), set(ids_b)
    return Comparison(selection_of(session, dataset=dataset, name=a), selection_of(session, dataset=dataset, name=b),
                      both=[i for i in ids_a if i in set_b], only_a=[i for i in ids_a if i not in set_b],
                      only_b=[i for i in ids_b if i not in set_a])


def left_out_of(session: Session, *, dataset: str, name: str) -> list[tuple[int, int, float]]:
    """(record id, the taken record it was too close to, their similarity) for each record DEITA's rule skipped,
    most similar first."""
    row = _selection(session, dataset, name)
    rows = session.exec(select(SelectionLeftOut).where(SelectionLeftOut.selection_id == row.id)
                        .order_by(SelectionLeftOut.similarity.desc(), SelectionLeftOut.record_id)).all()
    return [(r.record_id, r.too_close_to, r.similarity) for r in rows]


def instructions_of(session: Session, record_ids: list[int]) -> dict[int, str]:
    """{record id: its instruction} for the records a view lists by id."""
    if not record_ids:
        return {}
    rows = session.connection().execute(select(Record.id, Record.instruction).where(Record.id.in_(record_ids)))
    return dict(rows.all())


def selection_notes(session: Session, *, record_id: int) -> list[str]:
    """A line per selection of the record's dataset: taken (at which rank), left out (too close to which record),
    or not taken; what the record editor shows beside the scores."""
    record = session.get(Record, record_id)
    if record is None:
        return []
    notes = []
    for row in session.exec(select(Selection).where(Selection.dataset_id == record.dataset_id)
                            .order_by(Selection.created_at.desc(), Selection.id.desc())).all():
        member = session.get(SelectionRecord, (row.id, record_id))
        skipped = session.get(SelectionLeftOut, (row.id, record_id))
        if member is not None:
            notes.append(f"Selection `{row.name}`: taken, {member.rank + 1:,} of {row.size:,}")
        elif skipped is not None:
            notes.append(f"Selection `{row.name}`: left out: too close to #{skipped.too_close_to} "
                         f"(similarity {skipped.similarity:.2f})")
        else:
            notes.append(f"Selection `{row.name}`: not taken")
    return notes


def delete_selection(session: Session, *, dataset: str, name: str, actor: Actor | None) -> None:
    if actor is not None and not actor.reviews:
        raise PermissionDenied("only a curator or admin deletes selections")
    row = _selection(session, dataset, name)
    for table in SelectionRecord.__table__, SelectionLeftOut.__table__:
        session.connection().execute(delete(table).where(table.c.selection_id == row.id))
    session.delete(row)
    session.commit()


@dataclass
class PublishedSelection:
    name: str
    repo_id: str
    commit_id: str  # the dataset card's commit: the revision that loads the selection's config
    records: int  # of the selection's records, those of the published statuses
    publication_id: int | None = None  # the stored Publication, listed among the dataset's publications


def selection_card_section(summary: SelectionSummary, records: int, config_format: str) -> tuple[str, str]:
    """(marker, Markdown) of the card section that states a published selection's recipe."""
    section = (f"## Selection `{summary.name}`\n\n"
               f"Hub config `{summary.name}` ({config_format} format, {records} records) holds "
               f"{rules.describe_recipe(summary.recipe)}\n\n"
               f"- Scores and weights: {', '.join(f'{k} {v:g}' for k, v in summary.recipe['weights'].items())}\n"
               f"- Dataset revision it ran on: `{summary.revision}` (a hash of the record ids and versions)\n"
               f"- Made by {summary.created_by or 'the command line'} on {summary.created_at}\n")
    return f"selection:{summary.name}", section


def publish_selection(session: Session, *, dataset: str, name: str, repo_id: str, token: str | None,
                      private: bool = True, config_format: str = "messages",
                      statuses=DEFAULT_STATUSES, actor: Actor | None = None,
                      progress=None) -> PublishedSelection:
    """Push the selection's records (of `statuses`) to `repo_id` as its own config, named after it, state its
    recipe in the dataset card, and store the push as a Publication of that one config at the card's commit."""
    from curation.publish import CONFIGS
    from curation.services.publishing import record_publication

    if actor is not None and not actor.reviews:
        raise PermissionDenied("only a curator or admin publishes datasets and starts training")
    if "/" not in repo_id or repo_id.count("/") != 1:
        raise PublishError(f"repo id {repo_id!r} must look like namespace/name")
    if name in CONFIGS:  # its config would replace the dataset's own format of that name on the Hub
        raise PublishError(f"a selection named {name!r} would replace the dataset's {name} config on the Hub: "
                           "make it again under another name")
    summary = selection_of(session, dataset=dataset, name=name)
    ids = selected_ids(session, dataset=dataset, name=name)
    plan = plan_publication(session, dataset=dataset, repo_id=repo_id, statuses=statuses, configs=[config_format],
                            only_ids=ids)
    records = sum(plan.split_counts.values())
    commit = push_config(plan, repo_id=repo_id, config_name=name, private=private, token=token, progress=progress,
                         card_section=selection_card_section(summary, records, config_format))
    publication = record_publication(session, plan, repo_id=repo_id, commit_id=commit, private=private,
                                     configs=[name], actor=actor)
    return PublishedSelection(name, repo_id, commit, records, publication.id)
