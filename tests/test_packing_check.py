"""The packing check: packed padding-free losses equal the unpacked ones with the attention sft.py selects."""
import math

import pytest

pytest.importorskip("trl")

from bench.packing_check import (FIXED_ROWS, compare, example_spans, load, packed_batch, script_implementation,
                                 unpacked_losses)
from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model_dir = build_tiny_model(tmp_path_factory.mktemp("packing") / "tiny")
    return model_dir, packed_batch(model_dir, FIXED_ROWS[:3], max_length=256)


def test_trl_packs_padding_free_even_with_padding_free_off(tiny):
    _, batch = tiny
    # sft.py sets padding_free only on CUDA, but TRL's BFD packing turns it on everywhere: one row, no mask.
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1
    assert [e - s for s, e in example_spans(batch)] == sorted((e - s for s, e in example_spans(batch)), reverse=True)
    assert batch["position_ids"][0].tolist().count(0) == 3


def test_unpacked_losses_are_the_mean_next_token_loss_on_the_reply(tiny):
    import torch
    from transformers import AutoTokenizer

    model_dir, batch = tiny
    model = load(model_dir, "sdpa", device="cpu", dtype="fp32")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    expected = []
    for s, e in example_spans(batch):
        ids, labels = batch["input_ids"][0, s:e], batch["labels"][0, s:e].tolist()
        scored = tokenizer.decode([t for t in labels if t != -100])
        assert scored.removesuffix("<|im_end|>") in {row["output"] for row in FIXED_ROWS}  # the reply alone
        with torch.no_grad():
            log_probs = torch.log_softmax(model(input_ids=ids[None]).logits[0].double(), -1)
        terms = [-log_probs[t, labels[t + 1]].item() for t in range(e - s - 1) if labels[t + 1] != -100]
        expected.append(sum(terms) / len(terms))
    assert unpacked_losses(model, batch) == pytest.approx(expected, abs=1e-5)


def test_the_attention_sft_py_selects_keeps_packed_examples_apart(tiny):
    model_dir, batch = tiny
    selected = script_implementation(model_dir, device="cpu", dtype="fp32")
    same, unrestarted, cached = compare(model_dir, batch, selected, controls=True)
    assert same.within and same.max_rel_diff <= 1e-4
    assert all(math.isfinite(loss) for loss in same.unpacked)
    # The same examples packed the wrong ways do differ, so the check can see cross-contamination.
    assert not unrestarted.within and not cached.within
    assert unrestarted.max_abs_diff > 1e-3 and cached.max_abs_diff > 1e-3
