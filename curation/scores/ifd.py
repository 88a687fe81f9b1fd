"""Instruction-following difficulty (Li et al., 2023, "Cherry LLM"): how much the instruction helps a small causal
LM predict the output.

    IFD = PPL(output | instruction) / PPL(output)

PPL is exp of the mean negative log-likelihood over the output's tokens. Both perplexities score exactly the same
output tokens: the output alone is preceded by one start token (BOS, else EOS), so its first token is scored too.
Near or above 1 the instruction does not help (hard, or the output does not follow it); well below 1, it does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Difficulty:
    ifd: float
    ppl_given_instruction: float
    ppl_alone: float


def prompt_of(instruction: str, input: str = "") -> str:
    """The text the output is conditioned on: the instruction, then the input when there is one."""
    return f"{instruction}\n\n{input}\n\n" if input else f"{instruction}\n\n"


def load_model(name: str, device: str | None = None):
    """(model, tokenizer, device) for any Hugging Face causal LM (a folder or a Hub name); a GPU when present."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(name)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(name, torch_dtype=dtype).to(device).eval()
    return model, tokenizer, device


def _start_id(tokenizer) -> int:
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start the output with")
    return start


def _sequences(tokenizer, prompts: Sequence[str], outputs: Sequence[str], max_length: int):
    """Token ids of (prompt + output) and (start + output), and how many output tokens end each."""
    encode = lambda texts: tokenizer(list(texts), add_special_tokens=False)["input_ids"]  # noqa: E731
    start = _start_id(tokenizer)
    conditioned, alone, lengths = [], [], []
    for prompt_ids, output_ids in zip(encode(prompts), encode(outputs)):
        output_ids = output_ids[:max_length - 1]
        prompt_ids = (prompt_ids or [start])[-(max_length - len(output_ids)):]
        conditioned.append(prompt_ids + output_ids)
        alone.append([start] + output_ids)
        lengths.append(len(output_ids))
    return conditioned, alone, lengths


def _mean_nll(model, sequences: list[list[int]], lengths: list[int], pad_id: int, device: str) -> list[float]:
    """Mean negative log-likelihood of the last `lengths[i]` tokens of each sequence, in one padded batch."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    labels = torch.full((len(sequences), width), -100, dtype=torch.long)
    for row, (sequence, length) in enumerate(zip(sequences, lengths)):
        ids[row, :len(sequence)] = torch.tensor(sequence)
        mask[row, :len(sequence)] = 1
        labels[row, len(sequence) - length:len(sequence)] = torch.tensor(sequence[len(sequence) - length:])
    ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="none")
    counts = (targets != -100).sum(dim=1).clamp(min=1)
    return (nll.sum(dim=1) / counts).tolist()


def difficulties(model, tokenizer, records: Sequence[tuple[str, str, str]], *, device: str = "cpu",
                 batch_size: int = 32, max_length: int = 512, progress: Progress | None = None) -> list[Difficulty | None]:
    """IFD and both perplexities for each (instruction, input, output); None where the output has no tokens.

    Records are batched by length (little padding) and the results come back in the records' order.
    """
    prompts = [prompt_of(instruction, input) for instruction, input, _ in records]
    conditioned, alone, lengths = _sequences(tokenizer, prompts, [r[2] for r in records], max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else _start_id(tokenizer)
    results: list[Difficulty | None] = [None] * len(records)
    order = sorted((i for i in range(len(records)) if lengths[i]), key=lambda i: len(conditioned[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        given = _mean_nll(model, [conditioned[i] for i in rows], [lengths[i] for i in rows], pad_id, device)
        plain = _mean_nll(model, [alone[i] for i in rows], [lengths[i] for i in rows], pad_id, device)
        for i, nll_given, nll_plain in zip(rows, given, plain):
            results[i] = Difficulty(math.exp(nll_given - nll_plain), math.exp(nll_given), math.exp(nll_plain))
        if progress:
            progress(min(start + batch_size, len(order)), len(order))
    return results
