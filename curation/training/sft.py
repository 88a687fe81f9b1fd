# /// script
# requires-python = ">=3.10"
# dependencies = [
#     "torch>=2.4",
#     "transformers==5.23.0",
#     "trl==1.16.0",
#     "peft==0.21.2",
#     "accelerate==1.15.0",
#     "datasets==5.2.0",
#     "huggingface_hub==2.4.0",
#     "bitsandbytes; sys_platform == 'linux'",
# ]
# ///
"""Supervised fine-tuning of a causal LM on a dataset published by Instruct Studio, with TRL's SFTTrainer.

Runs plainly (`python sft.py --base-model ID --dataset NS/NAME --dataset-revision SHA`), on N GPUs
(`accelerate launch sft.py ...` or `torchrun`), or as a Hugging Face Jobs uv script (`hf jobs uv run sft.py ...`).
Loss falls only on assistant turns (chat templates with generation markers, or TRL's patched template for known
families) or, failing that, on the final reply as a prompt/completion pair. A tokenizer without a chat template
gets ChatML. Every log line is appended to a JSON-lines metrics file and printed as `METRICS {...}`; at the end
the adapter (LoRA/QLoRA) or model is saved and, with --output-repo, pushed with a card naming the dataset revision.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field

CHATML_FALLBACK = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}{{- '\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass
class SFTJob:
    """One SFT run. Defaults suit a 0.5B-8B model with LoRA on one 24-80 GB GPU."""

    base_model: str = field(default="Qwen/Qwen2.5-0.5B-Instruct", metadata={"help": "Hub id or local path of the base model"})
    dataset: str = field(default="", metadata={"help": "Hub dataset repo id (or a local .jsonl/.parquet file)"})
    dataset_revision: str | None = field(default=None, metadata={"help": "commit id of the published dataset"})
    dataset_config: str = field(default="messages", metadata={"help": "config: messages, prompt_completion or alpaca"})
    method: str = field(default="lora", metadata={"help": "full, lora or qlora (4-bit base, GPU only)"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the training split"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many optimizer steps (-1: use epochs)"})
    learning_rate: float | None = field(default=None, metadata={"help": "peak LR (default 2e-4 LoRA, 2e-5 full)"})
    batch_size: int = field(default=4, metadata={"help": "sequences per device per step"})
    gradient_accumulation: int = field(default=4, metadata={"help": "micro-batches per optimizer step"})
    max_length: int = field(default=2048, metadata={"help": "tokens per sequence (or per packed row)"})
    packing: bool = field(default=True, metadata={"help": "pack sequences (best-fit decreasing) with padding-free attention"})
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank r"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 on a GPU that has it, else fp32), bf16, fp16 or fp32"})
    gradient_checkpointing: bool = field(default=True, metadata={"help": "recompute activations to save memory (GPU)"})
    warmup_ratio: float = field(default=0.03, metadata={"help": "share of steps spent warming up the LR"})
    logging_steps: float = field(default=0.02, metadata={
        "help": "log metrics every N steps, or a fraction (<1) of the run: 0.02 gives ~50 points on the loss curve"})
    seed: int = field(default=42, metadata={"help": "seed for init, shuffling and dropout"})
    output_dir: str = field(default="sft-output", metadata={"help": "where the adapter or model is saved"})
    metrics_file: str = field(default="", metadata={"help": "JSON-lines metrics file (default OUTPUT_DIR/metrics.jsonl)"})
    output_repo: str = field(default="", metadata={"help": "Hub model repo to push to at the end (empty: no push)"})
    private: bool = field(default=True, metadata={"help": "create the output repo private"})
    shuffle: bool = field(default=True, metadata={"help": "shuffle rows (off: file order, for reproducible runs)"})

    def to_args(self) -> list[str]:
        """The command-line arguments that rebuild this job (only those that differ from the defaults)."""
        args = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                args += [f"--{f.name.replace('_', '-')}", json.dumps(value) if isinstance(value, bool) else str(value)]
        return args


def parse_job(argv: list[str] | None = None) -> SFTJob:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(SFTJob):
        kind = {"float": float, "int": int, "bool": lambda s: s.lower() in ("1", "true", "yes")}.get(
            str(f.type).split(" |")[0], str)
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default,
                            help=f.metadata.get("help"))
    return SFTJob(**vars(parser.parse_args(argv)))


def to_conversation(row: dict) -> dict:
    """An alpaca row as messages (the other configs are already TRL rows)."""
    user = f"{row['instruction']}\n\n{row['input']}" if row.get("input") else row["instruction"]
    system = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    return {"messages": system + [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]}


def to_final_reply(row: dict) -> dict:
    """messages -> prompt/completion: the loss falls on the last assistant reply only."""
    chat = row["messages"]
    last = max(i for i, m in enumerate(chat) if m["role"] == "assistant")
    return {"prompt": chat[:last], "completion": chat[last:last + 1]}


def model_card(job: SFTJob, *, loss_mode: str, template_note: str, metrics: dict, endpoint: str) -> str:
    revision = job.dataset_revision or "unrecorded"
    return f"""---
