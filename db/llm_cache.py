"""Model replies in the database, by request key: look up many, store one, clear a model's, count per model.

The functions take the session and never commit; DatabaseReplyCache is the runner's cache over one session and
commits each reply as it arrives, so an interrupted run keeps what it was given.
"""
from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlmodel import Session

from curation.llm.chat import BackendIdentity, ChatReply, ChatRequest, Usage
from db.llm_tables import LLMReply

LOOKUP_CHUNK = 500


def cached_replies(session: Session, *, keys: list[str]) -> dict[str, ChatReply]:
    """{key: the stored reply} for each of `keys` that the cache holds."""
    table = LLMReply.__table__
    columns = (table.c.key, table.c.texts, table.c.finish_reasons, table.c.prompt_tokens, table.c.completion_tokens,
               table.c.latency_s, table.c.logprobs)
    found: dict[str, ChatReply] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        rows = session.execute(select(*columns).where(table.c.key.in_(keys[start:start + LOOKUP_CHUNK])))
        for key, texts, reasons, prompt_tokens, completion_tokens, latency, logprobs in rows:
            found[key] = ChatReply(texts=list(texts), finish_reasons=list(reasons),
                                   usage=Usage(prompt_tokens, completion_tokens), latency_s=latency,
                                   logprobs=logprobs)
    return found


def store_reply(session: Session, *, key: str, identity: BackendIdentity, request: ChatRequest,
                reply: ChatReply) -> None:
    """Keep `reply` under `key`; a reply another writer stored meanwhile is left as it is."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    row = LLMReply(key=key, backend=identity.kind, base_url=identity.base_url, model=identity.model,
                   request={"messages": [dict(m) for m in request.messages], "parameters": request.parameters()},
                   texts=list(reply.texts), finish_reasons=list(reply.finish_reasons),
                   prompt_tokens=reply.usage.prompt_tokens, completion_tokens=reply.usage.completion_tokens,
                   latency_s=reply.latency_s, logprobs=reply.logprobs)
    values = row.model_dump(exclude={"id"})
    session.execute(insert(LLMReply).values(**values).on_conflict_do_nothing(index_elements=["key"]))


def clear_replies(session: Session, *, model: str, backend: str | None = None, base_url: str | None = None) -> int:
    """Forget the cached replies of `model` (of one backend kind and endpoint when given); returns how many."""
    table = LLMReply.__table__
    statement = delete(table).where(table.c.model == model)
    if backend is not None:
        statement = statement.where(table.c.backend == backend)
    if base_url is not None:
        statement = statement.where(table.c.base_url == base_url)
    return session.execute(statement).rowcount


def cached_reply_counts(session: Session) -> list[tuple[str, str, str, int]]:
    """(backend, base URL, model, replies) for every model the cache holds replies of, by model."""
    table = LLMReply.__table__
    rows = session.execute(select(table.c.backend, table.c.base_url, table.c.model, func.count())
                           .group_by(table.c.backend, table.c.base_url, table.c.model).order_by(table.c.model))
    return [tuple(row) for row in rows]


class DatabaseReplyCache:
    """curation.llm.runner's ReplyCache over `session`: lookups in bulk, one commit per stored reply."""

    def __init__(self, session: Session):
        self.session = session

    def get_many(self, keys: list[str]) -> dict[str, ChatReply]:
        return cached_replies(self.session, keys=keys)

    def put(self, key: str, identity: BackendIdentity, request: ChatRequest, reply: ChatReply) -> None:
        store_reply(self.session, key=key, identity=identity, request=request, reply=reply)
        self.session.commit()


def reply_requests(session: Session, *, keys: list[str]) -> dict[str, dict]:
    """{key: {"backend", "base_url", "model", "request", "texts", "created_at"}} for the keys the cache holds."""
    table = LLMReply.__table__
    found: dict[str, dict] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        rows = session.execute(select(table.c.key, table.c.backend, table.c.base_url, table.c.model, table.c.request,
                                      table.c.texts, table.c.created_at)
                               .where(table.c.key.in_(keys[start:start + LOOKUP_CHUNK])))
        for key, backend, base_url, model, request, texts, created in rows:
            found[key] = {"backend": backend, "base_url": base_url, "model": model, "request": request,
                          "texts": list(texts), "created_at": created.isoformat(timespec="seconds")}
    return found
