"""Text holding a null byte (U+0000) is refused, naming the field, on SQLite and PostgreSQL alike.

PostgreSQL's text type cannot store U+0000; rather than store it on one database and crash on the other,
every editor and every importer refuses it and says where it is. It is never stripped silently.
"""
from __future__ import annotations

import json

import pytest

from curation.cli import main
from curation.formats import FormatError, read_file
from curation.services import admin, annotation, tasks
from curation.services.annotation import InvalidInput
from db import repo
from db.engine import open_database, session_for

from tests.test_annotation_services import ANN, CURA, ROOT, form, studio  # noqa: F401 (studio: a fixture)


def task_form(**fields) -> tasks.TaskForm:
    values = dict(
        dataset="demo", name="task_capitals", definition="Given a country, answer with its capital city.",
        categories=["Question Answering"], domains=["Geography"],
        examples=[tasks.ExampleForm("positive", "France", "Paris", "Paris is the capital of France."),
                  tasks.ExampleForm("negative", "Italy", "Milan", "Milan is not the capital; Rome is.")],
        instances=[tasks.InstanceForm(f"Country {n}", [f"Capital {n}"], f"capitals-{n}") for n in range(8)],
    )
    return tasks.TaskForm(**{**values, **fields})


def refused(field_name: str) -> str:
    return f"the {field_name} holds a null byte (\\0); remove it and save again"


# ---- the editors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, field_name", [
    ({"instruction": "Name the capital\x00 of France."}, "instruction"),
    ({"input": "France\x00"}, "input"),
    ({"outputs": ["Par\x00is"]}, "output"),
    ({"outputs": ["Paris", "It is Par\x00is."]}, "output 2"),
    ({"system_prompt": "You answer\x00 briefly."}, "system prompt"),
    ({"category": "open_qa\x00"}, "category"),
])
def test_a_new_record_holding_a_null_byte_is_refused_naming_the_field(studio, fields, field_name):
    before = repo.table_counts(studio)
    with pytest.raises(InvalidInput) as refusal:
        annotation.save_record(studio, ANN, form(**fields))
    assert str(refusal.value) == refused(field_name)
    studio.rollback()
    assert repo.table_counts(studio) == before


def test_an_edit_holding_a_null_byte_is_refused_and_the_stored_record_is_unchanged(studio):
    view = annotation.save_record(studio, ANN, form())
    studio.commit()
    with pytest.raises(InvalidInput) as refusal:
        annotation.change_record(studio, ANN, view.id, "save", expected_version=view.version,
                                 form=form(outputs=["Paris\x00"]))
    assert str(refusal.value) == refused("output")
    studio.rollback()
    stored = repo.get_record(studio, view.id)
    assert (stored.version, stored.outputs) == (1, ["Paris"])
    assert len(repo.history(studio, "record", view.id)) == 1


def test_a_task_holding_a_null_byte_in_its_definition_or_an_instance_is_refused(studio):
    before = repo.table_counts(studio)
    with pytest.raises(InvalidInput) as refusal:
        tasks.save_task(studio, ANN, task_form(definition="Given a country,\x00 answer with its capital city."))
    assert str(refusal.value) == refused("definition")
    studio.rollback()
    assert repo.table_counts(studio) == before

    view = tasks.save_task(studio, ANN, task_form())
    studio.commit()
    edited = task_form()
    edited.instances[6] = tasks.InstanceForm("Country 6", ["Capital 6", "Capital\x00 six"], "capitals-6")
    with pytest.raises(InvalidInput) as refusal:
        tasks.change_task(studio, ANN, view.id, "save", expected_version=view.version, form=edited)
    assert str(refusal.value) == refused("instance 7 output 2")
    studio.rollback()
    assert tasks.open_task(studio, ANN, view.id).form == task_form()
    assert tasks.get_task(studio, view.id).version == view.version


def test_a_task_example_explanation_holding_a_null_byte_is_refused(studio):
    bad = task_form()
    bad.examples[1] = tasks.ExampleForm("negative", "Italy", "Milan", "Milan is not\x00 the capital.")
    with pytest.raises(InvalidInput) as refusal:
        tasks.save_task(studio, ANN, bad)
    assert str(refusal.value) == refused("example 2 explanation")


