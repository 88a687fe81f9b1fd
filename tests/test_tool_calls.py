"""Tool-calling conversations kept whole: read, deduplicated with their tools, exported as TRL takes them.

The fixture is in LLaMA-Factory's glaive_toolcall ShareGPT shape: function_call and observation turns, and the
function schemas as JSON text in a `tools` column. Rows 2-4 differ from row 1 only in their tools; row 5 is
row 1 with its tools re-spaced (the same tools); rows 8 and 9 hold broken calls.
"""
import json

import pytest

from curation.exporter import export_dataset
from curation.formats import read_file
from curation.importer import import_files
from curation.records import RecordDraft, content_hash
from db import repo
from tests.conftest import FIXTURES

TOOLCALLS = FIXTURES / "toolcall_sharegpt.jsonl"

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city, e.g. Oslo"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}}
WEATHER_CHAT = [
    {"role": "user", "content": "What's the weather like in Oslo right now?"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
        "name": "get_current_weather", "arguments": {"location": "Oslo", "unit": "celsius"}}}]},
    {"role": "tool", "name": "get_current_weather", "content": '{"temperature": -3, "condition": "light snow"}'},
    {"role": "assistant", "content": "It is -3 °C with light snow in Oslo."},
]

# A ChatML template with tool support, written the way Qwen2.5's is: schemas in the system turn,
# calls as <tool_call> JSON, results as <tool_response> (the tiny tokenizer's own template has no tools).
TOOL_CHATML = (
    "{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}{{- '\\n</tools><|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}{{- '<|im_start|>assistant\\n' + message.content }}"
    "{%- for call in message.tool_calls or [] %}"
    "{{- '<tool_call>\\n' + ({'name': call.function.name, 'arguments': call.function.arguments} | tojson)"
    " + '\\n</tool_call>' }}{%- endfor %}{{- '<|im_end|>\\n' }}"
    "{%- elif message.role == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from tests.tiny_model import build_tiny_tokenizer

    return AutoTokenizer.from_pretrained(build_tiny_tokenizer(tmp_path_factory.mktemp("tok")))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def whole(draft: RecordDraft) -> tuple:
    return (draft.instruction, draft.input, draft.outputs, draft.system_prompt, draft.messages, draft.tools)


# ---- reading ------------------------------------------------------------------------------------------

def test_function_call_and_observation_turns_become_tool_calls_and_tool_messages():
    parsed = read_file(TOOLCALLS)
    assert parsed.format == "sharegpt"
    weather = parsed.records[0]
    assert (weather.instruction, weather.outputs) == (
        "What's the weather like in Oslo right now?", ["It is -3 °C with light snow in Oslo."])
    assert weather.messages == WEATHER_CHAT
    assert weather.tools == [WEATHER_TOOL]
    assert weather.extra is None  # the tools text no longer waits in extra


def test_arguments_written_as_json_text_are_kept_as_an_object():
    loan = read_file(TOOLCALLS).records[5]
    assert loan.messages[3] == {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
        "name": "calculate_loan_payment", "arguments": {"principal": 20000, "interest_rate": 5, "loan_term": 36}}}]}
    assert loan.outputs == ["Sure. What is the principal, the yearly interest rate and the term in months?"]


def test_tools_offered_but_not_called_stay_with_a_single_exchange():
    refusal = read_file(TOOLCALLS).records[6]
    assert (refusal.messages, refusal.outputs) == (
        None, ["I cannot book tables; I can only tell you a random joke."])
    assert [t["function"]["name"] for t in refusal.tools] == ["get_random_joke"]


def test_a_call_that_is_not_json_or_names_no_function_rejects_its_row_only():
    parsed = read_file(TOOLCALLS)
    assert len(parsed.records) == 7
    assert [str(r) for r in parsed.rejected] == [
        "line 8: turn 1 is a function call but not JSON: \"get_current_weather(location='Paris')\"",
        "line 9: turn 1 has a tool call that names no function",
    ]


