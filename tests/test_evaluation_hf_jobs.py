"""Evaluations as Hugging Face Jobs, against the loopback Hub's Jobs API through the real huggingface_hub client: the
curation code goes up as a zip to the user's private jobs repo, the job (run here by the loopback runner, with
`transformers serve` inside it) evaluates a tiny model repo on the published test split, uploads its results, and
the service stores metrics and answers as for a local run; the token and the judge's key travel only as secrets;
cancel stops the job; a model in a local folder is refused in words."""
from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import time
import zipfile

import pytest

from tests.conftest import REPO
from tests.hub_server import HubServer
from tests.openai_server import OpenAIServer, Reply
from tests.test_publish import GOOD, cli, seed_dataset
from tests.tiny_model import build_tiny_model

pytestmark = pytest.mark.slow

SECRET = "sk-judge-REMOTE-5ec2e7"
STAGES = ["data", "loss:base", "loss:tuned", "answers:tuned", "answers:base", "scores", "judge:vs_base",
          "judge:vs_reference"]


@pytest.fixture(scope="module")
def hub():
    with HubServer(tokens={GOOD: "tester"}) as server:
        yield server


@pytest.fixture(scope="module")
def judge():
    with OpenAIServer(api_key=SECRET, replies=lambda body: Reply("Verdict: 1\nReason: clearer.")) as server:
        yield server


@pytest.fixture(scope="module")
def world(hub, judge, tmp_path_factory):
    """A published dataset; a tuned and a base tiny model on the loopback Hub (the tuned one's card names its base)."""
    root = tmp_path_factory.mktemp("remote-evaluation")
    url = f"sqlite:///{root / 'studio.db'}"
    seed_dataset(url)
    env = hub.client_env(token=GOOD) | {"HF_HOME": str(root / "hf"), "JUDGE_KEY": SECRET,
                                        "LLM_MODELS": f"Judge=openai:judge-model@{judge.url} key=JUDGE_KEY"}
    done = cli(url, env, "publish", "--dataset", "demo", "--repo-id", "tester/remote-evals", "--test-fraction", "0.25")
    assert done.returncode == 0, done.stderr
    revisions = {}
    for name, seed in (("tiny-base", 0), ("tiny-tuned", 1)):
        folder = build_tiny_model(root / name, seed=seed)
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        if name == "tiny-tuned":
            files["README.md"] = b"---\nbase_model: tester/tiny-base\n---\n# A tiny tuned model\n"
        revisions[name] = hub.seed_repo("model", f"tester/{name}", files)
    with pytest.MonkeyPatch.context() as patch:  # the loopback runner gives its jobs this process's environment
        patch.setenv("HF_HOME", str(root / "job-hf"))
        yield {"url": url, "env": env, "root": root, "revisions": revisions}


def open_session(url):
    from db.engine import open_database, session_for

    return session_for(open_database(url))


