"""A tiny causal LM and its tokenizer, built offline, for tests that train or render chat templates.

    from tests.tiny_model import build_tiny_tokenizer, build_tiny_model
    tokenizer_dir = build_tiny_tokenizer(tmp_path / "tok")   # AutoTokenizer.from_pretrained(tokenizer_dir)
    model_dir = build_tiny_model(tmp_path / "model")         # tokenizer + Qwen2 weights, ~300k parameters

The tokenizer is a byte-level BPE trained with `tokenizers` on a fixed corpus (so any text encodes), with
ChatML special tokens and a ChatML chat template that carries `{% generation %}` markers (so TRL's
assistant-only loss works). Both builds are deterministic: same inputs, same files.
"""
from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

# Enough varied English for a BPE of a few hundred merges; the byte alphabet covers everything else.
_CORPUS = """
Give three tips for staying healthy. Eat a balanced diet, exercise regularly and sleep well.
What are the three primary colors? The three primary colors are red, blue and yellow.
Describe the structure of an atom. An atom is made of a nucleus of protons and neutrons, with electrons around it.
How can we reduce air pollution? Use public transport, plant trees and switch to clean energy.
Translate the sentence into French. Classify the following animals as mammals or birds.
Write a short poem about the sea. Summarize the article in one sentence. Answer the question below.
You are a helpful assistant. The user asks a question and the assistant answers it clearly and briefly.
Instruction: rewrite the text in the passive voice. Input: The cat chased the mouse. Output: The mouse was chased.
Explain why the sky is blue. Sunlight is scattered by the molecules of the air, and blue light is scattered most.
List five fruits: apple, banana, cherry, grape, orange. Count from one to ten: 1 2 3 4 5 6 7 8 9 10.
"""


def build_tiny_tokenizer(path: str | Path, *, vocab_size: int = 512, extra_texts: list[str] | None = None) -> Path:
    """Train a byte-level BPE tokenizer with a ChatML chat template and save it to `path`; returns `path`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    lines = [line for line in _CORPUS.splitlines() if line.strip()] + list(extra_texts or [])
    tokenizer.train_from_iterator(lines * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|pad|>", bos_token=None,
        unk_token=None, additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
        model_max_length=512, clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    return path


def build_tiny_model(path: str | Path, *, seed: int = 0, hidden_size: int = 64, layers: int = 4) -> Path:
    """Save a randomly initialised Qwen2-architecture causal LM (~300k parameters) and its tokenizer to `path`."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    build_tiny_tokenizer(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    return path


if __name__ == "__main__":  # python -m tests.tiny_model OUT_DIR
    import sys

    print(build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else "tiny-model"))


def served_tiny_model(model_dir, log_path):
    """A context manager: `transformers serve` answering for `model_dir` on a free port; yields its base URL.

    Skips the test (with the server's last words) when the command is missing or does not start offline.
    """
    import os
    import shutil
    import socket
    import subprocess
    import sys
    import time
    from contextlib import contextmanager

    import pytest

    @contextmanager
    def serving():
        command = shutil.which("transformers", path=os.path.dirname(sys.executable))
        if command is None:
            pytest.skip("the transformers command is not installed in this environment")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = open(log_path, "w+")
        process = subprocess.Popen([command, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                                    "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        pytest.skip(f"transformers serve did not start on a local folder offline: {log.read()[-500:]}")
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            os.killpg(process.pid, 15)
            process.wait(30)
            log.close()

    return serving()