@pytest.mark.parametrize("row, reason", [
    ({"messages": [{"role": "user", "content": "Hi"}], "tools": "[{name: weather}]"}, "'tools' is text but not JSON"),
    ({"messages": [{"role": "user", "content": "Hi"}], "tools": '[{"description": "no name"}]'},
     "tool 0 in 'tools' names no function"),
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": {"name": "f"}}]},
     "turn 1 'tool_calls' must be a list"),
    ({"messages": [{"role": "user", "content": "Hi", "tool_calls": [{"name": "f"}]}]},
     "turn 0 has tool calls but is not an assistant turn"),
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "turn 1 has a tool call whose arguments are text but not JSON"),
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {"q": "a\x00b"}}}]}]},
     "the tool call of turn 1 holds a null byte (\\0)"),
])
def test_broken_tool_data_in_messages_rows_gives_the_reason(tmp_path, row, reason):
    path = tmp_path / "tools.jsonl"
    good = {"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    parsed = read_file(path)
    assert [str(r) for r in parsed.rejected] == [f"line 2: {reason}"]
    assert len(parsed.records) == 1


def test_openai_shaped_calls_keep_their_ids_and_arguments_become_an_object(tmp_path):
    path = tmp_path / "openai.jsonl"
    path.write_text(json.dumps({"messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_current_weather", "arguments": '{"location": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3"},
        {"role": "assistant", "content": "-3 °C.", "tool_calls": None}],
        "tools": [WEATHER_TOOL]}) + "\n")
    [draft] = read_file(path).records
    assert draft.messages == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_current_weather", "arguments": {"location": "Oslo"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3"},
        {"role": "assistant", "content": "-3 °C."}]
    assert (draft.tools, draft.outputs) == ([WEATHER_TOOL], ["-3 °C."])


def test_a_jsonl_file_of_one_tool_call_record_is_that_record(tmp_path):
    # One line of JSONL is also one JSON document; its keys say it is a record, not an SNI task.
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"messages": WEATHER_CHAT, "tools": [WEATHER_TOOL]}) + "\n")
    parsed = read_file(path)
    assert parsed.format == "messages"
    assert [(d.messages, d.tools, d.source_line) for d in parsed.records] == [(WEATHER_CHAT, [WEATHER_TOOL], 1)]


@pytest.mark.parametrize("written", [
    [{"name": "f", "parameters": {"type": "object"}}],  # LLaMA-Factory's bare schema
    [{"type": "function", "name": "f", "parameters": {"type": "object"}}],  # OpenAI's flat schema
    {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},  # one schema, not a list
])
def test_tool_schemas_are_kept_in_the_shape_transformers_writes(written):
    from curation.formats.tools import parse_tools

    assert parse_tools(written) == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert parse_tools(json.dumps(written)) == parse_tools(written)
    assert parse_tools("") is None and parse_tools([]) is None


# ---- the duplicate key ----------------------------------------------------------------------------------

def test_records_that_differ_only_in_their_tools_are_not_duplicates(session):
    report = import_files(session, "tools", [TOOLCALLS])
    assert (report.imported, report.duplicates_skipped, report.rejected) == (6, 1, 2)
    dataset = repo.get_dataset(session, "tools")
    stored = list(repo.iter_records(session, dataset.id))
    assert [r.source_line for r in stored] == [1, 2, 3, 4, 6, 7]
    assert stored[0].tools == [WEATHER_TOOL] and stored[0].messages == WEATHER_CHAT


def test_an_edit_keeps_the_tools_in_the_stored_hash(session):
    import_files(session, "tools", [TOOLCALLS])
    first = next(repo.iter_records(session, repo.get_dataset(session, "tools").id))
    edited = repo.update_record(session, first.id, expected_version=1, changes={"outputs": ["Cold."]}, by="ana")
    assert edited.content_hash == content_hash(first.instruction, "", ["Cold."], WEATHER_CHAT, [WEATHER_TOOL])
    assert repo.record_draft(edited).tools == [WEATHER_TOOL]


def test_hashes_of_records_without_tools_are_as_before():
    # Values from content_hash before tools joined it: stored records keep matching their re-imports.
    assert content_hash("Name a fruit.", "", ["apple"]) == (
        "614a6288283a22ad6840215a688afbbfd6b478caa4c610cf8c956d8a22d3740a")
    assert content_hash("Hello", "", ["Bonjour"], [{"role": "user", "content": "Hello"},
                                                    {"role": "assistant", "content": "Bonjour"}]) == (
        "5c276b40c0784adcfad49b6fc85ee7bb3b57d7a612e997b6c4af81f9e041b44f")


def test_calls_with_other_arguments_are_not_duplicates():
    other = [dict(m) for m in WEATHER_CHAT]
    other[1] = {**other[1], "tool_calls": [{"type": "function", "function": {
        "name": "get_current_weather", "arguments": {"location": "Oslo", "unit": "fahrenheit"}}}]}
    hashes = {content_hash("q", "", ["a"], chat, [WEATHER_TOOL]) for chat in (WEATHER_CHAT, other)}
    assert len(hashes) == 2


# ---- export, TRL, and back ------------------------------------------------------------------------------

def test_messages_export_has_tool_calls_and_a_tools_column(session, tmp_path):
    import_files(session, "tools", [TOOLCALLS])
    out = tmp_path / "tools.jsonl"
    assert export_dataset(session, "tools", "messages", out) == 6
    rows = read_jsonl(out)
    assert rows[0] == {"messages": WEATHER_CHAT, "tools": [WEATHER_TOOL]}
    assert rows[4]["messages"][3]["tool_calls"][0]["function"]["arguments"] == {
        "principal": 20000, "interest_rate": 5, "loan_term": 36}


