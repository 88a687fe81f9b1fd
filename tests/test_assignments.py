"""Assignment and queues (issue 16): a curator splits the work with an overlap, annotators answer from their queue,
the curator follows progress, reassigns, reconciles overlapping answers and reads the agreement (SQLite and
PostgreSQL)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from curation.records import RecordDraft
from curation.services import assignments as work
from curation.services.admin import add_user
from curation.services.bulk_review import bulk_review, undo_bulk_action
from curation.services.errors import InvalidInput, PermissionDenied
from curation.services.permissions import Actor
from db import repo
from db.assignment_tables import Assignment
from db.models import RecordStatus, Role

CURA = Actor("cura", Role.curator)
A, B, C = (Actor(n, Role.annotator) for n in ("ada", "bo", "cy"))
TEAM = ["ada", "bo", "cy"]


@pytest.fixture
def seeded(session):
    for name in TEAM:
        add_user(session, name, "annotator", "pw-long-enough-1")
    add_user(session, "cura", "curator", "pw-long-enough-1")
    dataset_id = repo.get_or_create_dataset(session, "team").id
    ids = repo.insert_records(session, dataset_id, [RecordDraft(instruction=f"Explain idea {i}.",
                                                                outputs=[f"Idea {i} means this."])
                                                    for i in range(10)], by="import", reason="imported",
                              status=RecordStatus.submitted)
    session.commit()
    return ids


def test_ten_items_three_annotators_overlap_two_make_twenty_assignments_seven_seven_six(session, seeded):
    result = work.split_evenly(session, CURA, dataset="team", annotators=TEAM, overlap=2)
    session.commit()
    assert (result.items, len(result.assignments)) == (10, 20)
    assert result.loads == {"ada": 7, "bo": 7, "cy": 6}
    per_item = {}
    for row in session.execute(select(Assignment)).scalars():
        per_item.setdefault(row.item_id, set()).add(row.annotator)
    assert set(per_item) == set(seeded) and all(len(names) == 2 for names in per_item.values())
    assert result.summary() == ("Assigned 10 items as 20 assignments; open per annotator: ada 7, bo 7, cy 6.")
    # nothing is left unassigned, so a second split gives nothing out
    again = work.split_evenly(session, CURA, dataset="team", annotators=TEAM, overlap=2)
    assert (again.items, again.assignments) == (0, [])


def test_only_curators_assign_and_an_overlap_needs_enough_annotators(session, seeded):
    with pytest.raises(PermissionDenied, match="only a curator"):
        work.split_evenly(session, A, dataset="team", annotators=TEAM)
    with pytest.raises(InvalidInput, match="overlap of 4 needs at least 4 annotators"):
        work.split_evenly(session, CURA, dataset="team", annotators=TEAM, overlap=4)
    with pytest.raises(InvalidInput, match="no user is named 'zed'"):
        work.assign(session, CURA, dataset="team", item_ids=seeded[:2], annotators=["ada", "zed"])
    with pytest.raises(InvalidInput, match="not in team"):
        work.assign(session, CURA, dataset="team", item_ids=[seeded[0], 99_999], annotators=["ada"])
    assert session.execute(select(Assignment)).first() is None


def test_the_queue_loop_save_submit_skip_and_next(session, seeded):
    work.assign(session, CURA, dataset="team", item_ids=seeded[:3], annotators=["ada"])
    session.commit()
    queue = work.my_queue(session, A)
    assert [q.status for q in queue] == ["open"] * 3 and work.my_queue(session, B) == []
    first = work.queue_item(session, A, queue[0].assignment_id)
    assert (first.instruction, first.current_output) == ("Explain idea 0.", "Idea 0 means this.")
    with pytest.raises(PermissionDenied, match="assigned to someone else"):
        work.queue_item(session, B, queue[0].assignment_id)
    work.save_answer(session, A, first.assignment_id, answer="half done")
    assert work.queue_item(session, A, first.assignment_id).status == "open"
    with pytest.raises(InvalidInput, match="write your answer"):
        work.submit_answer(session, A, queue[1].assignment_id, answer="  ")
    with pytest.raises(InvalidInput, match="rating is a whole number from 1 to 5"):
        work.submit_answer(session, A, first.assignment_id, answer="x", rating=9)
    done = work.submit_answer(session, A, first.assignment_id, answer="Idea 0 is this.", rating=4)
    assert (done.status, done.answer, done.rating) == ("done", "Idea 0 is this.", 4)
    skipped = work.skip_item(session, A, queue[1].assignment_id, note="unclear instruction")
    assert skipped.status == "skipped"
    queue = work.my_queue(session, A)
    assert [q.status for q in queue] == ["open", "skipped", "done"]
    assert work.next_open(queue, None).item_id == seeded[2]
    assert work.next_open(queue, queue[0].assignment_id).item_id == seeded[2]  # wraps around to the only open one
    rows = {(p.annotator, p.open, p.done, p.skipped) for p in work.progress(session, CURA, dataset="team")}
    assert rows == {("ada", 1, 1, 1)}
    with pytest.raises(PermissionDenied):
        work.progress(session, A)


def test_reassign_moves_open_items_and_keeps_answered_ones(session, seeded):
    made = work.assign(session, CURA, dataset="team", item_ids=seeded[:4], annotators=["ada"])
    work.submit_answer(session, A, made[0], answer="done by ada")
    moved = work.reassign(session, CURA, dataset="team", from_annotator="ada", to_annotator="bo")
    session.commit()
    assert moved == 3
    assert [q.status for q in work.my_queue(session, A)] == ["done"]
    assert [q.item_id for q in work.my_queue(session, B)] == seeded[1:4]
    # and back: bo's open items return to ada, whose withdrawn rows open again
    assert work.reassign(session, CURA, dataset="team", from_annotator="bo", to_annotator="ada") == 3
    assert sorted(q.status for q in work.my_queue(session, A)) == ["done", "open", "open", "open"]


def test_reconcile_keeps_an_answer_through_the_versioned_path_and_closes_the_answers(session, seeded):
    record_id = seeded[0]
    made = work.assign(session, CURA, dataset="team", item_ids=[record_id], annotators=["ada", "bo"], overlap=2)
    work.submit_answer(session, A, made[0], answer="The cat sat on the mat.")
    assert work.answers_to_reconcile(session, CURA, dataset="team") == []  # bo has not answered yet
    assert len(work.answers_to_reconcile(session, CURA, dataset="team", include_waiting=True)) == 1
    work.submit_answer(session, B, made[1], answer="A cat sat on the mat.")
    session.commit()
    [item] = work.answers_to_reconcile(session, CURA, dataset="team")
    assert [name for name, _, _ in item.answers] == ["ada", "bo"]
    assert item.agreement == pytest.approx(5 / 6)  # ROUGE-L F1: 5 of 6 words in common
    version = work.reconcile(session, CURA, record_id=record_id, output="The cat sat on the mat.",
                             how="kept ada's answer")
    session.commit()
    record = repo.get_record(session, record_id)
    assert (record.outputs, record.version, version) == (["The cat sat on the mat."], 2, 2)
    assert repo.history(session, "record", record_id)[-1].reason == \
        "reconciled the answers of ada, bo: kept ada's answer"
    assert work.answers_to_reconcile(session, CURA, dataset="team") == []
    with pytest.raises(InvalidInput, match="already reconciled"):
        work.save_answer(session, A, made[0], answer="changed my mind")
    with pytest.raises(PermissionDenied):
        work.reconcile(session, A, record_id=record_id, output="x", how="mine")


def test_agreement_per_item_and_per_annotator_on_a_hand_checked_example(session, seeded):
    """Two records, three annotators each.  Record 0: ada and bo wrote the same words, cy wrote 2 of their 4 (ROUGE-L
    precision 1, recall 1/2: F1 2/3 each) -> item (1 + 2/3 + 2/3) / 3 = 7/9.  Record 1: all three wrote the same -> 1.
    Per annotator: ada (1 + 2/3 + 1 + 1) / 4 = 11/12 = bo; cy (2/3 + 2/3 + 1 + 1) / 4 = 5/6."""
    texts = {seeded[0]: {"ada": "red green blue black", "bo": "red green blue black", "cy": "red green"},
             seeded[1]: {name: "all the same" for name in TEAM}}
    ratings = {seeded[0]: {"ada": 5, "bo": 5, "cy": 1}, seeded[1]: {"ada": 2, "bo": 2, "cy": 2}}
    made = work.assign(session, CURA, dataset="team", item_ids=list(texts), annotators=TEAM, overlap=3)
    people = {n: Actor(n, Role.annotator) for n in TEAM}
    for assignment_id in made:
        row = session.get(Assignment, assignment_id)
        work.submit_answer(session, people[row.annotator], assignment_id, answer=texts[row.item_id][row.annotator],
                           rating=ratings[row.item_id][row.annotator])
    session.commit()
    report = work.agreement_report(session, dataset="team")
    assert report.items == 2 and report.mean_item == pytest.approx((7 / 9 + 1) / 2)
    assert report.per_annotator == pytest.approx({"ada": 11 / 12, "bo": 11 / 12, "cy": 5 / 6})
    assert report.lowest[0] == (seeded[0], pytest.approx(7 / 9))
    # ordinal alpha of (5,5,1) and (2,2,2): computed by the krippendorff package; only its sign is obvious here
    assert report.rated_items == 2 and report.rating_alpha is not None and report.rating_alpha < 0.5
    assert "2 records answered by two or more annotators: mean agreement of outputs 0.89" in report.summary()


def test_bulk_assign_from_browse_is_undone_by_withdrawing_the_open_assignments(session, seeded):
    result = bulk_review(session, CURA, record_ids=seeded[:5], action="assign", annotators=["ada", "bo"],
                         overlap=1, dataset="team")
    session.commit()
    assert result.changed == 5
    assert len(work.my_queue(session, A)) == 3 and len(work.my_queue(session, B)) == 2
    first = work.my_queue(session, A)[0]
    work.submit_answer(session, A, first.assignment_id, answer="answered before the undo")
    undone = undo_bulk_action(session, CURA, result.action_id)
    session.commit()
    assert undone.changed == 4
    assert [q.status for q in work.my_queue(session, A)] == ["done"] and work.my_queue(session, B) == []


def test_the_cli_splits_reports_progress_and_refuses_bad_input(db_url, engine, seeded, session):
    import os
    import subprocess
    import sys
    from pathlib import Path

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "curation", "--db", db_url, "assign", *args],
                              cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=180,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})

    done = cli("split", "--dataset", "team", "--annotators", "ada,bo,cy", "--overlap", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Assigned 10 items as 20 assignments; open per annotator: ada 7, bo 7, cy 6."
    shown = cli("progress", "--dataset", "team")
    assert shown.returncode == 0 and [line.split()[:3] for line in shown.stdout.splitlines()[1:]] == [
        ["ada", "team", "7"], ["bo", "team", "7"], ["cy", "team", "6"]]
    bad = cli("split", "--dataset", "team", "--annotators", "ada,zed")
    assert bad.returncode != 0 and "no user is named 'zed'" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("reassign", "--dataset", "team", "--from", "cy", "--to", "ada").stdout.startswith("moved ")
