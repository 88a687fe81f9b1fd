"""Many chat requests against one backend: bounded concurrency, retries with backoff, a cache that makes re-runs free.

Threads, not asyncio: the openai client's sync API, a local transformers model and the SQLAlchemy session are all
blocking, and the callers (Gradio handlers, the CLI) are plain functions. A pool of `concurrency` worker threads
bounds the requests in flight exactly; the GIL is released while they wait on the network, and the cache is
written only from the calling thread (one writer, one commit per reply as it arrives, so a run that is stopped or
killed keeps every reply it got and a re-run asks only for the rest).
"""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

from curation.llm.backend import Backend
from curation.llm.chat import BackendIdentity, ChatReply, ChatRequest, request_key
from curation.llm.errors import BackendError

Progress = Callable[[int, int], None]


class ReplyCache(Protocol):
    """Where replies are kept by request key (db.llm_cache.DatabaseReplyCache stores them in the database)."""

    def get_many(self, keys: list[str]) -> dict[str, ChatReply]: ...

    def put(self, key: str, identity: BackendIdentity, request: ChatRequest, reply: ChatReply) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Retry 429 and 5xx up to `attempts` tries in all: wait what Retry-After says, else full-jitter backoff."""

    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    longest_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before try number `attempt + 1` (attempt counts from 1)."""
        if retry_after is not None:
            # What the server asked for, plus a little spread so a storm of 429s does not come back at once.
            return min(retry_after, self.longest_retry_after_s) + rng.uniform(0, min(self.base_s, 1.0))
        return rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


@dataclass
class RunReport:
    """What a run gave back, aligned with the requests (None where a request failed or was not reached)."""

    replies: list[ChatReply | None]
    errors: dict[int, BackendError] = field(default_factory=dict)
    cached: int = 0  # requests answered from the cache
    requested: int = 0  # distinct requests sent to the backend (retries not counted)
    retries: int = 0
    truncated: int = 0  # replies that stopped at max_tokens
    stopped: bool = False  # the caller stopped the run, or a fatal error did
    fatal: BackendError | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return sum(reply is not None for reply in self.replies)


class Stopped(Exception):
    """The run was stopped while this request waited to retry."""


def run_requests(backend: Backend, requests: list[ChatRequest], *, concurrency: int = 8,
                 cache: ReplyCache | None = None, retry: RetryPolicy = RetryPolicy(),
                 progress: Progress | None = None, on_reply: Callable[[int, ChatReply], None] | None = None,
                 stop: threading.Event | None = None, sleep: Callable[[float], None] | None = None,
                 seed: int | None = None) -> RunReport:
    """Run every request (each distinct one once), `concurrency` at a time; returns the replies and the counts.

    `progress(done, total)` is called as requests finish (cache hits, replies and failures alike); setting `stop`
    lets the requests in flight finish (and be cached) and sends no more. `sleep` waits between retries.
    """
    started = time.perf_counter()
    stop = stop or threading.Event()
    rng = random.Random(seed)
    keys = [request_key(backend.identity, r) for r in requests]
    report = RunReport(replies=[None] * len(requests))
    positions: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        positions.setdefault(key, []).append(index)
    total, done = len(requests), 0

    def settle(key: str, reply: ChatReply | None, error: BackendError | None = None) -> None:
        nonlocal done
        for index in positions[key]:
            if reply is not None:
                report.replies[index] = reply
                if on_reply:
                    on_reply(index, reply)
            else:
                report.errors[index] = error
        done += len(positions[key])
        if progress:
            progress(done, total)

    hits = cache.get_many(list(positions)) if cache is not None and positions else {}
    for key, reply in hits.items():
        report.cached += len(positions[key])
        settle(key, replace(reply, cached=True))
    missing = [key for key in positions if key not in hits]
    if missing and not stop.is_set():
        _send(backend, requests, missing, positions, concurrency, retry, rng, stop, sleep, cache, report, settle)
    report.stopped = report.stopped or (stop.is_set() and report.done + len(report.errors) < total)
    report.truncated = sum(reply.truncated for reply in report.replies if reply is not None)
    fresh = [reply for reply in report.replies if reply is not None and not reply.cached]
    report.prompt_tokens = sum(r.usage.prompt_tokens or 0 for r in fresh)
    report.completion_tokens = sum(r.usage.completion_tokens or 0 for r in fresh)
    report.seconds = time.perf_counter() - started
    return report


def _send(backend, requests, missing, positions, concurrency, retry, rng, stop, sleep, cache, report, settle) -> None:
    """Keep at most `concurrency` requests in flight until every missing key is answered, failed or stopped."""
    waiter = sleep or (lambda seconds: stop.wait(seconds))
    retries_lock = threading.Lock()

    def call(request: ChatRequest) -> ChatReply:
        for attempt in range(1, retry.attempts + 1):
            try:
                return backend.complete(request)
            except BackendError as error:
                if not error.retryable or attempt == retry.attempts:
                    raise
                delay = retry.delay(attempt, error.retry_after, rng)
            with retries_lock:
                report.retries += 1
            waiter(delay)
            if stop.is_set() or report.fatal is not None:
                raise Stopped()
        raise AssertionError("unreachable")

    queue = iter(missing)
    in_flight: dict[Future, str] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="llm")
    try:
        while True:
            while len(in_flight) < concurrency and not stop.is_set() and report.fatal is None:
                key = next(queue, None)
                if key is None:
                    break
                in_flight[pool.submit(call, requests[positions[key][0]])] = key
                report.requested += 1
            if not in_flight:
                return
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                key = in_flight.pop(future)
                try:
                    reply = future.result()
                except Stopped:
                    continue
                except BackendError as error:
                    settle(key, None, error)
                    if error.fatal and report.fatal is None:
                        report.fatal, report.stopped = error, True
                    continue
                if cache is not None:
                    cache.put(key, backend.identity, requests[positions[key][0]], reply)
                settle(key, reply)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
