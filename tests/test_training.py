"""Training: the tiny model learns through the real script and launchers, pushes its adapter, and fails or stops plainly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.hub_server import HubServer
from tests.test_publish import GOOD, cli, seed_dataset
from tests.tiny_model import build_tiny_model

SCRIPT = REPO / "curation" / "training" / "sft.py"
FAST = {"max_steps": 6, "batch_size": 4, "gradient_accumulation": 1, "logging_steps": 1, "learning_rate": 5e-3,
        "packing": False, "max_length": 96, "gradient_checkpointing": False, "lora_dropout": 0.0}


@pytest.fixture(scope="module")
def hub():
    with HubServer(tokens={GOOD: "tester"}) as server:
        yield server


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def published(hub, sqlite_url, tmp_path):
    """A database whose dataset `demo` is published to tester/demo-<test>; returns (url, env, commit)."""
    seed_dataset(sqlite_url)
    env = hub.client_env(token=GOOD) | {"HF_HOME": str(tmp_path / "hf")}
    repo_id = f"tester/demo-{tmp_path.name[-12:].strip('_')}"
    done = cli(sqlite_url, env, "publish", "--dataset", "demo", "--repo-id", repo_id)
    assert done.returncode == 0, done.stderr
    return sqlite_url, env, json.loads(done.stdout)["commit"], repo_id


def wait_for(session, job_id, env, root, *, until=("completed", "failed", "cancelled"), timeout=180):
    from curation.services.publishing import refresh_job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = refresh_job(session, job_id, token=GOOD, jobs_root=str(root))
        if job.status.value in until:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {job.status.value}: {job.log_tail[-2000:]}")


def open_session(url):
    from db.engine import open_database, session_for

    return session_for(open_database(url))


def test_tiny_model_trains_locally_and_pushes_an_adapter_naming_the_dataset_revision(hub, published, tiny_model,
                                                                                    tmp_path):
    from curation.services.publishing import start_training

    url, env, commit, repo_id = published
    with open_session(url) as session:
        job = start_training(session, dataset="demo", base_model=str(tiny_model), launcher="local", token=GOOD,
                             output_repo="tester/tiny-sft", jobs_root=str(tmp_path / "jobs"), env=env,
                             spec_overrides=FAST)
        job = wait_for(session, job.id, env, tmp_path / "jobs")
        assert job.status.value == "completed", job.log_tail
        losses = [m["loss"] for m in job.metrics if "loss" in m]
        assert len(losses) == 6 and losses[-1] < losses[0]
        assert job.dataset_revision == commit and job.dataset_repo == repo_id
        model = hub.repo("model", "tester/tiny-sft")
        assert job.model_revision == model.branches["main"]
        files = model.resolve(job.model_revision).files
        assert files["adapter_model.safetensors"].lfs and "adapter_config.json" in files
        card = files["README.md"].data.decode()
        assert f"Dataset revision: {commit}" in card and f"- {repo_id}" in card
        assert "assistant turns only" in card


def test_adapter_loads_back_from_the_hub_with_peft(hub, published, tiny_model, tmp_path):
    from curation.services.publishing import start_training

    url, env, commit, _ = published
    with open_session(url) as session:
        job = start_training(session, dataset="demo", base_model=str(tiny_model), launcher="local", token=GOOD,
                             output_repo="tester/tiny-sft-2", jobs_root=str(tmp_path / "jobs"), env=env,
                             spec_overrides=FAST | {"max_steps": 2})
        assert wait_for(session, job.id, env, tmp_path / "jobs").status.value == "completed"
    load = ("from peft import AutoPeftModelForCausalLM; m = AutoPeftModelForCausalLM.from_pretrained("
            "'tester/tiny-sft-2'); print(type(m).__name__, m.peft_config['default'].r)")
    done = subprocess.run([sys.executable, "-c", load], env=env | {"HF_HUB_OFFLINE": "0"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["PeftModelForCausalLM", "16"]


def test_a_crashing_run_is_marked_failed_with_the_end_of_its_log(published, tmp_path):
    from curation.services.publishing import start_training

    url, env, _, _ = published
    with open_session(url) as session:
        job = start_training(session, dataset="demo", base_model=str(tmp_path / "no-such-model"), launcher="local",
                             token=GOOD, jobs_root=str(tmp_path / "jobs"), env=env, spec_overrides=FAST)
        job = wait_for(session, job.id, env, tmp_path / "jobs")
        assert job.status.value == "failed" and job.model_revision is None
        assert job.message.startswith("training exited with code 1: ")
        assert "no-such-model" in job.log_tail


def test_cancel_kills_the_whole_process_group(published, tiny_model, tmp_path):
    from curation.services.publishing import cancel_training, start_training

    url, env, _, _ = published
    with open_session(url) as session:
        job = start_training(session, dataset="demo", base_model=str(tiny_model), launcher="local", token=GOOD,
                             jobs_root=str(tmp_path / "jobs"), env=env, spec_overrides=FAST | {"max_steps": 100000})
        group = int((Path(job.external_id) / "pid").read_text())
        job = wait_for(session, job.id, env, tmp_path / "jobs", until=("running",), timeout=30)
        job = cancel_training(session, job.id, jobs_root=str(tmp_path / "jobs"))
        assert job.status.value == "cancelled"
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)


def test_restart_reconciles_a_job_whose_process_is_gone(published, tmp_path):
    from curation.services.publishing import reconcile_jobs
    from db.jobs_tables import JobStatus, TrainingJob

    url, _, _, _ = published
    work = tmp_path / "jobs" / "job-lost"
    work.mkdir(parents=True)
    (work / "pid").write_text("999999")
    (work / "log.txt").write_text("step 1\n")
    with open_session(url) as session:
        session.add(TrainingJob(dataset_id=1, launcher="local", external_id=str(work), status=JobStatus.running))
        session.commit()
        [job] = reconcile_jobs(session, jobs_root=str(tmp_path / "jobs"))
        assert job.status == JobStatus.failed and job.message == "the training process stopped without an exit code"


def test_hf_jobs_launcher_runs_through_the_jobs_api_and_follows_to_completion(hub, published, tiny_model):
    url, env, commit, _ = published
    files = {p.name: p.read_bytes() for p in Path(tiny_model).iterdir() if p.is_file()}
    hub.seed_repo("model", "tester/tiny-base", files)
    args = ["train", "--dataset", "demo", "--base-model", "tester/tiny-base", "--launcher", "hf-jobs",
            "--flavor", "cpu-basic", "--max-steps", "2", "--follow"]
    done = cli(url, env, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == "completed" and answer["steps"] >= 2
    [job] = hub.state.jobs.values()
    assert job.spec["flavor"] == "cpu-basic" and job.spec["secrets"] == {"HF_TOKEN": GOOD}
    assert job.spec["command"][:2] == ["bash", "-c"] and commit in job.spec["command"]


def marked_processes(marker: str) -> list[int]:
    """Every process whose environment holds the marker: the launcher and the ranks it started in their own sessions."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def run_process_group(command: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on timeout kill it and every rank it started (torch's launcher puts
    each rank in a session of its own, out of reach of killpg), so no training rank outlives the test."""
    marker = f"STUDIO_TEST_RUN={uuid.uuid4().hex}"
    env = dict(env, STUDIO_TEST_RUN=marker.split("=", 1)[1])
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        for pid in marked_processes(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command[:4])} ... ran past {timeout} s; its output ends:\n{stderr[-2000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.slow
def test_two_gloo_processes_give_the_same_losses_as_one_with_twice_the_batch(tiny_model, tmp_path):
    rows = tmp_path / "rows.jsonl"
    with rows.open("w") as out:
        for i in range(16):
            words = " ".join(["red", "blue", "sea", "sky", "tree"][(i + k) % 5] for k in range(3 + i % 4))
            out.write(json.dumps({"messages": [{"role": "user", "content": f"Repeat: {words}"},
                                               {"role": "assistant", "content": words}]}) + "\n")
    common = ["--base-model", str(tiny_model), "--dataset", str(rows), "--method", "full", "--max-steps", "3",
              "--gradient-accumulation", "1", "--logging-steps", "1", "--learning-rate", "1e-3", "--packing", "false",
              "--max-length", "64", "--shuffle", "false", "--gradient-checkpointing", "false"]
    # gloo on the loopback interface: its own pick of an interface can wait on one that goes nowhere
    env = dict(os.environ, ACCELERATE_USE_CPU="1", PYTHONPATH=str(REPO), GLOO_SOCKET_IFNAME="lo")
    one = run_process_group([sys.executable, str(SCRIPT), *common, "--batch-size", "4",
                             "--output-dir", str(tmp_path / "one")], env=env)
    assert one.returncode == 0, one.stderr[-2000:]
    two = run_process_group([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                             "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT),
                             *common, "--batch-size", "2", "--output-dir", str(tmp_path / "two")], env=env)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "world size 2" in two.stdout

    def losses(folder):
        lines = (tmp_path / folder / "metrics.jsonl").read_text().splitlines()
        return [json.loads(line)["loss"] for line in lines if '"loss"' in line]

    assert len(losses("one")) == 3
    assert losses("two") == pytest.approx(losses("one"), rel=1e-5)
