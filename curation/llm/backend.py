"""The one interface every model backend fills in, and the stream of text deltas it hands back."""
from __future__ import annotations

from typing import Generator, Iterator, Protocol

from curation.llm.chat import BackendIdentity, ChatReply, ChatRequest


class ReplyStream(Iterator[str]):
    """Text deltas as they arrive; once they are exhausted, `reply` holds the whole ChatReply.

    `close()` (or leaving a `with` block early) cancels the request: the connection is closed, a local
    generation stops at its next token.
    """

    def __init__(self, deltas: Generator[str, None, ChatReply]):
        self._deltas = deltas
        self.reply: ChatReply | None = None

    def __iter__(self) -> "ReplyStream":
        return self

    def __next__(self) -> str:
        try:
            return next(self._deltas)
        except StopIteration as end:
            self.reply = end.value
            raise

    def close(self) -> None:
        self._deltas.close()

    def __enter__(self) -> "ReplyStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def collect(self) -> ChatReply:
        """Read the rest of the stream; returns the whole reply."""
        for _ in self:
            pass
        assert self.reply is not None
        return self.reply


class Backend(Protocol):
    """A chat model behind one endpoint. Raises curation.llm.errors.BackendError subclasses, nothing else."""

    identity: BackendIdentity

    def complete(self, request: ChatRequest) -> ChatReply:
        """The whole reply to `request`."""
        ...

    def stream(self, request: ChatRequest) -> ReplyStream:
        """The reply to `request` (one choice) as text deltas; nothing is sent until the first delta is read."""
        ...
