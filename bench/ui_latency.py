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

    python bench/ui_latency.py --hint 52002 500000 [--hint-queries 200] [--hint-browser-queries 50] [--keep DIR]

    python bench/ui_latency.py --team [--keep DIR]

runs the team figures of one run together: bulk approve of 10,000 records and its undo (bench/bulk_review.py,
SQLite and PostgreSQL), the map's build at 52k (bench/map_build.py), and the hint at 52,002 and 500,000 records.

--hint alone times only the editor's live near-duplicate hint instead (run_hint_benchmark): a dataset of the 52,002 Stanford
Alpaca records, and one of 500,000 that adds lead-in copies of them whose vectors the benchmark writes into the
embedding cache (COPIES_NOTE); the first build, each hint in process and in chromium, and a save taken in.
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


# ---- the editor's live near-duplicate hint at 52k and 500k records ------------------------------------------

ALPACA_52K = SHARED / "alpaca_format" / "stanford_alpaca_52k.json"
HINT_DATASET = "alpaca"
# Copy k of Alpaca record r (k counted over all copies) opens with LEADS[k // 52,002] and the record's instruction
# with its first letter lowered: ten openings, each held by under a tenth of the records, so none is the shared
# prefix (30% of the records) that the hint cuts from what it compares.
LEADS = ("Please ", "Kindly ", "Now, ", "Task: ", "I would like you to ", "Could you ", "Quickly ", "Carefully ",
         "Help me: ", "Try to ")
COPY_NOISE = 0.01  # per coordinate, added to a copy's source vector before normalizing: cosine to it about 0.98
HINT_DATA_NOTE = (
    "the {size:,}-record dataset: the 52,002 Stanford Alpaca records of ../shared/data{copies}")
COPIES_NOTE = (
    " + {copies:,} copies of them whose instruction opens with one of ten lead-ins (\"Please \", \"Kindly \", ...); "
    "each copy's instruction vector in the embedding cache is its source's real MiniLM vector plus Gaussian noise "
    f"(sigma {COPY_NOISE} per coordinate, cosine to the source about 0.98), written there by the benchmark instead of "
    "embedding 448k texts cold (an hour or more on 2 cores); inputs are the source's, with their real vectors")


