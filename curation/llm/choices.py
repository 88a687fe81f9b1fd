"""The models a person may pick beside the editor: the default the settings name, and those LLM_MODELS lists.

    LLM_MODELS="Fast=openai:Qwen/Qwen2.5-7B-Instruct@http://gpu-box:8000/v1; GPT-4o mini=openai:gpt-4o-mini@https://api.openai.com/v1 $0.15/$0.60 key=OPENAI_API_KEY"

Each entry is `label=kind:model[@base_url]`, then optionally the price in dollars per million prompt/completion
tokens and the NAME of the environment variable holding its key. The page only ever sends a label: the server
resolves it here, so nobody can point the studio at an address the admin did not configure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from curation.llm import KINDS, make_backend
from curation.llm.backend import Backend

_PRICE = re.compile(r"^\$?(\d+(?:\.\d+)?)/\$?(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class ModelChoice:
    label: str
    kind: str
    model: str
    base_url: str = ""
    api_key_env: str = "LLM_API_KEY"
    price_in: float | None = None  # dollars per million prompt tokens
    price_out: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Dollars for that many tokens, or None when no price is configured."""
        if self.price_in is None or self.price_out is None:
            return None
        return (prompt_tokens * self.price_in + completion_tokens * self.price_out) / 1e6


def parse_model_choices(text: str) -> list[ModelChoice]:
    """The entries of an LLM_MODELS value; ValueError naming the entry that cannot be read."""
    choices = []
    for entry in re.split(r"[;\n]", text or ""):
        entry = entry.strip()
        if not entry:
            continue
        label, equals, spec = entry.partition("=")
        words = spec.split()
        if not equals or not label.strip() or not words or ":" not in words[0]:
            raise ValueError(f"LLM_MODELS entry {entry!r} should read label=kind:model[@base_url]")
        kind, _, rest = words[0].partition(":")
        model, _, base_url = rest.partition("@")
        if kind not in KINDS or not model:
            raise ValueError(f"LLM_MODELS entry {entry!r}: the kind is one of {', '.join(KINDS)}, then a model")
        fields: dict = {"api_key_env": "LLM_API_KEY"}
        for word in words[1:]:
            if price := _PRICE.match(word):
                fields["price_in"], fields["price_out"] = float(price[1]), float(price[2])
            elif word.startswith("key="):
                fields["api_key_env"] = word[4:]
            else:
                raise ValueError(f"LLM_MODELS entry {entry!r}: cannot read {word!r} (a price $in/$out or key=VAR)")
        choices.append(ModelChoice(label.strip(), kind, model, base_url, **fields))
    return choices


def model_choices(settings) -> list[ModelChoice]:
    """The default model of the settings (when one is named) first, then LLM_MODELS's, each label once."""
    choices = []
    if settings.llm_model:
        choices.append(ModelChoice(f"{settings.llm_model} (default)", settings.llm_backend, settings.llm_model,
                                   settings.llm_base_url, settings.llm_api_key_env))
    for choice in parse_model_choices(settings.llm_models):
        if all(choice.label != c.label for c in choices):
            choices.append(choice)
    return choices


def choice_named(settings, label: str | None) -> ModelChoice:
    """The configured choice with `label` (the first when none is given); LookupError if there is none."""
    choices = model_choices(settings)
    if not choices:
        raise LookupError("no model is configured: an admin sets LLM_MODEL (and LLM_BASE_URL) or LLM_MODELS")
    if not label:
        return choices[0]
    for choice in choices:
        if choice.label == label:
            return choice
    raise LookupError(f"no configured model is called {label!r}")


def backend_for(choice: ModelChoice, timeout: float = 60.0) -> Backend:
    return make_backend(choice.kind, model=choice.model, base_url=choice.base_url, api_key_env=choice.api_key_env,
                        timeout=timeout)
