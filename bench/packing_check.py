"""Packed, padding-free loss against unpacked loss, per example and per attention implementation.

    python bench/packing_check.py [--model tiny | qwen2-0.5b-random | PATH] [--device cpu|cuda] [--dtype fp32|bf16]
                                  [--examples 5] [--implementations eager,sdpa,...]

Our SFT script packs with TRL's best-fit decreasing strategy, which always trains padding-free: the collator
concatenates a batch into one row, passes `position_ids` that restart at 0 for each example, and no attention
mask. An attention implementation that ignores those boundaries lets an example attend to the ones packed before
it, and the model learns from the wrong context. This check tokenises and packs a few examples of different
lengths through TRL's own path (SFTTrainer's dataset preparation and its collator, configured as
curation/training/sft.py configures them), then computes each example's mean loss (a) alone and (b) inside the
packed row, for each implementation that loads here. Two control rows pack the same examples the wrong way (the
positions not restarted; a KV cache left on, which makes transformers skip its packed-sequence mask), to show the
check can see cross-contamination. Offline: the tiny model and its tokenizer are built here (tests/tiny_model.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ALPACA = ROOT.parent / "shared" / "data" / "alpaca_format" / "stanford_alpaca_52k.json"
FIXED_ROWS = [
    {"instruction": "Give three tips for staying healthy.", "input": "",
     "output": "Eat a balanced diet, exercise regularly and sleep well."},
    {"instruction": "What are the three primary colors?", "input": "", "output": "Red, blue and yellow."},
    {"instruction": "Rewrite the text in the passive voice.", "input": "The cat chased the mouse.",
     "output": "The mouse was chased by the cat."},
    {"instruction": "Explain why the sky is blue.", "input": "",
     "output": "Sunlight is scattered by the molecules of the air, and blue light, with its short wavelength, is "
               "scattered most, so the sky looks blue from every direction when the sun is up."},
    {"instruction": "Count from one to ten.", "input": "", "output": "1 2 3 4 5 6 7 8 9 10"},
]
CANDIDATES = ["eager", "sdpa", "flex_attention", "flash_attention_2", "flash_attention_3",
              "kernels-community/flash-attn2"]
# Relative to each example's loss. fp32 leaves rounding only (CPU flex_attention, compiled, rounds to ~2e-5).
# bf16 sends the packed row through other kernels (masked, not causal), but 2e-2 would be too loose: on the tiny
# random model, examples attending across their boundaries move the loss by only ~5.5e-3 (the control rows).
TOLERANCE = {"fp32": 1e-4, "bf16": 2e-3}


@dataclass
class Comparison:
    """One implementation's per-example losses, unpacked and packed, and whether they agree."""

    implementation: str
    unpacked: list[float]
    packed: list[float]
    within: bool
    dtype: str
    note: str = ""
    reference: list[float] | None = None  # eager's unpacked losses: plain matmul and softmax, no fused kernel

    @property
    def packed_matches_reference(self) -> bool:
        return self.reference is not None and agrees(self.reference, self.packed, self.dtype)

    @property
    def max_rel_diff_to_reference(self) -> float:
        return max(abs(p - u) / abs(u) for p, u in zip(self.packed, self.reference or self.unpacked))

    @property
    def max_abs_diff(self) -> float:
        return max(abs(p - u) for p, u in zip(self.packed, self.unpacked))

    @property
    def max_rel_diff(self) -> float:
        return max(abs(p - u) / abs(u) for p, u in zip(self.packed, self.unpacked))


def sample_rows(path: Path, n: int) -> list[dict]:
    """n alpaca rows of spread-out lengths (the first 200 ranked by length), or fixed rows without the file."""
    if not path.is_file():
        return FIXED_ROWS[:n]
    rows = json.loads(path.read_text())[:200]
    ranked = sorted(rows, key=lambda r: len(r["instruction"]) + len(r.get("input", "")) + len(r["output"]))
    return [ranked[round(i * (len(ranked) - 1) / max(n - 1, 1))] for i in range(n)]


