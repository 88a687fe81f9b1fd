"""Import every file in ../shared/data into a fresh SQLite and a fresh PostgreSQL database, then export
all of it to messages JSONL. Prints records per second for each step and the peak memory of each step
(each runs in its own process, so the peak is that step's own). Baseline: pandas.read_json + to_json of
the Alpaca 52k file.

    .venv/bin/python bench/import_export.py [--skip-postgres]
    .venv/bin/python bench/import_export.py --page-upload [--repeats 3]

--page-upload imports the Alpaca 52k file through the Import tab's upload path (gradio_client against
`python app.py`: a real upload, then the import listener) and through the CLI (`python -m curation import`,
interpreter start included), a fresh dataset each run; prints both and saves them to bench/results/import_page.txt.
Target: the page within 1.5x the CLI's time.

    .venv/bin/python bench/import_export.py --templates [--skip-postgres]

--templates applies every PromptSource template of ../shared/data/templates to every row of its dataset, with
the mappings of tests/template_mappings.py (54,970 renders), into one fresh dataset through the service (records,
revisions, flags, provenance), on SQLite and PostgreSQL; prints the figures and saves them to
bench/results/templates.txt. Target: the renders and inserts in under 10 s.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
ALPACA = DATA / "alpaca_format" / "stanford_alpaca_52k.json"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
sys.path.insert(0, str(REPO))


def all_files() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.suffix in (".json", ".jsonl"))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_import(url: str, files: list[str], dataset: str) -> dict:
    from curation.importer import import_files
    from db.engine import open_database, session_for

    engine = open_database(url)
    start = time.perf_counter()
    with session_for(engine) as session:
        report = import_files(session, dataset, files)
    seconds = time.perf_counter() - start
    return {"records": report.imported, "skipped": report.duplicates_skipped, "seconds": seconds}


def step_export(url: str, dataset: str, out: str) -> dict:
    from curation.exporter import export_dataset
    from db.engine import open_database, session_for

    engine = open_database(url)
    start = time.perf_counter()
    with session_for(engine) as session:
        count = export_dataset(session, dataset, "messages", out)
    return {"records": count, "seconds": time.perf_counter() - start}


def step_pandas(path: str, out: str) -> dict:
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_json(path)
    frame.to_json(out, orient="records", lines=True, force_ascii=False)
    return {"records": len(frame), "seconds": time.perf_counter() - start}


def run_step(*args: str) -> dict:
    """Run one step in a fresh interpreter and return its figures with its peak memory."""
    output = subprocess.run([sys.executable, __file__, "--step", *args], check=True, capture_output=True,
                            text=True, cwd=REPO).stdout
    return json.loads(output.strip().splitlines()[-1])


def fresh_postgres() -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES.rsplit("/", 1)[0] + "/" + name


def drop_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def line(label: str, figures: dict) -> str:
    rate = figures["records"] / figures["seconds"]
    return (f"{label:<48} {figures['records']:>7} records {figures['seconds']:7.2f} s {rate:>9,.0f} rec/s "
            f"peak {figures['peak_mb']:6.0f} MB")


PAGE_RESULTS = REPO / "bench" / "results" / "import_page.txt"
PAGE_PASSWORD = "bench-password"


def cli_import(url: str, dataset: str) -> float:
    """Seconds `python -m curation import` takes for the Alpaca file, start to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "curation", "--db", url, "import", str(ALPACA), "--dataset", dataset],
                   check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - start


def serve_app(url: str, port: int) -> subprocess.Popen:
    """`python app.py` on `port` with a curator named bench, once it answers."""
    import urllib.error
    import urllib.request

    from curation.services import admin
    from db.engine import open_database, session_for

    engine = open_database(url)
    with session_for(engine) as session:
        admin.add_user(session, "bench", "curator", PAGE_PASSWORD)
        session.commit()
    engine.dispose()
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the app exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return server
        except urllib.error.HTTPError:
            return server  # it answers (the sign-in wall)
        except OSError:
            time.sleep(0.5)
    server.terminate()
    sys.exit("the app did not start in time")


