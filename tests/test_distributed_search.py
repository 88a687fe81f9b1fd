"""The near-duplicate search on a real engine: datatrove's local executor, 2 tasks, real Alpaca records.

Given the first 2,000 Alpaca records and 50 lightly perturbed copies (so that there are pairs at 0.90: the
Alpaca head alone has few), a search started through the service runs the cascade's four stages under the engine
and reads back exactly the pairs, scores and groups of the in-process cascade (run_dedup(mode="cascade")).
One finished job is shared by the module's tests; each job is bounded and stopped by the test if it overruns.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlmodel import select

from tests.conftest import SHARED_DATA, requires_shared_data

pytestmark = [requires_shared_data, pytest.mark.slow]
ALPACA = SHARED_DATA / "alpaca_format" / "stanford_alpaca_52k.json"
JOB_SECONDS = 240  # a bound, not an expectation: the job takes well under a minute once the static model exists


@pytest.fixture(scope="session", autouse=True)
def static_models_dir():
    os.environ.setdefault("STATIC_MODELS_DIR", "/tmp/instruct-studio-static-models")


def alpaca_rows(count: int, copies: int) -> list[tuple[str, str, str]]:
    """The first `count` Alpaca records, then `copies` of every 40th with "please" added: near-duplicates."""
    rows = [(r["instruction"], r["input"], r["output"]) for r in json.loads(ALPACA.read_text())[:count]]
    return rows + [(f"{i.rstrip('.?!')}, please.", n, o) for i, n, o in rows[::40][:copies]]


def add_dataset(session, name: str, rows) -> None:
    from curation.records import RecordDraft
    from db import repo

    dataset = repo.get_or_create_dataset(session, name)
    repo.insert_records(session, dataset.id, [RecordDraft(i, n, [o]) for i, n, o in rows], by="ann", reason="test")
    session.commit()


def actor(role: str):
    from curation.services.permissions import Actor
    from db.models import Role

    return Actor(role, Role(role))


def follow(session, search_id: int, until=("completed", "failed", "cancelled")):
    """The search's final status, refreshed every half second; a job past JOB_SECONDS is stopped and fails the test."""
    from curation.services.distributed_search import cancel_distributed_search, search_status

    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        state = search_status(session, search_id)
        if state.status in until:
            return state
        time.sleep(0.5)
    cancel_distributed_search(session, None, search_id)
    pytest.fail(f"search {search_id} did not finish in {JOB_SECONDS}s: {state.sentence}")


def run_pairs(session, run_id: int) -> dict[tuple[int, int], float]:
    from db.dedup_tables import DuplicatePair

    return {(p.record_a, p.record_b): p.score
            for p in session.exec(select(DuplicatePair).where(DuplicatePair.run_id == run_id))}


def group_view(groups) -> list[tuple[list[int], int, float]]:
    return [(sorted(r["id"] for r in g.records), g.keep_id, round(g.score, 5)) for g in groups]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from db.engine import open_database, session_for

    folder = tmp_path_factory.mktemp("distributed")
    url = f"sqlite:///{folder / 'studio.db'}"
    engine = open_database(url)
    session = session_for(engine)
    yield SimpleNamespace(session=session, url=url, jobs=folder / "jobs")
    session.close()
    engine.dispose()


