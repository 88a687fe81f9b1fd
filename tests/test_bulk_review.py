"""Bulk review (issue 16): a curator approves, rejects, discards or tags many records at once, each status change
with its own Revision, and undoes one such action as a whole (SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from curation.provenance import MachineText
from curation.records import RecordDraft
from curation.services import annotation
from curation.services.browse import BrowseQuery, browse, matching_ids
from curation.services.bulk_review import bulk_review, last_undoable, recent_bulk_actions, undo_bulk_action
from curation.services.errors import InvalidInput, PermissionDenied
from curation.services.permissions import Actor
from db import repo
from db.models import Record, RecordStatus, Revision, Role
from db.review_tables import BulkAction

CURA = Actor("cura", Role.curator)
ANN = Actor("ann", Role.annotator)


def add(session, dataset: str, n: int, status: RecordStatus, word: str = "Question", **extra) -> list[int]:
    dataset_id = repo.get_or_create_dataset(session, dataset).id
    return repo.insert_records(session, dataset_id, [RecordDraft(instruction=f"{word} {i}?", outputs=[f"Answer {i}."])
                                                     for i in range(n)], by="ann", reason="created", status=status,
                               **extra)


@pytest.fixture
def seeded(session):
    """demo: 1,000 submitted and 30 drafts; other: 200 submitted."""
    ids = {"submitted": add(session, "demo", 1000, RecordStatus.submitted),
           "drafts": add(session, "demo", 30, RecordStatus.draft, word="Draft"),
           "other": add(session, "other", 200, RecordStatus.submitted, word="Other")}
    session.commit()
    return ids


def statuses(session, ids) -> dict[str, int]:
    rows = session.execute(select(Record.status, func.count()).where(Record.id.in_(ids)).group_by(Record.status))
    return {getattr(status, "value", status): count for status, count in rows}


def versions(session, ids) -> set[int]:
    return set(session.execute(select(Record.version).where(Record.id.in_(ids))).scalars())


def revisions(session, record_id: int) -> list[tuple[int, str, str]]:
    return [(r.version, r.snapshot["status"], r.reason) for r in repo.history(session, "record", record_id)]


def test_approve_all_that_match_a_filter_gives_each_its_revision_and_leaves_the_rest(session, seeded):
    chosen = matching_ids(session, BrowseQuery(dataset="demo", status="submitted"))
    assert chosen == seeded["submitted"]
    result = bulk_review(session, CURA, record_ids=chosen, action="approve", dataset="demo")
    session.commit()
    assert (result.action_id, result.changed, result.skipped) == (1, 1000, [])
    assert result.summary() == "Approve #1: 1,000 records changed."
    assert statuses(session, chosen) == {"approved": 1000} and versions(session, chosen) == {2}
    assert session.execute(select(func.count()).select_from(Revision).where(
        Revision.entity_id.in_(chosen), Revision.version == 2)).scalar() == 1000
    first = chosen[0]
    assert revisions(session, first) == [(1, "submitted", "created"), (2, "approved", "approved in bulk action #1")]
    latest = repo.history(session, "record", first)[-1]
    assert latest.changed_by == "cura" and latest.snapshot["updated_by"] == "cura"
    assert latest.snapshot["instruction"] == "Question 0?" and latest.snapshot["review_note"] is None
    # the others are as they were
    assert statuses(session, seeded["drafts"]) == {"draft": 30} and versions(session, seeded["drafts"]) == {1}
    assert statuses(session, seeded["other"]) == {"submitted": 200} and versions(session, seeded["other"]) == {1}
    # the record editor sees the bulk change like any other
    view = annotation.open_record(session, CURA, first)
    assert (view.status, view.version, view.updated_by) == ("approved", 2, "cura")


def test_undo_puts_every_record_back_but_one_changed_in_between(session, seeded):
    chosen = seeded["submitted"]
    done = bulk_review(session, CURA, record_ids=chosen, action="approve", dataset="demo")
    session.commit()
    touched = chosen[10]
    annotation.change_record(session, Actor("root", Role.admin), touched, "discard", expected_version=2)
    session.commit()
    assert last_undoable(session, CURA).describe() == "#1 approve of 1,000 records by cura"
    undone = undo_bulk_action(session, CURA, done.action_id)
    session.commit()
    assert undone.changed == 999
    assert undone.skipped == [(touched, "was changed since by root (now version 3, discarded)")]
    assert undone.summary(undo=True) == (f"Undo of bulk action #1: 999 records changed; 1 left as they were "
                                         f"(#{touched} was changed since by root (now version 3, discarded)).")
    rest = [i for i in chosen if i != touched]
    assert statuses(session, rest) == {"submitted": 999} and versions(session, rest) == {3}
    assert revisions(session, rest[0])[-1] == (3, "submitted", "undo of bulk action #1")
    assert statuses(session, [touched]) == {"discarded": 1}
    assert last_undoable(session, CURA) is None
    [action] = recent_bulk_actions(session, CURA)
    assert (action.undone_by, action.undo_skipped) == ("cura", 1)
    with pytest.raises(InvalidInput, match="bulk action #1 was already undone by cura"):
        undo_bulk_action(session, CURA, done.action_id)


def test_a_record_whose_transition_is_not_allowed_is_reported_and_left_as_it_was(session, seeded):
    mixed = seeded["submitted"][:3] + seeded["drafts"][:2]
    result = bulk_review(session, CURA, record_ids=mixed + [999_999], action="approve")
    session.commit()
    assert result.changed == 3
    assert result.skipped == [(d, "only a submitted item can be approved; this one is draft") for d in mixed[3:]] + [
        (999_999, "does not exist")]
    assert statuses(session, mixed[3:]) == {"draft": 2} and versions(session, mixed[3:]) == {1}
    # discard takes drafts too, but not what is already discarded
    discarded = bulk_review(session, CURA, record_ids=mixed, action="discard")
    assert discarded.changed == 5 and statuses(session, mixed) == {"discarded": 5}
    again = bulk_review(session, CURA, record_ids=mixed[:1], action="discard")
    assert (again.changed, again.skipped) == (0, [(mixed[0], "this item is already discarded")])


def test_reject_needs_one_reason_which_every_record_gets_and_undo_clears(session, seeded):
    chosen = seeded["other"]
    with pytest.raises(InvalidInput, match="say why they are rejected"):
        bulk_review(session, CURA, record_ids=chosen, action="reject", reason="  ")
    assert session.execute(select(func.count()).select_from(BulkAction)).scalar() == 0
    result = bulk_review(session, CURA, record_ids=chosen, action="reject", reason="answers are too short")
    session.commit()
    assert result.changed == 200
    view = annotation.open_record(session, ANN, chosen[0])
    assert (view.status, view.review_note) == ("rejected", "answers are too short")
    assert revisions(session, chosen[0])[-1] == (2, "rejected", "rejected in bulk action #1: answers are too short")
    undo_bulk_action(session, CURA, result.action_id)
    session.commit()
    view = annotation.open_record(session, ANN, chosen[0])
    assert (view.status, view.review_note, view.version) == ("submitted", None, 3)


def test_an_annotator_may_not_act_in_bulk_nor_undo(session, seeded):
    with pytest.raises(PermissionDenied, match="only a curator can review in bulk"):
        bulk_review(session, ANN, record_ids=seeded["submitted"], action="approve")
    done = bulk_review(session, CURA, record_ids=seeded["submitted"][:5], action="approve")
    session.commit()
    with pytest.raises(PermissionDenied, match="only a curator can undo a bulk action"):
        undo_bulk_action(session, ANN, done.action_id)
    assert statuses(session, seeded["submitted"]) == {"approved": 5, "submitted": 995}


def test_approving_machine_drafts_in_bulk_marks_them_approved_and_undo_restores_unreviewed(session):
    entry = MachineText(text="Answer 0.", backend="openai", base_url="http://gpu-box:8000/v1", model="m").entry()
    ids = add(session, "demo", 2, RecordStatus.submitted, origin="generated",
              provenances=[{"outputs": [{**entry, "state": "unreviewed"}]}] * 2)
    session.commit()
    assert browse(session, BrowseQuery(dataset="demo", written_by="unreviewed")).total == 2
    done = bulk_review(session, CURA, record_ids=ids, action="approve")
    session.commit()
    record = repo.get_record(session, ids[0])
    assert record.machine_draft == "approved" and record.provenance["outputs"][0]["approved_by"] == "cura"
    assert repo.history(session, "record", ids[0])[-1].snapshot["machine_draft"] == "approved"
    undo_bulk_action(session, CURA, done.action_id)
    session.commit()
    record = repo.get_record(session, ids[0])
    assert (record.status, record.machine_draft) == (RecordStatus.submitted, "unreviewed")
    assert "approved_by" not in record.provenance["outputs"][0]


def test_tag_in_bulk_then_filter_by_it_and_undo_takes_it_off(session, seeded):
    chosen = seeded["submitted"][:40]
    first = bulk_review(session, CURA, record_ids=chosen[:10], action="tag", tag="check facts")
    result = bulk_review(session, CURA, record_ids=chosen, action="tag", tag=" check  facts ")
    session.commit()
    assert (result.changed, len(result.skipped)) == (30, 10)
    assert result.skipped[0] == (chosen[0], "already has the tag “check facts”")
    tagged = browse(session, BrowseQuery(dataset="demo", tag="check facts", sort="Oldest"))
    assert tagged.total == 40 and tagged.columns[-2] == "Tags" and tagged.rows[0][-2] == "check facts"
    assert matching_ids(session, BrowseQuery(tag="check facts", status="submitted")) == chosen
    assert last_undoable(session, CURA).describe() == "#2 add tag “check facts” of 30 records by cura"
    undo_bulk_action(session, CURA, result.action_id)  # only the 30 it tagged lose the tag
    session.commit()
    assert matching_ids(session, BrowseQuery(tag="check facts")) == chosen[:10]
    removed = bulk_review(session, CURA, record_ids=chosen[:10], action="untag", tag="check facts")
    assert removed.changed == 10 and matching_ids(session, BrowseQuery(tag="check facts")) == []
    undo_bulk_action(session, CURA, removed.action_id)
    assert matching_ids(session, BrowseQuery(tag="check facts")) == chosen[:10]
    assert versions(session, chosen) == {1}  # tags are not part of a record's version
    assert first.action_id == 1


def test_bulk_actions_on_the_records_a_lasso_selected(session, seeded):
    lasso = seeded["submitted"][100:150] + seeded["drafts"][:5]
    assert browse(session, BrowseQuery(ids=lasso)).total == 55
    assert matching_ids(session, BrowseQuery(ids=lasso, status="submitted")) == seeded["submitted"][100:150]
    result = bulk_review(session, CURA, record_ids=matching_ids(session, BrowseQuery(ids=lasso)), action="approve")
    assert result.changed == 50 and len(result.skipped) == 5