base_model: {job.base_model}
datasets:
- {job.dataset}
library_name: {"peft" if job.method in ("lora", "qlora") else "transformers"}
tags:
- sft
- trl
- instruct-studio
---

# {job.output_repo or "SFT model"}

Fine-tuned from `{job.base_model}` with TRL's SFTTrainer ({job.method}) on the dataset
[{job.dataset}]({endpoint}/datasets/{job.dataset}) at revision `{revision}`
(config `{job.dataset_config}`). Load that exact data with
`load_dataset("{job.dataset}", "{job.dataset_config}", revision="{revision}")`.

- Loss: {loss_mode}. Chat template: {template_note}.
- Epochs {job.epochs}, max steps {job.max_steps}, learning rate {job.learning_rate}, batch {job.batch_size} x
  {job.gradient_accumulation} accumulation, max length {job.max_length}, packing {job.packing}, precision {job.precision}.
- Final metrics: {json.dumps(metrics)}

Dataset revision: {revision}
"""


def main(argv: list[str] | None = None) -> int:
    job = parse_job(argv)
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    rank = int(os.environ.get("RANK", "0"))
    say = (lambda *a: print(*a, flush=True)) if rank == 0 else (lambda *a: None)
    cuda = torch.cuda.is_available()
    if job.learning_rate is None:
        job.learning_rate = 2e-5 if job.method == "full" else 2e-4
    precision = job.precision
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    metrics_path = job.metrics_file or os.path.join(job.output_dir, "metrics.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(metrics_path)), exist_ok=True)

    if os.path.isfile(job.dataset):
        kind = "parquet" if job.dataset.endswith(".parquet") else "json"
        train = load_dataset(kind, data_files={"train": job.dataset}, split="train")
    else:
        train = load_dataset(job.dataset, job.dataset_config, revision=job.dataset_revision, split="train")
    if "instruction" in train.column_names:
        train = train.map(to_conversation, remove_columns=train.column_names)
    # The tool schemas go along with conversations that call tools: TRL hands them to the chat template.
    train = train.select_columns([c for c in ("messages", "prompt", "completion", "tools")
                                  if c in train.column_names])

    tokenizer = AutoTokenizer.from_pretrained(job.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    template_note = "the tokenizer's own"
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_FALLBACK
        template_note = "ChatML fallback (the tokenizer had none)"
    assistant_only = False
    if "messages" in train.column_names:
        if has_generation_markers(tokenizer.chat_template):
            assistant_only = True
        else:
            try:
                patched = get_training_chat_template(tokenizer)
            except ValueError:
                patched = None
            if patched:
                tokenizer.chat_template, assistant_only = patched, True
                template_note += " with TRL's generation-marker patch"
        if not assistant_only:
            train = train.map(to_final_reply, remove_columns=["messages"])
    loss_mode = "assistant turns only" if assistant_only else "completion (final reply) only"
    say(f"SFT {job.method} of {job.base_model}: world size {int(os.environ.get('WORLD_SIZE', '1'))}")
    say(f"SFT {job.method} of {job.base_model} on {job.dataset}@{job.dataset_revision}: {len(train)} rows, "
        f"loss on {loss_mode}, chat template: {template_note}, precision {precision}")

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    model_kwargs = {"dtype": dtype}
    peft_config = None
    if job.method in ("lora", "qlora"):
        from peft import LoraConfig

        peft_config = LoraConfig(r=job.lora_rank, lora_alpha=job.lora_alpha, lora_dropout=job.lora_dropout,
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    if job.method == "qlora":
        if not cuda:
            raise SystemExit("QLoRA needs a CUDA GPU (bitsandbytes 4-bit); use lora on CPU")
        from transformers import BitsAndBytesConfig

        model_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True)
    elif job.method != "full" and job.method != "lora":
        raise SystemExit(f"unknown method {job.method!r}: full, lora or qlora")
    torch.manual_seed(job.seed)
    model = AutoModelForCausalLM.from_pretrained(job.base_model, **model_kwargs)

    class JsonLinesMetrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                record = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
                with open(metrics_path, "a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")
                print("METRICS " + json.dumps(record), flush=True)

    config = SFTConfig(
        output_dir=job.output_dir, num_train_epochs=job.epochs, max_steps=job.max_steps,
        per_device_train_batch_size=job.batch_size, gradient_accumulation_steps=job.gradient_accumulation,
        learning_rate=job.learning_rate, lr_scheduler_type="cosine", warmup_steps=job.warmup_ratio,
        logging_steps=job.logging_steps, logging_first_step=True, save_strategy="no", report_to="none",
        seed=job.seed, data_seed=job.seed, bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=not cuda,
        max_length=job.max_length, packing=job.packing, padding_free=job.packing and cuda,
        assistant_only_loss=assistant_only, completion_only_loss=None if assistant_only else True,
        gradient_checkpointing=job.gradient_checkpointing and cuda, dataset_num_proc=None,
        dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer_class = SFTTrainer
    if not job.shuffle:
        class InOrderSFTTrainer(SFTTrainer):
            def _get_train_sampler(self, *args, **kwargs):
                return torch.utils.data.SequentialSampler(self.train_dataset)

        trainer_class = InOrderSFTTrainer
    trainer = trainer_class(model=model, args=config, train_dataset=train, processing_class=tokenizer,
                         peft_config=peft_config, callbacks=[JsonLinesMetrics()])
    result = trainer.train()
    final = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    trainer.save_model(job.output_dir)
    if trainer.is_world_process_zero():
        from huggingface_hub import HfApi, constants

        tokenizer.save_pretrained(job.output_dir)
        card = model_card(job, loss_mode=loss_mode, template_note=template_note, metrics=final,
                          endpoint=constants.ENDPOINT)
        with open(os.path.join(job.output_dir, "README.md"), "w", encoding="utf-8") as out:
            out.write(card)
        if job.output_repo:
            api = HfApi()
            api.create_repo(job.output_repo, private=job.private, exist_ok=True)
            info = api.upload_folder(folder_path=job.output_dir, repo_id=job.output_repo,
                                     commit_message=f"SFT on {job.dataset}@{job.dataset_revision}",
                                     ignore_patterns=["checkpoint-*", "metrics.jsonl"])
            print(f"MODEL_REVISION {job.output_repo} {info.oid}", flush=True)
    if hasattr(trainer, "end"):
        trainer.end()
    say("SFT finished")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        # A rank skips the interpreter's teardown: freeing DDP's Reducer destroys its ProcessGroupGloo, whose
        # destructor can join a gloo thread that never returns once the peer rank has exited (torch 2.13 on CPU:
        # the training done and saved, one rank never ended). Everything this rank had to write is written.
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
