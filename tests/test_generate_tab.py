"""The Generate tab through gradio_client, against a scripted model: preview, launch, cancel, resume, the report,
the records in Review, who may do it, and the near-duplicate view narrowed to what one job added."""
from __future__ import annotations

import json
import random
import re
import time

import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.openai_server import OpenAIServer, Reply  # noqa: E402
from tests.ui_server import PASSWORDS, running_studio, seed, SLOW_LOAD  # noqa: E402

SYLLABLES = "ka lo mi re su ta ve no pi da zo fu be ri go la se mo tu ne".split()
SEEDS = [
    {"id": "seed_task_0", "name": "breakfast", "instruction": "Suggest a breakfast with protein and no eggs.",
     "instances": [{"input": "", "output": "Oatmeal with whey and bacon."}], "is_classification": False},
    {"id": "seed_task_1", "name": "sentiment", "instruction": "Is the sentiment of this review positive or negative?",
     "instances": [{"input": "I loved it.", "output": "positive"}], "is_classification": True},
    {"id": "seed_task_2", "name": "haiku", "instruction": "Write a haiku about the autumn rain falling on a roof.",
     "instances": [{"input": "", "output": "Cold rain on the roof"}], "is_classification": False},
]
# What each instruction reply holds besides its one new task: (rule, item) a person can read in the report.
DROPPED = ("too_short", "blacklist", "punctuation_start", "rouge_l")


def invented_words(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(SYLLABLES) for _ in range(3)) for _ in range(n)]


def scripted_reply(body: dict) -> Reply:
    """A deterministic model. Self-Instruct: per instruction request one new task and one drop per rule of DROPPED,
    "No" to every classification question, an Input/Output instance for each task. Evol-Instruct: each prompt
    evolves by one added sentence, never equal to its parent, answered with a short poem."""
    from curation.generation import prompts

    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    if user.startswith("I want you act as a Prompt"):
        given = user.split("Prompt#:\n", 1)[1].split("\n#", 1)[0]
        return Reply(f"{given} Answer in exactly {invented_words(random.Random(body.get('seed')), 1)[0]} words.")
    if user.startswith("Here are two Instructions"):
        return Reply("Not Equal")
    if system == prompts.SELF_INSTRUCT_SYSTEM:
        shown = [m.group(1) for m in re.finditer(r"^\d+\. (.*)$", user, re.MULTILINE)]
        w = invented_words(random.Random(body.get("seed")), 5)
        items = [f"Describe the {w[0]} {w[1]} of {w[2]} {w[3]} {w[4]} in detail.",
                 f"Explain {w[0]}.",  # too_short
                 f"Draw a picture of {w[1]} beside the {w[2]} tower.",  # blacklist
                 f"({w[3]}) list three facts about {w[4]} please.",  # punctuation_start
                 shown[0]]  # rouge_l: a task the prompt showed
        return Reply("\n".join(f"{len(shown) + n}. {item}" for n, item in enumerate(items, start=1)))
    if system == prompts.CLASSIFY_SYSTEM:
        return Reply("No")
    if system == prompts.INSTANCE_SYSTEM:
        task = user.splitlines()[0].removeprefix("Task: ")
        return Reply(f"Input: {prompts.NO_INPUT}\nOutput: Here is what was asked: {task.lower()}")
    return Reply("Grey clouds gather low, rain taps on the window.")  # an evolved instruction's answer


def loopback_models(url: str) -> str:
    return f"Loopback=openai:loopback-model@{url}"


@pytest.fixture(scope="module")
def model_server():
    with OpenAIServer(replies=scripted_reply) as server:
        yield server


@pytest.fixture(scope="module")
def studio(tmp_path_factory, model_server):
    folder = tmp_path_factory.mktemp("generate")
    url = f"sqlite:///{folder / 'studio.db'}"
    seed(url)
    seeds = folder / "seed_tasks.jsonl"
    seeds.write_text("".join(json.dumps(s) + "\n" for s in SEEDS), encoding="utf-8")
    with running_studio(url, llm_models=loopback_models(model_server.url)) as running:
        running.seeds = seeds
        yield running


@pytest.fixture(scope="module")
def clients(studio):
    return {name: Client(studio.url, auth=(name, PASSWORDS[name]), verbose=False, httpx_kwargs=SLOW_LOAD) for name in ("ann", "cura", "root")}


