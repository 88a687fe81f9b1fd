"""Evaluation jobs: the tiny model trained by the real script, evaluated by the real job (served by `transformers
serve` on loopback, judged by a scripted OpenAI-compatible server), stored, put on the model card, listed and
compared as runs; a crash fails the evaluation and leaves the training run alone; the judge's key goes nowhere."""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import pytest

from tests.hub_server import HubServer
from tests.openai_server import OpenAIServer, Reply
from tests.test_publish import GOOD, cli, seed_dataset
from tests.tiny_model import build_tiny_model

pytestmark = pytest.mark.slow

SECRET = "sk-judge-SECRET-51c0de7"
FAST = {"max_steps": 4, "batch_size": 4, "gradient_accumulation": 1, "logging_steps": 1, "learning_rate": 5e-3,
        "packing": False, "max_length": 96, "gradient_checkpointing": False, "lora_dropout": 0.0}
NONSENSE = "Both answers have their charm."


class Judge:
    """Known verdicts: against the reference, the reference wins in both orders; against the base, the response
    shown first wins, except the very first such request, answered with words that name no verdict."""

    def __init__(self):
        self.nonsense_sent = False

    def __call__(self, body: dict) -> Reply:
        text = body["messages"][-1]["content"]
        first = re.search(r"## Response 1\n(.*?)\n\n## Response 2", text, re.S).group(1)
        if "## Reference answer" not in text:  # tuned vs reference: the reference is "Fruit N is a pear."
            return Reply("Verdict: 1\nReason: it names the fruit." if re.fullmatch(r"Fruit \d+ is a pear\.", first)
                         else "Verdict: 2\nReason: it names the fruit.")
        if not self.nonsense_sent:
            self.nonsense_sent = True
            return Reply(NONSENSE)
        return Reply("Verdict: 1\nReason: clearer.")


@pytest.fixture(scope="module")
def hub():
    with HubServer(tokens={GOOD: "tester"}) as server:
        yield server


@pytest.fixture(scope="module")
def judge():
    with OpenAIServer(api_key=SECRET, replies=Judge()) as server:
        yield server


@pytest.fixture(scope="module")
def world(hub, judge, tmp_path_factory):
    """A published dataset, two finished training runs (A on everything, pushed; B on a selection, kept locally)."""
    from sqlmodel import select

    from db.models import Record
    from db.score_tables import store_scores

    root = tmp_path_factory.mktemp("evaluation")
    url = f"sqlite:///{root / 'studio.db'}"
    seed_dataset(url)
    env = hub.client_env(token=GOOD) | {"HF_HOME": str(root / "hf"), "JUDGE_KEY": SECRET,
                                        "LLM_MODELS": f"Judge=openai:judge-model@{judge.url} key=JUDGE_KEY"}
    done = cli(url, env, "publish", "--dataset", "demo", "--repo-id", "tester/evals", "--test-fraction", "0.25")
    assert done.returncode == 0, done.stderr
    with open_session(url) as session:  # a cheap score to select by: the instruction's length
        rows = session.exec(select(Record.id, Record.instruction)).all()
        store_scores(session, "length", [{"record_id": i, "value": float(len(text)), "basis": "test"}
                                         for i, text in rows])
        session.commit()
    done = cli(url, env, "select", "--dataset", "demo", "--name", "long", "--score", "length", "--method", "top",
               "--n", "12")
    assert done.returncode == 0, done.stderr
    done = cli(url, env, "select", "publish", "long", "--dataset", "demo", "--repo-id", "tester/evals")
    assert done.returncode == 0, done.stderr
    selection_commit = json.loads(done.stdout)["commit"]
    tiny = build_tiny_model(root / "tiny")
    jobs = root / "jobs"
    from curation.services.publishing import refresh_job, start_training

    with open_session(url) as session:
        a = start_training(session, dataset="demo", base_model=str(tiny), launcher="local", token=GOOD,
                           output_repo="tester/eval-a", jobs_root=str(jobs), env=env, spec_overrides=FAST)
        # B trains on the published selection: its config, at the commit that published it
        b = start_training(session, dataset="demo", base_model=str(tiny), launcher="local", token=GOOD,
                           selection="long", jobs_root=str(jobs), env=env, spec_overrides=FAST | {"max_steps": 2})
        for job in (a, b):
            deadline = time.monotonic() + 240
            while (job := refresh_job(session, job.id, jobs_root=str(jobs))).status.value not in (
                    "completed", "failed", "cancelled"):
                assert time.monotonic() < deadline, job.log_tail
                time.sleep(0.5)
            assert job.status.value == "completed", job.log_tail[-3000:]
    return {"url": url, "env": env, "root": root, "jobs": jobs, "tiny": tiny, "a": a.id, "b": b.id,
            "selection_commit": selection_commit}


