"""The SFT job spec: what to train, on which published data, how; defaults that fit one GPU for 0.5B-8B models.

The spec is the script's own dataclass (curation/training/sft.py stays one self-contained file for uv and
HF Jobs), so what the app records is exactly what the script runs.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from curation.training.sft import SFTJob

METHODS = ("lora", "qlora", "full")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")

__all__ = ["SFTJob", "METHODS", "PRECISIONS", "build_spec", "parameters_in_billions", "spec_from_dict"]


def parameters_in_billions(model_id: str) -> float | None:
    """The size a model id states (`Qwen2.5-0.5B`, `Llama-3.1-8B-Instruct`), or None."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", model_id.rsplit("/", 1)[-1])
    return float(match.group(1)) if match else None


def size_defaults(model_id: str, method: str) -> dict[str, Any]:
    """Batch, accumulation and LoRA rank that fit a 24-80 GB GPU, by the size the model id states."""
    size = parameters_in_billions(model_id) or 1.0
    if method == "full":
        # bf16 weights + fp32 Adam states ~ 16 bytes/param: 0.5-1.5B fits one 80 GB GPU, larger needs LoRA.
        return {"batch_size": 8 if size <= 1 else 2, "gradient_accumulation": 2 if size <= 1 else 8,
                "gradient_checkpointing": size > 1}
    if size <= 2:
        return {"batch_size": 8, "gradient_accumulation": 2, "lora_rank": 16}
    if size <= 4:
        return {"batch_size": 4, "gradient_accumulation": 4, "lora_rank": 16}
    return {"batch_size": 2, "gradient_accumulation": 8, "lora_rank": 32 if method == "qlora" else 16}


def build_spec(*, base_model: str, dataset_repo: str, dataset_revision: str, output_repo: str = "",
               method: str = "lora", **overrides: Any) -> SFTJob:
    """A job spec with size-aware defaults; any field can be overridden by name."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: {', '.join(METHODS)}")
    values = {"base_model": base_model, "dataset": dataset_repo, "dataset_revision": dataset_revision,
              "output_repo": output_repo, "method": method, **size_defaults(base_model, method)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in dataclasses.fields(SFTJob)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown spec fields: {', '.join(sorted(unknown))}")
    if values.get("precision", "auto") not in PRECISIONS:
        raise ValueError(f"unknown precision {values['precision']!r}: {', '.join(PRECISIONS)}")
    return SFTJob(**values)


def spec_from_dict(values: dict[str, Any]) -> SFTJob:
    names = {f.name for f in dataclasses.fields(SFTJob)}
    return SFTJob(**{k: v for k, v in values.items() if k in names})