def form(seed_file=None, *, pipeline="self_instruct", dataset="demo", seed_dataset=None, target=12, budget=None,
         seed=0):
    """The tab's inputs in order: pipeline, dataset, seed file, seed dataset, record ids, approved, operations,
    task, model, temperature, max tokens, target, budget, seed."""
    return [pipeline, dataset, handle_file(str(seed_file)) if seed_file else None, seed_dataset, "", False,
            ["deepen"], None, "Loopback", 1.0, 256, target, budget, seed]


def database(studio):
    """(generation jobs, records of demo as (id, status, origin, job)) as stored now."""
    from sqlalchemy import select

    from db.engine import open_database, session_for
    from db.generation_tables import GenerationJob
    from db.models import Record

    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        jobs = list(session.execute(select(GenerationJob.id, GenerationJob.status)).all())
        records = [tuple(r) for r in session.execute(select(Record.id, Record.status, Record.origin,
                                                            Record.generation_job_id).order_by(Record.id))]
    engine.dispose()
    return jobs, records


def wait_for(client, job_id, states, *, kept_at_least=0, timeout=60.0):
    """The answer of /generate_refresh once the job is in one of `states` (and kept that many)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.predict(job_id, api_name="/generate_refresh")
        line = answer[1]
        state = re.search(r"\*\*(queued|running|interrupted|completed|failed|cancelled)\*\*", line).group(1)
        kept = int(re.search(r"kept (\d+) of", line).group(1))
        if state in states and kept >= kept_at_least:
            return answer
        assert time.monotonic() < deadline, f"job {job_id} still {line}"
        time.sleep(0.05)


def test_a_preview_shows_five_records_and_writes_nothing(clients, studio):
    before = database(studio)
    shown = clients["cura"].predict(*form(studio.seeds), api_name="/generate_preview")
    assert shown.count('class="gen-candidate"') == 5
    assert "<b>5</b> records previewed; nothing was written." in shown
    assert "Here is what was asked: describe the" in shown and "from seeds seed_task_" in shown
    assert "fewer than 4 words" in shown and "starts with punctuation" in shown
    assert database(studio) == before  # no job, no record (only the replies are cached, for the run)


def test_a_launched_job_completes_and_its_records_wait_in_review(clients, studio):
    cura = clients["cura"]
    job_id, line, bar, report, jobs, _ = cura.predict(*form(studio.seeds, target=12), api_name="/generate_launch")
    assert f"**Job {job_id}** · Self-Instruct into demo" in line
    job_id, line, bar, report, jobs, _ = wait_for(cura, job_id, {"completed"})
    assert "kept 12 of 12" in line and 'aria-valuenow="12"' in bar and 'aria-valuemax="12"' in bar
    assert "<b>12</b> asked for · <b>12</b> kept (12 written by this run)" in report
    for rule in DROPPED:
        assert f'data-rule="{rule}"' in report
    assert "“Explain " in report and "an instruction needs at least 4" in report  # an example and its reason
    assert re.search(r"tokens: [\d,]+ prompt \+ [\d,]+ completion", report)
    assert jobs["data"][0][:5] == [job_id, "Self-Instruct", "demo", "completed", "12 / 12"]
    _, records = database(studio)
    written = [r for r in records if r[3] == job_id]
    assert len(written) == 12 and {(r[1], r[2]) for r in written} == {("submitted", "generated")}
    queue, count, *_ = cura.predict("demo", api_name="/review_queue")
    assert {row[1] for row in queue["data"]} >= {r[0] for r in written} and count == "**12** waiting"


def test_cancel_stops_the_job_and_resume_asks_only_for_the_rest(clients, studio, model_server):
    cura = clients["cura"]
    model_server.latency = 0.3  # a round takes about a second: time to cancel between rounds
    try:
        job_id, *_ = cura.predict(*form(studio.seeds, target=30, seed=1), api_name="/generate_launch")
        wait_for(cura, job_id, {"running"}, kept_at_least=1)
        _, line, *_ = cura.predict(job_id, api_name="/generate_cancel")
        _, line, bar, report, *_ = wait_for(cura, job_id, {"cancelled"})
        kept = int(re.search(r"kept (\d+) of 30", line).group(1))
        assert 0 < kept < 30 and "cancelled (resume asks only for the rest)" in line
        assert f"<b>{kept}</b> kept" in report
        with pytest.raises(AppError, match=f"Job {job_id} has already ended"):
            cura.predict(job_id, api_name="/generate_cancel")
        asked_before = len(model_server.requests)
        cura.predict(job_id, api_name="/generate_resume")
        _, line, bar, report, *_ = wait_for(cura, job_id, {"completed"})
    finally:
        model_server.latency = 0.0
    assert "kept 30 of 30" in line and 'aria-valuenow="30"' in bar
    written = int(re.search(r"\((\d+) written by this run\)", report).group(1))
    assert written == 30 - kept  # the records kept before the cancel came back from the cache, not twice
    assert int(re.search(r"([\d,]+) answered from the cache", report).group(1).replace(",", "")) > 0
    _, records = database(studio)
    assert len([r for r in records if r[3] == job_id]) == 30
    assert len(model_server.requests) > asked_before
    with pytest.raises(AppError, match=f"Job {job_id} is completed: only a cancelled, failed or interrupted job"):
        cura.predict(job_id, api_name="/generate_resume")


def test_an_annotator_can_neither_preview_nor_launch_nor_follow(clients, studio):
    before = database(studio)
    ann = clients["ann"]
    with pytest.raises(Exception, match="403 Forbidden"):  # the seed file is refused before a listener runs
        ann.predict(*form(studio.seeds), api_name="/generate_launch")
    for api, args in (("/generate_preview", form(None)), ("/generate_launch", form(None)),
                      ("/generate_cancel", [1]), ("/generate_resume", [1]), ("/generate_refresh", [1])):
        with pytest.raises(AppError, match="Not allowed: this needs the curator role."):
            ann.predict(*args, api_name=api)
    assert database(studio) == before


@pytest.mark.parametrize("api", ["/generate_preview", "/generate_launch"])
def test_bad_input_is_named_and_nothing_is_written(clients, studio, api):
    before = database(studio)
    cura = clients["root"]
    cases = [
        (form(None), "Self-Instruct needs seed tasks: upload a seed file or pick a seed dataset."),
        (form(studio.seeds, dataset="nope"), "There is no dataset named 'nope'."),
        (form(None, seed_dataset="nope"), "There is no dataset named 'nope'."),
        (form(studio.seeds, target=0), "Ask for between 1 and 100,000 records."),
        (form(studio.seeds, budget=-1), "The budget is a number of requests, or 0 for no limit."),
        (form(None, pipeline="evol_instruct"), "Evol-Instruct needs records to evolve: give their ids."),
        ([*form(None, pipeline="evol_instruct")[:4], "3, x", *form(None)[5:]],
         "'x' is not a record id or a range like 8-20."),
        (form(None, pipeline="expand_task"), "SNI expansion needs the task to expand."),
    ]
    for args, message in cases:
        with pytest.raises(AppError) as refused:
            cura.predict(*args, api_name=api)
        assert str(refused.value) == message
    bad = studio.seeds.with_name("bad.jsonl")
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(AppError, match=r"The seed file cannot be read: bad.jsonl, line 1: no instruction\."):
        cura.predict(*form(bad), api_name=api)
    assert database(studio) == before


def test_the_near_duplicate_view_narrows_to_what_one_job_added(clients, studio):
    from db import repo
    from db.dedup_tables import DedupRun, DuplicatePair
    from db.engine import open_database, session_for
    from curation.records import RecordDraft

    cura = clients["cura"]
    job_id, *_ = cura.predict(*form(studio.seeds, target=2, seed=2), api_name="/generate_launch")
    wait_for(cura, job_id, {"completed"})
    _, records = database(studio)
    added = [r[0] for r in records if r[3] == job_id]
    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        dataset = repo.get_dataset(session, "demo")
        old = repo.insert_records(session, dataset.id, [RecordDraft(f"Human task number {n}.", "", ["x"])
                                                        for n in range(3)], by="ann", reason="test")
        run = DedupRun(dataset_id=dataset.id, method="semantic", fields="instruction", threshold=0.9, floor=0.9,
                       record_count=len(records) + 3, pair_count=2)
        session.add(run)
        session.flush()
        # The job's first record is close to a human one; two human records are close to each other.
        session.add_all([DuplicatePair(run_id=run.id, record_a=min(added[0], old[0]), record_b=max(added[0], old[0]),
                                       score=0.96),
                         DuplicatePair(run_id=run.id, record_a=old[1], record_b=old[2], score=0.95)])
        session.commit()
    engine.dispose()

    from curation.services import dedup as dedup_service
    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        every = dedup_service.duplicate_groups(session, dataset="demo")
        narrowed = dedup_service.duplicate_groups(session, dataset="demo", added_by=job_id)
        assert sorted(sorted(r["id"] for r in g.records) for g in every) == sorted(
            [sorted([added[0], old[0]]), [old[1], old[2]]])
        assert [sorted(r["id"] for r in g.records) for g in narrowed] == [sorted([added[0], old[0]])]
        assert dedup_service.exact_duplicate_groups(session, dataset="demo", added_by=job_id) == []
    engine.dispose()

    summary, table, *_ = cura.predict("demo", "Meaning (embeddings)", 0.9, str(job_id), api_name="/diversity_groups")
    assert summary.startswith("**1** near-duplicate group (1 pair) at similarity ≥ **0.90**")
    assert f"only groups with a record job {job_id} added" in summary
    assert [row[3] for row in table["data"]] == [", ".join(f"#{i}" for i in sorted([added[0], old[0]]))]
    summary, table, *_ = cura.predict("demo", "Meaning (embeddings)", 0.9, api_name="/diversity_groups")
    assert summary.startswith("**2** near-duplicate groups (2 pairs)")  # without the job: every group


def test_a_job_whose_process_died_reads_interrupted_and_resumes(clients, studio):
    """A restart: the job's row still says running, but nothing has beaten its heartbeat for minutes."""
    from datetime import timedelta

    from curation.services import generation
    from curation.services.permissions import Actor
    from db.engine import open_database, session_for
    from db.jobs_tables import JobStatus
    from db.models import Role, utcnow

    cura = clients["cura"]
    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        spec = generation.JobSpec(pipeline="self_instruct", dataset="demo", model="Loopback", target=3, seed=3,
                                  seeds=SEEDS)
        job = generation.create_job(session, Actor("cura", Role.curator), spec, studio.context.settings)
        job.status, job.started_at, job.heartbeat_at = JobStatus.running, utcnow(), utcnow() - timedelta(minutes=5)
        session.commit()
        job_id = job.id
    engine.dispose()
    _, line, bar, *_ = cura.predict(job_id, api_name="/generate_refresh")
    assert "**interrupted**" in line and 'data-state="interrupted"' in bar
    cura.predict(job_id, api_name="/generate_resume")
    _, line, *_ = wait_for(cura, job_id, {"completed"})
    assert "kept 3 of 3" in line
    _, records = database(studio)
    assert len([r for r in records if r[3] == job_id]) == 3


