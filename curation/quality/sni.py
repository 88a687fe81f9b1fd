"""The Super-NaturalInstructions task rules; each violation names its rule."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

REQUIRED_KEYS = (
    "Contributors", "Source", "URL", "Categories", "Reasoning", "Definition", "Input_language",
    "Output_language", "Instruction_language", "Domains", "Positive Examples", "Negative Examples",
    "Instances", "Instance License",
)


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


def _examples(task: dict, key: str) -> list:
    value = task.get(key)
    return value if isinstance(value, list) else []


def validate_task(task: dict[str, Any]) -> list[Violation]:
    """Every rule the task breaks (an empty list when it is valid)."""
    violations: list[Violation] = []
    missing = [k for k in REQUIRED_KEYS if k not in task]
    if missing:
        violations.append(Violation("required-keys", f"missing key(s): {', '.join(missing)}"))

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

    instances = [i for i in _examples(task, "Instances") if isinstance(i, dict)]
    for instance_id, count in Counter(str(i.get("id")) for i in instances).items():
        if count > 1:
            violations.append(Violation("unique-instance-ids", f"instance id {instance_id!r} appears {count} times"))
    input_counts = Counter(i.get("input") for i in instances)
    for text, count in input_counts.items():
        if count > 1:
            violations.append(Violation("duplicate-instance-inputs",
                                        f"{count} instances share the input {_short(text)!r}"))
    for number, example in enumerate(positives, start=1):
        if isinstance(example, dict) and example.get("input") in input_counts:
            violations.append(Violation("example-in-instances",
                                        f"Positive Examples #{number}'s input is also an instance: "
                                        f"{_short(example.get('input'))!r}"))
    return violations


def _short(text: Any, limit: int = 60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
