"""UI latency at 100,000 records: browse, open, save; sign-in to a usable page; the first save after a restart.

    python bench/ui_latency.py [--records 100000] [--ops 200] [--sign-ins 20] [--restarts 3] [--keep DIR]

Imports every Alpaca-format file and SNI task of ../shared/data into a fresh SQLite database (about
92,000 records), tops it up to --records with copies of those records whose instruction gets a
" (copy N)" suffix (said in the output), starts `python app.py` in its own process, and times each
operation as a signed-in curator would do it. Prints p50/p95 in milliseconds and the server's memory.
With --keep DIR the database is kept there and reused by later runs (building it takes ~20 s).

Then, in a real browser (Debian's chromium through Playwright, a fresh browser context each time), the
time from pressing Enter in the sign-in form to a usable page (defined in SIGN_IN_DEFINITION), and, after
restarting the server, the first saves (an existing record, a new one, one to a dataset that does not exist).
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
CHROMIUM = "/usr/bin/chromium"


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


SIGN_IN_DEFINITION = (
    "sign-in to usable page: from pressing Enter in the sign-in form (a fresh browser context each time) until the "
    "'Signed in as' line is shown, the browse table shows its first rows, and Gradio has no pending events: every "
    "request the page sent to /gradio_api (each event's queue join, the event stream, direct calls) has finished "
    "and none follows for 0.5 s; the clock stops at the later of the last request's end and both being shown")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def start_server(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "HOST": "127.0.0.1"}
    server = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/", server)
    return server


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def time_operations(client, total: int, ops: int) -> dict[str, list[float]]:
    """Browse (filtered, free text), open and save, `ops` times each, as one curator would in turn."""
    rng = random.Random(0)
    timings: dict[str, list[float]] = {"browse (dataset + status filter, random page)": [],
                                       "browse (free-text filter)": [], "open a record": [],
                                       "save a record": []}
    words = ["water", "python", "capital", "recipe", "poem", "explain", "summarize", "list"]
    for n in range(ops):
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
        values = form_values(opened)
        values[5] = f"{values[5] or ''} [edited {n}]"
        t = time.perf_counter()
        client.predict(opened[0], opened[1], *values, api_name="/record_save")
        timings["save a record"].append(time.perf_counter() - t)
    return timings


def form_values(opened) -> list:
    """The seven form fields (dataset .. other outputs) of a /record_open answer."""
    return [v["value"] if isinstance(v, dict) and "value" in v else v for v in opened[3:10]]


def sign_in_once(browser, base: str, user: str) -> dict[str, float]:
    """Seconds from pressing Enter in the sign-in form to a usable page (SIGN_IN_DEFINITION), and its phases."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    in_flight: set = set()
    ends: dict[str, list[float]] = {"login": [], "api": []}
    first_event: list[float] = []

    def counted(request) -> bool:
        return "/gradio_api/" in request.url and "/heartbeat/" not in request.url

    def end_of(request) -> float:
        timing = request.timing  # startTime: ms since the epoch; responseEnd: ms after it (-1: unknown)
        return (timing["startTime"] + timing["responseEnd"]) / 1000 if timing.get("responseEnd", -1) >= 0 \
            else time.time()

    def sent(request):
        if counted(request):
            in_flight.add(request)
            if "/queue/join" in request.url or "/run/" in request.url:
                first_event.append(time.time())

    def done(request):
        if counted(request):
            in_flight.discard(request)
            ends["api"].append(end_of(request))
        elif request.method == "POST" and request.url.rstrip("/").endswith("/login"):
            ends["login"].append(end_of(request))

    page.on("request", sent)
    page.on("requestfinished", done)
    page.on("requestfailed", done)
    try:
        page.goto(base)
        page.get_by_label("username").fill(user)
        page.get_by_label("password").fill(PASSWORD)
        started = time.time()
        page.get_by_label("password").press("Enter")
        page.locator("#signed-in", has_text="Signed in as").wait_for(timeout=120_000)
        page.wait_for_function("() => (document.querySelector('#browse-table [aria-rowindex=\"2\"]') || {})"
                               ".innerText", timeout=120_000)  # the first row under the header
        shown = time.time()
        quiet_since = give_up = time.monotonic()
        while time.monotonic() - quiet_since < 0.5:
            page.wait_for_timeout(25)
            if in_flight:
                quiet_since = time.monotonic()
            if time.monotonic() - give_up > 120:
                raise SystemExit("a request of the page never finished: "
                                 + ", ".join(f"{r.method} {r.url}" for r in list(in_flight)))
        usable = max([shown, *ends["api"]])
        signed = max(ends["login"], default=started)
        events = min(first_event, default=usable)
        last_answer = max(ends["api"], default=events)
        return {"usable": usable - started, "sign-in POST": signed - started,
                "page and scripts until the first event": events - signed,
                "events until the last answer": last_answer - events,
                "drawing after that": max(0.0, shown - last_answer)}
    finally:
        context.close()


def time_sign_ins(base: str, user: str, count: int) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            return [sign_in_once(browser, base, user) for _ in range(count)]
        finally:
            browser.close()


