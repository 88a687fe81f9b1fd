"""What a generation pipeline gives back: candidates kept, drops by rule with examples, and the counts."""
from __future__ import annotations

from dataclasses import dataclass, field

DROP_EXAMPLES = 5  # examples kept per rule, for the report a person reads


@dataclass(frozen=True)
class Candidate:
    """A record a pipeline keeps: its text, and where it came from (seeds shown, parent, operation, requests)."""

    instruction: str
    input: str = ""
    output: str = ""
    category: str | None = None
    seeds: tuple[str, ...] = ()  # ids of the seed tasks shown in the prompt that led to it
    parent_id: int | None = None  # Evol-Instruct: the record it evolved from
    operation: str | None = None  # Evol-Instruct: add_constraints, deepen, concretize, reasoning, complicate_input,
    #                               breadth; SNI expansion: new_instance
    cache_keys: tuple[str, ...] = ()  # the cached requests whose replies made it
    is_classification: bool | None = None


@dataclass(frozen=True)
class Drop:
    rule: str  # e.g. rouge_l, too_short, too_long, blacklist, punctuation_start, non_ascii_start, truncated,
    #            no_information_gain, cannot_answer, only_stop_words, copies_prompt, negative_example,
    #            duplicate_input, positive_input, unparseable
    reason: str  # words for a person: "ROUGE-L 0.82 with “Give three tips for staying healthy.”"
    text: str


@dataclass(frozen=True)
class Budget:
    """Limits of one run; None is no limit. Only requests sent to the backend count (cache hits are free)."""

    requests: int | None = None
    tokens: int | None = None


@dataclass
class GenerationReport:
    kept: int = 0  # candidates kept in this run, including those replayed from before (kept_before)
    written: int = 0  # of them, passed to on_keep now (the rest were kept by an earlier run of the job)
    requested: int = 0  # requests sent to the backend
    cached: int = 0  # requests answered from the cache
    failed: int = 0  # requests that failed after retries
    drops: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[Drop]] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stopped: str | None = None  # why the run ended early: "cancelled", "budget", "no new candidates", an error

    def drop(self, drop: Drop) -> None:
        self.drops[drop.rule] = self.drops.get(drop.rule, 0) + 1
        examples = self.examples.setdefault(drop.rule, [])
        if len(examples) < DROP_EXAMPLES:
            examples.append(drop)

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())