def open_session(url):
    from db.engine import open_database, session_for

    return session_for(open_database(url))


def wait_for(session, evaluation_id, jobs, timeout=300):
    from curation.services.evaluation import refresh_evaluation

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evaluation = refresh_evaluation(session, evaluation_id, jobs_root=str(jobs))
        if evaluation.status.value in ("completed", "failed", "cancelled"):
            return evaluation
        time.sleep(0.5)
    raise AssertionError(f"evaluation {evaluation_id} still {evaluation.status.value}: {evaluation.log_tail}")


@pytest.fixture(scope="module")
def evaluated(world, hub, judge):
    """Run A evaluated through the CLI (judge by label, progress, the card), run B through the service."""
    from curation.config import Settings
    from curation.services.evaluation import start_evaluation

    done = cli(world["url"], world["env"], "evaluate", "--job", str(world["a"]), "--judge", "Judge",
               "--harness", "local", "--max-new-tokens", "12", "--jobs-dir", str(world["jobs"]), "--wait")
    assert done.returncode == 0, done.stderr[-4000:]
    a = json.loads(done.stdout.strip().splitlines()[-1])
    assert a["status"] == "completed", done.stderr[-4000:]
    assert "done: " in done.stderr  # the CLI prints the progress it sees, to the end
    with open_session(world["url"]) as session:  # the job's environment holds the key, as the app's would
        b = start_evaluation(session, training_job_id=world["b"], judge_label="Judge", actor=None,
                             settings=Settings(llm_models=f"Judge=openai:judge-model@{judge.url} key=JUDGE_KEY"),
                             jobs_root=str(world["jobs"]), env=world["env"], max_new_tokens=12)
        b = wait_for(session, b.id, world["jobs"])
        assert b.status.value == "completed", b.log_tail
    return {"a": a["evaluation"], "b": b.id}


