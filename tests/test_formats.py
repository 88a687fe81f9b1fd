"""Reading every import format and writing every export format, on small handwritten fixtures."""
import json

import pytest

from curation.formats import FormatError, read_file, to_alpaca, to_messages, to_prompt_completion
from curation.formats.sni import task_to_json
from curation.formats.writers import write_parquet
from tests.conftest import FIXTURES


def test_alpaca_rows_are_read_and_bad_rows_reported_with_their_index():
    parsed = read_file(FIXTURES / "alpaca_small.json")
    assert parsed.format == "alpaca"
    assert [(r.instruction, r.input, r.outputs) for r in parsed.records] == [
        ("Name the capital of Kenya.", "", ["Nairobi"]),
        ("Translate the word to French.", "apple", ["pomme"]),
        ("Summarize the sentence in three words.",
         "The committee postponed the vote until next spring because members disagreed.", ["Vote postponed again"]),
        ("  Name the capital\tof Kenya. ", "", ["Nairobi"]),
        ("List two prime numbers.", "", ["2 and 3"]),
    ]
    assert parsed.records[2].category == "summarization"
    assert parsed.records[4].extra == {"difficulty": 1}
    assert parsed.records[1].source_line == 1
    assert [str(r) for r in parsed.rejected] == ["index 4: empty instruction", "index 5: 'input' must be text, not list"]


def test_normalized_hash_treats_case_and_spacing_as_the_same_record():
    first, _, _, fourth, _ = read_file(FIXTURES / "alpaca_small.json").records
    assert first.hash() == fourth.hash()


def test_dolly_maps_context_to_input():
    parsed = read_file(FIXTURES / "dolly_small.jsonl")
    assert parsed.format == "dolly"
    assert (parsed.records[0].input, parsed.records[0].output, parsed.records[0].category) == (
        "The novel was written by a retired lighthouse keeper in 1931.", "A retired lighthouse keeper.", "closed_qa")


def test_sharegpt_keeps_system_and_tool_turns():
    parsed = read_file(FIXTURES / "sharegpt_small.jsonl")
    assert parsed.format == "sharegpt"
    simple, tools = parsed.records
    assert (simple.system_prompt, simple.instruction, simple.outputs, simple.messages) == (
        "You are terse.", "What is 2+2?", ["4"], None)
    assert [m["role"] for m in tools.messages] == ["user", "assistant", "tool", "assistant"]
    assert tools.tools == [{"type": "function", "function": {"name": "weather"}}] and tools.extra is None
    assert [str(r) for r in parsed.rejected] == ["line 3: turn 0 has unknown role 'robot'"]


def test_messages_jsonl_reports_unparseable_lines_and_keeps_multi_turn():
    parsed = read_file(FIXTURES / "messages_small.jsonl")
    assert parsed.format == "messages"
    single, multi = parsed.records
    assert (single.instruction, single.outputs, single.messages) == ("Spell 'cat' backwards.", ["tac"], None)
    assert multi.system_prompt == "Answer in French." and len(multi.messages) == 5
    assert [str(r) for r in parsed.rejected] == [
        "line 4: not valid JSON (Expecting value)", "line 3: the conversation must start with a user turn"]


def test_prompt_completion_standard_and_conversational():
    parsed = read_file(FIXTURES / "prompt_completion_small.jsonl")
    assert parsed.format == "prompt-completion"
    assert [(r.instruction, r.outputs) for r in parsed.records] == [
        ("The opposite of hot is", [" cold"]), ("Say yes.", ["Yes."])]


def test_self_instruct_gives_one_record_per_instance():
    parsed = read_file(FIXTURES / "self_instruct_small.jsonl")
    assert parsed.format == "self-instruct"
    assert [(r.input, r.output, r.external_id) for r in parsed.records] == [
        ("tall", "short", "seed_a"), ("early", "late", "seed_a")]
    assert [str(r) for r in parsed.rejected] == ["line 2: 'instances' must be a non-empty list"]


def test_csv_with_a_column_mapping():
    parsed = read_file(FIXTURES / "table_small.csv", format="csv",
                       mapping={"instruction": "question", "input": "context", "output": "answer", "category": "topic"})
    assert parsed.format == "csv:alpaca"
    assert [(r.instruction, r.input, r.output, r.category, r.source_line) for r in parsed.records] == [
        ("Add the numbers.", "3 and 4", "7", "math", 2), ("Name a colour of the sky.", "", "blue", "general", 3)]
    assert [str(r) for r in parsed.rejected] == ["line 4: empty instruction"]


