"""The SNI task rules, on a handwritten task broken one rule at a time, and on the real task files."""
import copy
import json

import pytest

from curation.cli import main
from curation.quality.sni import validate_task
from tests.conftest import FIXTURES, SHARED_DATA, requires_shared_data

VALID = json.loads((FIXTURES / "sni_small_task.json").read_text())


def broken(change) -> dict:
    task = copy.deepcopy(VALID)
    change(task)
    return task


def test_the_handwritten_task_is_valid():
    assert validate_task(VALID) == []


@pytest.mark.parametrize("rule, change, message", [
    ("required-keys", lambda t: t.pop("Domains"), "missing key(s): Domains"),
    ("positive-examples", lambda t: t["Positive Examples"].pop(), "needs more than one positive example, has 1"),
    ("negative-examples", lambda t: t["Negative Examples"].clear(), "needs at least one negative example, has 0"),
    ("example-explanation", lambda t: t["Negative Examples"][0].update(explanation=None),
     "Negative Examples #1 has a null explanation"),
    ("example-explanation", lambda t: t["Positive Examples"][1].update(explanation="  "),
     "Positive Examples #2 has an empty explanation"),
    ("unique-instance-ids", lambda t: t["Instances"][1].update(id="antonyms-1"), "instance id 'antonyms-1' appears 2 times"),
    ("duplicate-instance-inputs", lambda t: t["Instances"][2].update(input="light"), "2 instances share the input 'light'"),
    ("example-in-instances", lambda t: t["Instances"][0].update(input="hot"),
     "Positive Examples #1's input is also an instance: 'hot'"),
])
def test_each_rule_names_itself(rule, change, message):
    assert [(v.rule, v.message) for v in validate_task(broken(change))] == [(rule, message)]


def test_validate_command_names_every_violation_and_exits_1(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(broken(lambda t: (t["Negative Examples"].clear(), t["Positive Examples"].pop()))))
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: FAIL, 2 violation(s)",
        "  [positive-examples] needs more than one positive example, has 1",
        "  [negative-examples] needs at least one negative example, has 0",
    ]


def test_validate_command_on_a_broken_file_exits_2(tmp_path, capsys):
    path = tmp_path / "cut.json"
    path.write_text('{"Definition": ["x"], "Instances": [')
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {path}: is not valid JSON or JSONL (it ends early at line 1: truncated?)"


@requires_shared_data
def test_real_tasks_pass_except_task664_whose_five_examples_lack_an_explanation(capsys):
    files = sorted((SHARED_DATA / "sni").glob("*.json"))
    assert len(files) == 32
    assert main(["validate", *map(str, files)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "31 of 32 task(s) valid"
    failing = [line for line in out.splitlines() if "FAIL" in line]
    assert len(failing) == 1 and "task664_mmmlu_answer_generation_abstract_algebra.json: FAIL, 5 violation(s)" in failing[0]
    assert [f"  [example-explanation] Positive Examples #{n} has a null explanation" for n in range(1, 6)] == [
        line for line in out.splitlines() if "example-explanation" in line]