def run_cli(world, *args, timeout=480):
    return subprocess.run([sys.executable, "-m", "curation", "--db", world["url"], *args], cwd=REPO, env=world["env"],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def evaluated(world, hub):
    """The tuned model evaluated as a job on cpu-basic, judged, followed by the CLI to the end."""
    done = run_cli(world, "evaluate", "--model", f"tester/tiny-tuned@{world['revisions']['tiny-tuned']}",
                   "--dataset", "demo", "--judge", "Judge", "--max-new-tokens", "8", "--launcher", "hf-jobs",
                   "--flavor", "cpu-basic", "--wait")
    assert done.returncode == 0, done.stderr[-4000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == "completed", done.stderr[-4000:]
    assert "done: " in done.stderr
    [job] = [j for j in hub.state.jobs.values() if j.spec.get("labels", {}).get("kind") == "evaluation"]
    return {"id": answer["evaluation"], "job": job}


def test_the_job_runs_on_the_jobs_api_and_its_metrics_and_answers_are_stored(world, evaluated):
    from curation.evaluation.metrics import rouge_l
    from curation.services.evaluation import evaluation_answers
    from db.evaluation_tables import Evaluation

    job = evaluated["job"]
    with open_session(world["url"]) as session:
        evaluation = session.get(Evaluation, evaluated["id"])
        answers = evaluation_answers(session, evaluation.id)
    assert evaluation.launcher == "hf-jobs" and evaluation.external_id == f"tester/{job.id}"
    assert job.spec["flavor"] == "cpu-basic" and job.spec["command"][:2] == ["bash", "-c"] and job.stage == "COMPLETED"
    assert evaluation.model == "tester/tiny-tuned" and evaluation.model_revision == world["revisions"]["tiny-tuned"]
    assert evaluation.base_model == "tester/tiny-base" and evaluation.dataset_repo == "tester/remote-evals"
    assert evaluation.progress["stage"] == "done" and evaluation.status.value == "completed"
    metrics = evaluation.metrics
    for side in ("tuned", "base"):
        assert 0 < metrics[side]["loss"] < 50
        assert metrics[side]["perplexity"] == pytest.approx(math.exp(metrics[side]["loss"]))
        assert metrics[side]["n"] == len(answers) == 4
    assert metrics["tuned"]["loss"] != metrics["base"]["loss"]  # two different seeds, two different models
    assert [a.position for a in answers] == [0, 1, 2, 3]
    for side in ("tuned", "base"):
        assert all(isinstance(getattr(a, f"{side}_answer"), str) for a in answers)
        recomputed = [rouge_l(getattr(a, f"{side}_answer"), a.reference) for a in answers]
        assert [getattr(a, f"rouge_l_{side}") for a in answers] == recomputed
        assert metrics[side]["rouge_l"] == pytest.approx(sum(recomputed) / 4)
    # The judge always picks the response shown first: each order once for each model, a tie in both comparisons.
    assert {(a.vs_base_a_first, a.vs_base_b_first, a.vs_base_preference) for a in answers} == {("first", "first", 0.5)}
    assert {(a.vs_reference_a_first, a.vs_reference_b_first) for a in answers} == {("first", "first")}
    assert metrics["judge"]["vs_base"]["win_rate"] == 0.5 and metrics["judge"]["vs_reference"]["win_rate"] == 0.5
    lines = [line for _, line in job.lines]
    stages = [json.loads(line[14:])["stage"] for line in lines if line.startswith("EVAL_PROGRESS ")]
    assert list(dict.fromkeys(stages)) == STAGES
    assert any(line.startswith("EVAL_RESULT ") for line in lines)
    assert "EVAL_RESULT" in evaluation.log_tail


def test_code_and_results_travel_through_the_private_jobs_repo(world, evaluated, hub):
    from db.evaluation_tables import Evaluation

    with open_session(world["url"]) as session:
        evaluation = session.get(Evaluation, evaluated["id"])
    where = evaluation.spec["hf_jobs"]
    repo = hub.repo("dataset", "tester/instruct-studio-jobs")
    assert repo.private and where["repo"] == "tester/instruct-studio-jobs" and where["flavor"] == "cpu-basic"
    environment = evaluated["job"].spec["environment"]
    assert environment["EVAL_CODE_REVISION"] == where["code_revision"]
    assert environment["EVAL_JOBS_FOLDER"] == where["folder"]
    files = repo.resolve(repo.branches["main"]).files
    code = files[f"{where['folder']}/code.zip"]
    assert code.lfs and "curation/evaluation/job.py" in zipfile.ZipFile(io.BytesIO(code.data)).namelist()
    assert repo.resolve(where["code_revision"]).files[f"{where['folder']}/code.zip"].data == code.data
    results = json.loads(files[f"{where['folder']}/results.json"].data)
    assert results["metrics"] == evaluation.metrics and len(results["answers"]) == 4


def test_the_token_and_the_judges_key_are_only_secrets(world, evaluated, judge):
    job = evaluated["job"]
    assert job.spec["secrets"] == {"HF_TOKEN": GOOD, "JUDGE_KEY": SECRET}
    assert f"Bearer {SECRET}" in judge.authorizations  # the job reached the judge with the key
    visible = json.dumps({k: v for k, v in job.spec.items() if k != "secrets"})
    log = "\n".join(line for _, line in job.lines)
    for secret in (GOOD, SECRET):
        assert secret not in visible and secret not in log
        for path in world["root"].glob("studio.db*"):
            assert secret.encode() not in path.read_bytes(), path
    from db.evaluation_tables import Evaluation

    with open_session(world["url"]) as session:
        spec = session.get(Evaluation, evaluated["id"]).spec
    assert spec["judge"]["api_key_env"] == "JUDGE_KEY" and SECRET not in json.dumps(spec)


def test_the_model_card_gets_the_evaluation_table(evaluated, hub):
    from curation.services.evaluation import CARD_START

    model = hub.repo("model", "tester/tiny-tuned")
    card = model.resolve(model.branches["main"]).files["README.md"].data.decode()
    assert card.count(CARD_START) == 1 and "| metric | tuned | base |" in card
    assert "judge win rate vs base model" in card


def test_cancel_stops_the_job_through_the_jobs_api(world, hub, evaluated):
    done = run_cli(world, "evaluate", "--model", "tester/tiny-tuned", "--dataset", "demo", "--launcher", "hf-jobs",
                   "--flavor", "cpu-basic")
    assert done.returncode == 0, done.stderr[-3000:]
    evaluation_id = json.loads(done.stdout)["evaluation"]
    cancel = (f"from curation.services.evaluation import cancel_evaluation\n"
              f"from db.engine import open_database, session_for\n"
              f"with session_for(open_database({world['url']!r})) as session:\n"
              f"    e = cancel_evaluation(session, {evaluation_id}, actor=None, token={GOOD!r})\n"
              f"    print(e.status.value, e.message, e.external_id)\n")
    done = subprocess.run([sys.executable, "-c", cancel], cwd=REPO, env=world["env"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    status, _, rest = done.stdout.strip().partition(" ")
    assert status == "cancelled" and rest.startswith("cancelled by the user")
    job = hub.state.jobs[rest.rsplit("/", 1)[1]]
    assert job.stage == "CANCELED"
    deadline = time.monotonic() + 15
    while job.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.process.poll() is not None


def test_a_local_folder_as_the_model_is_refused_in_words(world, hub):
    from curation.services.evaluation import EvaluationError, evaluations, start_evaluation

    folder = world["root"] / "tiny-tuned"
    jobs_before = len(hub.state.jobs)
    with open_session(world["url"]) as session:
        before = len(evaluations(session))
        with pytest.raises(EvaluationError) as refused:
            start_evaluation(session, model=str(folder), base_model="tester/tiny-base", dataset="demo",
                             launcher="hf-jobs", token=GOOD, actor=None)
        assert len(evaluations(session)) == before
    assert str(refused.value) == (f"an evaluation on Hugging Face Jobs needs the model on the Hub: {folder} is a "
                                  f"folder on this machine; push it to the Hub, or evaluate with the local launcher")
    assert len(hub.state.jobs) == jobs_before
    done = run_cli(world, "evaluate", "--model", str(folder), "--dataset", "demo", "--launcher", "hf-jobs", timeout=120)
    assert done.returncode == 2 and "needs the model on the Hub" in done.stderr


def test_a_judge_on_this_machines_loopback_is_refused_for_the_real_hub():
    from curation.evaluation.launchers import remote_secrets
    from curation.training.launchers import LaunchError

    spec = {"model": "tester/tiny-tuned", "judge": {"kind": "openai", "model": "j", "api_key_env": "JUDGE_KEY",
                                                    "base_url": "http://127.0.0.1:8000/v1"}}
    with pytest.raises(LaunchError, match=r"the judge answers at http://127.0.0.1:8000/v1, on this machine's loopback"):
        remote_secrets(spec, token=GOOD, env={}, endpoint="https://huggingface.co")
    spec["judge"]["base_url"] = "https://judge.example.org/v1"
    assert remote_secrets(spec, token=GOOD, env={"JUDGE_KEY": "k"}, endpoint="https://huggingface.co") == {
        "HF_TOKEN": GOOD, "JUDGE_KEY": "k"}
    with pytest.raises(LaunchError, match="Hugging Face Jobs needs a token"):
        remote_secrets(spec, token=None, env={}, endpoint="https://huggingface.co")


def test_a_job_that_fails_marks_the_evaluation_failed_with_its_words(world, evaluated):
    from db.evaluation_tables import Evaluation

    done = run_cli(world, "evaluate", "--model", "tester/no-such-model@0123abcd", "--base", "tester/tiny-base",
                   "--dataset", "demo", "--launcher", "hf-jobs", "--flavor", "cpu-basic", "--wait", timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == "failed" and answer["metrics"] == {}
    assert answer["message"].startswith("the model tester/no-such-model@0123abcd cannot be downloaded")
    with open_session(world["url"]) as session:
        evaluation = session.get(Evaluation, answer["evaluation"])
    assert "EVAL_ERROR" in evaluation.log_tail and evaluation.finished_at is not None
