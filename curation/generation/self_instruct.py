"""Self-Instruct (Wang et al. 2022): grow instructions from a seed pool, then write an instance for each.

A round asks `batch_size` requests, each showing 8 instructions (6 seeds and 2 instructions kept earlier in the
run, or 8 seeds before any is kept) and asking for 8 more. Each new instruction passes the filters (length,
blacklist, first character, not the cut-off end of a truncated reply, ROUGE-L F1 at most 0.7 with every seed,
dataset and accepted instruction) and joins the pool at once. Then the model says whether each accepted task is
a classification task, and writes one instance: output first for classification (so the inputs do not all lean
to one label), input first otherwise. All randomness comes from random.Random(seed), drawn in request order.
"""
from __future__ import annotations

import json
import random
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from curation.drafting import Sampling
from curation.generation import prompts
from curation.generation.filters import RougePool, instruction_drop, rouge_drop, truncated_drop
from curation.generation.report import Budget, Candidate, Drop, GenerationReport
from curation.generation.rounds import Rounds
from curation.llm import Backend, ChatRequest, ReplyCache, RetryPolicy

SHOWN, SHOWN_MACHINE, ASKED = 8, 2, 8  # instructions in a prompt, of them kept earlier, new ones asked for
INSTRUCTION_SAMPLING = Sampling(temperature=0.7, top_p=0.5, max_tokens=1024)  # Self-Instruct's settings


@dataclass(frozen=True)
class SeedTask:
    id: str
    name: str
    instruction: str
    instances: list[dict[str, str]] = field(default_factory=list)
    is_classification: bool = False


def load_seed_tasks(path: str | Path) -> list[SeedTask]:
    """The seed tasks of a Self-Instruct JSONL file; ValueError naming the line when one is malformed."""
    path = Path(path)
    tasks: list[SeedTask] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}, line {number}"
        try:
            row = json.loads(line)
        except ValueError as error:
            raise ValueError(f"{where}: not JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{where}: a seed task is a JSON object")
        instruction = row.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError(f"{where}: no instruction")
        instances = row.get("instances", [])
        if not isinstance(instances, list) or not all(
                isinstance(i, dict) and isinstance(i.get("input", ""), str) and isinstance(i.get("output"), str)
                for i in instances):
            raise ValueError(f"{where}: instances must be a list of {{\"input\", \"output\"}} texts")
        if not isinstance(row.get("is_classification", False), bool):
            raise ValueError(f"{where}: is_classification must be true or false")
        tasks.append(SeedTask(id=str(row.get("id") or f"line_{number}"), name=str(row.get("name") or ""),
                              instruction=instruction.strip(),
                              instances=[{"input": i.get("input", ""), "output": i["output"]} for i in instances],
                              is_classification=row.get("is_classification", False)))
    if not tasks:
        raise ValueError(f"{path.name} holds no seed tasks")
    return tasks


def seeds_from_records(rows: Iterable[tuple[str, str, str, str]]) -> list[SeedTask]:
    """Seed tasks from records (id, instruction, input, output), skipping those without an instruction."""
    tasks = [SeedTask(id=str(rid), name="", instruction=instruction.strip(),
                      instances=[{"input": input or "", "output": output or ""}])
             for rid, instruction, input, output in rows if (instruction or "").strip()]
    if not tasks:
        raise ValueError("no record has an instruction to seed from")
    return tasks


def instructions_request(shown: list[str], sampling: Sampling, seed: int) -> ChatRequest:
    """The request that shows `shown` and asks for ASKED new instructions."""
    return ChatRequest([{"role": "system", "content": prompts.SELF_INSTRUCT_SYSTEM},
                        {"role": "user", "content": prompts.instructions_prompt(shown, ASKED)}],
                       temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens,
                       seed=seed)


def classify_request(instruction: str) -> ChatRequest:
    return ChatRequest([{"role": "system", "content": prompts.CLASSIFY_SYSTEM},
                        {"role": "user", "content": prompts.classify_prompt(instruction)}],
                       temperature=0.0, max_tokens=8)


def instance_request(instruction: str, is_classification: bool, sampling: Sampling) -> ChatRequest:
    """The request for one instance of `instruction`: output first for classification tasks, else input first."""
    user = (prompts.output_first_prompt if is_classification else prompts.input_first_prompt)(instruction)
    return ChatRequest([{"role": "system", "content": prompts.INSTANCE_SYSTEM}, {"role": "user", "content": user}],
                       temperature=0.0, max_tokens=sampling.max_tokens)


def parse_instructions(text: str) -> list[str]:
    """The new instructions in a reply's numbered list; [] when it holds none."""
    return [item for item in prompts.numbered_items(text) if item]


# A label opens its line, perhaps in markdown bold; "# Output: 9" inside code is not one.
_FIELD = re.compile(r"^[ \t*_]*(input|output)[*_]*[ \t]*:[*_]*[ \t]*", re.IGNORECASE | re.MULTILINE)


