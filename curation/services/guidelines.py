"""A dataset's annotation guidelines: read by everyone who works on it, written (as a new version) by curators."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from curation import guidelines as rules_of
from curation.services.annotation import InvalidInput
from curation.services.permissions import Actor, PermissionDenied
from db import repo
from db.guidelines_tables import Guidelines
from db.repo import ConflictError


@dataclass
class GuidelinesView:
    dataset: str
    version: int  # 0: none written yet
    text: str
    written_by: str | None = None
    written_at: datetime | None = None
    reason: str | None = None


def dataset_id_of(session: Session, name: str) -> int:
    dataset = repo.get_dataset(session, name)
    if dataset is None:
        raise InvalidInput(f"dataset {name!r} does not exist")
    return dataset.id


def _latest(session: Session, dataset_id: int) -> Guidelines | None:
    return session.exec(select(Guidelines).where(Guidelines.dataset_id == dataset_id)
                        .order_by(Guidelines.version.desc()).limit(1)).first()


def _view(dataset: str, row: Guidelines | None) -> GuidelinesView:
    if row is None:
        return GuidelinesView(dataset, 0, "")
    return GuidelinesView(dataset, row.version, row.text, row.written_by, row.written_at, row.reason)


def current_guidelines(session: Session, *, dataset: str) -> GuidelinesView:
    """The guidelines in force (version 0 and no text when none were written)."""
    return _view(dataset, _latest(session, dataset_id_of(session, dataset)))


def guidelines_version(session: Session, *, dataset: str, version: int) -> GuidelinesView:
    row = session.exec(select(Guidelines).where(Guidelines.dataset_id == dataset_id_of(session, dataset),
                                                Guidelines.version == int(version))).first()
    if row is None:
        raise InvalidInput(f"dataset {dataset!r} has no guidelines version {version}")
    return _view(dataset, row)


def guidelines_history(session: Session, *, dataset: str) -> list[GuidelinesView]:
    """Every version, newest first."""
    rows = session.exec(select(Guidelines).where(Guidelines.dataset_id == dataset_id_of(session, dataset))
                        .order_by(Guidelines.version.desc()))
    return [_view(dataset, row) for row in rows]


def save_guidelines(session: Session, actor: Actor | None, *, dataset: str, text: str, expected_version: int,
                    reason: str | None = None) -> GuidelinesView:
    """Write a new version (curators and admins), unless someone saved one since `expected_version`.

    Restoring an old version is saving its text again: every version stays in the history.
    """
    if actor is None:
        raise PermissionDenied("sign in first")
    if not actor.reviews:
        raise PermissionDenied("only a curator edits the guidelines")
    text = (text or "").strip()
    why = rules_of.problem(text)
    if why:
        raise InvalidInput(why)
    dataset_id = dataset_id_of(session, dataset)
    latest = _latest(session, dataset_id)
    current = latest.version if latest else 0
    if int(expected_version) != current:
        raise ConflictError("guidelines", dataset_id, int(expected_version),
                            {"version": current, "updated_by": latest.written_by if latest else None})
    if latest is not None and latest.text == text:
        return _view(dataset, latest)  # nothing changed: no new version
    row = Guidelines(dataset_id=dataset_id, version=current + 1, text=text, written_by=actor.name,
                     reason=(reason or "").strip() or None)
    session.add(row)
    session.commit()
    return _view(dataset, row)


def cited_checks(session: Session, *, dataset: str | None) -> dict[str, str]:
    """Check name -> the anchor of the guideline in force that cites it ({} without guidelines or a dataset)."""
    if not dataset or repo.get_dataset(session, dataset) is None:
        return {}
    text = current_guidelines(session, dataset=dataset).text
    return {name: rule.anchor for name, rule in rules_of.rule_for_checks(text).items()}