@pytest.fixture(scope="module")
def searched(studio):
    """The engine's search of the 2,050 records, then the in-process cascade's of the same records."""
    from curation.embeddings import Embedder
    from curation.services.dedup import duplicate_groups, run_dedup
    from curation.services.distributed_search import start_distributed_search

    session = studio.session
    add_dataset(session, "alpaca", alpaca_rows(2000, 50))
    # fp32 on both sides: bf16 vectors shift with the batch a text lands in (up to 6e-4 here), fp32 ones do not
    search = start_distributed_search(session, actor("curator"), dataset="alpaca", threshold=0.90, tasks=2,
                                      workers=2, work_root=studio.jobs, precision="fp32")
    started = time.monotonic()
    state = follow(session, search.id)
    seconds = time.monotonic() - started
    assert state.status == "completed", (state.sentence, (Path(search.work_dir) / "log.txt").read_text()[-3000:])
    engine_groups = group_view(duplicate_groups(session, dataset="alpaca", threshold=0.90))
    engine_pairs = run_pairs(session, state.run_id)
    report = run_dedup(session, dataset="alpaca", threshold=0.90, mode="cascade",
                       embedder=Embedder(device="cpu", precision="fp32"), by="curator")
    return SimpleNamespace(search=search, state=state, seconds=seconds, engine_groups=engine_groups,
                           engine_pairs=engine_pairs, report=report, in_process_pairs=run_pairs(session, report.run_id),
                           in_process_groups=group_view(report.groups))


def test_the_engine_finds_exactly_the_pairs_of_the_in_process_cascade(searched):
    engine, in_process = searched.engine_pairs, searched.in_process_pairs
    assert len(in_process) >= 40  # the perturbed copies pair with their originals
    assert set(engine) == set(in_process)
    assert max(abs(engine[p] - in_process[p]) for p in engine) < 1e-5
    assert all(a < b and s >= 0.90 for (a, b), s in engine.items())


def test_the_job_ran_two_tasks_per_shard_stage_on_the_engine(searched):
    work = Path(searched.search.work_dir)
    assert sorted(p.name for p in (work / "texts").iterdir()) == ["00000.parquet", "00001.parquet"]
    for stage, tasks in (("static", 2), ("candidates", 1), ("sentence", 2), ("pairs", 1)):
        assert len(list((work / "logs" / stage / "completions").iterdir())) == tasks, stage


def test_the_pairs_come_back_as_a_distributed_dedup_run(studio, searched):
    from db.dedup_tables import DedupRun

    run = studio.session.get(DedupRun, searched.state.run_id)
    assert (run.mode, run.method, run.fields, run.threshold, run.floor, run.record_count, run.pair_count) == (
        "distributed", "semantic", "instruction+input", 0.90, 0.90, 2050, len(searched.engine_pairs))
    assert (run.model, run.precision, run.created_by) == ("sentence-transformers/all-MiniLM-L6-v2", "fp32", "curator")
    pairs = len(searched.engine_pairs)
    assert searched.state.sentence == (f"Search {searched.search.id} completed: 2,050 records, {pairs:,} pairs at "
                                       "≥ 0.90. Its groups are in the duplicate groups view.")


def test_the_curator_reviews_the_same_groups_as_after_an_in_process_search(searched):
    assert searched.engine_groups and searched.engine_groups == searched.in_process_groups


def test_an_annotator_may_not_start_a_search(studio, searched):
    from curation.services.distributed_search import distributed_searches, start_distributed_search
    from curation.services.permissions import PermissionDenied

    with pytest.raises(PermissionDenied, match="only a curator or admin searches a dataset on a cluster"):
        start_distributed_search(studio.session, actor("annotator"), dataset="alpaca", work_root=studio.jobs)
    assert [s.id for s in distributed_searches(studio.session, dataset="alpaca")] == [searched.search.id]


def test_a_corrupt_shard_fails_with_its_reason_and_stores_no_run(studio, searched):
    from curation.services.distributed_search import start_distributed_search
    from db.dedup_tables import DedupRun

    session = studio.session
    add_dataset(session, "broken", alpaca_rows(30, 2))
    search = start_distributed_search(session, actor("curator"), dataset="broken", work_root=studio.jobs)
    # The job needs seconds to import the engine before it reads a shard; the shard is spoilt long before that.
    (Path(search.work_dir) / "texts" / "00001.parquet").write_bytes(b"not parquet")
    state = follow(session, search.id)
    assert state.status == "failed"
    assert state.sentence.startswith(f"Search {search.id} failed: StageError: cannot read the text shard "
                                     "00001.parquet: ")
    assert "Traceback" not in state.sentence
    assert session.exec(select(DedupRun).where(DedupRun.dataset_id == search.dataset_id)).all() == []


