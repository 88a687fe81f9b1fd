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

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values = dict(
            database_url=os.environ.get("DATABASE_URL") or default_database_url(),
            embed_model=os.environ.get("EMBED_MODEL") or cls.embed_model,
            hf_token=os.environ.get("HF_TOKEN") or None,
            host=os.environ.get("HOST") or cls.host,
            port=int(os.environ.get("PORT") or cls.port),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
