"""How fast the embedding model runs on this machine, by precision and thread count, on Alpaca texts.

Prints texts per second for fp32 and bf16 weights (and CPU autocast), at 1 and all threads, with the texts
embedded in length order or as they come, and the cosine of each bf16 vector to its fp32 vector. The default
precision (curation.embeddings.default_precision) should be the fastest one here whose vectors agree with fp32.

    .venv/bin/python bench/embed_speed.py [--texts 3000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALPACA = REPO.parent / "shared" / "data" / "alpaca_format" / "stanford_alpaca_52k.json"
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=3000)
    args = parser.parse_args()
    if not ALPACA.is_file():
        sys.exit("../shared/data is absent")
    import numpy as np
    import torch

    from curation.embeddings import Embedder, cpu_has_fast_bf16

    rows = json.loads(ALPACA.read_text())
    step = max(1, len(rows) // args.texts)
    # instructions and inputs as the dedup search embeds them, spread over the whole file
    texts = [t for r in rows[::step][:args.texts // 2 + 1] for t in (r["instruction"], r["input"]) if t][:args.texts]
    flags = Path("/proc/cpuinfo").read_text().split()
    print(f"{len(texts)} Alpaca texts, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"avx512_bf16 {'avx512_bf16' in flags}, amx_bf16 {'amx_bf16' in flags}, cpu_has_fast_bf16() {cpu_has_fast_bf16()}")
    fp32 = Embedder(device="cpu", precision="fp32")
    bf16 = Embedder(device="cpu", precision="bf16")
    reference = fp32.encode(texts)
    cosines = np.einsum("ij,ij->i", bf16.encode(texts), reference)
    print(f"bf16 weights against fp32: cosine min {cosines.min():.5f}, mean {cosines.mean():.6f}")

    def timed(label, encode, threads):
        torch.set_num_threads(threads)
        encode(texts[:64])
        start = time.perf_counter()
        encode(texts)
        seconds = time.perf_counter() - start
        print(f"{label:<44} {threads} thread(s) {len(texts) / seconds:8.0f} texts/s", flush=True)

    def autocast(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fp32.encode(batch)

    def unsorted(batch):  # one text at a time in the given order: no length sorting, no padding either
        return [fp32.model.encode(batch[i:i + 64], show_progress_bar=False) for i in range(0, len(batch), 64)]

    for threads in sorted({1, torch.get_num_threads()}):
        timed("fp32 weights, length-sorted", fp32.encode, threads)
        timed("bf16 weights, length-sorted", bf16.encode, threads)
        timed("fp32 weights + bf16 autocast, length-sorted", autocast, threads)
        timed("fp32 weights, batches in file order", unsorted, threads)


if __name__ == "__main__":
    main()
