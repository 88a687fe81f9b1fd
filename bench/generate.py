"""Drafting throughput: sequential against concurrent requests, and a re-run from the database cache.

    .venv/bin/python bench/generate.py                      # 1,000 drafts against the loopback server (50 ms each)
    .venv/bin/python bench/generate.py --serve 200          # also 200 drafts from `transformers serve` + tiny model

Against tests/openai_server.py with a fixed latency per request, through the real openai client and
curation.llm.run_requests: requests per second sequentially and at --concurrency, then the same requests again
with the SQLite reply cache filled (targets: concurrency 16 gives >= 10x sequential; the cached re-run of 1,000
takes < 2 s). With --serve, the same against a real `transformers serve` process serving the tiny offline model.

    .venv/bin/python bench/generate.py --self-instruct 2000  # a Self-Instruct run to 2,000 kept instructions

--self-instruct N runs only that: from the 175 Self-Instruct seeds, against the loopback server whose scripted
model answers each prompt with 8 instructions (by the prompt's hash: 6 drawn from the Alpaca 52k, 2 paraphrasing
instructions the prompt shows, as models do), and writes their
Alpaca input and output as the instance (synthetic instructions when ../shared/data is absent). It prints the
wall time, the requests per kept instruction, the drops by rule, the cost of the ROUGE-L check per candidate as
the pool grows, the same check at a pool of 50,000 instructions (target < 5 ms), and a re-run from the cache.
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def drafts(count: int, tag: str = "") -> list:
    from curation.llm import ChatRequest

    return [ChatRequest([{"role": "system", "content": "You write clear, correct answers."},
                         {"role": "user", "content": f"Instruction {i}{tag}: give three tips for staying healthy."}],
                        temperature=0.7, max_tokens=64, seed=i) for i in range(count)]


def line(label: str, count: int, seconds: float, extra: str = "") -> None:
    print(f"{label:<46} {count:>6} req {seconds:>8.2f} s {count / seconds:>9,.1f} req/s  {extra}", flush=True)


def loopback(count: int, concurrency: int, latency: float) -> dict:
    from curation.llm import make_backend, run_requests
    from db.engine import open_database, session_for
    from db.llm_cache import DatabaseReplyCache
    from tests.openai_server import OpenAIServer

    figures = {}
    requests = drafts(count)
    with OpenAIServer(latency=latency) as server, tempfile.TemporaryDirectory() as folder:
        backend = make_backend("openai", model="loopback-model", base_url=server.url)
        report = run_requests(backend, requests, concurrency=1)
        assert report.done == count, report.errors
        figures["sequential"] = count / report.seconds
        line("loopback, sequential (concurrency 1)", count, report.seconds, f"peak in flight {server.peak_in_flight}")

        server.reset()
        report = run_requests(backend, requests, concurrency=concurrency)
        assert report.done == count, report.errors
        figures["concurrent"] = count / report.seconds
        line(f"loopback, concurrency {concurrency}", count, report.seconds,
             f"peak in flight {server.peak_in_flight}, {figures['concurrent'] / figures['sequential']:.1f}x sequential")

        engine = open_database(f"sqlite:///{folder}/bench.db")
        with session_for(engine) as session:
            server.reset()
            report = run_requests(backend, requests, concurrency=concurrency, cache=DatabaseReplyCache(session))
            line(f"loopback, concurrency {concurrency}, filling the cache", count, report.seconds,
                 f"{len(server.requests)} server requests, {report.cached} cached")
            server.reset()
            report = run_requests(backend, requests, concurrency=concurrency, cache=DatabaseReplyCache(session))
            assert report.cached == count
            figures["cached_s"] = report.seconds
            line("loopback, re-run from the cache", count, report.seconds,
                 f"{len(server.requests)} server requests, {report.cached} cached")
        engine.dispose()
    return figures


def transformers_serve(count: int, concurrency: int) -> None:
    from curation.llm import make_backend, run_requests
    from tests.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as folder:
        model = build_tiny_model(Path(folder) / "tiny")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        command = [str(Path(sys.executable).parent / "transformers"), "serve", str(model), "--host", "127.0.0.1",
                   "--port", str(port), "--device", "cpu"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        print("transformers serve did not start; skipped")
                        return
                    time.sleep(0.5)
            backend = make_backend("openai", model=str(model), base_url=f"http://127.0.0.1:{port}/v1", timeout=120)
            requests = [replace(r, max_tokens=16) for r in drafts(count, " (serve)")]
            run_requests(backend, requests[:2], concurrency=1)  # load the model before timing
            for level in (1, concurrency):
                report = run_requests(backend, requests[2:], concurrency=level)
                line(f"transformers serve + tiny model, concurrency {level}", report.done, report.seconds,
                     f"{report.completion_tokens / report.seconds:,.0f} completion tokens/s, "
                     f"{len(report.errors)} failed")
        finally:
            os.killpg(process.pid, 15)
            process.wait(30)


SHARED = REPO.parent / "shared" / "data"


def synthetic_instructions(count: int, seed: int) -> list[str]:
    """Instructions of made-up words (far apart by ROUGE-L), for when ../shared/data is absent."""
    import random

    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    verbs = ["Explain", "Describe", "Summarize", "Compare", "List", "Suggest", "Rewrite", "Classify", "Plan"]
    return [f"{rng.choice(verbs)} " + " ".join(rng.choice(syllables) + rng.choice(syllables) for _ in range(7))
            for _ in range(count)]


def instruction_source() -> tuple[list, list[dict], str]:
    """(seed tasks, records the scripted model draws from, where they come from)."""
    import json

    from curation.generation.self_instruct import SeedTask, load_seed_tasks

    seeds_path, alpaca_path = SHARED / "seeds" / "self_instruct_seed_tasks.jsonl", \
        SHARED / "alpaca_format" / "stanford_alpaca_52k.json"
    if seeds_path.exists() and alpaca_path.exists():
        records = json.loads(alpaca_path.read_text())
        return load_seed_tasks(seeds_path), records, "175 Self-Instruct seeds, Alpaca 52k instructions"
    seeds = [SeedTask(f"s{n}", "", text) for n, text in enumerate(synthetic_instructions(175, 1))]
    records = [{"instruction": t, "input": "", "output": "An answer."} for t in synthetic_instructions(52_000, 2)]
    return seeds, records, "synthetic seeds and instructions (../shared/data is absent)"


def scripted_model(records: list[dict]):
    """A model that answers Self-Instruct's three prompts from `records`, the same way for the same prompt."""
    import hashlib
    import random

    from curation.generation import prompts
    from tests.openai_server import Reply

    by_text = {r["instruction"].strip(): r for r in records}
    texts = list(by_text)
    asks_kind = ("Classify", "Categorize", "Identify whether", "Determine whether")

    def answer(body: dict) -> Reply:
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        if system == prompts.SELF_INSTRUCT_SYSTEM:
            rng = random.Random(hashlib.sha256(user.encode()).digest())
            # Models echo their examples: two of the eight paraphrase a task the prompt shows.
            shown = [line.split(". ", 1)[1] for line in user.split("\n\n")[0].splitlines()[1:]]
            items = rng.sample(texts, 6) + [f"{t} Keep it short." for t in rng.sample(shown, 2)]
            rng.shuffle(items)
            return Reply("\n".join(f"{n}. {' '.join(t.split())}" for n, t in enumerate(items, 9)))
        task = user.split("\n", 1)[0].removeprefix("Task: ")
        if system == prompts.CLASSIFY_SYSTEM:
            return Reply("Yes" if task.startswith(asks_kind) else "No")
        record = by_text.get(task, {"input": "", "output": "An answer."})
        given = record["input"] or prompts.NO_INPUT
        if "This is a classification task" in user:
            return Reply(f"Output: {record['output']}\nInput: {given}")
        return Reply(f"Input: {given}\nOutput: {record['output']}")
    return answer


