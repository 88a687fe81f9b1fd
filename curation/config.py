"""One Settings object, read from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB_PATH = Path("data") / "instruct_studio.db"


def default_database_url() -> str:
    return f"sqlite:///{DEFAULT_DB_PATH.as_posix()}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=default_database_url)
    embed_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    # Never stored or logged: read from the environment for the one action that needs it.
    hf_token: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 7860
    # Largest file the web app takes in one upload (only curators and admins upload; see curation/ui/uploads.py).
    max_upload_mb: int = 200
    # The default model backend (curation/llm): openai (any OpenAI-compatible server), hf (Inference Providers), local.
    llm_backend: str = "openai"
    llm_base_url: str = ""  # empty: the backend's own default (http://127.0.0.1:8000/v1, the HF router)
    llm_model: str = ""
    # The NAME of the environment variable that holds the API key; the key itself is read per request, never kept.
    llm_api_key_env: str = "LLM_API_KEY"
    llm_concurrency: int = 8
    llm_timeout: float = 60.0
    # More models for the editors' picker: "label=kind:model@base_url [$in/$out] [key=VAR]; ..." (curation/llm/choices.py).
    llm_models: str = ""

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values = dict(
            database_url=os.environ.get("DATABASE_URL") or default_database_url(),
            embed_model=os.environ.get("EMBED_MODEL") or cls.embed_model,
            hf_token=os.environ.get("HF_TOKEN") or None,
            host=os.environ.get("HOST") or cls.host,
            port=int(os.environ.get("PORT") or cls.port),
            max_upload_mb=int(os.environ.get("MAX_UPLOAD_MB") or cls.max_upload_mb),
            llm_backend=os.environ.get("LLM_BACKEND") or cls.llm_backend,
            llm_base_url=os.environ.get("LLM_BASE_URL") or cls.llm_base_url,
            llm_model=os.environ.get("LLM_MODEL") or cls.llm_model,
            llm_api_key_env=os.environ.get("LLM_API_KEY_ENV") or cls.llm_api_key_env,
            llm_concurrency=int(os.environ.get("LLM_CONCURRENCY") or cls.llm_concurrency),
            llm_timeout=float(os.environ.get("LLM_TIMEOUT") or cls.llm_timeout),
            llm_models=os.environ.get("LLM_MODELS") or cls.llm_models,
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
