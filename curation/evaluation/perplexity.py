"""Loss and perplexity of a causal LM on the test split's reference outputs, scored as the SFT script trains.

The prompt messages are rendered with the tokenizer's chat template and the generation prompt (the training
script's ChatML fallback when the tokenizer has none); only the reference output's tokens and the EOS after them
are scored, as the completion-only / assistant-only loss sees them. The loss is token-weighted over all examples,
so it is comparable with the training loss; the perplexity is exp of it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from curation.training.sft import CHATML_FALLBACK

Progress = Callable[[int, int], None]
Example = tuple[list[dict], str]  # (prompt messages in chat format, the reference output)


@dataclass
class LossResult:
    loss: float  # mean negative log-likelihood per output token over all examples (token-weighted)
    perplexity: float  # exp(loss)
    tokens: int  # output tokens scored (each example's output and its EOS)
    per_example: list[float] = field(default_factory=list)  # each example's mean NLL per output token


def load_model(name: str, device: str | None = None):
    """(model, tokenizer, device) for a Hugging Face causal LM (a folder or a Hub name); a GPU when present."""
    from curation.scores.ifd import load_model as load_causal_lm

    return load_causal_lm(name, device)


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The prompt's token ids: the messages through the chat template, ending with the generation prompt."""
    template = None if tokenizer.chat_template else CHATML_FALLBACK
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                         chat_template=template)
    # The template writes any BOS itself; adding special tokens again would double it.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def output_ids(tokenizer, output: str) -> list[int]:
    """The reference output's token ids followed by EOS, the tokens the training loss is taken on."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token to end the reference output with")
    return tokenizer(output, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def scored_sequences(tokenizer, examples: Sequence[Example], max_length: int) -> list[tuple[list[int], int]]:
    """(prompt + output token ids, how many output tokens end it) for each example, at most `max_length` long.

    A long prompt loses its start (the end, next to the answer, matters most); an output longer than
    max_length - 1 keeps its first tokens, so at least one prompt token remains to predict the first from.
    """
    sequences = []
    for messages, output in examples:
        answer = output_ids(tokenizer, output)[:max_length - 1]
        prompt = prompt_ids(tokenizer, messages)[-(max_length - len(answer)):]
        sequences.append((prompt + answer, len(answer)))
    return sequences


def _summed_nll(model, batch: list[tuple[list[int], int]], pad_id: int, device: str) -> list[float]:
    """Summed negative log-likelihood of each sequence's last tokens, in one right-padded batch."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for row, (sequence, scored) in enumerate(batch):
        ids[row, :len(sequence)] = torch.tensor(sequence)
        mask[row, :len(sequence)] = 1
        labels[row, len(sequence) - scored:len(sequence)] = torch.tensor(sequence[len(sequence) - scored:])
    ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels[:, 1:], ignore_index=-100,
                                            reduction="none")
    return nll.double().sum(dim=1).tolist()


def test_loss(model, tokenizer, examples: Sequence[Example], *, device: str = "cpu", batch_size: int = 8,
              max_length: int = 1024, progress: Progress | None = None) -> LossResult:
    """Loss, perplexity and output tokens of `model` on each (prompt messages, reference output); see the module.

    Examples are batched by length (little padding); per_example comes back in the examples' order.
    """
    if not examples:
        raise ValueError("no test examples to measure the loss on")
    sequences = scored_sequences(tokenizer, examples, max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    summed = [0.0] * len(sequences)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        for i, total in zip(rows, _summed_nll(model, [sequences[i] for i in rows], pad_id, device)):
            summed[i] = total
        if progress:
            progress(min(start + batch_size, len(order)), len(order))
    tokens = sum(scored for _, scored in sequences)
    loss = sum(summed) / tokens
    return LossResult(loss=loss, perplexity=math.exp(loss), tokens=tokens,
                      per_example=[total / scored for total, (_, scored) in zip(summed, sequences)])


test_loss.__test__ = False  # a test module that imports it by name must not have pytest collect it as a test
