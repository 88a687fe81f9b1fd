"""Drafting throughput: sequential against concurrent requests, and a re-run from the database cache.

    .venv/bin/python bench/generate.py                      # 1,000 drafts against the loopback server (50 ms each)
    .venv/bin/python bench/generate.py --serve 200          # also 200 drafts from `transformers serve` + tiny model

Against tests/openai_server.py with a fixed latency per request, through the real openai client and
curation.llm.run_requests: requests per second sequentially and at --concurrency, then the same requests again
with the SQLite reply cache filled (targets: concurrency 16 gives >= 10x sequential; the cached re-run of 1,000
takes < 2 s). With --serve, the same against a real `transformers serve` process serving the tiny offline model.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the loopback server waits per request")
    parser.add_argument("--serve", type=int, default=0, metavar="N",
                        help="also N drafts against `transformers serve` with the tiny model (0: skip)")
    args = parser.parse_args()
    for key in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import openai

    print(f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%MZ}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"openai {openai.__version__}, load average {os.getloadavg()[0]:.1f}")
    figures = loopback(args.requests, args.concurrency, args.latency)
    ratio = figures["concurrent"] / figures["sequential"]
    print(f"targets: concurrency {args.concurrency} {ratio:.1f}x sequential (target >= 10x); "
          f"cached re-run of {args.requests:,} in {figures['cached_s']:.2f} s (target < 2 s)")
    if args.serve:
        transformers_serve(args.serve, args.concurrency)
    return 0 if ratio >= 10 and figures["cached_s"] < 2 else 1


if __name__ == "__main__":
    sys.exit(main())