def self_instruct(count: int, concurrency: int, latency: float) -> int:
    import statistics

    import curation.generation.self_instruct as si
    from curation.generation.filters import RougePool
    from curation.llm import make_backend
    from db.engine import open_database, session_for
    from db.llm_cache import DatabaseReplyCache
    from tests.openai_server import OpenAIServer

    seeds, records, source = instruction_source()
    checks: list[tuple[int, float]] = []  # (pool size, seconds) of each ROUGE-L check
    untimed = si.rouge_drop

    def timed(pool, text):
        started = time.perf_counter()
        try:
            return untimed(pool, text)
        finally:
            checks.append((len(pool), time.perf_counter() - started))

    si.rouge_drop = timed
    print(f"Self-Instruct to {count:,} kept instructions: {source}; loopback latency {latency * 1000:.0f} ms, "
          f"concurrency {concurrency}, batch_size 8", flush=True)
    with OpenAIServer(latency=latency, replies=scripted_model(records)) as server, \
            tempfile.TemporaryDirectory() as folder:
        backend = make_backend("openai", model="loopback-model", base_url=server.url)
        engine = open_database(f"sqlite:///{folder}/bench.db")
        with session_for(engine) as session:
            started = time.perf_counter()
            kept: list = []
            report = si.run_self_instruct(backend, seeds, target=count, concurrency=concurrency,
                                          cache=DatabaseReplyCache(session), on_keep=kept.append)
            wall = time.perf_counter() - started
            asked = report.requested
            parsed = report.kept + report.dropped
            print(f"run: {wall:.1f} s wall, {report.kept:,} kept, {asked:,} requests "
                  f"({asked / max(1, report.kept):.2f} per kept instruction; "
                  f"{sum(1 for b in server.requests if 'Come up with' in b['messages'][-1]['content']):,} "
                  f"asked for instructions), {parsed:,} candidates, stopped: {report.stopped}", flush=True)
            print("drops: " + ", ".join(f"{rule} {n:,}" for rule, n in sorted(report.drops.items(),
                                                                              key=lambda kv: -kv[1])))
            timed_checks = list(checks)
            server.reset()
            checks.clear()
            started = time.perf_counter()
            again = si.run_self_instruct(backend, seeds, target=count, concurrency=concurrency,
                                         cache=DatabaseReplyCache(session), kept_before=[c.instruction for c in kept])
            print(f"re-run from the SQLite cache: {time.perf_counter() - started:.1f} s, {len(server.requests)} "
                  f"server requests, {again.cached:,} cached, {again.kept:,} kept, {again.written} written again",
                  flush=True)
        engine.dispose()
    si.rouge_drop = untimed

    print("ROUGE-L check per candidate that reaches it, by pool size (seeds + kept so far):")
    edges = [175, 500, 1000, 1500, 2000, count + 175 + 1]
    for low, high in zip(edges, edges[1:]):
        times = sorted(s for size, s in timed_checks if low <= size < high)
        if times:
            p95 = times[int(0.95 * (len(times) - 1))]
            print(f"  pool {low:>5,}-{high - 1:<6,} {len(times):>6,} checks  "
                  f"mean {statistics.mean(times) * 1000:6.3f} ms  p95 {p95 * 1000:6.3f} ms")
    texts = [r["instruction"] for r in records]
    pool = RougePool(texts[:50_000])
    queries = texts[50_000:50_500] if len(texts) > 50_000 else synthetic_instructions(500, 3)
    worst = 0.0
    for label, candidates in (("new", queries), ("near-copies", [f"{q} Keep it short." for q in texts[:500]])):
        started = time.perf_counter()
        close = sum(pool.closest(q) is not None for q in candidates)
        per = (time.perf_counter() - started) / len(candidates) * 1000
        worst = max(worst, per)
        print(f"  pool 50,000 instructions, {len(candidates)} {label} candidates: {per:.2f} ms per candidate "
              f"({close} above 0.7); target < 5 ms")
    return 0 if worst < 5 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the loopback server waits per request")
    parser.add_argument("--serve", type=int, default=0, metavar="N",
                        help="also N drafts against `transformers serve` with the tiny model (0: skip)")
    parser.add_argument("--self-instruct", type=int, default=0, metavar="N",
                        help="run only the Self-Instruct bench, to N kept instructions (0: skip)")
    args = parser.parse_args()
    for key in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import openai

    print(f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%MZ}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"openai {openai.__version__}, load average {os.getloadavg()[0]:.1f}")
    if args.self_instruct:
        return self_instruct(args.self_instruct, args.concurrency, args.latency)
    figures = loopback(args.requests, args.concurrency, args.latency)
    ratio = figures["concurrent"] / figures["sequential"]
    print(f"targets: concurrency {args.concurrency} {ratio:.1f}x sequential (target >= 10x); "
          f"cached re-run of {args.requests:,} in {figures['cached_s']:.2f} s (target < 2 s)")
    if args.serve:
        transformers_serve(args.serve, args.concurrency)
    return 0 if ratio >= 10 and figures["cached_s"] < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