def packed_batch(model_dir: str | Path, rows: list[dict], *, max_length: int) -> dict:
    """The padding-free batch TRL's SFTTrainer feeds the model for these rows, packed as sft.py packs them."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from trl.chat_template_utils import has_generation_markers

    from curation.training.sft import CHATML_FALLBACK, to_conversation, to_final_reply

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_FALLBACK
    data = datasets.Dataset.from_list([to_conversation(r) for r in rows])
    assistant_only = has_generation_markers(tokenizer.chat_template)
    if not assistant_only:
        data = data.map(to_final_reply, remove_columns=["messages"])
    config = SFTConfig(output_dir=tempfile.mkdtemp(), max_length=max_length, packing=True, shuffle_dataset=False,
                       assistant_only_loss=assistant_only, completion_only_loss=None if assistant_only else True,
                       report_to="none", use_cpu=True, disable_tqdm=True, dataset_num_proc=None)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    packed = trainer.train_dataset
    batch = trainer.data_collator([packed[i] for i in range(len(packed))])
    del trainer, model
    return batch


def example_spans(batch: dict) -> list[tuple[int, int]]:
    """(start, end) of each example in the packed row."""
    bounds = batch["cu_seq_lens_q"].tolist()
    return list(zip(bounds[:-1], bounds[1:]))


def mean_losses(logits, labels, spans) -> list[float]:
    """Each span's mean next-token cross-entropy over its labelled tokens, in fp32 (no prediction across spans)."""
    import torch.nn.functional as F

    token_loss = F.cross_entropy(logits[0, :-1].float(), labels[0, 1:], ignore_index=-100, reduction="none")
    counted = labels[0, 1:] != -100
    return [(token_loss[s:e - 1].sum() / counted[s:e - 1].sum()).item() for s, e in spans]


def unpacked_losses(model, batch: dict) -> list[float]:
    """Each example's mean loss with the example alone in its row (positions 0..n-1, no other example)."""
    import torch

    device = model.device
    losses = []
    with torch.no_grad():
        for s, e in example_spans(batch):
            ids, labels = batch["input_ids"][:, s:e].to(device), batch["labels"][:, s:e].to(device)
            logits = model(input_ids=ids, use_cache=False).logits
            losses += mean_losses(logits, labels, [(0, e - s)])
    return losses


def packed_losses(model, batch: dict, *, restart_positions: bool = True, use_cache: bool = False) -> list[float]:
    """Each example's mean loss inside the packed row, fed as TRL feeds it (use_cache off, as its compute_loss sets)."""
    import torch

    device = model.device
    inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items() if k != "labels"}
    if not restart_positions:
        inputs["position_ids"] = torch.arange(inputs["input_ids"].shape[1], device=device)[None]
    with torch.no_grad():
        logits = model(**inputs, use_cache=use_cache).logits
    return mean_losses(logits, batch["labels"].to(device), example_spans(batch))


def agrees(unpacked: list[float], packed: list[float], dtype: str) -> bool:
    return all(abs(p - u) <= TOLERANCE[dtype] * abs(u) for p, u in zip(packed, unpacked))


