"""Any OpenAI-compatible chat endpoint (vLLM, SGLang, TGI, llama.cpp, Ollama, `transformers serve`, OpenAI) and
Hugging Face Inference Providers (the HF router speaks the same API), through the `openai` client.

The API key is read from the environment variable the settings name, at each request, into a client object that
lives for that request only: no object of ours holds it, and every message from the server is scrubbed of it.
The client's own retries are off; curation.llm.runner retries 429 and 5xx, once, in one place.
"""
from __future__ import annotations

import os
import time
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Generator
from urllib.parse import urlsplit

from curation.llm import errors
from curation.llm.backend import ReplyStream
from curation.llm.chat import BackendIdentity, ChatReply, ChatRequest, Usage, normalize_base_url

DEFAULT_BASE_URLS = {"openai": "http://127.0.0.1:8000/v1", "hf": "https://router.huggingface.co/v1"}
# Sent when the key's variable is unset: keyless local servers ignore it, the others answer 401 and we say so.
NO_KEY = "no-key"


class OpenAICompatibleBackend:
    def __init__(self, *, model: str, base_url: str = "", api_key_env: str = "LLM_API_KEY", timeout: float = 60.0,
                 kind: str = "openai"):
        if kind not in DEFAULT_BASE_URLS:
            raise ValueError(f"unknown backend kind {kind!r} (openai, hf)")
        if not model:
            raise ValueError("name the model the endpoint serves")
        url = (base_url or DEFAULT_BASE_URLS[kind]).strip().rstrip("/")
        self._url = url
        self.identity = BackendIdentity(kind, normalize_base_url(url), model)
        self.api_key_env = api_key_env
        self.timeout = timeout

    def __repr__(self) -> str:
        kind, url, model = self.identity.kind, self.identity.base_url, self.identity.model
        return (f"OpenAICompatibleBackend(kind={kind!r}, base_url={url!r}, model={model!r}, "
                f"api_key_env={self.api_key_env!r})")

    @cached_property
    def _http(self):
        import openai

        # One connection pool for every request of this backend, shared by the runner's threads.
        return openai.DefaultHttpxClient()

    def complete(self, request: ChatRequest) -> ChatReply:
        key = os.environ.get(self.api_key_env) or None
        started = time.perf_counter()
        try:
            completion = self._client(key).chat.completions.create(**self._payload(request))
        except Exception as error:
            raise self._error(error, key) from None
        latency = time.perf_counter() - started
        choices = getattr(completion, "choices", None)
        if isinstance(completion, str) or not isinstance(choices, list):
            raise errors.NotJSON("the reply is not a JSON chat completion")
        choices = sorted(choices, key=lambda c: c.index or 0)
        texts = [(c.message.content if c.message else None) or "" for c in choices]
        if not any(texts):
            raise errors.EmptyReply("the model returned an empty reply")
        logprobs = [_logprobs(c.logprobs) for c in choices] if request.logprobs is not None else None
        return ChatReply(texts=texts, finish_reasons=[c.finish_reason or "stop" for c in choices],
                         usage=_usage(completion.usage), latency_s=latency,
                         logprobs=logprobs if logprobs and any(logprobs) else None)

    def stream(self, request: ChatRequest) -> ReplyStream:
        if request.n != 1:
            raise ValueError("a stream carries one reply; use complete() for n > 1")
        return ReplyStream(self._deltas(request))

    def _deltas(self, request: ChatRequest) -> Generator[str, None, ChatReply]:
        key = os.environ.get(self.api_key_env) or None
        started = time.perf_counter()
        try:
            chunks = self._client(key).chat.completions.create(
                **self._payload(request), stream=True, stream_options={"include_usage": True})
        except Exception as error:
            raise self._error(error, key) from None
        parts: list[str] = []
        finish, usage, tokens, events = None, None, [], 0
        try:
            for chunk in chunks:
                if isinstance(chunk, str) or not hasattr(chunk, "choices"):
                    raise errors.NotJSON("the stream is not JSON chat-completion chunks")
                events += 1
                usage = chunk.usage or usage
                for choice in chunk.choices or []:
                    if (choice.index or 0) != 0:
                        continue
                    if choice.logprobs is not None:
                        tokens.extend(_logprobs(choice.logprobs))
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        parts.append(delta)
                        yield delta
        except errors.BackendError:
            raise
        except Exception as error:
            raise self._error(error, key, streaming=True) from None
        finally:
            chunks.close()
        if finish is None:
            if not events and "event-stream" not in chunks.response.headers.get("content-type", ""):
                raise errors.NotJSON("the reply is not a stream of JSON events")
            raise errors.StreamCutOff("the stream was cut off before the reply finished")
        if not parts:
            raise errors.EmptyReply("the model returned an empty reply")
        return ChatReply(texts=["".join(parts)], finish_reasons=[finish], usage=_usage(usage),
                         latency_s=time.perf_counter() - started,
                         logprobs=[tokens] if request.logprobs is not None and tokens else None)

    def _client(self, key: str | None):
        import openai

        return openai.OpenAI(base_url=self._url, api_key=key or NO_KEY, timeout=self.timeout, max_retries=0,
                             http_client=self._http)

    def _payload(self, request: ChatRequest) -> dict:
        payload = {"model": self.identity.model, "messages": [dict(m) for m in request.messages]}
        for name in ("temperature", "top_p", "max_tokens", "seed"):
            if getattr(request, name) is not None:
                payload[name] = getattr(request, name)
        if request.stop:
            payload["stop"] = list(request.stop)
        if request.n != 1:
            payload["n"] = request.n
        if request.logprobs is not None:
            payload["logprobs"] = True
            if request.logprobs > 0:
                payload["top_logprobs"] = request.logprobs
        return payload

    def _error(self, error: Exception, key: str | None, streaming: bool = False) -> errors.BackendError:
        """The short, key-free BackendError for a failure of the openai client (or of the reply's parsing)."""
        import openai

        where = urlsplit(self._url).netloc.rsplit("@", 1)[-1] or self._url
        if isinstance(error, openai.APITimeoutError):
            return errors.TimedOut(f"no reply from {where} within {self.timeout:g} s")
        if isinstance(error, openai.APIConnectionError):
            import httpx2

            if streaming or not isinstance(error.__cause__, (httpx2.ConnectError, httpx2.UnsupportedProtocol)):
                # It answered, then the connection dropped (a read error, a body shorter than it said).
                return errors.StreamCutOff("the stream was cut off before the reply finished" if streaming
                                           else "the reply was cut off before it finished")
            return errors.EndpointUnreachable(f"cannot reach {where}: is the server running and the URL right?")
        if isinstance(error, openai.APIStatusError):
            return self._status_error(error.status_code, _server_message(error.body), error.response.headers, key)
        if isinstance(error, openai.APIError):  # an error event inside a stream
            detail = errors.scrub(_server_message(error.body) or error.message, (key,))
            return errors.ServerError(f"the server stopped with an error: {detail}")
        if isinstance(error, ValueError):  # json.JSONDecodeError and other unreadable bodies
            return errors.NotJSON("the reply is not JSON" if not streaming else "the stream is not JSON")
        return errors.BackendError(f"the request failed ({type(error).__name__})")

    def _status_error(self, status: int, message: str, headers, key: str | None) -> errors.BackendError:
        detail = errors.scrub(message, (key,))
        model = self.identity.model
        if status in (401, 403):
            if key is None:
                return errors.Unauthorized(f"the endpoint wants an API key ({status}): set {self.api_key_env}",
                                           status=status)
            return errors.Unauthorized(f"the endpoint refused the API key in {self.api_key_env} ({status})",
                                       status=status)
        if status == 404:
            if "model" in message.lower():
                return errors.ModelNotFound(f"model {model!r} not found at {self.identity.base_url} (404)", status=404)
            return errors.WrongURL(f"no chat-completions API at {self.identity.base_url} (404): check the base URL",
                                   status=404)
        if status == 429:
            return errors.RateLimited("rate limited by the endpoint (429)", status=429,
                                      retry_after=retry_after_seconds(headers))
        if status >= 500:
            return errors.ServerError(f"server error ({status})" + (f": {detail}" if detail else ""), status=status,
                                      retry_after=retry_after_seconds(headers))
        return errors.BadRequest(f"request refused ({status})" + (f": {detail}" if detail else ""), status=status)


def retry_after_seconds(headers) -> float | None:
    """The wait a Retry-After (seconds or HTTP date) or retry-after-ms header asks for; None without one."""
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _server_message(body) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("detail") or "")
        return str(inner or body.get("message") or body.get("detail") or "")
    return str(body or "")


def _usage(usage) -> Usage:
    if usage is None:
        return Usage()
    return Usage(prompt_tokens=getattr(usage, "prompt_tokens", None),
                 completion_tokens=getattr(usage, "completion_tokens", None))


def _logprobs(logprobs) -> list[dict]:
    content = getattr(logprobs, "content", None) or []
    return [{"token": t.token, "logprob": t.logprob,
             "top": [{"token": a.token, "logprob": a.logprob} for a in (t.top_logprobs or [])]} for t in content]
