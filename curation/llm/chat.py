"""What every backend takes and gives back: a chat request, its reply, and the key that caches it."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatRequest:
    """A list of {"role", "content"} messages and the sampling parameters; None leaves a parameter to the server."""

    messages: list[dict[str, str]]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    # None: no log-probabilities; 0: those of the chosen tokens; k > 0: also the k likeliest alternatives.
    logprobs: int | None = None

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a chat request needs at least one message")
        for message in self.messages:
            if message.get("role") not in ROLES or not isinstance(message.get("content"), str):
                raise ValueError(f"a message needs a role ({', '.join(ROLES)}) and text content")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.n < 1:
            raise ValueError("n must be at least 1")

    def parameters(self) -> dict:
        """The sampling parameters that are set, as plain JSON values (the cache key and the payload use them)."""
        values = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                  "stop": list(self.stop) or None, "seed": self.seed, "n": self.n if self.n != 1 else None,
                  "logprobs": self.logprobs}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class Usage:
    """Tokens the server counted; None where it did not say."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class ChatReply:
    """One text per choice (n), each with its finish reason ("stop", "length", ...), the usage and the latency."""

    texts: list[str]
    finish_reasons: list[str]
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    # Per choice, per token: {"token", "logprob", "top": [{"token", "logprob"}, ...]}; None where not asked or given.
    logprobs: list[list[dict]] | None = None
    cached: bool = False

    @property
    def text(self) -> str:
        return self.texts[0]

    @property
    def finish_reason(self) -> str:
        return self.finish_reasons[0]

    @property
    def truncated(self) -> bool:
        """True when a choice stopped at max_tokens: reported to the user, not an error by itself."""
        return "length" in self.finish_reasons


@dataclass(frozen=True)
class BackendIdentity:
    """Which backend kind, endpoint and model answer; part of every cache key."""

    kind: str  # openai | hf | local
    base_url: str
    model: str


def normalize_base_url(url: str) -> str:
    """The URL without credentials, a trailing slash or case in the scheme and host, so equal endpoints key alike."""
    if not url:
        return ""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, ""))


def request_key(identity: BackendIdentity, request: ChatRequest) -> str:
    """The sha256 of (backend kind, base URL, model, messages, parameters) as canonical JSON."""
    payload = {"backend": identity.kind, "base_url": normalize_base_url(identity.base_url), "model": identity.model,
               "messages": [{"role": m["role"], "content": m["content"]} for m in request.messages],
               "parameters": request.parameters()}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