def load(model_dir, implementation: str | None, *, device: str, dtype: str):
    """The model as sft.py loads it (no attn_implementation: transformers' default), or with the one named."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = {"dtype": torch.bfloat16 if dtype == "bf16" else torch.float32}
    if implementation is not None:
        kwargs["attn_implementation"] = implementation
    return AutoModelForCausalLM.from_pretrained(model_dir, **kwargs).to(device).eval()


def script_implementation(model_dir, *, device: str, dtype: str) -> str:
    """The attention implementation sft.py gets: it passes no attn_implementation, so transformers picks."""
    return load(model_dir, None, device=device, dtype=dtype).config._attn_implementation


def compare(model_dir, batch: dict, implementation: str, *, device: str = "cpu", dtype: str = "fp32",
            controls: bool = False, reference: list[float] | None = None) -> list[Comparison]:
    """Packed against unpacked losses with one implementation; with controls, also the two wrong packings."""
    model = load(model_dir, implementation, device=device, dtype=dtype)
    unpacked = unpacked_losses(model, batch)
    packed = packed_losses(model, batch)
    results = [Comparison(implementation, unpacked, packed, agrees(unpacked, packed, dtype), dtype,
                          reference=reference)]
    if controls:
        for note, kwargs in (("control: positions not restarted", {"restart_positions": False}),
                             ("control: KV cache left on", {"use_cache": True})):
            wrong = packed_losses(model, batch, **kwargs)
            results.append(Comparison(implementation, unpacked, wrong, agrees(unpacked, wrong, dtype), dtype, note,
                                      reference))
    return results


def build_model(name: str, folder: Path) -> Path:
    """A local model folder: the tiny test model, a random-init Qwen2 of ~0.5B parameters, or a path as given."""
    if name == "tiny":
        from tests.tiny_model import build_tiny_model

        return build_tiny_model(folder / "tiny")
    if name == "qwen2-0.5b-random":
        import torch
        from transformers import AutoTokenizer, Qwen2ForCausalLM

        from bench.sft_gpu import qwen2_half_b_config
        from tests.tiny_model import build_tiny_tokenizer

        path = build_tiny_tokenizer(folder / "qwen2-0.5b-random", vocab_size=2048)
        torch.manual_seed(0)
        Qwen2ForCausalLM(qwen2_half_b_config(len(AutoTokenizer.from_pretrained(path)))).save_pretrained(path)
        return path
    return Path(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, qwen2-0.5b-random, or a local model folder")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when there is one)")
    parser.add_argument("--dtype", default=None, choices=["fp32", "bf16"], help="default: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--examples", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=512, help="packed row length (TRL's max_length)")
    parser.add_argument("--alpaca", default=str(ALPACA))
    parser.add_argument("--implementations", default=None,
                        help=f"comma-separated (default: all of {','.join(CANDIDATES)}; flex_attention only on CUDA)")
    args = parser.parse_args()
    import torch
    import transformers
    import trl

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("bf16" if device == "cuda" else "fp32")
    implementations = (args.implementations.split(",") if args.implementations else
                       [c for c in CANDIDATES if device == "cuda" or c != "flex_attention"])
    model_dir = build_model(args.model, Path(tempfile.mkdtemp()))
    rows = sample_rows(Path(args.alpaca), args.examples)
    batch = packed_batch(model_dir, rows, max_length=args.max_length)
    selected = script_implementation(model_dir, device=device, dtype=dtype)
    lengths = [e - s for s, e in example_spans(batch)]
    print(f"packing check: model {args.model}, {device} {dtype}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, trl {trl.__version__}")
    print(f"{len(lengths)} examples ({'alpaca' if Path(args.alpaca).is_file() else 'fixed rows'}) of "
          f"{lengths} tokens, packed padding-free into one row of {batch['input_ids'].shape[1]} tokens")
    print(f"tolerance: {TOLERANCE[dtype]:g} of each example's loss\n")
    print(f"{'implementation':<36} {'max |diff|':>11} {'max rel':>9} {'vs eager':>9}  verdict")
    reference = unpacked_losses(load(model_dir, "eager", device=device, dtype=dtype), batch)
    script_rows = []
    for implementation in [selected] + [i for i in implementations if i != selected]:
        try:
            results = compare(model_dir, batch, implementation, device=device, dtype=dtype,
                              controls=implementation == selected, reference=reference)
        except Exception as error:  # an implementation that does not load or run here
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            reason = reason.split("the following error: ")[-1][:100]
            print(f"{implementation:<36} {'-':>11} {'-':>9} {'-':>9}  unavailable: {reason}")
            continue
        if implementation == selected:
            script_rows = results
        for r in results:
            name = r.implementation + (" (sft.py's)" if r.implementation == selected and not r.note else "")
            if r.note:
                verdict = ("contamination seen (the check can see it)" if not r.within
                           else "NOT seen: this check cannot tell, read the rows above with care")
                name = f"  {r.note}"
            elif r.within:
                verdict = "same loss: examples kept apart"
            elif r.packed_matches_reference:
                verdict = "packed row right (matches eager); its own unpacked run is off"
            else:
                verdict = "DIFFERS: packed examples attend across"
            print(f"{name:<36} {r.max_abs_diff:>11.2e} {r.max_rel_diff:>9.2e} {r.max_rel_diff_to_reference:>9.2e}"
                  f"  {verdict}")
    print(f"\nsft.py passes no attn_implementation; transformers selects {selected!r} here.")
    same, *controls = script_rows or [None]
    if same is None:
        print(f"verdict: cannot tell ({selected} did not run here)")
    elif any(c.within for c in controls):
        print("verdict: cannot tell (the controls' contamination is within the tolerance at this model and dtype)")
    elif same.within:
        print(f"verdict: {selected} keeps packed examples apart: off by at most {same.max_rel_diff:.1e} of the loss, "
              f"where attending across moves it by {min(c.max_rel_diff for c in controls):.1e}")
    else:
        print(f"verdict: {selected} lets packed examples attend across: sft.py must choose another implementation")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
