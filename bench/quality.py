"""Scores and selection at Alpaca scale, on this machine's CPU.

(a) IFD with the tiny offline causal LM (tests/tiny_model.py, ~300k parameters) over 10,000 Alpaca records:
    records per second, batched (target >= 50/s). The scores are meaningless; the speed of the pipeline
    (tokenising, padding, two forward passes per batch) is what is measured.
(b) DEITA selection of 6,000 from the 52,002 Alpaca records with judge-like scores (integers 0 to 5, many ties)
    and threshold 0.1 (target < 10 s with the vectors cached), on three sets of vectors:
    - the real ones: the records' MiniLM instruction+input vectors joined into one unit vector each, as
      services.scores.default_vectors computes them. They are read from the file bench/dedup.py --review-groups
      saves (--vectors, default /tmp/alpaca52k_minilm.npy); without it they are embedded here the same way
      (services.scores.default_vectors on the bench's SQLite database, cold cache: tens of minutes on 2 CPUs),
      saying how long that took, and saved there for the next run. Also counted: how many candidates the rule
      left out as within 0.1 of a record already taken, and how far down the score order it went.
    - two stand-ins of the same shape (52,002 x 384, unit length), kept for comparison: uniformly random ones
      (nearly orthogonal: few rejections), and clustered ones (10,000 centres plus noise, so many candidates
      fall within 0.1 of a record already taken, as near-duplicates do).
    Each is timed as the pure rule and through services.selections.run_selection on SQLite (stored scores read,
    selection stored).

    .venv/bin/python bench/quality.py [--ifd-records 10000] [--batch-size 64] [--threads 1] [--vectors PATH]
                                      [--skip-ifd]   (keeps the IFD lines of the last results file, dated)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ALPACA = REPO.parent / "shared" / "data" / "alpaca_format" / "stanford_alpaca_52k.json"
RESULTS = REPO / "bench" / "results" / "quality.txt"
CENTRES = 10_000
VECTORS = "/tmp/alpaca52k_minilm.npy"  # where bench/dedup.py --review-groups saves the 52k's vectors


def bench_ifd(records: list[dict], batch_size: int, threads: int) -> list[str]:
    import torch

    torch.set_num_threads(threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curation.scores.ifd import difficulties
    from tests.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as work:
        path = build_tiny_model(Path(work) / "tiny")
        model, tokenizer = AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    rows = [(r["instruction"], r["input"], r["output"]) for r in records]
    difficulties(model, tokenizer, rows[:64], batch_size=batch_size)  # warm-up
    started = time.perf_counter()
    results = difficulties(model, tokenizer, rows, batch_size=batch_size, max_length=512)
    seconds = time.perf_counter() - started
    scored = [r for r in results if r is not None]
    return [f"(a) IFD, tiny Qwen2 (~300k parameters), {len(rows)} Alpaca records, batch {batch_size}, max 512 tokens, "
            f"cpu, torch threads {torch.get_num_threads()}:",
            f"    {seconds:.1f} s, {len(rows) / seconds:.0f} records/s (target >= 50/s); "
            f"{len(scored)} scored, median IFD {np.median([r.ifd for r in scored]):.3f}"]


def stand_in_vectors(n: int, dim: int, clustered: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if clustered:
        # Members of one cluster lie about 0.04 apart in cosine distance: within 0.1, so one per cluster is taken.
        centres = rng.normal(size=(CENTRES, dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        vectors = centres[rng.integers(0, CENTRES, size=n)] + rng.normal(scale=0.01, size=(n, dim)).astype(np.float32)
    else:
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def real_vectors(session, n: int, path: Path) -> tuple[np.ndarray, str]:
    """(the records' joined MiniLM instruction+input vectors, where they came from, in words).

    From `path` (bench/dedup.py --review-groups writes it) when it holds `n` rows; else embedded through
    services.scores.default_vectors, as a selection without cached vectors would, and saved to `path`.
    """
    from curation.embeddings import Embedder
    from curation.services.scores import default_vectors, scored_records
    from curation.services.selections import _dataset_id

    if path.is_file():
        vectors = np.load(path)
        made = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").is_file() else {}
        if vectors.shape[0] == n:
            return vectors, (f"read from {path} ({made.get('model', 'model not recorded')} "
                             f"{made.get('precision', '')}, saved by {made.get('made_by', 'an earlier run')})")
    embedder = Embedder()
    started = time.perf_counter()
    vectors = default_vectors(session)(scored_records(session, _dataset_id(session, "alpaca")))
    seconds = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    path.with_suffix(".json").write_text(json.dumps({"records": n, "made_by": "bench/quality.py",
                                                     "model": embedder.model_name,
                                                     "precision": embedder.precision, "device": embedder.device}))
    return vectors, (f"embedded here through services.scores.default_vectors from an empty cache in {seconds:.0f} s "
                     f"({embedder.model_name} {embedder.precision}, {embedder.device}), saved to {path}")


def bench_selection(records: list[dict], vectors_path: Path) -> list[str]:
    from curation.records import RecordDraft
    from curation.selection import deita_select, top_n
    from curation.services.selections import run_selection
    from db import repo
    from db.engine import open_database, session_for
    from db.score_tables import store_scores

    n = len(records)
    scores = np.random.default_rng(1).integers(0, 6, size=n).astype(np.float64)
    out = [f"(b) DEITA, 6,000 of {n} Alpaca records, threshold 0.1, judge-like scores 0-5:"]
    print(out[0], flush=True)
    with tempfile.TemporaryDirectory() as work:
        engine = open_database(f"sqlite:///{work}/bench.db")
        with session_for(engine) as session:
            dataset = repo.get_or_create_dataset(session, "alpaca")
            ids = repo.insert_records(session, dataset.id, [RecordDraft(r["instruction"], r["input"], [r["output"]])
                                                            for r in records], by="bench", reason="bench")
            store_scores(session, "judge", [{"record_id": i, "value": s, "basis": "bench"} for i, s in zip(ids, scores)])
            session.commit()
            real, source = real_vectors(session, n, vectors_path)
            arms = [("real MiniLM vectors", real, f"{n} x {real.shape[1]}, {source}")]
            arms += [(kind, stand_in_vectors(n, 384, clustered), f"stand-in, {n} x 384")
                     for kind, clustered in (("uniformly random", False),
                                             (f"clustered ({CENTRES:,} centres + noise)", True))]
            for number, (kind, vectors, about) in enumerate(arms):
                started = time.perf_counter()
                taken = deita_select(scores, vectors, 6000, 0.1)
                rule_s = time.perf_counter() - started
                started = time.perf_counter()
                made = run_selection(session, dataset="alpaca", name=f"deita-{number}", weights={"judge": 1},
                                     n=6000, threshold=0.1, actor=None, vectors=lambda _records: vectors)
                service_s = time.perf_counter() - started
                left_out: dict[int, tuple[int, float]] = {}
                deita_select(scores, vectors, 6000, 0.1, left_out=left_out)  # untimed: the skipped candidates
                depth = int(np.flatnonzero(top_n(scores, n) == taken[-1])[0]) + 1 if len(taken) else 0
                out.append(f"    {kind} ({about}): rule {rule_s:.2f} s ({len(taken)} taken, {len(left_out):,} left "
                           f"out as within 0.1 of one taken, {depth:,} candidates met); through the service on SQLite "
                           f"{service_s:.2f} s ({made.size} taken, scores read and selection stored) (target < 10 s)")
                print(out[-1], flush=True)
        engine.dispose()
    return out


def previous_ifd_lines() -> list[str]:
    """The IFD lines of the last results file, marked with the date of that run (for --skip-ifd)."""
    lines = RESULTS.read_text().splitlines() if RESULTS.is_file() else []
    when = lines[0].split(", ")[1] if lines and lines[0].count(", ") >= 1 else "an earlier run"
    start = next((k for k, text in enumerate(lines) if text.startswith("(a) IFD")), None)
    if start is None:
        return ["(a) IFD: not run (--skip-ifd) and no earlier result to keep"]
    kept = [lines[start]] + [text for text in lines[start + 1:] if text.startswith("    ")][:1]
    if "[not rerun" in kept[0]:
        return kept
    return [f"{kept[0]}  [not rerun: from the run of {when}]", *kept[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ifd-records", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    # One thread: with both CPUs shared by other processes, 2 torch threads ran 300 records at 20/s, 1 at 50/s.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for IFD (default 1)")
    parser.add_argument("--skip-ifd", action="store_true",
                        help="do not run (a); keep the IFD lines of the last results file, marked with their date")
    parser.add_argument("--vectors", type=Path, default=Path(VECTORS),
                        help=f"the 52k's joined MiniLM vectors (.npy), read if there, else made and saved (default "
                        f"{VECTORS}, where bench/dedup.py --review-groups saves them)")
    args = parser.parse_args()
    records = json.loads(ALPACA.read_text())
    lines = [f"bench/quality.py on {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]
    lines[0] += f", load average {os.getloadavg()[0]:.1f} at the start (the CPUs are shared)"
    lines += previous_ifd_lines() if args.skip_ifd else bench_ifd(records[:args.ifd_records], args.batch_size,
                                                                   args.threads)
    print("\n".join(lines), flush=True)
    lines += bench_selection(records, args.vectors)
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