def time_first_saves(url: str, port: int, record_id: int, *, browser=None) -> dict[str, float]:
    """Restart the server, sign in with gradio_client, then time the first saves (seconds).

    With a browser, someone's page also loads (a browser sign-in) before the saves, as when a server restarts
    while people work; its sign-in time is given too.
    """
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    base = f"http://127.0.0.1:{port}"
    server = start_server(url, port)
    try:
        times = {}
        if browser is not None:
            times["browser sign-in first"] = sign_in_once(browser, base, "curator")["usable"]
        client = Client(base, auth=("curator", PASSWORD), verbose=False)
        opened = client.predict(record_id, api_name="/record_open")
        values = form_values(opened)
        values[5] = f"{values[5] or ''} [restarted {time.time():.0f}]"
        t = time.perf_counter()
        client.predict(opened[0], opened[1], *values, api_name="/record_save")
        times["existing record"] = time.perf_counter() - t
        t = time.perf_counter()
        client.predict(None, None, "bench", "bench", "", f"Name a colour of the rainbow ({time.time()}).", "",
                       "Indigo", "", api_name="/record_save")
        times["new record"] = time.perf_counter() - t
        t = time.perf_counter()
        try:
            client.predict(None, None, "nope", "", "", "Anything.", "", "Something", "", api_name="/record_save")
            raise SystemExit("a save to the dataset 'nope' was not refused")
        except AppError as refused:
            if "no dataset named 'nope'" not in str(refused):
                print(f"    (the save to 'nope' answered: {refused})")
        times["to dataset 'nope' (refused)"] = time.perf_counter() - t
        return times
    finally:
        stop_server(server)


def print_first_saves(title: str, rounds: list[dict[str, float]]) -> None:
    print(title)
    for n, times in enumerate(rounds, 1):
        print(f"  restart {n}: " + "   ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in times.items()))


def count_records(url: str) -> int:
    from sqlalchemy import func, select

    from db.engine import open_database, session_for
    from db.models import Record

    engine = open_database(url)
    with session_for(engine) as session:
        total = session.execute(select(func.count()).select_from(Record)).scalar_one()
    engine.dispose()
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--sign-ins", type=int, default=20, help="browser sign-ins to time (0: none)")
    parser.add_argument("--restarts", type=int, default=3, help="server restarts before a timed first save (0: none)")
    parser.add_argument("--port", type=int, default=7911)
    parser.add_argument("--keep", default=None,
                        help="folder for the database, reused when it already holds one (default: a temporary one)")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} is absent: nothing to benchmark", file=sys.stderr)
        return 2
    folder = Path(args.keep or tempfile.mkdtemp(prefix="ui-latency-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'bench.db'}"
    started = time.perf_counter()
    if (folder / "bench.db").exists():
        total = count_records(url)
        print(f"database: {total:,} records, reused from {folder / 'bench.db'} (built by an earlier run)")
    else:
        imported, copies = build_database(url, args.records)
        total = imported + copies
        print(f"database: {imported:,} records imported from ../shared/data + {copies:,} copies with a '(copy N)' "
              f"instruction suffix = {total:,} records, built in {time.perf_counter() - started:.0f} s")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")

    base = f"http://127.0.0.1:{args.port}"
    server = start_server(url, args.port)
    try:
        from gradio_client import Client

        client = Client(base, auth=("curator", PASSWORD), verbose=False)
        timings = time_operations(client, total, args.ops) if args.ops else {}
        current, peak = rss_mb(server.pid)
        print(f"server: python app.py (SQLite), {args.ops} operations of each kind through gradio_client, "
              f"one client, sequential")
        for name, samples in timings.items():
            print(f"  {name:<48} {percentiles(samples)}")
        print(f"  server memory: RSS {current:.0f} MB now, peak {peak:.0f} MB")
        if args.sign_ins:
            if not Path(CHROMIUM).exists():
                print(f"  sign-in: skipped, {CHROMIUM} is absent")
            else:
                sign_ins = time_sign_ins(base, "curator", args.sign_ins)
                samples = [s["usable"] for s in sign_ins]
                print(f"  {SIGN_IN_DEFINITION}")
                print(f"  {'sign-in to usable page (curator, chromium)':<48} {percentiles(samples)}")
                print(f"    each, s: {' '.join(f'{s:.2f}' for s in samples)}")
                print("    where it goes (median ms): " + " · ".join(
                    f"{phase} {statistics.median(s[phase] for s in sign_ins) * 1000:.0f}"
                    for phase in sign_ins[0] if phase != "usable"))
                current, peak = rss_mb(server.pid)
                print(f"  server memory after the sign-ins: RSS {current:.0f} MB now, peak {peak:.0f} MB")
    finally:
        stop_server(server)
    if args.restarts:
        record_id = max(1, total // 2)
        rounds = [time_first_saves(url, args.port, record_id) for _ in range(args.restarts)]
        print_first_saves("first saves after a restart (server restarted, then signed in with gradio_client):", rounds)
        if Path(CHROMIUM).exists():
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
                try:
                    rounds = [time_first_saves(url, args.port, record_id, browser=browser)
                              for _ in range(args.restarts)]
                finally:
                    browser.close()
            print_first_saves("first saves after a restart and a browser sign-in (someone's page loaded first), "
                              "through gradio_client:", rounds)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
