"""Typed backend failures whose messages are short words for the user (never a key, never a stack trace).

`retryable` failures (429, 5xx) are retried by the runner; `fatal` ones (the endpoint, the key or the model is
wrong) would fail every other request the same way, so a run stops at the first.
"""
from __future__ import annotations


class BackendError(Exception):
    retryable = False
    fatal = False

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class EndpointUnreachable(BackendError):
    """Nothing answers at the address (down, wrong host or port, refused)."""

    fatal = True


class WrongURL(BackendError):
    """Something answers, but not the chat-completions API (404 on the path)."""

    fatal = True


class Unauthorized(BackendError):
    """401 or 403: the key is missing, wrong or not allowed this model."""

    fatal = True


class ModelNotFound(BackendError):
    fatal = True


class BadRequest(BackendError):
    """Another 4xx: the server refused this request (too long, a parameter it does not take)."""


class RateLimited(BackendError):
    retryable = True


class ServerError(BackendError):
    retryable = True


class TimedOut(BackendError):
    pass


class NotJSON(BackendError):
    pass


class StreamCutOff(BackendError):
    pass


class EmptyReply(BackendError):
    pass


class ModelUnavailable(BackendError):
    """A local model that cannot be loaded (no such folder, not cached offline, not a causal LM)."""

    fatal = True


def scrub(text: str, secrets: tuple[str | None, ...], limit: int = 160) -> str:
    """`text` on one line, cut to `limit` characters, with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