def test_csv_missing_its_mapped_column_is_a_file_error():
    with pytest.raises(FormatError, match=r"table_small.csv: has no column 'prompt' to map"):
        read_file(FIXTURES / "table_small.csv", mapping={"instruction": "prompt"})


def test_parquet_round_trip(tmp_path):
    records = read_file(FIXTURES / "alpaca_small.json").records
    write_parquet(records, tmp_path / "out.parquet")
    again = read_file(tmp_path / "out.parquet")
    assert again.format == "parquet:alpaca"
    assert [(r.instruction, r.input, r.output) for r in again.records] == [
        (r.instruction, r.input, r.output) for r in records]


def test_jsonl_named_json_and_json_named_jsonl_are_detected(tmp_path):
    rows = [{"instruction": "Say hi.", "output": "hi"}, {"instruction": "Say bye.", "output": "bye"}]
    (tmp_path / "lines.json").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "array.jsonl").write_text(json.dumps(rows, indent=2))
    assert len(read_file(tmp_path / "lines.json").records) == 2
    assert len(read_file(tmp_path / "array.jsonl").records) == 2


def test_utf16_text_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("instruction,output\nSay caf\u00e9.,caf\u00e9\n".encode("utf-16"))
    assert [(r.instruction, r.output) for r in read_file(path).records] == [("Say caf\u00e9.", "caf\u00e9")]


@pytest.mark.parametrize("content, message", [
    (b'[{"instruction": "a", "output": "b"}, {"instruction": "c", "out', "is not valid JSON (it ends early at line 1: truncated?)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file, not text (JSON, JSONL, CSV) or Parquet"),
    (b"", "the file is empty"),
    (b"  \n\n", "the file is empty"),
    ('[{"instruction": "caf\u00e9"}]'.encode("latin-1"), "is not UTF-8 text (undecodable byte 0xe9 at offset 21); re-save it as UTF-8"),
    (b'[{"question": "a", "answer": "b"}]', "has no instruction fields to import (found: question, answer); "
                                            "pass --format, or --map instruction=COLUMN for a table"),
    (b'{"name": "not a task"}', "is a JSON object but not a Super-NaturalInstructions task (expected 'Definition' and 'Instances')"),
])
def test_unreadable_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "input.json"
    path.write_bytes(content)
    with pytest.raises(FormatError) as caught:
        read_file(path)
    assert str(caught.value) == f"{path}: {message}"
    assert "\n" not in str(caught.value)


def test_a_format_override_that_does_not_fit_names_the_missing_fields():
    with pytest.raises(FormatError, match="lacks the fields the dolly format needs"):
        read_file(FIXTURES / "alpaca_small.json", format="dolly")


def test_sni_task_round_trips_exactly():
    parsed = read_file(FIXTURES / "sni_small_task.json")
    assert parsed.format == "sni"
    [task] = parsed.tasks
    assert [(r.input, r.outputs, r.external_id) for r in task.instances] == [
        ("light", ["dark", "heavy"], "antonyms-1"), ("fast", ["slow"], "antonyms-2"), ("open", ["closed", "shut"], "antonyms-3")]
    assert task.instances[0].instruction == "Given a word, write its antonym: a word with the opposite meaning."
    assert task.examples[2].suggestion == "small"
    original = json.loads((FIXTURES / "sni_small_task.json").read_text())
    exported = task_to_json(task)
    assert exported == original
    assert list(exported) == list(original)


def test_export_rows_match_what_trl_takes():
    single, multi = read_file(FIXTURES / "messages_small.jsonl").records
    translate = read_file(FIXTURES / "alpaca_small.json").records[1]
    assert to_alpaca(translate) == {"instruction": "Translate the word to French.", "input": "apple", "output": "pomme"}
    assert to_messages(translate) == {"messages": [
        {"role": "user", "content": "Translate the word to French.\n\napple"},
        {"role": "assistant", "content": "pomme"}]}
    assert to_prompt_completion(multi) == {
        "prompt": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hello"},
                   {"role": "assistant", "content": "Bonjour"}, {"role": "user", "content": "Thanks"}],
        "completion": [{"role": "assistant", "content": "Merci"}]}