def test_the_evaluation_stores_loss_answers_scores_and_both_judge_orders(world, evaluated):
    from curation.evaluation.metrics import rouge_l
    from curation.evaluation.pairwise import length_controlled_win_rate, win_rate
    from curation.services.evaluation import evaluation_answers, evaluations
    from db.evaluation_tables import Evaluation

    with open_session(world["url"]) as session:
        evaluation = session.get(Evaluation, evaluated["a"])
        assert [e.id for e in evaluations(session, training_job_id=world["a"])] == [evaluation.id]
        answers = evaluation_answers(session, evaluation.id)
        metrics = evaluation.metrics
    assert evaluation.model == "tester/eval-a" and evaluation.model_revision
    assert evaluation.dataset_repo == "tester/evals" and evaluation.dataset_config == "messages"
    assert evaluation.selection_recipe is None and evaluation.progress["stage"] == "done"
    for side in ("tuned", "base"):
        assert 0 < metrics[side]["loss"] < 50 and metrics[side]["perplexity"] == pytest.approx(
            math.exp(metrics[side]["loss"]))
        assert metrics[side]["tokens"] > 0 and metrics[side]["n"] == len(answers) >= 4
    assert metrics["tuned"]["loss"] != metrics["base"]["loss"]
    assert [a.position for a in answers] == list(range(len(answers)))
    log = (Path(evaluation.work_dir) / "log.txt").read_text()
    stages = [json.loads(line[14:])["stage"] for line in log.splitlines() if line.startswith("EVAL_PROGRESS ")]
    assert list(dict.fromkeys(stages)) == ["data", "loss:base", "loss:tuned", "answers:tuned", "answers:base",
                                           "scores", "judge:vs_base", "judge:vs_reference", "harness:tuned",
                                           "harness:base"]
    for side in ("tuned", "base"):
        recomputed = [rouge_l(getattr(a, f"{side}_answer"), a.reference) for a in answers]
        assert [getattr(a, f"rouge_l_{side}") for a in answers] == recomputed
        assert metrics[side]["rouge_l"] == pytest.approx(sum(recomputed) / len(recomputed))
    # Against the reference, the reference wins both orders: shown second ("first" loses), shown first.
    assert {(a.vs_reference_a_first, a.vs_reference_b_first, a.vs_reference_preference) for a in answers} == {
        ("second", "first", 0.0)}
    assert metrics["judge"]["vs_reference"]["win_rate"] == 0.0
    # Against the base, the judge picks the first shown (0.5 each), once answering nonsense: that order has None.
    verdicts = [(a.vs_base_a_first, a.vs_base_b_first) for a in answers]
    assert sum(v.count(None) for v in verdicts) == 1 and {x for v in verdicts for x in v} == {"first", None}
    assert {a.vs_base_preference for a in answers} == {0.5, 1.0} or {a.vs_base_preference for a in answers} == {
        0.5, 0.0}
    unread = next(a for a in answers if None in (a.vs_base_a_first, a.vs_base_b_first))
    order = "a_first" if unread.vs_base_a_first is None else "b_first"
    assert unread.judge_replies["vs_base"]["replies"][order] == NONSENSE
    assert "no verdict" in unread.judge_replies["vs_base"]["errors"][order]
    assert metrics["judge"]["vs_base"]["unreadable_verdicts"] == 1 and metrics["judge"]["vs_base"]["unreadable"] == 0
    assert "judge vs base: 1 of 8 verdicts could not be read" in evaluation.message
    for side in ("tuned", "base"):  # lm-evaluation-harness on a task built from the same test split
        local = metrics["harness"][side]["instruct_studio_test"]
        assert local["samples"] == len(answers) and 0 <= local["exact_match"] <= 1
    preferences = [a.vs_base_preference for a in answers]
    assert metrics["judge"]["vs_base"]["win_rate"] == pytest.approx(win_rate(preferences))
    assert metrics["judge"]["vs_base"]["length_controlled_win_rate"] == pytest.approx(length_controlled_win_rate(
        preferences, [len(a.tuned_answer) for a in answers], [len(a.base_answer) for a in answers]))


def test_the_model_card_on_the_hub_holds_the_evaluation_table(world, evaluated, hub):
    from curation.services.evaluation import CARD_END, CARD_START

    model = hub.repo("model", "tester/eval-a")
    card = model.resolve(model.branches["main"]).files["README.md"].data.decode()
    assert card.count(CARD_START) == 1 and card.count(CARD_END) == 1
    table = card[card.index(CARD_START):]
    assert "| metric | tuned | base |" in table and "| loss |" in table and "| ROUGE-L |" in table
    assert "judge win rate vs base model" in table and "Selection recipe: everything published." in table
    assert "| instruct_studio_test exact_match |" in table
    with open_session(world["url"]) as session:
        from db.jobs_tables import TrainingJob

        job = session.get(TrainingJob, world["a"])
    assert f"revision `{job.dataset_revision}`" in table and f"`{job.model_revision}`" in table