def page_import(client, dataset: str) -> float:
    """Seconds for the upload and the import of the Alpaca file through the Import tab, as a script drives it."""
    from gradio_client import handle_file

    start = time.perf_counter()
    report, *_ = client.predict([handle_file(str(ALPACA))], dataset, "auto", False, False, "", "", "", "", "",
                                api_name="/import_files")
    seconds = time.perf_counter() - start
    if f"Imported 52,002 records into {dataset}" not in report:
        sys.exit(f"the page import did not take the file: {report[:300]}")
    return seconds


def upload_only(base: str) -> float:
    """Seconds for the upload of the Alpaca file alone (POST /gradio_api/upload, signed in)."""
    import httpx

    with httpx.Client(base_url=base, timeout=120) as http:
        http.post("/login", data={"username": "bench", "password": PAGE_PASSWORD}).raise_for_status()
        start = time.perf_counter()
        with open(ALPACA, "rb") as handle:
            http.post("/gradio_api/upload", files={"files": (ALPACA.name, handle)}).raise_for_status()
        return time.perf_counter() - start


def page_upload(repeats: int) -> None:
    """Time the Import tab's upload path against the CLI on the Alpaca file; print and save the figures."""
    import socket
    import statistics

    from gradio_client import Client

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    lines = [f"# .venv/bin/python bench/import_export.py --page-upload --repeats {repeats}, "
             f"{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, {os.cpu_count()} CPUs, "
             f"load average {os.getloadavg()[0]:.1f} at start",
             f"# {ALPACA.name} ({ALPACA.stat().st_size / 1e6:.1f} MB, 52,002 records) into a fresh dataset "
             "each run, SQLite"]
    with tempfile.TemporaryDirectory() as tmp:
        cli_seconds = [cli_import(f"sqlite:///{tmp}/cli-{n}.db", "alpaca") for n in range(repeats)]
        server = serve_app(f"sqlite:///{tmp}/page.db", port)
        try:
            base = f"http://127.0.0.1:{port}"
            client = Client(base, auth=("bench", PAGE_PASSWORD), verbose=False)
            page = [(page_import(client, f"alpaca-{n}"), upload_only(base)) for n in range(repeats)]
        finally:
            server.terminate()
            server.wait(30)
    page_seconds = [seconds for seconds, _ in page]
    cli_best, page_best = min(cli_seconds), min(page_seconds)
    cli_median, page_median = statistics.median(cli_seconds), statistics.median(page_seconds)
    lines += [
        f"CLI  python -m curation import (interpreter start and migrations included)  best {cli_best:5.2f} s  "
        f"median {cli_median:5.2f} s  runs {', '.join(f'{s:.2f}' for s in cli_seconds)}",
        f"page upload with gradio_client + /import_files (the app already running)     best {page_best:5.2f} s  "
        f"median {page_median:5.2f} s  runs {', '.join(f'{s:.2f}' for s in page_seconds)}",
        f"     of which the upload (POST /gradio_api/upload of the same file alone)    "
        f"best {min(u for _, u in page):5.2f} s",
        f"page / CLI: best {page_best / cli_best:.2f}x, median {page_median / cli_median:.2f}x "
        f"(target: within 1.5x) -> {'met' if page_median <= 1.5 * cli_median else 'NOT met'}",
    ]
    print("\n".join(lines))
    PAGE_RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


TEMPLATE_RESULTS = REPO / "bench" / "results" / "templates.txt"


def step_templates(url: str) -> dict:
    """Every PromptSource template on every row of its dataset, rendered alone, then applied into one dataset."""
    from curation.services import template_store, templates
    from curation.services.permissions import Actor
    from curation.templates import Outcome, read_source, render_rows
    from db.engine import open_database, session_for
    from db.models import Role
    from tests.template_mappings import FITS

    engine = open_database(url)
    actor = Actor("bench", Role.admin)
    start = time.perf_counter()
    sources = {key: read_source(fit.data_path, columns=list(fit.columns) if fit.columns else None)
               for key, fit in FITS.items()}
    figures = {"rows": sum(len(s.rows) for s in sources.values()), "read_s": time.perf_counter() - start}
    with session_for(engine) as session:
        start = time.perf_counter()
        stored = {key: template_store.import_templates(session, actor, fit.templates_path).templates
                  for key, fit in FITS.items()}
        session.commit()
        figures["templates"] = len({t.stored_id for chosen in stored.values() for t in chosen})
        figures["sources"] = len(sources)
        figures["store_s"] = time.perf_counter() - start
        start = time.perf_counter()
        rendered = Outcome()
        for key, fit in FITS.items():
            for _ in render_rows(sources[key].rows, stored[key], fit.mapping, how="all", outcome=rendered):
                pass
        figures["render_s"] = time.perf_counter() - start
        start = time.perf_counter()
        figures.update(renders=0, records=0, duplicates=0, nothing=0)
        for key, fit in FITS.items():
            report = templates.apply(session, actor, sources[key], stored[key], fit.mapping, dataset="templates",
                                     how="all")
            figures["renders"] += report.outcome.renders
            figures["nothing"] += sum(report.outcome.nothing.values())
            figures["records"] += report.created
            figures["duplicates"] += report.duplicates_skipped
        session.commit()
        figures["seconds"] = time.perf_counter() - start
    engine.dispose()
    return figures


