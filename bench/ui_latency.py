"""UI latency at 100,000 records: browse with a filter, open a record, save it, through gradio_client.

    python bench/ui_latency.py [--records 100000] [--ops 200] [--keep DIR]

Imports every Alpaca-format file and SNI task of ../shared/data into a fresh SQLite database (about
92,000 records), tops it up to --records with copies of those records whose instruction gets a
" (copy N)" suffix (said in the output), starts `python app.py` in its own process, and times each
operation as a signed-in curator would do it. Prints p50/p95 in milliseconds and the server's memory.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
PASSWORD = "bench-password"


def build_database(url: str, records: int) -> tuple[int, int]:
    """Import the shared data and top up to `records`; returns (imported, copies added)."""
    from sqlalchemy import func, select

    from curation.importer import import_files
    from curation.services import admin
    from curation.services.permissions import Actor
    from db import repo
    from db.engine import open_database, session_for
    from db.models import Record, Role

    engine = open_database(url)
    files = sorted((SHARED / "alpaca_format").glob("*.json")) + sorted((SHARED / "sni").glob("*.json"))
    with session_for(engine) as session:
        admin.add_user(session, "curator", "curator", PASSWORD)
        admin.add_user(session, "root", "admin", PASSWORD)
        session.commit()
        import_files(session, "bench", files, by="import")
        session.commit()
        imported = session.execute(select(func.count()).select_from(Record)).scalar_one()
        dataset = repo.get_dataset(session, "bench")
        missing = records - imported
        copies = 0
        batch: list = []
        for n, record in enumerate(repo.iter_records(session, dataset.id)):
            if copies + len(batch) >= missing:
                break
            draft = repo.record_draft(record)
            draft.instruction = f"{draft.instruction} (copy {n})"
            batch.append(draft)
        if batch:
            repo.insert_records(session, dataset.id, batch, by="bench", reason="benchmark top-up")
            copies = len(batch)
        session.commit()
        del Actor, Role
    engine.dispose()
    return imported, copies


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)] * 1000
    return f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (n={len(ordered)})"


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def wait_for(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (the sign-in wall)
        except Exception:
            time.sleep(0.5)
    raise SystemExit("the app did not start in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--port", type=int, default=7911)
    parser.add_argument("--keep", default=None, help="folder for the database (default: a temporary one)")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} is absent: nothing to benchmark", file=sys.stderr)
        return 2
    folder = Path(args.keep or tempfile.mkdtemp(prefix="ui-latency-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'bench.db'}"
    started = time.perf_counter()
    if (folder / "bench.db").exists():
        raise SystemExit(f"{folder / 'bench.db'} exists: give an empty --keep folder")
    imported, copies = build_database(url, args.records)
    print(f"database: {imported:,} records imported from ../shared/data + {copies:,} copies with a "
          f"'(copy N)' instruction suffix = {imported + copies:,} records, built in {time.perf_counter() - started:.0f} s")

    env = {**os.environ, "DATABASE_URL": url, "PORT": str(args.port), "HOST": "127.0.0.1"}
    server = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{args.port}"
        wait_for(base + "/", server)
        from gradio_client import Client

        client = Client(base, auth=("curator", PASSWORD), verbose=False)
        rng = random.Random(0)
        ids_by_status = client.predict("Records", "bench", "draft", "", "", "", "Newest", 1, api_name="/browse")
        total = imported + copies
        timings: dict[str, list[float]] = {"browse (dataset + status filter, random page)": [],
                                           "browse (free-text filter)": [], "open a record": [],
                                           "save a record": []}
        words = ["water", "python", "capital", "recipe", "poem", "explain", "summarize", "list"]
        for n in range(args.ops):
            page = rng.randint(1, total // 50)
            t = time.perf_counter()
            client.predict("Records", "bench", "draft", "", "", "", "Last updated", page, api_name="/browse")
            timings["browse (dataset + status filter, random page)"].append(time.perf_counter() - t)
            t = time.perf_counter()
            client.predict("Records", "bench", "", "", "", words[n % len(words)], "Newest", 1, api_name="/browse")
            timings["browse (free-text filter)"].append(time.perf_counter() - t)
            record_id = rng.randint(1, total)
            t = time.perf_counter()
            opened = client.predict(record_id, api_name="/record_open")
            timings["open a record"].append(time.perf_counter() - t)
            values = [v["value"] if isinstance(v, dict) and "value" in v else v for v in opened[3:10]]
            values[5] = f"{values[5] or ''} [edited {n}]"
            t = time.perf_counter()
            client.predict(opened[0], opened[1], *values, api_name="/record_save")
            timings["save a record"].append(time.perf_counter() - t)
        del ids_by_status
        current, peak = rss_mb(server.pid)
        print(f"server: python app.py (SQLite), {args.ops} operations of each kind through gradio_client, "
              f"one client, sequential")
        for name, samples in timings.items():
            print(f"  {name:<48} {percentiles(samples)}")
        print(f"  server memory: RSS {current:.0f} MB now, peak {peak:.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