def parse_instance(text: str) -> tuple[str, str] | None:
    """(input, output) from an "Input: ... Output: ..." reply (either order); None when it has no output."""
    text = text or ""
    marks: dict[str, re.Match] = {}
    for mark in _FIELD.finditer(text):
        marks.setdefault(mark.group(1).lower(), mark)  # the first of each: the other's text may hold the word

    def field(name: str, other: str) -> str:
        mark, after = marks[name], marks.get(other)
        end = after.start() if after is not None and after.start() > mark.start() else len(text)
        return text[mark.end():end].strip()

    output = field("output", "input") if "output" in marks else ""
    if not output:
        return None
    given = field("input", "output") if "input" in marks else ""
    return ("" if given.lower() in (prompts.NO_INPUT, "<no input>") else given), output


@dataclass
class _Accepted:
    instruction: str
    seeds: tuple[str, ...]
    key: str


def run_self_instruct(backend: Backend, seeds: list[SeedTask], *, existing: Iterable[str] = (), target: int,
                      cache: ReplyCache | None = None, budget: Budget = Budget(), kept_before: Iterable[str] = (),
                      on_keep: Callable[[Candidate], Any] | None = None,
                      on_progress: Callable[[int, int], None] | None = None, stop: threading.Event | None = None,
                      seed: int = 0, concurrency: int = 8, sampling: Sampling = INSTRUCTION_SAMPLING,
                      batch_size: int = 8, retry: RetryPolicy = RetryPolicy()) -> GenerationReport:
    """The report of a Self-Instruct run that keeps up to `target` new instructions, each with one instance.

    `batch_size` (instruction requests per round) and `seed` are part of the job's spec: a re-run with the same
    values and cache replays the earlier replies. `existing` are the dataset's instructions (ROUGE-L checked).
    """
    if not seeds:
        raise ValueError("Self-Instruct needs at least one seed task")
    rng = random.Random(seed)
    run = Rounds(backend, target=target, cache=cache, budget=budget, kept_before=set(kept_before), on_keep=on_keep,
                 on_progress=on_progress, stop=stop, concurrency=concurrency, retry=retry)
    pool = RougePool([s.instruction for s in seeds] + list(existing))
    machine: list[str] = []  # instructions kept in this run, in order: the prompts show two of them
    while not run.finished:
        accepted = _new_instructions(run, rng, seeds, machine, pool, sampling, batch_size)
        kept = _write_instances(run, accepted, machine, sampling)
        run.progress()
        if run.report.stopped is None:
            run.end_round(kept)
    return run.report


def _new_instructions(run: Rounds, rng: random.Random, seeds: list[SeedTask], machine: list[str],
                      pool: RougePool, sampling: Sampling, batch_size: int) -> list[_Accepted]:
    """One round's instruction requests, their items filtered in order; the accepted ones join the pool."""
    requests, shown_seeds = [], []
    for _ in range(min(batch_size, run.target - run.report.kept)):
        earlier = rng.sample(machine, min(SHOWN_MACHINE, len(machine)))
        chosen = rng.sample(seeds, min(SHOWN - len(earlier), len(seeds)))
        shown = [s.instruction for s in chosen] + earlier
        rng.shuffle(shown)
        requests.append(instructions_request(shown, sampling, rng.randrange(1 << 31)))
        shown_seeds.append(tuple(s.id for s in chosen))
    replies = run.ask(requests)
    run.progress()
    need = run.target - run.report.kept
    accepted: list[_Accepted] = []
    for request, seed_ids, reply in zip(requests, shown_seeds, replies):
        items = parse_instructions(reply.text)
        if not items:
            run.report.drop(Drop("unparseable", "the reply holds no numbered list of tasks", reply.text[:300]))
            continue
        for index, item in enumerate(items):
            if len(accepted) >= need:
                return accepted  # past the target: not examined, not counted
            last_of_cut_reply = index == len(items) - 1 and reply.finish_reason == "length"
            drop = truncated_drop(item) if last_of_cut_reply else instruction_drop(item) or rouge_drop(pool, item)
            if drop is not None:
                run.report.drop(drop)
                continue
            pool.add(item)
            accepted.append(_Accepted(item, seed_ids, run.key(request)))
    return accepted


def _write_instances(run: Rounds, accepted: list[_Accepted], machine: list[str], sampling: Sampling) -> int:
    """How many accepted instructions were kept, once asked whether they classify and given an instance."""
    kinds = run.ask([classify_request(a.instruction) for a in accepted])
    classifies = [prompts.yes(reply.text) for reply in kinds]  # anything but yes is a generation task, as in the paper
    requests = [instance_request(a.instruction, is_clf, sampling) for a, is_clf in zip(accepted, classifies)]
    kept = 0
    for a, is_clf, reply, request in zip(accepted, classifies, run.ask(requests), requests):
        instance = parse_instance(reply.text)
        if instance is None:
            run.report.drop(Drop("unparseable", "the instance reply has no “Output:”", a.instruction))
            continue
        candidate = Candidate(a.instruction, instance[0], instance[1], seeds=a.seeds, is_classification=is_clf,
                              cache_keys=(a.key, run.key(classify_request(a.instruction)), run.key(request)))
        run.keep(candidate, a.instruction)
        machine.append(a.instruction)
        kept += 1
    return kept
