"""One pipeline run's traffic with the model: each batch through the runner, within the budget, until a stop.

Every pipeline asks in batches (`ask`), handles the replies in request order, keeps candidates through `keep`,
and checks `finished` between batches. Whatever ends the run (cancel, budget, a backend error) is written to
report.stopped once; a batch cut short gives back only the replies before the cut, so what the pipeline does with
them is what an uncut run would have done with the same prefix (the replay of a resumed job depends on it).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Collection

from curation.generation.report import Budget, Candidate, GenerationReport
from curation.llm import Backend, ChatReply, ChatRequest, ReplyCache, RetryPolicy, request_key, run_requests
from curation.llm.errors import EmptyReply

EMPTY_ROUNDS = 3  # rounds in a row that keep nothing before a run gives up: the model only repeats itself
NO_NEW_CANDIDATES = "no new candidates"


class Rounds:
    def __init__(self, backend: Backend, *, target: int, cache: ReplyCache | None, budget: Budget,
                 kept_before: Collection[str], on_keep: Callable[[Candidate], Any] | None,
                 on_progress: Callable[[int, int], None] | None, stop: threading.Event | None, concurrency: int,
                 retry: RetryPolicy):
        self.backend, self.target, self.cache, self.budget = backend, target, cache, budget
        self.kept_before, self.on_keep, self.on_progress = kept_before, on_keep, on_progress
        self.stop, self.concurrency, self.retry = stop or threading.Event(), concurrency, retry
        self.report = GenerationReport()
        self.empty_rounds = 0

    def key(self, request: ChatRequest) -> str:
        return request_key(self.backend.identity, request)

    @property
    def finished(self) -> bool:
        return self.report.stopped is not None or self.report.kept >= self.target

    def _over_tokens(self) -> bool:
        report, limit = self.report, self.budget.tokens
        return limit is not None and report.prompt_tokens + report.completion_tokens >= limit

    def _affordable(self, requests: list[ChatRequest]) -> int:
        """How many of `requests`, from the first, the request budget pays for (cached replies are free)."""
        if self.budget.requests is None:
            return len(requests)
        left = self.budget.requests - self.report.requested
        keys = [self.key(r) for r in requests]
        hits = self.cache.get_many(list(dict.fromkeys(keys))) if self.cache is not None and keys else {}
        sent: set[str] = set()
        for index, key in enumerate(keys):
            if key not in hits and key not in sent:
                if len(sent) == left:
                    return index
                sent.add(key)
        return len(requests)

    def ask(self, requests: list[ChatRequest]) -> list[ChatReply]:
        """The replies to `requests` in order; fewer (the ones before a cut) when the run ends during the batch."""
        report = self.report
        if not requests or report.stopped is not None:
            return []
        if self.stop.is_set():
            report.stopped = "cancelled"
            return []
        if self._over_tokens():
            report.stopped = "budget"
            return []
        affordable = self._affordable(requests)
        if affordable == 0:
            report.stopped = "budget"
            return []
        run = run_requests(self.backend, requests[:affordable], concurrency=self.concurrency, cache=self.cache,
                           stop=self.stop, retry=self.retry)
        # An empty reply is the model's answer, not the backend failing: the pipeline drops it as unparseable.
        for index in [i for i, error in run.errors.items() if isinstance(error, EmptyReply)]:
            del run.errors[index]
            run.replies[index] = ChatReply(texts=[""], finish_reasons=["stop"])
        report.requested += run.requested
        report.cached += run.cached
        report.failed += len(run.errors)
        report.prompt_tokens += run.prompt_tokens
        report.completion_tokens += run.completion_tokens
        replies: list[ChatReply] = []
        for reply in run.replies:
            if reply is None:
                break
            replies.append(reply)
        if run.fatal is not None:
            report.stopped = run.fatal.message
        elif run.errors:
            report.stopped = run.errors[min(run.errors)].message
        elif len(replies) < affordable:
            report.stopped = "cancelled"
        elif affordable < len(requests) or self._over_tokens():
            report.stopped = "budget"
        return replies

    def keep(self, candidate: Candidate, text: str) -> Any:
        """Count `candidate` as kept and hand it to on_keep unless an earlier run kept it (`text` names it)."""
        self.report.kept += 1
        if text in self.kept_before:
            return None
        self.report.written += 1
        return self.on_keep(candidate) if self.on_keep else None

    def progress(self) -> None:
        if self.on_progress:
            self.on_progress(self.report.kept, self.target)

    def end_round(self, kept: int) -> None:
        """Count a round that kept `kept` candidates; EMPTY_ROUNDS empty ones in a row end the run."""
        self.empty_rounds = 0 if kept else self.empty_rounds + 1
        if self.empty_rounds >= EMPTY_ROUNDS and self.report.stopped is None:
            self.report.stopped = NO_NEW_CANDIDATES
