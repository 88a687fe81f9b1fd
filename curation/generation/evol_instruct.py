"""Evol-Instruct (WizardLM, Xu et al. 2023): rewrite chosen records into harder or rarer ones, round by round.

Each round, every line of descent evolves once by an operation drawn from random.Random(seed): in-depth
(add_constraints, deepen, concretize, reasoning, complicate_input, the last only for records with an input) or
in-breadth (breadth: a new, rarer instruction of the same domain). The paper's elimination rules drop an
evolved instruction that copies the evolving prompt's words, holds only stop words, that the model judges equal
to its parent (no information gain), or whose answer says "sorry" in under 80 words. A line whose evolution fails
evolves again from the same parent next round, as WizardLM puts failures back into the pool.
"""
from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from curation.drafting import Sampling
from curation.generation import prompts
from curation.generation.filters import (cannot_answer_drop, copies_prompt_drop, no_information_gain_drop,
                                         only_stop_words_drop)
from curation.generation.report import Budget, Candidate, Drop, GenerationReport
from curation.generation.rounds import Rounds
from curation.llm import Backend, ChatRequest, ReplyCache, RetryPolicy

DEPTH = ("add_constraints", "deepen", "concretize", "reasoning", "complicate_input")
OPERATIONS = DEPTH + ("breadth",)
EVOL_SAMPLING = Sampling(temperature=1.0, max_tokens=2048)  # WizardLM's settings
_INPUT = re.compile(r"\n\s*\**input\**\s*:\s*\**\s*", re.IGNORECASE)


@dataclass(frozen=True)
class _Line:
    """One line of descent: the record the next evolution starts from, and the id of the first one."""

    parent_id: int | None
    instruction: str
    input: str
    output: str
    root_id: int | None


def given_prompt(instruction: str, input: str = "") -> str:
    """A record as the evolving prompt shows it: the instruction, and its input under "Input:"."""
    return instruction.strip() if not input.strip() else f"{instruction.strip()}\n\nInput:\n{input.strip()}"


def evolve_request(operation: str, instruction: str, input: str, sampling: Sampling, seed: int) -> ChatRequest:
    """The request that evolves (instruction, input) by `operation` with WizardLM's prompt."""
    user = prompts.evolve_prompt(operation, given_prompt(instruction, input))
    return ChatRequest([{"role": "user", "content": user}],
                       temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens,
                       seed=seed)


def equal_request(parent: str, evolved: str) -> ChatRequest:
    """The request that asks whether the evolved prompt is equal to its parent (WizardLM's judgement)."""
    return ChatRequest([{"role": "user", "content": prompts.EQUAL_PROMPT.format(first=parent, second=evolved)}],
                       temperature=0.0, max_tokens=8)


def answer_request(instruction: str, input: str, sampling: Sampling) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": given_prompt(instruction, input)}],
                       temperature=0.7, max_tokens=sampling.max_tokens)


def parse_evolved(text: str, had_input: bool) -> tuple[str, str]:
    """(instruction, input) of an evolved prompt; the input is split off under "Input:" when the parent had one."""
    text = (text or "").strip()
    if had_input:
        parts = _INPUT.split(text, maxsplit=1)
        if len(parts) == 2:
            return parts[0].strip(), parts[1].strip()
    return text, ""


def run_evol_instruct(backend: Backend, parents: list[tuple[int, str, str, str]], *,
                      operations: Iterable[str] = OPERATIONS, rounds: int = 1, target: int | None = None,
                      cache: ReplyCache | None = None, budget: Budget = Budget(),
                      kept_before: Iterable[str] | Mapping[str, int] = (),
                      on_keep: Callable[[Candidate], Any] | None = None,
                      on_progress: Callable[[int, int], None] | None = None, stop: threading.Event | None = None,
                      seed: int = 0, concurrency: int = 8, sampling: Sampling = EVOL_SAMPLING,
                      batch_size: int = 32, retry: RetryPolicy = RetryPolicy()) -> GenerationReport:
    """The report of `rounds` rounds of evolution over `parents` (record id, instruction, input, output).

    A candidate's parent_id is the record it evolved from: a given parent in round 1; later, the id on_keep
    returned for the evolved parent (or kept_before's id for it, when kept_before maps instruction -> id), else
    the original record's id. Stops early once `target` candidates are kept.
    """
    operations = tuple(operations)
    unknown = [op for op in operations if op not in OPERATIONS]
    if unknown or not operations:
        raise ValueError(f"unknown operation {unknown[0]!r}: choose from {', '.join(OPERATIONS)}" if unknown
                         else "choose at least one operation")
    ids = dict(kept_before) if isinstance(kept_before, Mapping) else {}
    rng = random.Random(seed)
    run = Rounds(backend, target=target if target is not None else rounds * len(parents), cache=cache,
                 budget=budget, kept_before=set(kept_before), on_keep=on_keep, on_progress=on_progress, stop=stop,
                 concurrency=concurrency, retry=retry)
    lines = [_Line(pid, instruction, input or "", output or "", pid) for pid, instruction, input, output in parents]
    for _ in range(rounds):
        for start in range(0, len(lines), batch_size):
            if run.finished:
                return run.report
            lines[start:start + batch_size] = _evolve(run, rng, lines[start:start + batch_size], operations,
                                                      sampling, ids)
            run.progress()
    return run.report


def _evolve(run: Rounds, rng: random.Random, lines: list[_Line], operations: tuple[str, ...], sampling: Sampling,
            ids: dict[str, int]) -> list[_Line]:
    """The lines after one evolution each: a kept candidate becomes the next parent of its line."""
    plans = []
    for line in lines:
        usable = [op for op in operations if op != "complicate_input" or line.input.strip()] or list(operations)
        op = rng.choice(usable)
        plans.append((op, evolve_request(op, line.instruction, line.input, sampling, rng.randrange(1 << 31))))
    evolved = []  # (line index, operation, instruction, input, key)
    for index, ((op, request), reply) in enumerate(zip(plans, run.ask([r for _, r in plans]))):
        instruction, input = parse_evolved(reply.text, bool(lines[index].input.strip()))
        drop = (Drop("unparseable", "the reply holds no evolved instruction", reply.text[:300]) if not instruction
                else copies_prompt_drop(instruction) or only_stop_words_drop(instruction))
        if drop is not None:
            run.report.drop(drop)
        else:
            evolved.append((index, op, instruction, input, run.key(request)))
    checks = []
    for index, _, instruction, input, _ in evolved:
        parent = lines[index]
        checks += [equal_request(given_prompt(parent.instruction, parent.input), given_prompt(instruction, input)),
                   answer_request(instruction, input, sampling)]
    replies = run.ask(checks)
    result = list(lines)
    for n, (index, op, instruction, input, key) in enumerate(evolved):
        if 2 * n + 1 >= len(replies) or run.report.kept >= run.target:
            break
        judgement, answer = replies[2 * n].text, replies[2 * n + 1].text.strip()
        drop = (no_information_gain_drop(judgement, instruction) or cannot_answer_drop(answer, instruction)
                or only_stop_words_drop(answer, "answer", shown=instruction))
        if drop is not None:
            run.report.drop(drop)
            continue
        line = lines[index]
        candidate = Candidate(instruction, input, answer, parent_id=line.parent_id, operation=op,
                              cache_keys=(key, run.key(checks[2 * n]), run.key(checks[2 * n + 1])))
        written = run.keep(candidate, instruction)
        known = isinstance(written, int) and not isinstance(written, bool)
        new_id = written if known else ids.get(instruction, line.root_id)
        result[index] = _Line(new_id, instruction, input, answer, line.root_id)
    return result