def test_pairs_that_cannot_be_read_back_leave_the_dedup_tables_as_they_were(studio, searched):
    from curation.services.distributed_search import search_status
    from db.dedup_tables import DedupRun, DuplicatePair
    from db.distributed_tables import DistributedSearch
    from db.jobs_tables import JobStatus

    session = studio.session
    work = Path(searched.search.work_dir)
    copy = work.with_name(work.name + "-copy")
    shutil.copytree(work, copy)
    (copy / "pairs" / "00000.parquet").write_bytes(b"half a file")
    row = DistributedSearch(**{**searched.search.model_dump(exclude={"id", "run_id", "finished_at"}),
                               "work_dir": str(copy), "status": JobStatus.running})
    session.add(row)
    session.commit()
    counts = (len(session.exec(select(DedupRun)).all()), len(session.exec(select(DuplicatePair)).all()))
    state = search_status(session, row.id)
    assert state.status == "failed" and state.run_id is None
    assert state.sentence.startswith(f"Search {row.id} failed: the pairs could not be read back: ")
    assert (len(session.exec(select(DedupRun)).all()), len(session.exec(select(DuplicatePair)).all())) == counts


def test_a_cancelled_search_stops_its_job_and_stores_no_run(studio, searched):
    from curation.services.distributed_search import cancel_distributed_search, search_status
    from curation.training.launchers import LocalLauncher

    session = studio.session
    from curation.services.distributed_search import start_distributed_search

    add_dataset(session, "stopped", alpaca_rows(40, 0))
    search = start_distributed_search(session, actor("curator"), dataset="stopped", work_root=studio.jobs)
    cancel_distributed_search(session, actor("curator"), search.id)
    state = search_status(session, search.id)
    assert (state.status, state.run_id, state.sentence) == (
        "cancelled", None, f"Search {search.id} cancelled: cancelled by the user")
    assert not LocalLauncher(studio.jobs)._alive(Path(search.work_dir))


def test_the_command_line_starts_a_search_waits_and_prints_its_groups(studio, searched, capsys):
    from curation.cli import main

    add_dataset(studio.session, "small", alpaca_rows(120, 3))
    code = main(["--db", studio.url, "dedup-cluster", "start", "--dataset", "small", "--threshold", "0.9",
                 "--tasks", "2", "--wait", "--jobs-dir", str(studio.jobs), "--user", "cli"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("Search ") and " completed: 123 records, " in lines[0]
    assert "near-duplicates (distributed, instruction+input, score >= 0.9): 3 groups, 6 records" in out
    assert ", please." in out
    assert main(["--db", studio.url, "dedup-cluster", "list", "--dataset", "small"]) == 0
    listed = capsys.readouterr().out
    assert " completed  local      2 tasks       123 records " in listed
    assert main(["--db", studio.url, "dedup-cluster", "status", listed.split()[0]]) == 0
    assert capsys.readouterr().out == lines[0] + "\n"


def test_a_request_the_engine_cannot_run_is_refused_before_anything_starts(studio, searched):
    from curation.services.distributed_search import DistributedSearchError, start_distributed_search

    with pytest.raises(DistributedSearchError, match="^unknown executor 'spark': choose one of local, slurm, hf-jobs$"):
        start_distributed_search(studio.session, actor("curator"), dataset="alpaca", executor="spark",
                                 work_root=studio.jobs)
    with pytest.raises(DistributedSearchError, match="^a Slurm search needs a partition$"):
        start_distributed_search(studio.session, actor("curator"), dataset="alpaca", executor="slurm",
                                 work_root=studio.jobs)
    with pytest.raises(DistributedSearchError, match="^a search on Hugging Face Jobs needs its shards on the Hub"):
        start_distributed_search(studio.session, actor("curator"), dataset="alpaca", executor="hf-jobs",
                                 work_root=studio.jobs)