def test_trl_takes_the_exported_rows_and_the_template_renders_calls_and_tools(session, tmp_path, tokenizer):
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    import_files(session, "tools", [TOOLCALLS])
    for format in ("messages", "prompt-completion"):
        out = tmp_path / f"{format}.jsonl"
        export_dataset(session, "tools", format, out)
        for row in read_jsonl(out):
            assert is_conversational(row)
            rendered = maybe_apply_chat_template(row, tokenizer, tools=row.get("tools"), chat_template=TOOL_CHATML)
            text = rendered.get("text") or rendered["prompt"] + rendered["completion"]
            assert "<tools>\n{\"type\": \"function\", \"function\": {\"name\": " in text
    [first] = read_jsonl(tmp_path / "messages.jsonl")[:1]
    text = maybe_apply_chat_template(first, tokenizer, tools=first["tools"], chat_template=TOOL_CHATML)["text"]
    assert text == (
        "<|im_start|>system\n# Tools\n<tools>\n" + json.dumps(WEATHER_TOOL, ensure_ascii=False)
        + "\n</tools><|im_end|>\n"
        "<|im_start|>user\nWhat's the weather like in Oslo right now?<|im_end|>\n"
        "<|im_start|>assistant\n<tool_call>\n"
        '{"name": "get_current_weather", "arguments": {"location": "Oslo", "unit": "celsius"}}\n'
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n"
        '{"temperature": -3, "condition": "light snow"}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\nIt is -3 °C with light snow in Oslo.<|im_end|>\n")


def test_the_exported_jsonl_loads_whole_with_datasets(session, tmp_path):
    from datasets import load_dataset

    import_files(session, "tools", [TOOLCALLS])
    out = tmp_path / "tools.jsonl"
    export_dataset(session, "tools", "messages", out)
    loaded = load_dataset("json", data_files=str(out), split="train")
    assert [dict(row) for row in loaded] == read_jsonl(out)


@pytest.mark.slow
def test_trls_sft_trainer_tokenizes_the_export_with_its_tools(session, tmp_path):
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from trl.data_utils import maybe_apply_chat_template

    from tests.tiny_model import build_tiny_model

    import_files(session, "tools", [TOOLCALLS])
    out = tmp_path / "tools.jsonl"
    export_dataset(session, "tools", "messages", out)
    model = build_tiny_model(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.chat_template = TOOL_CHATML
    trainer = SFTTrainer(model=str(model), processing_class=tokenizer,
                         train_dataset=load_dataset("json", data_files=str(out), split="train"),
                         args=SFTConfig(output_dir=str(tmp_path / "out"), max_steps=1, report_to=[], use_cpu=True))
    rows = read_jsonl(out)
    trained_on = [tokenizer.decode(example["input_ids"]) for example in trainer.train_dataset]
    assert trained_on == [maybe_apply_chat_template(row, tokenizer, tools=row["tools"])["text"] for row in rows]
    assert "<tool_call>\n{\"name\": \"calculate_loan_payment\", \"arguments\": {\"principal\": 20000," in trained_on[4]


@pytest.mark.parametrize("format, suffix", [("messages", "jsonl"), ("prompt-completion", "jsonl"),
                                            ("parquet", "parquet")])
def test_exported_and_imported_again_they_equal_themselves(session, tmp_path, format, suffix):
    import_files(session, "tools", [TOOLCALLS])
    out = tmp_path / f"tools.{suffix}"
    export_dataset(session, "tools", format, out)
    imported = [whole(d) for d in read_file(TOOLCALLS).records]
    unique = [imported[i] for i in (0, 1, 2, 3, 5, 6)]
    assert [whole(d) for d in read_file(out).records] == unique
    again = import_files(session, "tools", [out])
    assert (again.imported, again.duplicates_skipped) == (0, 6)


# ---- a column of user turns -----------------------------------------------------------------------------

@pytest.mark.parametrize("mapping", [{"messages": "turns"}, {"instruction": "turns"}])
def test_a_mapped_list_of_user_turns_is_a_conversation(mapping):
    parsed = read_file(FIXTURES / "mt_bench_questions.jsonl", mapping=mapping)
    assert parsed.rejected == []
    first, second = parsed.records
    assert (first.instruction, first.outputs, first.category, first.extra) == (
        "Write a short travel note about a rainy weekend in Lisbon.", [], "writing", {"question_id": 81})
    assert first.messages == [
        {"role": "user", "content": "Write a short travel note about a rainy weekend in Lisbon."},
        {"role": "user", "content": "Rewrite your note so that every sentence starts with the letter L."}]
    assert (second.category, len(second.messages)) == ("math", 2)
