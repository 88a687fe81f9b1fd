"""Import every file in ../shared/data into a fresh SQLite and a fresh PostgreSQL database, then export
all of it to messages JSONL. Prints records per second for each step and the peak memory of each step
(each runs in its own process, so the peak is that step's own). Baseline: pandas.read_json + to_json of
the Alpaca 52k file.

    .venv/bin/python bench/import_export.py [--skip-postgres]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--step", nargs="+")
    args = parser.parse_args()
    if args.step:
        name, *rest = args.step
        figures = {"import": step_import, "export": step_export, "pandas": step_pandas}[name](
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
