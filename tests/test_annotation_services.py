"""Role rules, saves with the version check, tasks, browse, history and overview, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from curation.services import admin, annotation, browse, history, review, tasks
from curation.services.annotation import InvalidInput, RecordForm
from curation.services.permissions import Actor, PermissionDenied
from db import repo
from db.models import Role

ANN = Actor("ann", Role.annotator)
BEN = Actor("ben", Role.annotator)
CURA = Actor("cura", Role.curator)
ROOT = Actor("root", Role.admin)


@pytest.fixture
def studio(session):
    for actor in (ANN, BEN, CURA, ROOT):
        admin.add_user(session, actor.name, actor.role.value, "password-" + actor.name)
    admin.create_dataset(session, ROOT, "demo")
    session.commit()
    return session


def form(**fields) -> RecordForm:
    values = {"dataset": "demo", "instruction": "Name the capital of France.", "outputs": ["Paris"]}
    return RecordForm(**{**values, **fields})


def test_annotator_writes_submits_and_curator_approves_with_history(studio):
    view = annotation.save_record(studio, ANN, form())
    assert (view.status, view.version, view.created_by, view.can_edit) == ("draft", 1, "ann", True)
    view = annotation.save_record(studio, ANN, form(outputs=["Paris."]), record_id=view.id, expected_version=1)
    view = annotation.change_record(studio, ANN, view.id, "submit", expected_version=view.version)
    assert (view.status, view.can_edit) == ("submitted", False)
    view = annotation.change_record(studio, CURA, view.id, "approve", expected_version=view.version)
    assert view.status == "approved"
    entries = history.item_history(studio, "record", view.id)
    assert [(e.version, e.changed_by, e.reason) for e in entries] == [
        (4, "cura", "approved"), (3, "ann", "submitted"), (2, "ann", "edited"), (1, "ann", "created")]
    assert [(c.label, c.old, c.new) for c in entries[2].changes] == [("Output", "Paris", "Paris.")]
    assert entries[2].changes[0].runs == [("equal", "Paris"), ("insert", ".")]
    assert [(c.label, c.old, c.new) for c in entries[0].changes] == [("Status", "submitted", "approved")]


@pytest.mark.parametrize("action", ["approve", "reject", "discard"])
def test_an_annotator_cannot_review(studio, action):
    view = annotation.save_record(studio, ANN, form())
    annotation.change_record(studio, ANN, view.id, "submit", expected_version=1)
    with pytest.raises(PermissionDenied, match=f"only a curator can {action}"):
        annotation.change_record(studio, ANN, view.id, action, expected_version=2, reason="no")


def test_annotators_edit_only_their_own_drafts(studio):
    view = annotation.save_record(studio, ANN, form())
    with pytest.raises(PermissionDenied, match="belongs to ann; annotators edit only their own"):
        annotation.save_record(studio, BEN, form(outputs=["Lyon"]), record_id=view.id, expected_version=1)
    annotation.change_record(studio, ANN, view.id, "submit", expected_version=1)
    with pytest.raises(PermissionDenied, match="this item is submitted"):
        annotation.save_record(studio, ANN, form(outputs=["Lyon"]), record_id=view.id, expected_version=2)
    assert annotation.open_record(studio, BEN, view.id).can_edit is False
    assert repo.get_record(studio, view.id).outputs == ["Paris"]


def test_reject_needs_a_reason_that_the_annotator_sees_then_resubmit(studio):
    view = annotation.save_record(studio, ANN, form())
    annotation.change_record(studio, ANN, view.id, "submit", expected_version=1)
    with pytest.raises(InvalidInput, match="say why it is rejected"):
        annotation.change_record(studio, CURA, view.id, "reject", expected_version=2, reason="  ")
    view = annotation.change_record(studio, CURA, view.id, "reject", expected_version=2, reason="Cite the source")
    seen = annotation.open_record(studio, ANN, view.id)
    assert (seen.status, seen.review_note, seen.can_edit) == ("rejected", "Cite the source", True)
    view = annotation.change_record(studio, ANN, view.id, "submit", expected_version=3,
                                    form=form(outputs=["Paris (source: atlas)"]))
    assert view.status == "submitted"
    assert history.item_history(studio, "record", view.id)[0].reason == "submitted with edits"


def test_second_save_of_the_same_version_is_a_conflict_that_keeps_the_first(studio):
    view = annotation.save_record(studio, ANN, form())
    annotation.save_record(studio, CURA, form(outputs=["Paris, France"]), record_id=view.id, expected_version=1)
    with pytest.raises(repo.ConflictError) as conflict:
        annotation.save_record(studio, ANN, form(outputs=["paris"]), record_id=view.id, expected_version=1)
    assert conflict.value.current["outputs"] == ["Paris, France"]
    mine = repo.history(studio, "record", view.id)[0].snapshot
    assert history.conflict_summary("record", mine, conflict.value.current) == "Output: now “Paris, France”"
    assert repo.get_record(studio, view.id).outputs == ["Paris, France"]


def test_a_draft_needs_an_instruction_and_a_dataset(studio):
    with pytest.raises(InvalidInput, match="the instruction is empty"):
        annotation.save_record(studio, ANN, form(instruction="  "))
    with pytest.raises(InvalidInput, match="there is no dataset named 'nope'"):
        annotation.save_record(studio, ANN, form(dataset="nope"))


def test_only_an_admin_manages_users_and_datasets(studio):
    with pytest.raises(PermissionDenied, match="only an admin"):
        admin.create_dataset(studio, CURA, "other")
    with pytest.raises(PermissionDenied, match="only an admin"):
        admin.admin_add_user(studio, CURA, "eve", "admin", "password-eve")
    assert admin.admin_add_user(studio, ROOT, "eve", "annotator", "password-eve").role == Role.annotator


def task_form(instances: int = 26, **fields) -> tasks.TaskForm:
    values = dict(
        dataset="demo", name="task_capitals", definition="Given a country, answer with its capital city.",
        categories=["Question Answering"], domains=["Geography"],
        examples=[tasks.ExampleForm("positive", "France", "Paris", "Paris is the capital of France."),
                  tasks.ExampleForm("positive", "Japan", "Tokyo", "Tokyo is the capital of Japan."),
                  tasks.ExampleForm("negative", "Italy", "Milan", "Milan is not the capital; Rome is.")],
        instances=[tasks.InstanceForm(f"Country {n}", [f"Capital {n}"], f"capitals-{n}") for n in range(instances)],
    )
    return tasks.TaskForm(**{**values, **fields})


def test_a_task_is_written_validated_saved_submitted_and_approved(studio):
    assert tasks.violations(task_form()) == []
    assert [v.rule for v in tasks.violations(task_form(examples=task_form().examples[:1]))] == [
        "positive-examples", "negative-examples"]
    view = tasks.save_task(studio, ANN, task_form())
    reopened = tasks.open_task(studio, ANN, view.id)
    assert reopened.form == task_form()
    assert (reopened.version, reopened.status) == (1, "draft")
    edited = task_form()
    edited.instances[3] = tasks.InstanceForm("Country 3", ["Capital three"], edited.instances[3].id)
    edited.examples.reverse()
    view = tasks.save_task(studio, ANN, edited, task_id=view.id, expected_version=1)
    view = tasks.change_task(studio, ANN, view.id, "submit", expected_version=view.version)
    assert [i.kind for i in review.review_queue(studio, CURA)] == ["task"]
    view = tasks.change_task(studio, CURA, view.id, "approve", expected_version=view.version)
    assert view.status == "approved"
    statuses = {r[3] for r in browse.browse(studio, browse.BrowseQuery(dataset="demo")).rows}
    assert statuses == {"approved"}
    entries = history.item_history(studio, "task", view.id)
    assert [(e.version, e.changed_by, e.reason) for e in entries] == [
        (4, "cura", "approved"), (3, "ann", "submitted"), (2, "ann", "edited"), (1, "ann", "created")]
    assert [c.label for c in entries[2].changes] == ["Examples", "Instances"]
    assert entries[2].changes[1].runs == [("delete", "capitals-3: Country 3 → Capital 3\n"),
                                          ("insert", "capitals-3: Country 3 → Capital three\n")]
    with pytest.raises(repo.ConflictError):
        tasks.save_task(studio, CURA, task_form(definition="changed"), task_id=view.id, expected_version=1)


def test_browse_filters_sorts_and_pages_in_the_database(studio):
    for n in range(120):
        annotation.save_record(studio, ANN if n % 2 else BEN, form(instruction=f"Question number {n}",
                                                                   category="qa" if n % 3 else "math"))
    page = browse.browse(studio, browse.BrowseQuery(author="ann", category="math", sort="Oldest", page=2,
                                                    page_size=10))
    assert (page.total, page.pages, page.page) == (20, 2, 2)
    assert [row[0] for row in page.rows][:2] == [64, 70]
    assert browse.browse(studio, browse.BrowseQuery(text="number 11")).total == 11  # 11, 110..119
    assert browse.browse(studio, browse.BrowseQuery(text="100%")).total == 0


def test_overview_counts_by_status_category_author_and_day(studio):
    for n in range(3):
        annotation.save_record(studio, ANN, form(instruction=f"Question {n}", category="qa"))
    view = annotation.save_record(studio, BEN, form(instruction="Add 2 and 2.", category="math"))
    annotation.change_record(studio, BEN, view.id, "submit", expected_version=1)
    counts = review.overview(studio, dataset="demo")
    assert counts.by_status == {"draft": 3, "submitted": 1}
    assert counts.by_category == [("qa", 3), ("math", 1)]
    assert counts.by_author == [("ann", 3), ("ben", 1)]
    assert sum(n for _, n in counts.by_day) == 4


def test_training_preview_alpaca_and_a_tokenizer_chat_template(tmp_path):
    from curation.preview import PreviewError, alpaca_prompt, preview
    from curation.records import RecordDraft
    from tests.tiny_model import build_tiny_tokenizer

    record = RecordDraft(instruction="Give three tips for staying healthy.", input="", outputs=["Eat, move, sleep."])
    assert alpaca_prompt(record) == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\nGive three tips for staying healthy.\n\n### Response:\nEat, move, sleep.")
    assert preview(record).tokens is None
    tokenizer = str(build_tiny_tokenizer(tmp_path / "tok"))
    shown = preview(record, template="chat", tokenizer_name=tokenizer)
    assert shown.text == ("<|im_start|>user\nGive three tips for staying healthy.<|im_end|>\n"
                          "<|im_start|>assistant\nEat, move, sleep.<|im_end|>\n")
    from transformers import AutoTokenizer

    assert shown.tokens == len(AutoTokenizer.from_pretrained(tokenizer)(shown.text, add_special_tokens=False).input_ids)
    with pytest.raises(PreviewError, match="cannot load the tokenizer"):
        preview(record, template="chat", tokenizer_name=str(tmp_path / "missing"))


def test_a_task_saved_unchanged_keeps_its_version_and_a_definition_edit_reaches_every_instance(studio):
    view = tasks.save_task(studio, ANN, task_form(instances=5))
    assert tasks.save_task(studio, ANN, task_form(instances=5), task_id=view.id, expected_version=1).version == 1
    edited = tasks.save_task(studio, ANN, task_form(instances=5, definition="Name the capital city."),
                             task_id=view.id, expected_version=1)
    assert edited.version == 2
    instance_ids = [r[0] for r in browse.browse(studio, browse.BrowseQuery(dataset="demo", sort="Oldest")).rows]
    assert {repo.get_record(studio, i).instruction for i in instance_ids} == {"Name the capital city."}
    assert [e.reason for e in history.item_history(studio, "record", instance_ids[0])] == ["task edited", "created"]
