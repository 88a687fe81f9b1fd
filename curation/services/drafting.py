"""The model beside the editor: draft a field (streamed or whole), test an endpoint, and turn a draft's cache key
back into its provenance when the person saves.

Every reply goes through the response cache in the database (db.llm_cache) before anyone sees it as done, so the
same request again costs nothing and the record's provenance can point at the exact request. The page names a
model by its configured label only (curation.llm.choices) and a draft by its cache key: what a model wrote and
how is read back here, from the server's own cache, never taken from the page.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

from sqlmodel import Session

from curation.drafting import PROMPTS, DraftUnusable, Prompt, clean_text, wrong_language
from curation.llm import request_key, run_requests
from curation.llm.backend import Backend
from curation.llm.chat import ChatReply, ChatRequest
from curation.llm.choices import ModelChoice, backend_for, choice_named
from curation.llm.errors import BackendError
from curation.llm.runner import RetryPolicy
from curation.provenance import MachineText
from curation.services.errors import InvalidInput
from curation.services.permissions import Actor, authorize
from db.llm_cache import DatabaseReplyCache, cached_replies, reply_requests, store_reply


class ModelFailed(InvalidInput):
    """The model could not give a usable draft; the message says why in words (never a key or a trace)."""


@dataclass
class Drafted:
    """A finished draft: the text for the field, where it came from, and what it cost."""

    machine: MachineText
    cached: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.machine.text

    @property
    def key(self) -> str:
        return self.machine.cache_key


# A person waits on a streamed draft: a few quick tries, not the batch runner's patience.
STREAM_RETRY = RetryPolicy(attempts=3, base_s=0.5, cap_s=4.0, longest_retry_after_s=8.0)
_rng = random.Random()
_backends: dict[tuple[ModelChoice, float], Backend] = {}
_backends_lock = threading.Lock()


def backend_of(settings, label: str | None) -> tuple[ModelChoice, Backend]:
    """The configured model called `label` and its backend (kept, so a local model loads once)."""
    try:
        choice = choice_named(settings, label)
    except LookupError as error:
        raise InvalidInput(str(error)) from None
    with _backends_lock:
        backend = _backends.get((choice, settings.llm_timeout))
        if backend is None:
            backend = _backends[(choice, settings.llm_timeout)] = backend_for(choice, settings.llm_timeout)
    return choice, backend


def prompt_of(request: dict) -> Prompt | None:
    """Which of the studio's prompts a stored request used, by its system message."""
    system = next((m.get("content", "") for m in request.get("messages", []) if m.get("role") == "system"), "")
    return next((p for p in PROMPTS.values() if system.startswith(p.system)), None)


def field_text(prompt: Prompt | None, reply_text: str) -> str:
    """The text a reply puts into a field: a rewrite without the wrapping models add, a draft as written."""
    if prompt is not None and prompt.name in ("suggest_instruction", "draft_explanation"):
        return clean_text(reply_text)
    return (reply_text or "").strip()


def _drafted(backend: Backend, key: str, request: ChatRequest, reply: ChatReply, prompt: Prompt,
             language: str | None) -> Drafted:
    text = field_text(prompt, reply.text)
    if not text:
        raise ModelFailed("the model returned an empty reply; try again or pick another model")
    warnings = []
    if reply.truncated:
        warnings.append(f"the reply stopped at the token limit ({request.max_tokens}): it may be cut short")
    if why := wrong_language(text, language):
        warnings.append(why)
    identity = backend.identity
    machine = MachineText(text=text, backend=identity.kind, base_url=identity.base_url, model=identity.model,
                          parameters=request.parameters(), prompt=prompt.name, prompt_version=prompt.version,
                          cache_key=key)
    fresh = not reply.cached
    return Drafted(machine, reply.cached, (reply.usage.prompt_tokens or 0) if fresh else 0,
                   (reply.usage.completion_tokens or 0) if fresh else 0, warnings)


def failure(error: BackendError, backend: Backend) -> ModelFailed:
    return ModelFailed(f"the model {backend.identity.model} did not answer: {error}")


