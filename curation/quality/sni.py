"""The Super-NaturalInstructions task rules; each violation names its rule.

They are the rules of the official checks (allenai/natural-instructions src/test_all.py) that concern one task,
stated as violations instead of the first failed assertion; tests/test_sni_validate.py runs both on the same tasks.
Left to the official repository: its README, file names and splits. Ours are stricter in two places: the
Instance License key, and an explanation that is empty rather than missing.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from curation.quality.sni_official import CATEGORIES, DOMAINS, REASONING, language_names

REQUIRED_KEYS = (
    "Contributors", "Source", "URL", "Categories", "Reasoning", "Definition", "Input_language",
    "Output_language", "Instruction_language", "Domains", "Positive Examples", "Negative Examples",
    "Instances", "Instance License",
)
LIST_KEYS = ("Definition", "Source", "URL", "Contributors", "Categories", "Reasoning", "Domains", "Input_language",
             "Output_language", "Instruction_language")
LANGUAGE_KEYS = ("Input_language", "Output_language", "Instruction_language")
MIN_INSTANCES, MAX_INSTANCES = 26, 6500
# Label balance: with fewer than this many distinct outputs, their normalized entropy must exceed MIN_ENTROPY.
BALANCE_BELOW, MIN_ENTROPY = 15, 0.8


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


def _examples(task: dict, key: str) -> list:
    value = task.get(key)
    return value if isinstance(value, list) else []


# Rules about a finished task's size and balance: a task being built grows into them, so building one from a
# source or in the editor reports them without refusing to save (the `validate` command and publishing do not).
COMPLETENESS_RULES = frozenset({"instance-count", "label-balance"})


def validate_task(task: dict[str, Any]) -> list[Violation]:
    """Every rule the task breaks (an empty list when it is valid)."""
    violations: list[Violation] = []
    missing = [k for k in REQUIRED_KEYS if k not in task]
    if missing:
        violations.append(Violation("required-keys", f"missing key(s): {', '.join(missing)}"))

    violations += _list_fields(task) + _hierarchy(task) + _languages(task)
    positives, negatives = _examples(task, "Positive Examples"), _examples(task, "Negative Examples")
    if len(positives) < 2:
        violations.append(Violation("positive-examples", f"needs more than one positive example, has {len(positives)}"))
    if len(negatives) < 1:
        violations.append(Violation("negative-examples", "needs at least one negative example, has 0"))
    for key, examples in (("Positive Examples", positives), ("Negative Examples", negatives)):
        for number, example in enumerate(examples, start=1):
            explanation = example.get("explanation") if isinstance(example, dict) else None
            if not isinstance(explanation, str) or not explanation.strip():
                state = "a null" if explanation is None else "an empty"
                violations.append(Violation("example-explanation", f"{key} #{number} has {state} explanation"))

    violations += _example_fields(positives, negatives)
    instances = [i for i in _examples(task, "Instances") if isinstance(i, dict)]
    violations += _instance_count(task) + _instance_fields(instances)
    not_objects = len(_examples(task, "Instances")) - len(instances)
    if not_objects:
        violations.append(Violation("instance-fields", f"{not_objects} instance(s) are not objects"))
    missing_ids = sum("id" not in i for i in instances)
    if missing_ids:
        violations.append(Violation("instance-ids", f"{missing_ids} instance(s) have no id"))
    for instance_id, count in Counter(str(i["id"]) for i in instances if "id" in i).items():
        if count > 1:
            violations.append(Violation("unique-instance-ids", f"instance id {instance_id!r} appears {count} times"))
    input_counts = Counter(_hashable(i.get("input")) for i in instances)
    for text, count in input_counts.items():
        if count > 1:
            violations.append(Violation("duplicate-instance-inputs",
                                        f"{count} instances share the input {_short(text)!r}"))
    for number, example in enumerate(positives, start=1):
        if isinstance(example, dict) and _hashable(example.get("input")) in input_counts:
            violations.append(Violation("example-in-instances",
                                        f"Positive Examples #{number}'s input is also an instance: "
                                        f"{_short(example.get('input'))!r}"))
    violations += _label_balance(instances)
    return violations


def _short(text: Any, limit: int = 60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _list_fields(task: dict) -> list[Violation]:
    found = [Violation("list-fields", f"{key} must be a list, is {type(task[key]).__name__}")
             for key in LIST_KEYS if key in task and not isinstance(task[key], list)]
    definition = task.get("Definition")
    if isinstance(definition, list) and not all(isinstance(d, str) for d in definition):
        found.append(Violation("list-fields", "Definition must be a list of strings"))
    return found


def _hierarchy(task: dict) -> list[Violation]:
    found = []
    for key, allowed, what in (("Categories", CATEGORIES, "category"), ("Reasoning", REASONING, "reasoning"),
                               ("Domains", DOMAINS, "domain")):
        for name in task.get(key) if isinstance(task.get(key), list) else []:
            if not isinstance(name, str) or name not in allowed:
                found.append(Violation(key.lower(), f"{what} {name!r} is not in the official task hierarchy"))
    return found


def _languages(task: dict) -> list[Violation]:
    found = [Violation("language-keys", f"found {key.lower()!r}: the key is spelled {key!r}")
             for key in LANGUAGE_KEYS if key.lower() in task]
    for key in LANGUAGE_KEYS:
        for name in task.get(key) if isinstance(task.get(key), list) else []:
            if not isinstance(name, str) or name not in language_names():
                found.append(Violation("language-names", f"{key} {name!r} is not an ISO 639 language name"))
    definitions = [d for d in task.get("Definition") or [] if isinstance(d, str)] if isinstance(
        task.get("Definition"), list) else []
    for name in task.get("Input_language") if isinstance(task.get("Input_language"), list) else []:
        # A task in another language says so in its definition, as the official checks require.
        if name != "English" and isinstance(name, str) and not all(name in d for d in definitions):
            found.append(Violation("definition-language", f"the Definition does not name the input language {name!r}"))
    return found


def _example_fields(positives: list, negatives: list) -> list[Violation]:
    found = []
    for key, examples in (("Positive Examples", positives), ("Negative Examples", negatives)):
        for number, example in enumerate(examples, start=1):
            if not isinstance(example, dict):
                found.append(Violation("example-fields", f"{key} #{number} is not an object"))
                continue
            for field in ("input", "output"):
                if not isinstance(example.get(field), str):
                    state = "no" if field not in example else "a non-string"
                    found.append(Violation("example-fields", f"{key} #{number} has {state} {field}"))
    return found


def _instance_count(task: dict) -> list[Violation]:
    count = len(_examples(task, "Instances"))
    if count < MIN_INSTANCES:
        return [Violation("instance-count", f"needs more than {MIN_INSTANCES - 1} instances, has {count}")]
    if count > MAX_INSTANCES:
        return [Violation("instance-count", f"has {count} instances: at most {MAX_INSTANCES}")]
    return []


def _instance_fields(instances: list[dict]) -> list[Violation]:
    problems: Counter[str] = Counter()
    for instance in instances:
        text, outputs = instance.get("input"), instance.get("output")
        if not isinstance(text, str):
            problems["no input" if "input" not in instance else "an input that is not a string"] += 1
        elif not text:
            problems["an empty input"] += 1
        if not isinstance(outputs, list):
            problems["no output" if "output" not in instance else "an output that is not a list"] += 1
        elif not outputs:
            problems["an empty output list"] += 1
        elif not all(isinstance(o, str) for o in outputs):
            problems["an output that is not a string"] += 1
    return [Violation("instance-fields", f"{count} instance(s) have {problem}") for problem, count in problems.items()]


def _label_balance(instances: list[dict]) -> list[Violation]:
    outputs = Counter(o for i in instances if isinstance(i.get("output"), list) for o in i["output"]
                      if isinstance(o, str))
    if not outputs:
        return []
    if len(outputs) == 1:
        return [Violation("label-balance", f"every instance has the same output {_short(next(iter(outputs)))!r}")]
    if len(outputs) >= BALANCE_BELOW:
        return []
    total = sum(outputs.values())
    entropy = -sum(n / total * math.log(n / total) for n in outputs.values()) / math.log(len(outputs))
    if entropy > MIN_ENTROPY:
        return []
    counts = ", ".join(f"{_short(o, 20)!r}: {n}" for o, n in outputs.most_common(3))
    return [Violation("label-balance", f"outputs are skewed: normalized entropy {entropy:.2f} over {len(outputs)} "
                                       f"distinct outputs ({counts}...), needs above {MIN_ENTROPY} with fewer than "
                                       f"{BALANCE_BELOW}")]


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, type(None))) else repr(value)
