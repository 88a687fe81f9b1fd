"""Generation jobs through the service: records written whole with their provenance, cancel and resume from the
cache paying for nothing twice, a crash found by its heartbeat, the report, the CLI, and refusals."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from curation.config import Settings
from curation.dedup import lexical_pairs
from curation.services import generation
from curation.services.annotation import InvalidInput, RecordForm, save_record
from curation.services.generation import JobSpec
from curation.services.permissions import Actor, PermissionDenied
from db import repo
from db.engine import open_database, session_for
from db.generation_tables import GenerationJob
from db.llm_tables import LLMReply
from db.models import Record, Role
from tests.conftest import REPO
from tests.openai_server import OpenAIServer
from tests.test_generation_pipelines import SEEDS, self_instruct_model

CURA, ANN = Actor("cura", Role.curator), Actor("ann", Role.annotator)
MODEL = "loopback-model"


@pytest.fixture
def server():
    with OpenAIServer(replies=lambda body: running.model(body)) as running:
        running.model = self_instruct_model
        yield running


@pytest.fixture
def studio(db_url, server):
    """An engine with a dataset `grown` and the settings naming the loopback model."""
    engine = open_database(db_url)
    with session_for(engine) as session:
        repo.get_or_create_dataset(session, "grown")
        session.commit()
    yield engine, Settings(database_url=db_url, llm_models=f"Loopback=openai:{MODEL}@{server.url}",
                           llm_concurrency=4)
    engine.dispose()


def spec(**changes) -> JobSpec:
    values = dict(pipeline="self_instruct", dataset="grown", model="Loopback", target=12, seed=3,
                  seeds=[asdict(s) for s in SEEDS])
    values.update(changes)
    return JobSpec(**values)


def generated(engine, job_id: int) -> list[Record]:
    with session_for(engine) as session:
        return list(session.exec(select(Record).where(Record.generation_job_id == job_id).order_by(Record.id)))


def job_row(engine, job_id: int) -> GenerationJob:
    with session_for(engine) as session:
        return generation.get_job(session, job_id)


def test_a_job_writes_each_kept_record_with_its_provenance_into_the_review_queue(studio, server):
    engine, settings = studio
    with session_for(engine) as session:
        job = generation.create_job(session, CURA, spec(), settings)
    report = generation.run_job(engine, settings, job.id)

    records = generated(engine, job.id)
    job = job_row(engine, job.id)
    assert (job.status.value, job.kept, report.kept, report.written, len(records)) == ("completed", 12, 12, 12, 12)
    first = records[0]
    assert (first.status.value, first.origin, first.machine_draft, first.created_by) == (
        "submitted", "generated", "unreviewed", "cura")
    assert first.provenance["job"] == job.id and first.provenance["pipeline"] == "self_instruct"
    assert first.provenance["seeds"] and set(first.provenance["seeds"]) <= {s.id for s in SEEDS}
    assert first.provenance["instruction"]["model"] == MODEL and first.provenance["outputs"][0]["cache_key"]
    texts = [s.instruction for s in SEEDS] + [r.instruction for r in records]
    assert lexical_pairs(texts, 0.7 + 1e-9) == []  # nothing kept is close to a seed or to another kept one
    lines = generation.report_lines(job)
    assert lines[0].startswith(f"job {job.id} · Self-Instruct · completed · kept 12 of 12")
    assert any(line.startswith("  dropped ") and "asks for what a text model cannot do" in line for line in lines)


def test_a_cancelled_job_resumes_from_the_cache_and_pays_for_nothing_twice(studio, server):
    engine, settings = studio
    with session_for(engine) as session:
        job = generation.create_job(session, CURA, spec(target=20, batch_size=1), settings)
    stop = threading.Event()

    def cancel_after_some(kept: int, target: int) -> None:
        if kept >= 5:
            stop.set()

    first = generation.run_job(engine, settings, job.id, progress=cancel_after_some, stop=stop)
    assert job_row(engine, job.id).status.value == "cancelled" and 5 <= first.kept < 20
    sent_before = len(server.requests)
    kept_before = len(generated(engine, job.id))

    with session_for(engine) as session:
        generation.prepare_resume(session, CURA, job.id)
    again = generation.run_job(engine, settings, job.id)

    records = generated(engine, job.id)
    assert job_row(engine, job.id).status.value == "completed"
    assert (again.kept, again.written, len(records)) == (20, 20 - kept_before, 20)
    assert len({r.instruction for r in records}) == 20  # none written twice
    assert again.cached >= first.requested  # everything asked before came back from the cache
    bodies = [str(body["messages"]) + str(body.get("seed")) for body in server.requests]
    assert len(bodies) == len(set(bodies))  # no request was ever sent twice
    assert len(server.requests) - sent_before == again.requested


def test_a_job_whose_process_died_is_found_interrupted_and_resumes(studio, server, db_url):
    engine, settings = studio
    with session_for(engine) as session:
        job = generation.create_job(session, CURA, spec(target=40, batch_size=1), settings)
    server.latency = 0.05
    env = {**os.environ, "LLM_MODELS": f"Loopback=openai:{MODEL}@{server.url}", "LLM_CONCURRENCY": "2"}
    process = subprocess.Popen([sys.executable, "-m", "curation", "--db", db_url, "generate", "run", str(job.id)],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and len(generated(engine, job.id)) < 3:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    row = job_row(engine, job.id)
    assert generation.job_state(row) == "running"  # its heartbeat is recent: it may still be alive
    later = datetime.now(timezone.utc) + generation.HEARTBEAT_STALE + timedelta(seconds=1)
    assert generation.job_state(row, now=later) == "interrupted"

    with session_for(engine) as session:
        with pytest.raises(InvalidInput, match="is running: only a cancelled, failed or interrupted job resumes"):
            generation.prepare_resume(session, CURA, job.id)
        generation.prepare_resume(session, CURA, job.id, now=later)
    server.latency = 0.0
    generation.run_job(engine, settings, job.id)
    records = generated(engine, job.id)
    assert len(records) == 40 and len({r.instruction for r in records}) == 40
    assert all(r.provenance and r.provenance["job"] == job.id for r in records)  # each written whole


def test_preview_shows_five_and_writes_nothing_but_the_cache(studio, server):
    engine, settings = studio
    with session_for(engine) as session:
        before = repo.table_counts(session)
        kept, report = generation.preview(session, CURA, settings, spec())
        after = repo.table_counts(session)
        cached = len(session.exec(select(LLMReply)).all())
    assert len(kept) == 5 and all(c.instruction and c.output for c in kept) and report.kept == 5
    assert after == before and cached == report.requested > 0


@pytest.mark.parametrize("changes, message", [
    (dict(pipeline="nonsense"), "choose a pipeline: self_instruct, evol_instruct, expand_task"),
    (dict(seeds=[]), "Self-Instruct needs seed tasks: upload a seed file or pick a seed dataset"),
    (dict(dataset="nowhere"), "there is no dataset named 'nowhere'"),
    (dict(model="Nowhere"), "no configured model is called 'Nowhere'"),
    (dict(target=0), "ask for between 1 and 100,000 records"),
    (dict(pipeline="evol_instruct", record_ids=[999]), "no record #999"),
    (dict(pipeline="expand_task", task_id=999), "dataset grown has no task #999"),
])
def test_a_bad_spec_is_refused_in_words_and_creates_no_job(studio, changes, message):
    engine, settings = studio
    with session_for(engine) as session:
        with pytest.raises(InvalidInput) as refused:
            generation.create_job(session, CURA, spec(**changes), settings)
        assert str(refused.value) == message
        assert session.exec(select(GenerationJob)).all() == []


def test_annotators_do_not_run_generation_jobs(studio):
    engine, settings = studio
    with session_for(engine) as session:
        with pytest.raises(PermissionDenied, match="only a curator or an admin runs generation jobs"):
            generation.create_job(session, ANN, spec(), settings)


def test_an_evol_job_links_each_record_to_its_parent_and_operation(studio, server):
    from tests.test_generation_pipelines import evol_model

    engine, settings = studio
    with session_for(engine) as session:
        parent = save_record(session, CURA, RecordForm("grown", "Give three tips for staying healthy.",
                                                       outputs=["Eat well, sleep, move."]))
        session.commit()
        job = generation.create_job(session, CURA, spec(pipeline="evol_instruct", seeds=[], record_ids=[parent.id],
                                                        operations=["deepen"], target=1), settings)
    server.model = evol_model({"Give three tips for staying healthy.":
                               "Give three evidence-based tips for staying healthy after turning sixty."})
    generation.run_job(engine, settings, job.id)
    [child] = generated(engine, job.id)
    assert child.instruction == "Give three evidence-based tips for staying healthy after turning sixty."
    assert (child.provenance["parent"], child.provenance["operation"]) == (parent.id, "deepen")


def test_the_cli_runs_a_job_and_prints_its_report(studio, server, db_url, tmp_path):
    import json

    engine, settings = studio
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("\n".join(json.dumps(asdict(s)) for s in SEEDS) + "\n")
    with session_for(engine) as session:
        from curation.services import admin

        admin.add_user(session, "cura", "curator", "cura-password")
        session.commit()
    env = {**os.environ, "LLM_MODELS": f"Loopback=openai:{MODEL}@{server.url}"}
    done = subprocess.run([sys.executable, "-m", "curation", "--db", db_url, "generate", "self-instruct",
                           "--dataset", "grown", "--user", "cura", "--seeds", str(seeds), "--target", "6",
                           "--follow"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "job 1: Self-Instruct into grown, target 6"
    assert lines[1].startswith("job 1 · Self-Instruct · completed · kept 6 of 6")
    assert len(generated(engine, 1)) == 6

    bad = subprocess.run([sys.executable, "-m", "curation", "--db", db_url, "generate", "self-instruct",
                          "--dataset", "grown", "--user", "cura", "--seeds", str(tmp_path / "none.jsonl")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith(f"error: {tmp_path / 'none.jsonl'}: ")


def test_an_expanded_sni_task_passes_validate_and_round_trips_through_export(studio, server, tmp_path):
    import json

    from curation.exporter import export_dataset
    from curation.formats.sni import parse_task, task_to_json
    from curation.quality.sni import validate_task
    from tests.test_generation_pipelines import TASK, sni_model

    from dataclasses import replace

    from curation.records import RecordDraft

    # The pipeline tests' task, made a finished SNI task: every key an SNI file has, names from the official
    # hierarchy, and more than 25 instances in their places, balanced between the two labels.
    lists = {"contributors": ["Instruct Studio tests"], "source": ["movie reviews written for this test"],
             "url": ["https://example.org/reviews"], "categories": ["Sentiment Analysis"],
             "reasoning": ["Commonsense Reasoning"], "input_language": ["English"], "output_language": ["English"],
             "instruction_language": ["English"], "domains": ["Movies"], "instance_license": ["Apache 2.0"]}
    more = [RecordDraft("", f"Review number {n}: {'a warm, funny film' if n % 2 else 'a cold, dull film'}.",
                        ["positive" if n % 2 else "negative"]) for n in range(20)]
    full = replace(TASK, lists=lists,
                   instances=[replace(i, source_line=n, external_id=f"{TASK.name}-{n}")
                              for n, i in enumerate([*TASK.instances, *more])])
    engine, settings = studio
    with session_for(engine) as session:
        dataset = repo.get_dataset(session, "grown")
        task = repo.insert_task(session, dataset.id, full, by="cura", reason="created")
        session.commit()
        task_id, version = task.id, task.version
        job = generation.create_job(session, CURA, spec(pipeline="expand_task", seeds=[], task_id=task_id, target=3),
                                    settings)
    server.model = sni_model
    generation.run_job(engine, settings, job.id)

    with session_for(engine) as session:
        stored = session.get(repo.Task, task_id)
        expanded = repo.task_draft(session, stored)
        assert stored.version == version + 3  # one task revision per instance the job added
    added = [(r.input, r.outputs) for r in generated(engine, job.id)]
    assert len(added) == 3 and all(r.task_id == task_id for r in generated(engine, job.id))
    assert [(i.input, i.outputs) for i in expanded.instances][-3:] == added
    document = task_to_json(expanded)
    assert validate_task(document) == [], document
    out = tmp_path / "sni"
    with session_for(engine) as session:
        export_dataset(session, "grown", "sni", out)
    [written] = list(out.glob("*.json"))
    again = parse_task(json.loads(written.read_text()), name=written.stem, source_file=written.name)
    assert [(i.input, i.outputs) for i in again.instances] == [(i.input, i.outputs) for i in expanded.instances]


def test_a_backend_failing_mid_run_fails_the_job_in_words_and_it_resumes_once_the_server_is_back(studio, server):
    from tests.openai_server import Failure

    engine, settings = studio
    with session_for(engine) as session:
        job = generation.create_job(session, CURA, spec(target=15, batch_size=1), settings)
    answered = {"n": 0}

    def failing_after_some(body):
        answered["n"] += 1
        return self_instruct_model(body) if answered["n"] <= 6 else Failure(503, "model is loading")

    server.model = failing_after_some
    generation.run_job(engine, settings, job.id)  # the runner retries 5xx, then gives up with the message
    row = job_row(engine, job.id)
    kept_then = len(generated(engine, job.id))
    assert row.status.value == "failed" and "server error (503): model is loading" in row.message
    assert all(r.provenance and r.outputs for r in generated(engine, job.id))  # each record whole, or absent

    server.model = self_instruct_model
    with session_for(engine) as session:
        generation.prepare_resume(session, CURA, job.id)
    again = generation.run_job(engine, settings, job.id)
    assert job_row(engine, job.id).status.value == "completed" and len(generated(engine, job.id)) == 15
    assert again.written == 15 - kept_then
