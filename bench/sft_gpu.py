"""GPU SFT benchmark: tokens/s and MFU of our SFT settings against plain TRL SFTTrainer defaults, same data, same run.

    python bench/sft_gpu.py [--alpaca ../shared/data/alpaca_data.json] [--steps 60] [--max-length 1024]

A Qwen2-architecture model of ~0.5B parameters (Qwen2.5-0.5B's config) with random weights (nothing is
downloaded), the Alpaca 52k as TRL `messages` rows, and a byte-level tokenizer trained here with a ChatML
template (tests/tiny_model.py). Four runs: {LoRA, full} x {TRL defaults (padding to the longest, no packing),
ours (bf16, BFD packing + padding-free flash/SDPA varlen batching, Liger-style fused loss where available)}.
MFU = 6 * N_trainable_flops_params * tokens/s / peak bf16 FLOP/s (full); LoRA counts the frozen forward and
backward-through-activations: (2 + 2) * N + 2 * N_lora per token. Prints one JSON line per run and a summary.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "A10G": 125e12, "L4": 121e12, "L40S": 362e12}


def qwen2_half_b_config(vocab_size: int):
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab_size, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       rope_theta=1_000_000.0, tie_word_embeddings=True, rms_norm_eps=1e-6)


def alpaca_messages(path: Path, limit: int | None):
    import datasets

    rows = json.loads(path.read_text())[:limit]
    def chat(r):
        user = f"{r['instruction']}\n\n{r['input']}" if r.get("input") else r["instruction"]
        return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": r["output"]}]}
    return datasets.Dataset.from_list([chat(r) for r in rows])


def peak_flops() -> float:
    import torch

    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16.items() if k in name), 989e12)


def run(name: str, *, method: str, tuned: bool, model_dir: Path, data, steps: int, max_length: int, batch: int):
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    kwargs = {"dtype": torch.bfloat16} if tuned else {}
    if tuned:
        kwargs["attn_implementation"] = "sdpa"
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs).cuda()
    params = sum(p.numel() for p in model.parameters())
    peft = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM") if method == "lora" else None
    tokens = {"n": 0, "t0": None, "t1": None}

    class Count(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 5:  # skip warm-up steps (compilation, allocator)
                torch.cuda.synchronize(); tokens["t0"] = time.perf_counter(); tokens["start"] = state.num_input_tokens_seen

        def on_train_end(self, args, state, control, **kw):
            torch.cuda.synchronize(); tokens["t1"] = time.perf_counter(); tokens["n"] = state.num_input_tokens_seen - tokens.get("start", 0)

    common = dict(output_dir=tempfile.mkdtemp(), max_steps=steps, per_device_train_batch_size=batch, report_to="none",
                  save_strategy="no", logging_steps=10, max_length=max_length, include_num_input_tokens_seen="non_padding",
                  learning_rate=2e-4 if method == "lora" else 2e-5, disable_tqdm=True, assistant_only_loss=True)
    if tuned:
        common.update(bf16=True, packing=True, padding_free=True, gradient_checkpointing=method == "full",
                      dataloader_num_workers=2, dataloader_pin_memory=True)
        try:
            import liger_kernel  # noqa: F401
            common["use_liger_kernel"] = True
        except ImportError:
            pass
    trainer = SFTTrainer(model=model, args=SFTConfig(**common), train_dataset=data, processing_class=tokenizer,
                         peft_config=peft, callbacks=[Count()])
    trainer.train()
    seconds = tokens["t1"] - tokens["t0"]
    tps = tokens["n"] / seconds
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    flops_per_token = 6 * params if method == "full" else 4 * params + 2 * trainable
    result = {"run": name, "method": method, "tuned": tuned, "params": params, "tokens_per_s": round(tps),
              "mfu": round(flops_per_token * tps / peak_flops(), 4), "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1)}
    print(json.dumps(result), flush=True)
    del trainer, model
    torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpaca", default=str(ROOT.parent / "shared" / "data" / "alpaca_format" / "stanford_alpaca_52k.json"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU here: this benchmark needs one (nothing was measured)", file=sys.stderr)
        return 2
    from transformers import AutoTokenizer, Qwen2ForCausalLM
    from tests.tiny_model import build_tiny_tokenizer

    data = alpaca_messages(Path(args.alpaca), args.limit)
    model_dir = Path(tempfile.mkdtemp()) / "qwen2-0.5b-random"
    texts = [m["content"] for row in data.select(range(min(20000, len(data)))) for m in row["messages"]]
    build_tiny_tokenizer(model_dir, vocab_size=32000, extra_texts=texts)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    Qwen2ForCausalLM(qwen2_half_b_config(len(tokenizer))).save_pretrained(model_dir)
    results = {}
    for method in ("lora", "full"):
        for tuned in (False, True):
            name = f"{method}-{'ours' if tuned else 'trl-defaults'}"
            results[name] = run(name, method=method, tuned=tuned, model_dir=model_dir, data=data, steps=args.steps,
                                max_length=args.max_length, batch=args.batch_size)
    for method in ("lora", "full"):
        speedup = results[f"{method}-ours"]["tokens_per_s"] / results[f"{method}-trl-defaults"]["tokens_per_s"]
        print(f"{method}: {speedup:.2f}x the TRL defaults' tokens/s, MFU {results[f'{method}-ours']['mfu']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