def test_runs_list_both_trainings_with_what_they_trained_on_and_their_scores(world, evaluated):
    from curation.services.evaluation import runs

    with open_session(world["url"]) as session:
        found = {r.job_id: r for r in runs(session, dataset="demo")}
    a, b = found[world["a"]], found[world["b"]]
    assert a.selection_recipe is None and a.dataset_config == "messages" and a.method == "lora"
    assert b.selection_recipe["name"] == "long" and b.selection_recipe["method"] == "top"
    assert b.dataset_revision == world["selection_commit"] and b.training_records == 12
    assert a.training_records == 12 and a.status == "completed" and a.seconds > 0
    assert a.evaluation_id == evaluated["a"] and b.evaluation_id == evaluated["b"]
    assert a.scores["loss"] > 0 and a.scores["win_rate_vs_reference"] == 0.0
    assert a.base_model == str(world["tiny"]) and a.model == "tester/eval-a"
    assert a.tokens_trained > b.tokens_trained > 0  # TRL's num_tokens: 4 steps against 2


def test_compare_runs_gives_per_metric_deltas_and_the_prompts_that_differ_most(world, evaluated):
    from curation.services.evaluation import compare_runs

    with open_session(world["url"]) as session:
        found = compare_runs(session, world["a"], world["b"])
    by_name = {m.name: m for m in found.metrics}
    loss = by_name["loss"]
    assert loss.delta == pytest.approx(loss.b - loss.a) and loss.a == found.a.scores["loss"]
    assert by_name["base_loss"].delta == pytest.approx(0.0)  # the same base on the same test prompts
    assert found.shared_prompts >= 4 and found.note is None
    gaps = [p.gap for p in found.differing]
    assert gaps == sorted(gaps, reverse=True)
    assert all(p.by == "judge" and p.gap == abs(p.preference_a - p.preference_b)
               for p in found.differing if p.preference_a is not None and p.preference_b is not None)
    done = cli(world["url"], world["env"], "runs", "--compare", str(world["a"]), str(world["b"]), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"][0]["name"] == "loss"


def test_a_crash_fails_the_evaluation_with_its_log_and_leaves_the_training_run_alone(world, evaluated):
    from curation.services.evaluation import start_evaluation
    from db.jobs_tables import TrainingJob

    with open_session(world["url"]) as session:
        before = session.get(TrainingJob, world["b"]).model_dump()
        missing = world["root"] / "no-such-base"
        evaluation = start_evaluation(session, training_job_id=world["b"], base_model=str(missing), actor=None,
                                      jobs_root=str(world["jobs"]), env=world["env"], max_new_tokens=4)
        evaluation = wait_for(session, evaluation.id, world["jobs"])
        assert evaluation.status.value == "failed"
        assert evaluation.message.startswith(f"the model {missing} cannot be loaded")
        assert "EVAL_ERROR" in evaluation.log_tail and "Traceback" not in evaluation.message
        session.expire_all()
        assert session.get(TrainingJob, world["b"]).model_dump() == before


def test_a_dataset_without_a_test_split_fails_in_words(world):
    from curation.services.evaluation import start_evaluation
    from db.jobs_tables import TrainingJob

    seed_dataset(world["url"], "notest")
    done = cli(world["url"], world["env"], "publish", "--dataset", "notest", "--repo-id", "tester/notest",
               "--test-fraction", "0")
    assert done.returncode == 0, done.stderr
    with open_session(world["url"]) as session:
        folder = str(Path(session.get(TrainingJob, world["b"]).external_id) / "output")
        evaluation = start_evaluation(session, model=folder, dataset="notest", actor=None,
                                      jobs_root=str(world["jobs"]), env=world["env"])
        evaluation = wait_for(session, evaluation.id, world["jobs"])
    assert evaluation.status.value == "failed"
    assert re.match(r"the (dataset|test split of) tester/notest \(config messages, revision \w+\) (has no test "
                    r"split|is empty)", evaluation.message), evaluation.message


def test_bad_input_is_refused_in_words_before_anything_starts(world):
    from curation.services.evaluation import EvaluationError, start_evaluation
    from curation.services.permissions import Actor, PermissionDenied
    from db.models import Role

    with open_session(world["url"]) as session:
        with pytest.raises(PermissionDenied, match="only a curator or admin evaluates models"):
            start_evaluation(session, training_job_id=world["a"], actor=Actor("ann", Role.annotator))
        with pytest.raises(EvaluationError, match="no configured model is called 'Nobody'"):
            from curation.config import Settings

            start_evaluation(session, training_job_id=world["a"], actor=None, judge_label="Nobody",
                             settings=Settings(llm_models="Judge=openai:judge-model@http://127.0.0.1:9/v1"))
    done = cli(world["url"], world["env"], "evaluate", "--job", "999")
    assert done.returncode == 2 and "error: no training job 999" in done.stderr
    done = cli(world["url"], world["env"], "evaluate", "--model", "tester/unknown@0123abc")
    assert done.returncode == 2, done.stderr
    assert "error: cannot tell which dataset tester/unknown was trained on: name the dataset" in done.stderr


def test_the_judges_key_is_in_neither_the_spec_the_database_nor_the_job_folders(world, evaluated, judge):
    from db.evaluation_tables import Evaluation

    assert f"Bearer {SECRET}" in judge.authorizations  # the judge was asked with the key
    with open_session(world["url"]) as session:
        spec = session.get(Evaluation, evaluated["a"]).spec
    assert spec["judge"]["api_key_env"] == "JUDGE_KEY" and SECRET not in json.dumps(spec)
    for path in [*world["root"].glob("studio.db*"), *world["jobs"].rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
            assert GOOD.encode() not in path.read_bytes(), path


def test_a_harness_task_that_needs_a_download_fails_the_evaluation_in_words(world):
    from curation.services.evaluation import start_evaluation

    with open_session(world["url"]) as session:
        evaluation = start_evaluation(session, training_job_id=world["b"], harness_tasks=["gsm8k"], limit=1,
                                      max_new_tokens=4, actor=None, jobs_root=str(world["jobs"]), env=world["env"])
        evaluation = wait_for(session, evaluation.id, world["jobs"])
    assert evaluation.status.value == "failed"
    assert re.match(r"the harness could not run on the tuned model: the task gsm8k (needs its dataset downloaded|"
                    r"could not be loaded)", evaluation.message), evaluation.message
    assert evaluation.metrics == {}


def test_a_model_folder_that_does_not_exist_fails_in_words(world):
    from curation.services.evaluation import start_evaluation

    missing = world["root"] / "no-such-model"
    with open_session(world["url"]) as session:
        evaluation = start_evaluation(session, model=str(missing), dataset="demo", actor=None,
                                      jobs_root=str(world["jobs"]), env=world["env"])
        evaluation = wait_for(session, evaluation.id, world["jobs"])
    assert evaluation.status.value == "failed" and evaluation.training_job_id is None
    assert evaluation.message == f"the model {missing} cannot be loaded: there is no such folder"


def test_cancel_stops_the_evaluation_and_its_process_group(world):
    import os

    from curation.services.evaluation import cancel_evaluation, start_evaluation

    with open_session(world["url"]) as session:
        evaluation = start_evaluation(session, training_job_id=world["b"], actor=None, jobs_root=str(world["jobs"]),
                                      env=world["env"])
        group = int((Path(evaluation.work_dir) / "pid").read_text())
        evaluation = cancel_evaluation(session, evaluation.id, jobs_root=str(world["jobs"]))
        assert evaluation.status.value == "cancelled" and evaluation.message == "cancelled by the user"
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)


def test_restart_reconciles_an_evaluation_whose_process_is_gone(world):
    from curation.services.evaluation import reconcile_evaluations
    from db.evaluation_tables import Evaluation
    from db.jobs_tables import JobStatus

    work = world["jobs"] / "eval-lost"
    work.mkdir()
    (work / "pid").write_text("999999")
    (work / "log.txt").write_text('EVAL_PROGRESS {"stage": "loss:base", "done": 1, "total": 4}\n')
    with open_session(world["url"]) as session:
        session.add(Evaluation(model="tester/eval-a", external_id=str(work), status=JobStatus.running))
        session.commit()
        [evaluation] = reconcile_evaluations(session, jobs_root=str(world["jobs"]))
        assert evaluation.status == JobStatus.failed
        assert evaluation.message == "the evaluation process stopped without an exit code"
        assert evaluation.progress == {"stage": "loss:base", "done": 1, "total": 4}


@pytest.fixture(scope="module")
def runs_studio(world, evaluated):
    """The app in its own process over the world's database and jobs folder, for the browser test below."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from curation.services import admin
    from tests.conftest import REPO
    from tests.e2e.test_publish_browser import wait_until_serving
    from tests.ui_server import PASSWORDS, ROLES, free_port

    with open_session(world["url"]) as session:
        admin.add_user(session, "cura", ROLES["cura"], PASSWORDS["cura"])
        session.commit()
    port = free_port()
    # world["env"] is this process's environment pointed at the loopback Hub (its offline switches taken out)
    env = world["env"] | {"DATABASE_URL": world["url"], "JOBS_DIR": str(world["jobs"]),
                          "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, process)
        yield SimpleNamespace(url=url)
    finally:
        process.terminate()
        process.wait(30)
        print(process.stdout.read()[-5000:])


def choose(page, elem_id: str, starts: str) -> None:
    """Pick the option of dropdown `elem_id` whose label starts with `starts` (its own list: several may be open)."""
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id}").get_by_role("option", name=re.compile("^" + re.escape(starts))).first.click()


@pytest.mark.browser
def test_in_the_browser_a_curator_evaluates_a_run_then_compares_it_with_another(runs_studio, world, hub):
    """Issue 14's acceptance. Last in this module: it reuses the two trained runs (B already evaluated by the
    `evaluated` fixture) instead of training them again, and adds an evaluation of A the tests above do not expect."""
    from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, sign_in  # skips without chromium
    from playwright.sync_api import expect, sync_playwright

    studio = runs_studio
    a, b = world["a"], world["b"]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, dialogs = sign_in(browser, studio, "cura")
        page.get_by_role("tab", name="Runs").click()
        table = page.locator("#runs-table")
        expect(table).to_contain_text("selection long", timeout=30_000)
        expect(table).to_contain_text("everything")

        choose(page, "runs-run", f"Run {a} ·")
        choose(page, "runs-judge", "Judge")
        page.locator("#runs-evaluate").click()
        status = page.locator("#runs-status")
        expect(status).to_contain_text("running", timeout=60_000)  # the timer follows it while it runs
        page.screenshot(path=str(ARTIFACTS / "runs-evaluating.png"), full_page=True)
        expect(status).to_contain_text(re.compile("completed|failed|cancelled"), timeout=300_000)
        expect(status).to_contain_text("completed", timeout=1)
        expect(table).to_contain_text("completed")

        choose(page, "runs-a", f"Run {a} ·")
        choose(page, "runs-b", f"Run {b} ·")
        page.locator("#runs-compare").click()
        deltas = page.locator("#runs-deltas")
        expect(deltas).to_contain_text("Test loss", timeout=60_000)
        expect(deltas).to_contain_text(f"Δ (run {b} − run {a})")
        expect(deltas).to_contain_text("Win rate against the base model")
        pairs = page.locator("#runs-side-by-side")
        expect(pairs).to_contain_text("test prompts answered by both runs")
        expect(pairs).to_contain_text(f"Run {a} · ROUGE-L")
        expect(pairs).to_contain_text(f"Run {b} · ROUGE-L")
        page.screenshot(path=str(ARTIFACTS / "runs-compared.png"), full_page=True)
        # From a prompt, one click opens the nearest training record in the editor.
        pairs.locator("[data-open-record]").first.click()
        expect(page.get_by_role("tab", name="Record")).to_have_attribute("aria-selected", "true", timeout=15_000)
        browser.close()
    assert dialogs == []
    card = hub.repo("model", "tester/eval-a").resolve("main").files["README.md"].data.decode()
    assert "<!-- instruct-studio-evaluation -->" in card and "| metric | tuned | base |" in card
    assert "| loss |" in card and "| judge win rate vs base model |" in card