def build_hint_database(url: str, records: int) -> tuple[int, int]:
    """The 52k Alpaca records in dataset HINT_DATASET, topped up to `records` with lead-in copies; (imported, copies)."""
    from dataclasses import replace

    from sqlalchemy import func, select

    from curation.importer import import_files
    from curation.services import admin
    from db import repo
    from db.engine import open_database, session_for
    from db.models import Record

    engine = open_database(url)
    with session_for(engine) as session:
        admin.add_user(session, "curator", "curator", PASSWORD)
        session.commit()
        import_files(session, HINT_DATASET, [ALPACA_52K], by="import", keep_duplicates=True)
        session.commit()
        imported = session.execute(select(func.count()).select_from(Record)).scalar_one()
        dataset = repo.get_dataset(session, HINT_DATASET)
        originals = [repo.record_draft(r) for r in repo.iter_records(session, dataset.id)]
        copies = max(0, records - imported)
        for start in range(0, copies, 20_000):
            batch = []
            for k in range(start, min(copies, start + 20_000)):
                source = originals[k % len(originals)]
                text = source.instruction
                batch.append(replace(source, instruction=LEADS[k // len(originals)] + text[:1].lower() + text[1:]))
            repo.insert_records(session, dataset.id, batch, by="bench", reason="benchmark copy")
            session.commit()
    engine.dispose()
    return imported, copies


def hint_records(session) -> list[dict]:
    """(id, instruction, input) of every record of HINT_DATASET in id order, as the shared-part helpers read them."""
    from sqlalchemy import select

    from db import repo
    from db.models import Record

    dataset = repo.get_dataset(session, HINT_DATASET)
    rows = session.execute(select(Record.id, Record.instruction, Record.input)
                           .where(Record.dataset_id == dataset.id).order_by(Record.id)).all()
    return [{"id": i, "instruction": a, "input": b, "output": ""} for i, a, b in rows]


def prefill_copy_vectors(url: str, source_url: str, imported: int) -> int:
    """Copy the 52k database's embedding cache into `url` and give each copy's instruction its source's vector
    plus noise (COPIES_NOTE); returns the vectors written for copies."""
    import numpy as np
    from sqlalchemy import select

    from curation.embeddings import DEFAULT_FIELDS, Embedder, record_parts, store_vectors, text_hash
    from curation.services.dedup import shared_parts, without_shared_parts
    from db.dedup_tables import EmbeddingVector as V
    from db.engine import open_database, session_for

    embedder = Embedder()
    source = open_database(source_url)
    engine = open_database(url)
    with session_for(source) as session:
        cached = {h: np.frombuffer(v, dtype=np.float32) for h, v in session.execute(select(V.text_hash, V.vector).where(
            V.model == embedder.model_name, V.precision == embedder.precision)).all()}
    source.dispose()
    rng = np.random.default_rng(0)
    written = 0
    with session_for(engine) as session:
        hashes = list(cached)
        for start in range(0, len(hashes), 20_000):
            chunk = hashes[start:start + 20_000]
            store_vectors(session, embedder.model_name, embedder.precision, chunk, np.stack([cached[h] for h in chunk]))
        session.commit()
        records = hint_records(session)
        shared = shared_parts(records, DEFAULT_FIELDS)[0]

        def compared(r):
            return without_shared_parts(record_parts(DEFAULT_FIELDS, r["instruction"], r["input"]), shared)[0]

        new_hashes, new_vectors = [], []
        for k, record in enumerate(records[imported:]):
            vector = cached[text_hash(compared(records[k % imported]))]
            noisy = vector + rng.normal(0.0, COPY_NOISE, vector.shape).astype(np.float32)
            new_hashes.append(text_hash(compared(record)))
            new_vectors.append(noisy / np.linalg.norm(noisy))
            if len(new_hashes) == 20_000 or k == len(records) - imported - 1:
                store_vectors(session, embedder.model_name, embedder.precision, new_hashes, np.stack(new_vectors))
                session.commit()
                written += len(new_hashes)
                new_hashes, new_vectors = [], []
    engine.dispose()
    return written


def typed_near_duplicates(url: str, count: int, seed: int = 1) -> tuple[list[tuple[int, str]], dict[int, int]]:
    """([(source id, text)] for `count` Alpaca records without an input: the instruction as someone might retype
    it (its last punctuation mark changed: "." becomes "!", "?" and "!" become "."; else a "." is added)), and
    the Alpaca record each record of the dataset is (itself, or the one it copies)."""
    from db.engine import open_database, session_for

    engine = open_database(url)
    with session_for(engine) as session:
        records = hint_records(session)
    engine.dispose()
    originals = records[:52_002]
    source_of = {r["id"]: originals[n % len(originals)]["id"] for n, r in enumerate(records)}
    rng = random.Random(seed)
    picked = rng.sample([r for r in originals if not r["input"].strip() and len(r["instruction"]) > 20], count)
    swap = {".": "!", "?": ".", "!": "."}
    typed = [(r["id"], r["instruction"][:-1] + swap[r["instruction"][-1]] if r["instruction"][-1] in swap
              else r["instruction"] + ".") for r in picked]
    return typed, source_of


def time_hint_in_process(url: str, queries: list[tuple[int, str]], source_of: dict[int, int], saves: int) -> dict:
    """In the bench's own process, as the hint's listener calls it: the first build, then each typed text's
    matches (embedding, search, the matched rows), then `saves` remembered records (what a save adds)."""
    from curation.config import Settings
    from curation.ui.context import AppContext
    from curation.ui.near_duplicate_hint import near_duplicates_for, remember_saved, warm_index
    from db.engine import open_database

    ctx = AppContext(settings=Settings.from_env(database_url=url), engine=open_database(url))
    t = time.perf_counter()
    hint = warm_index(ctx, HINT_DATASET)
    figures: dict = {"first build": time.perf_counter() - t, "records": len(hint.index.ids),
                     "rss after build": rss_mb(os.getpid())}
    near_duplicates_for(ctx, HINT_DATASET, "Warm up the query path.")
    figures.update({"hint": [], "embed": [], "search": [], "found": 0, "matched": []})
    for source_id, text in queries:
        t = time.perf_counter()
        matches = near_duplicates_for(ctx, HINT_DATASET, text)
        figures["hint"].append(time.perf_counter() - t)
        t = time.perf_counter()
        parts = hint.embedder.encode(hint.compared(text, "", ""))
        figures["embed"].append(time.perf_counter() - t)
        t = time.perf_counter()
        hint.index.closest(list(parts), 0.95, 5)
        figures["search"].append(time.perf_counter() - t)
        figures["found"] += any(source_of.get(m["id"]) == source_id for m in matches)
        if matches:
            figures["matched"].append((source_id, text))
    figures["remember"] = []
    for n in range(saves):
        source_id, text = queries[n % len(queries)]
        t = time.perf_counter()
        remember_saved(ctx, HINT_DATASET, 10_000_000 + n, f"{text} (saved by the bench, {n})", "", "")
        figures["remember"].append(time.perf_counter() - t)
    figures["rss at end"] = rss_mb(os.getpid())
    ctx.engine.dispose()
    return figures


def time_hint_in_browser(url: str, port: int, queries: list[tuple[int, str]]) -> dict:
    """Through `python app.py` and chromium: someone picks the dataset in the Record tab and types; the first
    hint (the index built from the cache meanwhile), then for each typed text the time from filling the
    instruction box to the hint's match list being visible (after clearing the box and its hint)."""
    from playwright.sync_api import sync_playwright

    server = start_server(url, port)
    figures: dict = {"hint": []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_label("username").fill("curator")
            page.get_by_label("password").fill(PASSWORD)
            page.get_by_label("password").press("Enter")
            page.locator("#signed-in", has_text="Signed in as").wait_for(timeout=120_000)
            page.get_by_role("tab", name="Record").click()
            page.locator("#record-dataset input").click()
            page.get_by_role("option", name=HINT_DATASET).click()
            instruction = page.locator("#record-instruction").get_by_role("textbox")
            matches = page.locator("div[id^='near-duplicate-hint-'] .nd-hint")
            t = time.perf_counter()
            instruction.fill(queries[0][1])
            matches.wait_for(state="visible", timeout=600_000)  # the index is built meanwhile
            figures["first hint"] = time.perf_counter() - t
            for _, text in queries[1:]:
                instruction.fill("")
                matches.wait_for(state="detached", timeout=60_000)
                t = time.perf_counter()
                instruction.fill(text)
                matches.wait_for(state="visible", timeout=60_000)
                figures["hint"].append(time.perf_counter() - t)
            browser.close()
        figures["server rss"] = rss_mb(server.pid)
    finally:
        stop_server(server)
    return figures


def hint_database(folder: Path, size: int, small: tuple[str, int] | None) -> tuple[str, int, int]:
    """(url, records, copies) of the hint database of `size` records in `folder`, built unless kept there; the
    copies' vectors come from the 52k database `small` (url, imported)."""
    url = f"sqlite:///{folder / f'hint-{size}.db'}"
    if (folder / f"hint-{size}.db").exists():
        total = count_records(url)
        print(f"  database {folder / f'hint-{size}.db'}: {total:,} records, reused (built by an earlier run)")
        return url, total, max(0, total - 52_002)
    started = time.perf_counter()
    imported, copies = build_hint_database(url, size)
    print(f"  database: {imported:,} + {copies:,} copies = {imported + copies:,} records, "
          f"built in {time.perf_counter() - started:.0f} s")
    if copies:
        if small is None:
            raise SystemExit("the copies' vectors come from the 52,002-record database: include 52002 in --hint")
        started = time.perf_counter()
        written = prefill_copy_vectors(url, small[0], imported)
        print(f"  embedding cache: the 52k database's vectors copied, {written:,} copy vectors written "
              f"in {time.perf_counter() - started:.0f} s")
    return url, imported + copies, copies


def run_hint_benchmark(folder: Path, sizes: list[int], queries: int, browser_queries: int, saves: int,
                       port: int) -> None:
    print("the editor's live near-duplicate hint (fields instruction+input, threshold 0.95, top 5): a typed text is "
          "an Alpaca instruction without input whose last punctuation mark was changed")
    small = None
    for size in sorted(sizes):
        copies_note = COPIES_NOTE.format(copies=size - 52_002) if size > 52_002 else ""
        print(f"== {HINT_DATA_NOTE.format(size=size, copies=copies_note)}")
        url, total, copies = hint_database(folder, size, small)
        if not copies:
            small = (url, total)
        typed, source_of = typed_near_duplicates(url, max(queries, browser_queries + 1))
        f = time_hint_in_process(url, typed, source_of, saves)
        print(f"  in process ({total:,} records): first build {f['first build']:.1f} s (vectors from the cache, "
              f"embedding what it lacks), RSS {f['rss after build'][0]:.0f} MB after it")
        print(f"    {'hint (near_duplicates_for)':<40} {percentiles(f['hint'])}")
        print(f"    {'  embedding its two parts (no memo)':<40} {percentiles(f['embed'])}")
        print(f"    {'  searching the index':<40} {percentiles(f['search'])}")
        print(f"    the hint listed the record typed from (or one of its copies): {f['found']} of {len(f['hint'])}")
        print(f"    {'a save taken in (remember_saved)':<40} {percentiles(f['remember'])}")
        print(f"    RSS at the end {f['rss at end'][0]:.0f} MB (peak {f['rss at end'][1]:.0f} MB)")
        if browser_queries and Path(CHROMIUM).exists():
            b = time_hint_in_browser(url, port, f["matched"][:browser_queries + 1])  # texts the hint matches
            print(f"  in chromium through python app.py: first hint after typing into a freshly started server "
                  f"{b['first hint']:.1f} s (its index built meanwhile)")
            print(f"    {'fill the instruction -> hint visible':<40} {percentiles(b['hint'])}")
            print(f"    server RSS {b['server rss'][0]:.0f} MB (peak {b['server rss'][1]:.0f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--sign-ins", type=int, default=20, help="browser sign-ins to time (0: none)")
    parser.add_argument("--restarts", type=int, default=3, help="server restarts before a timed first save (0: none)")
    parser.add_argument("--port", type=int, default=7911)
    parser.add_argument("--keep", default=None,
                        help="folder for the database, reused when it already holds one (default: a temporary one)")
    parser.add_argument("--hint", type=int, nargs="+", metavar="RECORDS", default=None,
                        help="time only the editor's near-duplicate hint, at these dataset sizes (e.g. 52002 500000)")
    parser.add_argument("--hint-queries", type=int, default=200, help="typed texts timed in process, per size")
    parser.add_argument("--hint-browser-queries", type=int, default=50,
                        help="typed texts timed in chromium through the app, per size (0: none)")
    parser.add_argument("--hint-saves", type=int, default=50, help="saves taken into the index, timed, per size")
    parser.add_argument("--team", action="store_true",
                        help="bulk approve of 10,000, the map's build at 52k and the hint at 52k and 500k, one run")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"{SHARED} is absent: nothing to benchmark", file=sys.stderr)
        return 2
    folder = Path(args.keep or tempfile.mkdtemp(prefix="ui-latency-"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.team:
        # The two sibling benchmarks run as they do alone, one after the other, so no figure shares the CPUs.
        for script, extra in (("bulk_review.py", ["--db", "both"]), ("map_build.py", ["--part", "both"])):
            print(f"== bench/{script} {' '.join(extra)}", flush=True)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, str(REPO / "bench" / script), *extra], cwd=REPO)
            print(f"   ({time.perf_counter() - started:.0f} s, exit {done.returncode})", flush=True)
        print("== the hint at 52,002 and 500,000 records", flush=True)
        args.hint = args.hint or [52_002, 500_000]
    if args.hint:
        print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")
        run_hint_benchmark(folder, args.hint, args.hint_queries, args.hint_browser_queries, args.hint_saves,
                           args.port)
        print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        return 0
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
