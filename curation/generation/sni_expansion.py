"""SNI task expansion: new instances for a Super-NaturalInstructions task, checked against its own rules.

A round asks for new inputs (shown the definition, the examples and the latest inputs), then an output for each
new input, then, for each negative example, whether the new instance repeats its mistake: the negative's
explanation is the rubric, and the reason a repeating instance is dropped. SNI's rules hold for what is kept:
inputs unique across the task (compared as the studio compares exact duplicates), no positive example's input
among the instances, and for classification tasks an output that is one of the labels, with no label taking
more than BALANCE times its fair share (target / number of labels, rounded up) of the new instances.
"""
from __future__ import annotations

import math
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from curation.drafting import Sampling
from curation.generation import prompts
from curation.generation.report import Budget, Candidate, Drop, GenerationReport
from curation.generation.rounds import Rounds
from curation.llm import Backend, ChatRequest, ReplyCache, RetryPolicy
from curation.records import normalize_text

# 1.5x, not 2x: with two labels (most SNI classification tasks) 2x its share lets one label take every instance.
BALANCE = 1.5
SHOWN_INPUTS = 20  # the latest inputs a request shows, so the model writes different ones
SNI_SAMPLING = Sampling(temperature=0.7, max_tokens=1024)
Example = tuple[str, str, str]  # input, output, explanation


@dataclass(frozen=True)
class TaskParts:
    definition: str
    positive: list[Example]
    negative: list[Example]
    inputs: list[str]
    outputs: list[str]


def _get(item: Any, name: str, default: Any = None) -> Any:
    return item.get(name, default) if isinstance(item, dict) else getattr(item, name, default)


def _text(value: Any) -> str:
    return " ".join(value) if isinstance(value, (list, tuple)) else str(value or "")


def task_parts(task: Any) -> TaskParts:
    """A TaskDraft (or a dict or object shaped like one) as the plain texts expansion needs."""
    examples = list(_get(task, "examples") or [])
    positive = list(_get(task, "positive_examples") or [e for e in examples if _get(e, "kind") == "positive"])
    negative = list(_get(task, "negative_examples") or [e for e in examples if _get(e, "kind") == "negative"])
    as_examples = [[(_text(_get(e, "input")), _text(_get(e, "output")), _text(_get(e, "explanation")))
                    for e in group] for group in (positive, negative)]
    instances = list(_get(task, "instances") or [])
    outputs = [(_get(i, "outputs") or [_get(i, "output", "")] or [""])[0] for i in instances]
    return TaskParts(_text(_get(task, "definition")).strip(), as_examples[0], as_examples[1],
                     [_text(_get(i, "input")) for i in instances], [_text(o) for o in outputs])


def _label_key(text: str) -> str:
    return normalize_text(text).strip("\"'“”").rstrip(".").casefold()


def task_labels(parts: TaskParts) -> list[str] | None:
    """The labels of a classification task, read off its outputs: 2 to 10 short ones, each used twice on average."""
    outputs = [o for o in parts.outputs + [p[1] for p in parts.positive] if o.strip()]
    by_key: dict[str, str] = {}
    for output in outputs:
        by_key.setdefault(_label_key(output), output.strip())
    labels = list(by_key.values())
    if len(outputs) >= 4 and 2 <= len(labels) <= 10 and 2 * len(labels) <= len(outputs) \
            and all(len(label.split()) <= 3 for label in labels):
        return labels
    return None


def label_cap(target: int, labels: list[str]) -> int:
    """The most new instances one label may take: BALANCE times its fair share of `target`, rounded up."""
    return max(1, math.ceil(BALANCE * target / len(labels)))


def _request(system: str, user: str, temperature: float, max_tokens: int, seed: int | None = None) -> ChatRequest:
    return ChatRequest([{"role": "system", "content": system}, {"role": "user", "content": user}],
                       temperature=temperature, max_tokens=max_tokens, seed=seed)


def inputs_request(parts: TaskParts, shown: list[str], count: int, labels: list[str] | None, sampling: Sampling,
                   seed: int) -> ChatRequest:
    """The request for `count` new inputs, showing the task and the latest inputs."""
    sections = [f"Definition:\n{parts.definition}"]
    if parts.positive:
        sections.append("Positive examples:\n" + prompts.example_lines(parts.positive))
    if parts.negative:
        sections.append("Negative examples (mistakes to avoid):\n" + prompts.example_lines(parts.negative))
    if shown:
        sections.append("Inputs the task already has (write different ones):\n" + "\n".join(f"- {s}" for s in shown))
    if labels:
        sections.append(f"Spread the new inputs evenly over the labels: {', '.join(labels)}.")
    sections.append(f"Write {count} new input{'s' if count != 1 else ''}, as a JSON array of strings.")
    return _request(prompts.SNI_INPUTS_SYSTEM, "\n\n".join(sections), sampling.temperature, sampling.max_tokens, seed)


def output_request(parts: TaskParts, input: str, labels: list[str] | None, sampling: Sampling) -> ChatRequest:
    shots = "".join(f"Input: {i}\nOutput: {o}\n\n" for i, o, _ in parts.positive)
    rule = f"Answer with exactly one of: {', '.join(labels)}.\n\n" if labels else ""
    return _request(prompts.SNI_OUTPUT_SYSTEM, f"Definition:\n{parts.definition}\n\n{rule}{shots}Input: {input}\n"
                    "Output:", 0.0, sampling.max_tokens)