class DraftStream:
    """Iterate for the text so far, as it grows; `result` holds the Drafted once the reply is whole and cached.

    Closing it (a cancelled draft) closes the connection and stores nothing.
    """

    def __init__(self, session: Session, backend: Backend, request: ChatRequest, prompt: Prompt,
                 language: str | None):
        self.result: Drafted | None = None
        self._texts = self._run(session, backend, request, prompt, language)

    def __iter__(self) -> Iterator[str]:
        return self._texts

    def close(self) -> None:
        self._texts.close()

    def _run(self, session, backend, request, prompt, language) -> Iterator[str]:
        key = request_key(backend.identity, request)
        hit = cached_replies(session, keys=[key]).get(key)
        if hit is not None:
            from dataclasses import replace

            self.result = _drafted(backend, key, request, replace(hit, cached=True), prompt, language)
            yield self.result.text
            return
        reply = None
        for attempt in range(1, STREAM_RETRY.attempts + 1):
            stream, text = backend.stream(request), ""
            try:
                for delta in stream:
                    text += delta
                    yield text
                reply = stream.reply
                break
            except BackendError as error:
                # Opening again is safe only while nothing has been shown: a busy server (429, 5xx) gets a wait.
                if text or not error.retryable or attempt == STREAM_RETRY.attempts:
                    raise failure(error, backend) from None
                delay = STREAM_RETRY.delay(attempt, error.retry_after, _rng)
            finally:
                stream.close()
            time.sleep(delay)
        result = _drafted(backend, key, request, reply, prompt, language)  # an empty reply is refused before storing
        store_reply(session, key=key, identity=backend.identity, request=request, reply=reply)
        session.commit()
        self.result = result
        yield result.text


def stream_draft(session: Session, actor: Actor, backend: Backend, request: ChatRequest, prompt: Prompt,
                 *, language: str | None = None) -> DraftStream:
    """A draft streamed as it is written (from the cache at once when the same request was answered before)."""
    authorize(actor, "create")
    return DraftStream(session, backend, request, prompt, language)


def complete_draft(session: Session, actor: Actor, backend: Backend, request: ChatRequest, prompt: Prompt,
                   *, language: str | None = None) -> tuple[Drafted, ChatReply]:
    """A whole draft (retried on 429 and 5xx, cached), and the reply it came from (proposals parse it)."""
    authorize(actor, "create")
    report = run_requests(backend, [request], concurrency=1, cache=DatabaseReplyCache(session))
    if report.errors:
        raise failure(report.errors[0], backend)
    reply = report.replies[0]
    return _drafted(backend, request_key(backend.identity, request), request, reply, prompt, language), reply


def check_model(actor: Actor, choice: ModelChoice, backend: Backend) -> str:
    """Whether the endpoint answers, in words: who answered and how fast, or why not. Nothing is cached."""
    authorize(actor, "create")
    request = ChatRequest([{"role": "user", "content": "Reply with the single word: ready"}], max_tokens=8,
                          temperature=0)
    try:
        reply = backend.complete(request)
    except BackendError as error:
        raise ModelFailed(f"{choice.label} does not answer: {error}") from None
    said = " ".join(reply.text.split())[:40]
    return f"{choice.label} answers: {backend.identity.model} replied in {reply.latency_s:.2f} s (“{said}”)."


def machine_texts(session: Session, drafts: dict[str, str] | None) -> dict[str, MachineText]:
    """{field: what a model wrote into it} for the cache keys the editor held; unknown keys are refused."""
    drafts = {name: key for name, key in (drafts or {}).items() if key}
    if not drafts:
        return {}
    stored = reply_requests(session, keys=list(drafts.values()))
    found = {}
    for name, key in drafts.items():
        if key not in stored:
            raise InvalidInput(f"the draft for the {name} is no longer in the model cache: draft it again")
        row = stored[key]
        prompt = prompt_of(row["request"])
        found[name] = MachineText(text=field_text(prompt, row["texts"][0]), backend=row["backend"],
                                  base_url=row["base_url"], model=row["model"],
                                  parameters=row["request"].get("parameters", {}),
                                  prompt=prompt.name if prompt else "custom", prompt_version=prompt.version if prompt else 0,
                                  cache_key=key, at=row["created_at"])
    return found


__all__ = ["DraftStream", "DraftUnusable", "Drafted", "ModelFailed", "backend_of", "complete_draft",
           "check_model", "machine_texts", "stream_draft"]


def dataset_language(session: Session, name: str | None) -> str | None:
    """The language a dataset says it is in (ISO 639-1), which drafts are checked against; None when unset."""
    from db import repo

    dataset = repo.get_dataset(session, (name or "").strip()) if name else None
    return dataset.language if dataset is not None else None
