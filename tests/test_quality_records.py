"""Record quality flags: each check names the reason a curator sees, and passes clean records."""
from __future__ import annotations

import json

import pytest

from curation.quality.records import CHECKS, flag_counts, record_flags
from tests.conftest import SHARED_DATA, requires_shared_data

CLEAN = ("Summarize the paragraph below in one sentence.", "The committee met on Tuesday to plan the fair.",
         "The committee planned the fair on Tuesday.")


def test_a_clean_record_has_no_flags():
    assert record_flags(*CLEAN) == {}


@pytest.mark.parametrize("instruction, input, output, check, reason", [
    ("Sort these.", "", "a, b", "instruction_length", "instruction has 2 word(s): 3 or fewer"),
    ("word " * 151, "", "ok then", "instruction_length", "instruction has 151 words: over 150"),
    ("Draw a picture of a cat sitting.", "", "ok then", "blacklisted_word",
     "instruction mentions 'Draw', which a text model cannot see or make"),
    ("Please go to the bank and report back.", "", "ok then", "blacklisted_word",
     "instruction mentions 'go to', which a text model cannot see or make"),
    ("Décris les IMAGES ci-dessous en détail.", "", "ok then", "blacklisted_word",
     "instruction mentions 'IMAGES', which a text model cannot see or make"),
    ("- Write a poem about autumn leaves.", "", "Leaves fall.", "bad_first_character",
     "instruction starts with punctuation '-'"),
    ("Écris un poème sur les feuilles.", "", "Les feuilles tombent.", "bad_first_character",
     "instruction starts with a non-ASCII character 'É'"),
    ("Correct the spelling in this sentence.", "The cat sat.", "The cat sat.", "input_equals_output",
     "input and output are the same"),
    ("Write a haiku about the sea.", "", "   ", "empty_output", "output is empty"),
    ("List three fruits that are red.", "", "Here they are:", "ends_with_colon",
     "output ends with ':', usually a cut-off generation"),
    ("Create a chart of the sales numbers.", "", "<nooutput>", "placeholder_output",
     "output is a placeholder '<nooutput>'"),
    ("Create a short video about dogs.", "", "<No Output> a model cannot film", "placeholder_output",
     "output is a placeholder '<No Output>'"),
    ("Write a story about a brave knight.", "<noinput>", "Once upon a time.", "placeholder_input",
     "input is a placeholder '<noinput>'"),
    ("Write a story about a brave knight.", "No input.", "Once upon a time.", "placeholder_input",
     "input is a placeholder 'No input.'"),
    ("Summarize the article at this address.", "Article: https://example.com/news/1", "It says things.",
     "url_only_input", "input is only a link, which the model cannot open"),
    ("Create a looping animation of a cat running.", "", "A looping animation of a cat running.",
     "repeats_instruction", "output only repeats the instruction"),
    ("Create a looping animation of a cat running.", "", "a-LOOPING animation (of a cat), running!",
     "repeats_instruction", "output only repeats the instruction"),
    ("Write an essay about rivers and lakes.", "", "water " * 2100, "extreme_length",
     "record has 2107 words: over 2048"),
])
def test_each_check_names_its_reason(instruction, input, output, check, reason):
    assert record_flags(instruction, input, output)[check] == reason


@pytest.mark.parametrize("instruction, input, output", [
    ("What was the capital of France in 1900?", "", "Paris was the capital of France in 1900."),  # adds the answer
    ("Rewrite the sentence with proper capitalization.", "i am here.", "I am here."),  # case differs: a real task
    ("Summarize this news article for me.", "This article (https://example.com/a) argues that cities should "
     "plant more trees to cool their streets.", "Cities should plant trees."),  # a link inside real text
    ("Identify the odd one out.", "Apple, Pear, Car", "Car"),  # a short answer is not a repeat
])
def test_near_misses_are_not_flagged(instruction, input, output):
    assert record_flags(instruction, input, output) == {}


def test_every_output_of_a_multi_output_record_is_checked():
    flags = record_flags("Name a colour of the sky.", "", ["Blue.", "<nooutput>"])
    assert list(flags) == ["placeholder_output"]
    assert record_flags("Name a colour of the sky.", "", []) == {"empty_output": "output is empty"}


def test_flag_counts_lists_every_check():
    counts = flag_counts([CLEAN, ("Sort these.", "", ""), ("Write a poem on rain.", "N/A", "<nooutput>")])
    assert counts == {**{name: 0 for name in CHECKS}, "instruction_length": 1, "empty_output": 1,
                      "placeholder_input": 1, "placeholder_output": 1}


@requires_shared_data
def test_alpaca_52k_flags():
    rows = json.loads((SHARED_DATA / "alpaca_format" / "stanford_alpaca_52k.json").read_text())
    counts = flag_counts((r["instruction"], r["input"], r["output"]) for r in rows)
    # The generator applied Self-Instruct's instruction filters, so those find nothing; the cleaning
    # effort's defects are there.
    assert counts == {"instruction_length": 0, "blacklisted_word": 0, "bad_first_character": 0,
                      "input_equals_output": 55, "empty_output": 28, "ends_with_colon": 45,
                      "placeholder_output": 36, "placeholder_input": 631, "url_only_input": 255,
                      "repeats_instruction": 3, "extreme_length": 0,
                      # letters signed "[Your Name]", example contacts ("john@email.com", "(234) 567-8901")
                      "unfilled_placeholder": 207, "personal_data": 72, "private_person_question": 1}