def add_dataset(studio, name: str, rows: list[tuple[str, str, str]]) -> list[int]:
    """A dataset `name` holding records (instruction, output, status); their ids."""
    from curation.records import RecordDraft
    from curation.services import admin
    from curation.services.permissions import Actor
    from db import repo
    from db.engine import open_database, session_for
    from db.models import RecordStatus, Role

    engine = open_database(studio.database_url)
    with session_for(engine) as session:
        dataset = admin.create_dataset(session, Actor("root", Role.admin), name)
        ids = [repo.insert_records(session, dataset.id, [RecordDraft(i, "", [o])], by="ann", reason="test",
                                   status=RecordStatus(status))[0] for i, o, status in rows]
        session.commit()
    engine.dispose()
    return ids


def test_evol_instruct_evolves_the_approved_records_of_the_dataset(clients, studio):
    ids = add_dataset(studio, "poems", [("Write a haiku about rain.", "Soft rain on the roof.", "approved"),
                                        ("Write a limerick about a cat.", "A cat from Peru...", "approved"),
                                        ("Write an ode to a draft.", "O draft!", "draft")])
    cura = clients["cura"]
    evol = [*form(None, pipeline="evol_instruct", dataset="poems", target=2)]
    evol[5], evol[6] = True, ["add_constraints", "deepen"]  # every approved record; two operations
    shown = cura.predict(*evol, api_name="/generate_preview")
    assert shown.count('class="gen-candidate"') == 2
    assert f"evolved from #{ids[0]}" in shown and f"evolved from #{ids[1]}" in shown
    assert f"#{ids[2]}" not in shown  # the draft is not evolved
    job_id, *_ = cura.predict(*evol, api_name="/generate_launch")
    _, line, _, report, *_ = wait_for(cura, job_id, {"completed"})
    assert f"**Job {job_id}** · Evol-Instruct into poems" in line and "kept 2 of 2" in line
    _, records = database(studio)
    assert len([r for r in records if r[3] == job_id]) == 2
    evol[5] = False
    with pytest.raises(AppError, match=r"Evol-Instruct needs records to evolve: give their ids\."):
        cura.predict(*evol, api_name="/generate_preview")


def test_the_records_of_a_dataset_serve_as_seed_tasks(clients, studio):
    add_dataset(studio, "seedset", [(s["instruction"], s["instances"][0]["output"], "approved") for s in SEEDS])
    shown = clients["cura"].predict(*form(None, seed_dataset="seedset", seed=5), api_name="/generate_preview")
    assert shown.count('class="gen-candidate"') == 5 and "from seeds record-" in shown