def test_a_reject_whose_note_holds_a_null_byte_is_refused(studio):
    record = annotation.save_record(studio, ANN, form())
    annotation.change_record(studio, ANN, record.id, "submit", expected_version=1)
    task = tasks.save_task(studio, ANN, task_form())
    tasks.change_task(studio, ANN, task.id, "submit", expected_version=task.version)
    studio.commit()
    with pytest.raises(InvalidInput) as refusal:
        annotation.change_record(studio, CURA, record.id, "reject", expected_version=2, reason="Cite\x00 the source")
    assert str(refusal.value) == refused("review note")
    with pytest.raises(InvalidInput) as refusal:
        tasks.change_task(studio, CURA, task.id, "reject", expected_version=task.version + 1,
                          reason="Add\x00 more countries")
    assert str(refusal.value) == refused("review note")
    studio.rollback()
    stored = repo.get_record(studio, record.id)
    assert (stored.status.value, stored.review_note, stored.version) == ("submitted", None, 2)
    assert tasks.get_task(studio, task.id).status.value == "submitted"


def test_a_dataset_whose_description_holds_a_null_byte_is_refused(studio):
    before = repo.table_counts(studio)
    with pytest.raises(InvalidInput) as refusal:
        admin.create_dataset(studio, ROOT, "capitals", description="Capitals\x00 of the world")
    assert str(refusal.value) == refused("description")
    studio.rollback()
    assert repo.table_counts(studio) == before


def test_a_sign_in_or_a_duplicate_decision_holding_a_null_byte_is_refused_not_a_crash(studio):
    from curation.auth import check_login
    from curation.records import RecordDraft
    from curation.services import dedup

    assert not check_login(studio.get_bind(), "ann\x00", "password-ann")  # PostgreSQL raised DataError
    assert check_login(studio.get_bind(), "ann", "password-ann")
    dataset = repo.get_dataset(studio, "demo")
    ids = repo.insert_records(studio, dataset.id, [RecordDraft("Say hi.", "", ["Hi"]), RecordDraft("Say hi!", "", ["Hi"])],
                              by="ann", reason="test")
    studio.commit()
    with pytest.raises(dedup.DedupError) as refusal:
        dedup.decide(studio, dataset="demo", record_ids=ids, decision="keep_one", keep_id=ids[0],
                     versions={i: 1 for i in ids}, reason="same\x00")
    assert str(refusal.value) == "the reason holds a null byte (\\0); remove it and decide again"
    assert [repo.get_record(studio, i).status.value for i in ids] == ["draft", "draft"]
    with pytest.raises(InvalidInput) as refusal:
        admin.admin_set_role(studio, ROOT, "ann", "boss")
    assert str(refusal.value) == "there is no role 'boss': choose one of annotator, curator, admin"


# ---- the importers -------------------------------------------------------------------------------

def stored(db_url, dataset):
    engine = open_database(db_url)
    with session_for(engine) as session:
        found = repo.get_dataset(session, dataset)
        result = [] if found is None else [(r.instruction, r.outputs) for r in repo.iter_records(session, found.id)]
        counts = repo.table_counts(session)
    engine.dispose()
    return result, counts


JSONL_WITH_A_NULL = (
    '{"instruction": "Name the capital of Kenya.", "output": "Nairobi"}\n'
    '{"instruction": "Name the capital of Peru.", "output": "Li\\u0000ma"}\n'
    '{"instruction": "Name the capital of Chile.", "output": "Santiago"}\n'
)