def rubric_request(parts: TaskParts, negative: Example, input: str, output: str) -> ChatRequest:
    """The request that asks whether (input, output) repeats the mistake `negative` shows and explains."""
    user = (f"Definition:\n{parts.definition}\n\nA negative example shows this mistake:\nInput: {negative[0]}\n"
            f"Output: {negative[1]}\nWhy it is wrong: {negative[2] or '(no explanation given)'}\n\n"
            f"New instance:\nInput: {input}\nOutput: {output}\n\n"
            "Does the new instance make the same mistake? Answer Yes or No.")
    return _request(prompts.SNI_RUBRIC_SYSTEM, user, 0.0, 8)


def parse_inputs(text: str) -> list[str]:
    """The new inputs of a reply: its JSON array of strings, else its numbered list; [] when it has neither."""
    found = prompts.json_strings(text)
    return found if found is not None else prompts.numbered_items(text)


def run_expand_task(backend: Backend, task: Any, *, target: int, labels: list[str] | None = None,
                    cache: ReplyCache | None = None, budget: Budget = Budget(), kept_before: Iterable[str] = (),
                    on_keep: Callable[[Candidate], Any] | None = None,
                    on_progress: Callable[[int, int], None] | None = None, stop: threading.Event | None = None,
                    seed: int = 0, concurrency: int = 8, sampling: Sampling = SNI_SAMPLING, per_request: int = 10,
                    retry: RetryPolicy = RetryPolicy()) -> GenerationReport:
    """The report of a run that adds up to `target` new instances to `task`; kept_before holds their inputs.

    `labels` makes it a classification task (else they are read off its outputs: task_labels).
    """
    parts = task_parts(task)
    if not parts.definition:
        raise ValueError("the task has no definition to expand it from")
    labels = labels or task_labels(parts)
    by_key = {_label_key(label): label for label in labels or []}
    cap, counts = (label_cap(target, labels) if labels else 0), Counter()
    rng = random.Random(seed)
    run = Rounds(backend, target=target, cache=cache, budget=budget, kept_before=set(kept_before), on_keep=on_keep,
                 on_progress=on_progress, stop=stop, concurrency=concurrency, retry=retry)
    positives = {normalize_text(p[0]): n for n, p in enumerate(parts.positive, start=1)}
    seen = {normalize_text(i): "the task already has this input" for i in parts.inputs}
    written = list(parts.inputs)
    while not run.finished:
        need = target - run.report.kept
        request = inputs_request(parts, written[-SHOWN_INPUTS:], min(per_request, need + 2), labels, sampling,
                                 rng.randrange(1 << 31))
        fresh: list[str] = []
        for reply in run.ask([request]):
            items = parse_inputs(reply.text)
            if not items:
                run.report.drop(Drop("unparseable", "the reply holds no list of inputs", reply.text[:300]))
            for item in items[:need + 2]:
                key = normalize_text(item)
                if key in positives:
                    run.report.drop(Drop("positive_input", f"the input of positive example {positives[key]}", item))
                elif key in seen:
                    run.report.drop(Drop("duplicate_input", seen[key], item))
                else:
                    seen[key] = "an earlier candidate of this run has this input"
                    fresh.append(item)
        run.progress()
        kept = _finish(run, parts, request, fresh, by_key, cap, counts, written, sampling)
        run.progress()
        if run.report.stopped is None:
            run.end_round(kept)
    return run.report


def _finish(run: Rounds, parts: TaskParts, inputs_req: ChatRequest, fresh: list[str], by_key: dict[str, str],
            cap: int, counts: Counter, written: list[str], sampling: Sampling) -> int:
    """How many of the fresh inputs were kept, once given an output and checked against the labels and negatives."""
    labels = list(by_key.values()) or None
    out_requests = [output_request(parts, i, labels, sampling) for i in fresh]
    instances = []  # (input, output, output request)
    for input, reply, request in zip(fresh, run.ask(out_requests), out_requests):
        output, shown = reply.text.strip(), f"Input: {input}\nOutput: {reply.text.strip()}"
        if not output:
            run.report.drop(Drop("unparseable", "the output reply is empty", input))
        elif labels and _label_key(output) not in by_key:
            run.report.drop(Drop("unknown_label", f"“{output}” is not one of the labels: {', '.join(labels)}", shown))
        elif labels and counts[by_key[_label_key(output)]] >= cap:
            run.report.drop(_balance_drop(by_key[_label_key(output)], cap, shown))
        else:
            instances.append((input, by_key.get(_label_key(output), output) if labels else output, request))
    checks = [rubric_request(parts, negative, i, o) for i, o, _ in instances for negative in parts.negative]
    verdicts, per = run.ask(checks), len(parts.negative)
    kept = 0
    for n, (input, output, request) in enumerate(instances):
        if len(verdicts) < (n + 1) * per or run.report.kept >= run.target:
            break
        mine = verdicts[n * per:(n + 1) * per]
        shown = f"Input: {input}\nOutput: {output}"
        repeated = next((parts.negative[k] for k, v in enumerate(mine) if prompts.yes(v.text)), None)
        if repeated is not None:
            run.report.drop(Drop("negative_example", repeated[2] or "repeats the mistake of a negative example", shown))
        elif labels and counts[output] >= cap:
            run.report.drop(_balance_drop(output, cap, shown))
        else:
            keys = (run.key(inputs_req), run.key(request), *(run.key(c) for c in checks[n * per:(n + 1) * per]))
            run.keep(Candidate(parts.definition, input, output, operation="new_instance",
                               is_classification=bool(labels), cache_keys=keys), input)
            if labels:
                counts[output] += 1
            written.append(input)
            kept += 1
    return kept


def _balance_drop(label: str, cap: int, shown: str) -> Drop:
    return Drop("label_balance", f"label “{label}” already has {cap} new instances, its most "
                                 f"({BALANCE:g}x its fair share)", shown)