def templates_bench(skip_postgres: bool) -> None:
    if not DATA.is_dir():
        sys.exit("../shared/data is absent")
    lines = [f"# .venv/bin/python bench/import_export.py --templates, {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())},"
             f" {os.cpu_count()} CPUs, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f} at start",
             "# every PromptSource template of ../shared/data/templates on every row of its dataset (how=all), "
             "mapped as tests/template_mappings.py maps them, into one fresh dataset"]
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{tmp}/templates.db")] + ([] if skip_postgres else [("postgres", fresh_postgres())])
        try:
            for label, url in targets:
                f = run_step("templates", url)
                lines += [
                    f"{label}: read {f['rows']:,} rows of {f['sources']} sources in {f['read_s']:.2f} s; stored {f['templates']} "
                    f"templates in {f['store_s']:.2f} s; rendered alone (no database) in {f['render_s']:.2f} s",
                    f"{label}: {f['renders']:,} renders -> {f['records']:,} records inserted "
                    f"({f['nothing']:,} rendered nothing, {f['duplicates']:,} exact duplicates skipped) in "
                    f"{f['seconds']:.2f} s = {f['renders'] / f['seconds']:,.0f} renders/s, peak {f['peak_mb']:.0f} MB "
                    f"-> target < 10 s {'met' if f['seconds'] < 10 else 'NOT met'}",
                ]
        finally:
            if not skip_postgres:
                drop_postgres(targets[1][1])
    print("\n".join(lines))
    TEMPLATE_RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--step", nargs="+")
    parser.add_argument("--templates", action="store_true", help="every template of ../shared/data/templates applied")
    parser.add_argument("--page-upload", action="store_true", help="the Import tab's upload path against the CLI")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each for --page-upload (best and median reported)")
    args = parser.parse_args()
    if args.templates and not args.step:
        templates_bench(args.skip_postgres)
        return
    if args.page_upload:
        page_upload(args.repeats)
        return
    if args.step:
        name, *rest = args.step
        figures = {"import": step_import, "export": step_export, "pandas": step_pandas,
                   "templates": step_templates}[name](
            *([rest[0], rest[1:-1], rest[-1]] if name == "import" else rest))
        figures["peak_mb"] = peak_mb()
        print(json.dumps(figures))
        return

    if not DATA.is_dir():
        sys.exit("../shared/data is absent")
    files = [str(p) for p in all_files()]
    print(f"{len(files)} files, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{tmp}/bench.db")]
        if not args.skip_postgres:
            targets.append(("postgres", fresh_postgres()))
        try:
            for label, url in targets:
                alpaca_url = url if label == "postgres" else f"sqlite:///{tmp}/alpaca.db"
                print(line(f"{label}: import Alpaca 52k alone", run_step("import", alpaca_url, str(ALPACA), "alpaca")))
                print(line(f"{label}: import all of ../shared/data", run_step("import", url, *files, "all")))
                print(line(f"{label}: export all to messages JSONL", run_step("export", url, "all", f"{tmp}/all.jsonl")))
                print(line(f"{label}: export Alpaca 52k to messages JSONL",
                           run_step("export", alpaca_url, "alpaca", f"{tmp}/alpaca.jsonl")))
        finally:
            if not args.skip_postgres:
                drop_postgres(targets[1][1])
        print(line("baseline: pandas read_json + to_json, Alpaca 52k", run_step("pandas", str(ALPACA), f"{tmp}/p.jsonl")))


if __name__ == "__main__":
    main()