def test_a_jsonl_row_holding_a_null_byte_is_rejected_and_the_others_imported(db_url, tmp_path, capsys):
    path = tmp_path / "capitals.jsonl"
    path.write_text(JSONL_WITH_A_NULL, encoding="utf-8")
    assert main(["--db", db_url, "import", str(path), "--dataset", "demo"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{path}: alpaca, 3 rows read, 2 imported, 0 duplicates skipped, 1 rejected",
        "dataset 'demo': 2 records imported, 0 duplicates skipped, 1 rows rejected",
    ]
    assert err.splitlines() == ["  rejected line 2: the output holds a null byte (\\0)"]
    records, _ = stored(db_url, "demo")
    assert records == [("Name the capital of Kenya.", ["Nairobi"]), ("Name the capital of Chile.", ["Santiago"])]


def test_strict_import_of_a_file_with_a_null_byte_imports_nothing(db_url, tmp_path, capsys):
    path = tmp_path / "capitals.jsonl"
    path.write_text(JSONL_WITH_A_NULL, encoding="utf-8")
    _, before = stored(db_url, "demo")
    assert main(["--db", db_url, "import", str(path), "--dataset", "demo", "--strict"]) == 2
    assert capsys.readouterr().err == (f"error: {path}: 1 row(s) rejected in strict mode, nothing imported "
                                       "(first: line 2: the output holds a null byte (\\0))\n")
    assert stored(db_url, "demo") == ([], before)


def test_the_importer_refuses_null_bytes_in_the_session_it_is_given(session, tmp_path):
    from curation.importer import StrictImportError, import_files

    path = tmp_path / "capitals.jsonl"
    path.write_text(JSONL_WITH_A_NULL, encoding="utf-8")
    report = import_files(session, "demo", [path])
    assert (report.imported, [str(r) for r in report.files[0].rejected]) == (
        2, ["line 2: the output holds a null byte (\\0)"])
    with pytest.raises(StrictImportError):
        import_files(session, "other", [path], strict=True)
    assert repo.get_dataset(session, "other") is None


def test_a_conversation_turn_holding_a_null_byte_rejects_its_row(tmp_path):
    path = tmp_path / "chats.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
        {"messages": [{"role": "system", "content": "Be brief\u0000."}, {"role": "user", "content": "Hi"}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                      {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye\u0000!"}]},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    parsed = read_file(path)
    assert [str(r) for r in parsed.rejected] == [
        "line 2: the system prompt holds a null byte (\\0)",
        "line 3: the content of turn 3 holds a null byte (\\0)",
    ]
    assert len(parsed.records) == 1


def sni_task(**changes) -> dict:
    task = {
        "Definition": ["Given a word, write its antonym."],
        "Positive Examples": [{"input": "hot", "output": "cold", "explanation": "Cold is the opposite of hot."}],
        "Negative Examples": [{"input": "big", "output": "large", "explanation": "Large is a synonym."}],
        "Instances": [{"id": "antonyms-0", "input": "light", "output": ["dark"]},
                      {"id": "antonyms-1", "input": "fast", "output": ["slow\u0000"]},
                      {"id": "antonyms-2", "input": "open", "output": ["closed"]}],
    }
    return {**task, **changes}


def test_an_sni_instance_holding_a_null_byte_is_rejected_and_the_others_imported(db_url, tmp_path, capsys):
    path = tmp_path / "task_antonyms.json"
    path.write_text(json.dumps(sni_task()), encoding="utf-8")
    assert main(["--db", db_url, "import", str(path), "--dataset", "sni"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{path}: sni, 3 rows read, 2 imported, 0 duplicates skipped, 1 rejected, 1 task(s)",
        "dataset 'sni': 2 records imported, 0 duplicates skipped, 1 rows rejected",
    ]
    assert err.splitlines() == ["  rejected instance 1: the output holds a null byte (\\0)"]
    records, counts = stored(db_url, "sni")
    assert records == [("Given a word, write its antonym.", ["dark"]), ("Given a word, write its antonym.", ["closed"])]
    assert counts["task"] == 1
    assert main(["--db", db_url, "import", str(path), "--dataset", "strict", "--strict"]) == 2
    assert capsys.readouterr().err == (f"error: {path}: 1 row(s) rejected in strict mode, nothing imported "
                                       "(first: instance 1: the output holds a null byte (\\0))\n")


@pytest.mark.parametrize("changes, problem", [
    ({"Definition": ["Given a word,\u0000 write its antonym."]}, "the 'Definition' holds a null byte (\\0)"),
    ({"Things to Avoid": ["Synonyms\u0000"]}, "the 'Things to Avoid' holds a null byte (\\0)"),
    ({"Negative Examples": [{"input": "big", "output": "large", "explanation": "A synonym\u0000."}]},
     "'Negative Examples' item 0: the explanation holds a null byte (\\0)"),
])
def test_an_sni_task_holding_a_null_byte_outside_its_instances_is_refused_whole(tmp_path, changes, problem):
    path = tmp_path / "task_antonyms.json"
    path.write_text(json.dumps(sni_task(**changes)), encoding="utf-8")
    with pytest.raises(FormatError) as refusal:
        read_file(path)
    assert str(refusal.value) == f"task_antonyms.json: {problem}"  # SNI task errors name the file, not its path
