"""The model beside the annotator: one chat interface, backends behind it, and a runner for many requests.

    backend = make_backend("openai", model="Qwen/Qwen2.5-0.5B-Instruct", base_url="http://127.0.0.1:8000/v1")
    reply = backend.complete(ChatRequest([{"role": "user", "content": "Give three tips for staying healthy."}]))
    with backend.stream(request) as deltas:       # text as it arrives; deltas.reply once it is all in
        for piece in deltas: ...
    report = run_requests(backend, requests, concurrency=16, cache=DatabaseReplyCache(session))

Steps that draft, judge or evaluate take a Backend and never know which one runs them (distilabel's shape).
"""
from __future__ import annotations

from curation.llm.backend import Backend, ReplyStream
from curation.llm.chat import BackendIdentity, ChatReply, ChatRequest, Usage, request_key
from curation.llm.errors import BackendError
from curation.llm.runner import ReplyCache, RetryPolicy, RunReport, run_requests

KINDS = ("openai", "hf", "local")

__all__ = ["Backend", "BackendError", "BackendIdentity", "ChatReply", "ChatRequest", "KINDS", "ReplyCache",
           "ReplyStream", "RetryPolicy", "RunReport", "Usage", "backend_from_settings", "make_backend",
           "request_key", "run_requests"]


def make_backend(kind: str, *, model: str, base_url: str = "", api_key_env: str = "LLM_API_KEY",
                 timeout: float = 60.0) -> Backend:
    """The backend of `kind` (openai, hf, local) for `model`; hf reads HF_TOKEN when `api_key_env` is unset."""
    import os

    if kind == "local":
        from curation.llm.local_backend import LocalBackend

        return LocalBackend(model, timeout=timeout)
    if kind not in KINDS:
        raise ValueError(f"unknown backend {kind!r}: choose one of {', '.join(KINDS)}")
    from curation.llm.openai_backend import OpenAICompatibleBackend

    if kind == "hf" and not os.environ.get(api_key_env):
        api_key_env = "HF_TOKEN"  # Inference Providers take the user's Hugging Face token
    return OpenAICompatibleBackend(kind=kind, model=model, base_url=base_url, api_key_env=api_key_env,
                                   timeout=timeout)


def backend_from_settings(settings) -> Backend:
    """The default backend the settings name (LLM_BACKEND, LLM_BASE_URL, LLM_MODEL, LLM_API_KEY_ENV, LLM_TIMEOUT)."""
    if not settings.llm_model:
        raise ValueError("no model configured: set LLM_MODEL")
    return make_backend(settings.llm_backend, model=settings.llm_model, base_url=settings.llm_base_url,
                        api_key_env=settings.llm_api_key_env, timeout=settings.llm_timeout)
