"""`export` to every training format and `stats`, on a small dataset whose numbers are known."""
import json

import pytest

from curation.cli import main
from curation.quality.records import CHECKS
from db import repo
from db.engine import open_database, session_for
from db.models import RecordStatus
from tests.conftest import FIXTURES


@pytest.fixture
def dataset(db_url):
    assert main(["--db", db_url, "import", str(FIXTURES / "messages_small.jsonl"), str(FIXTURES / "dolly_small.jsonl"),
                 "--dataset", "mix"]) == 0
    engine = open_database(db_url)
    with session_for(engine) as session:
        ds = repo.get_dataset(session, "mix")
        first = next(repo.iter_records(session, ds.id))
        repo.update_record(session, first.id, expected_version=1, changes={"status": RecordStatus.approved}, by="cur")
        session.commit()
    engine.dispose()
    return db_url


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_messages_export_of_approved_records_only(dataset, tmp_path, capsys):
    out = tmp_path / "approved.jsonl"
    assert main(["--db", dataset, "export", "--dataset", "mix", "--format", "messages", "--out", str(out),
                 "--status", "approved"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 1 records to {out}"
    assert read_jsonl(out) == [{"messages": [{"role": "user", "content": "Spell 'cat' backwards."},
                                             {"role": "assistant", "content": "tac"}]}]


def test_alpaca_and_prompt_completion_exports_keep_every_record(dataset, tmp_path):
    main(["--db", dataset, "export", "--dataset", "mix", "--format", "alpaca", "--out", str(tmp_path / "a.jsonl")])
    rows = read_jsonl(tmp_path / "a.jsonl")
    assert [r["instruction"] for r in rows] == [
        "Spell 'cat' backwards.", "Hello", "Who wrote the novel?", "Suggest a name for a grey cat."]
    assert rows[1]["system"] == "Answer in French."
    main(["--db", dataset, "export", "--dataset", "mix", "--format", "prompt-completion",
          "--out", str(tmp_path / "pc.jsonl")])
    pc = read_jsonl(tmp_path / "pc.jsonl")
    assert pc[2] == {"prompt": [{"role": "user", "content": "Who wrote the novel?\n\n"
                                 "The novel was written by a retired lighthouse keeper in 1931."}],
                     "completion": [{"role": "assistant", "content": "A retired lighthouse keeper."}]}


def test_an_exported_file_imports_back_to_the_same_records(dataset, tmp_path, sqlite_url):
    for fmt in ("messages", "parquet"):
        out = tmp_path / f"mix.{'parquet' if fmt == 'parquet' else 'jsonl'}"
        main(["--db", dataset, "export", "--dataset", "mix", "--format", fmt, "--out", str(out)])
        assert main(["--db", sqlite_url, "import", str(out), "--dataset", f"back-{fmt}"]) == 0
    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        back = [[(r.instruction, r.outputs, r.system_prompt) for r in repo.iter_records(session, repo.get_dataset(
            session, f"back-{fmt}").id)] for fmt in ("messages", "parquet")]
    engine.dispose()
    assert back[1][:2] == [("Spell 'cat' backwards.", ["tac"], None), ("Hello", ["Bonjour"], "Answer in French.")]
    assert back[0][0] == back[1][0] and back[0][1] == back[1][1]


def test_export_errors_are_one_line(dataset, tmp_path, capsys):
    assert main(["--db", dataset, "export", "--dataset", "nope", "--format", "alpaca", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == "error: no dataset named 'nope'\n"
    assert main(["--db", dataset, "export", "--dataset", "mix", "--format", "sni", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == "error: dataset 'mix' has no Super-NaturalInstructions tasks to export\n"
    assert main(["--db", dataset, "export", "--dataset", "mix", "--format", "alpaca", "--out", str(tmp_path / "x"),
                 "--status", "done"]) == 2
    assert capsys.readouterr().err.startswith("error: 'done' is not a valid RecordStatus; statuses are draft, ")


def test_stats_counts_and_length_percentiles(dataset, capsys):
    assert main(["--db", dataset, "stats", "--dataset", "mix", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["records"], stats["tasks"]) == (4, 0)
    assert stats["by_status"] == {"draft": 3, "approved": 1}
    assert stats["by_category"] == {"(none)": 2, "closed_qa": 1, "brainstorming": 1}
    assert stats["by_source"] == {"messages_small.jsonl": 2, "dolly_small.jsonl": 2}
    assert {name: n for name, n in stats["flags"].items() if n} == {"instruction_length": 2}  # "Spell ..." and "Hello"
    assert list(stats["flags"]) == list(CHECKS)  # every check, 0 included
    # instruction words: "Spell 'cat' backwards." 3, "Hello" 1, "Who wrote the novel?" 4, "Suggest a name for a grey cat." 7
    assert stats["lengths"]["instruction"]["words"] == {"p50": 3.5, "p90": 6.1, "p99": 6.91, "mean": 3.8, "max": 7}
    assert stats["lengths"]["output"]["tokens"]["max"] > 0
    assert main(["--db", dataset, "stats", "--dataset", "mix"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "dataset mix: 4 records, 0 tasks"
    assert "by status: draft 3, approved 1" in text
    assert "quality flags (records not discarded): instruction_length 2" in text.splitlines()


def test_stats_and_the_overview_count_who_wrote_the_records(dataset, capsys):
    """4 imported records; a model drafts a second output of one, a person writes a new one."""
    from curation.provenance import MachineText
    from curation.services.annotation import RecordForm, change_record, save_record
    from curation.services.permissions import Actor
    from curation.ui.overview_tab import written_by_figure
    from db.models import Role

    curator = Actor("cur", Role.curator)
    engine = open_database(dataset)
    with session_for(engine) as session:
        first = next(repo.iter_records(session, repo.get_dataset(session, "mix").id))
        draft = MachineText(text="t-a-c", backend="openai", base_url="http://gpu-box:8000/v1", model="m")
        change_record(session, curator, first.id, "save", expected_version=first.version, machine={"output 2": draft},
                      form=RecordForm("mix", first.instruction, first.input, [*first.outputs, "t-a-c"]))
        save_record(session, curator, RecordForm("mix", "Name a colour.", outputs=["Teal."]))
        session.commit()
    engine.dispose()

    assert main(["--db", dataset, "stats", "--dataset", "mix", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["written_by"] == {"people": 1, "imported": 3, "template": 0, "edited": 0, "approved": 0,
                                   "unreviewed": 1, "generated": 0}
    assert stats["models"] == {"openai:m": 1}
    figure, models = written_by_figure(stats["written_by"], stats["models"])
    assert dict(zip(figure.data[0].y, figure.data[0].x)) == {
        "People in the studio": 1, "Imported": 3, "Made by templates": 0, "Machine-drafted, edited by a person": 0,
        "Machine-drafted, approved unedited": 0, "Machine-drafted, unreviewed": 1}
    assert models == "Models that drafted text: openai:m **1**"
