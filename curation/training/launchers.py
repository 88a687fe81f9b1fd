"""Where an SFT job runs, behind one interface: this machine (a subprocess) or Hugging Face Jobs.

A launcher starts a job spec and returns an external id; `poll` gives its state (status, log tail, metrics,
pushed model revision) from that id alone, so an app that restarts can pick up jobs it did not start;
`cancel` stops the work for real. Tokens are passed in per call and never written anywhere.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from curation.training.sft import SFTJob

SCRIPT = Path(__file__).with_name("sft.py")
LOG_TAIL_LINES = 40


@dataclass
class JobState:
    status: str  # queued | running | completed | failed | cancelled
    log_tail: str = ""
    metrics: list[dict] = field(default_factory=list)
    message: str | None = None
    model_revision: str | None = None


class LaunchError(Exception):
    """A job could not be started or reached; the message says why in the user's words."""


class Launcher(Protocol):
    name: str

    def start(self, job: SFTJob, *, token: str | None, env: dict[str, str] | None = None) -> str: ...

    def poll(self, external_id: str, *, token: str | None = None) -> JobState: ...

    def cancel(self, external_id: str, *, token: str | None = None) -> None: ...


def parse_log(lines: list[str]) -> tuple[list[dict], str | None]:
    """Metrics (`METRICS {...}` lines) and the pushed model revision (`MODEL_REVISION repo sha`) in a log."""
    metrics, revision = [], None
    for line in lines:
        if line.startswith("METRICS "):
            try:
                metrics.append(json.loads(line[8:]))
            except json.JSONDecodeError:
                pass
        elif line.startswith("MODEL_REVISION "):
            revision = line.split()[-1]
    return metrics, revision


class LocalLauncher:
    """A subprocess on this machine (no shell), in its own process group, supervised so its exit code survives us.

    Each job gets a folder: command.json, log.txt (stdout and stderr), metrics.jsonl, pid, exit_code,
    cancelled, and the saved adapter or model under output/. The external id is that folder's path.
    """

    name = "local"
    _children: dict[str, subprocess.Popen] = {}

    def __init__(self, root: str | Path, *, num_processes: int = 1):
        self.root = Path(root)
        self.num_processes = num_processes

    def command(self, job: SFTJob) -> list[str]:
        if self.num_processes > 1:
            return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(self.num_processes),
                    "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                    str(SCRIPT), *job.to_args()]
        return [sys.executable, str(SCRIPT), *job.to_args()]

    def start(self, job: SFTJob, *, token: str | None, env: dict[str, str] | None = None) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        work = self.root / f"job-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
        work.mkdir()
        job = SFTJob(**{**job.__dict__, "output_dir": str(work / "output"), "metrics_file": str(work / "metrics.jsonl")})
        return start_supervised(work, self.command(job), token=token, env=env)

    def _alive(self, work: Path) -> bool:
        child = self._children.get(str(work))
        if child is not None:
            return child.poll() is None
        try:
            os.killpg(int((work / "pid").read_text()), 0)
            return True
        except (OSError, ValueError):
            return False

    def poll(self, external_id: str, *, token: str | None = None) -> JobState:
        work = Path(external_id)
        if not work.is_dir():
            return JobState("failed", message=f"the job folder {work} is gone")
        lines = (work / "log.txt").read_text(errors="replace").splitlines() if (work / "log.txt").exists() else []
        metrics, revision = parse_log(lines)
        tail = "\n".join(lines[-LOG_TAIL_LINES:])
        if (work / "cancelled").exists():
            return JobState("cancelled", tail, metrics, "cancelled by the user", revision)
        if (work / "exit_code").exists():
            code = int((work / "exit_code").read_text() or 1)
            if code == 0:
                return JobState("completed", tail, metrics, None, revision)
            last = next((line for line in reversed(lines) if line.strip()), "")
            return JobState("failed", tail, metrics, f"training exited with code {code}: {last[:300]}", revision)
        if self._alive(work):
            return JobState("running", tail, metrics, None, revision)
        return JobState("failed", tail, metrics, "the training process stopped without an exit code", revision)

    def cancel(self, external_id: str, *, token: str | None = None) -> None:
        work = Path(external_id)
        (work / "cancelled").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
        try:
            group = int((work / "pid").read_text())
            os.killpg(group, signal.SIGTERM)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._alive(work):
            time.sleep(0.1)
        if self._alive(work):
            os.killpg(group, signal.SIGKILL)
        child = self._children.pop(str(work), None)
        if child is not None:
            child.wait(timeout=10)


HF_STAGES = {"SCHEDULING": "queued", "RUNNING": "running", "COMPLETED": "completed", "ERROR": "failed",
             "CANCELED": "cancelled", "DELETED": "cancelled"}
# The script travels inside the job (base64 in its environment), so a private repo or a missing bucket never
# stops uv from reading it; uv then installs the PEP 723 dependencies in the container.
BOOTSTRAP = 'printf %s "$SFT_SCRIPT_B64" | base64 -d > sft.py && exec uv run sft.py "$@"'


class HFJobsLauncher:
    """Hugging Face Jobs: the uv image runs sft.py on the chosen hardware flavor."""

    name = "hf-jobs"

    def __init__(self, *, flavor: str = "a10g-small", timeout: str = "6h", namespace: str | None = None,
                 image: str | None = None):
        from huggingface_hub._jobs_api import DEFAULT_UV_IMAGE

        self.flavor, self.timeout, self.namespace = flavor, timeout, namespace
        self.image = image or DEFAULT_UV_IMAGE

    def _api(self, token: str | None):
        from huggingface_hub import HfApi

        if not token:
            raise LaunchError("Hugging Face Jobs needs a token: set HF_TOKEN or type one")
        return HfApi(token=token)

    def start(self, job: SFTJob, *, token: str | None, env: dict[str, str] | None = None) -> str:
        from huggingface_hub.errors import HfHubHTTPError

        api = self._api(token)
        job = SFTJob(**{**job.__dict__, "output_dir": "output", "metrics_file": "output/metrics.jsonl"})
        try:
            info = api.run_job(
                image=self.image, command=["bash", "-c", BOOTSTRAP, "sft", *job.to_args()],
                env={"SFT_SCRIPT_B64": base64.b64encode(SCRIPT.read_bytes()).decode(), "PYTHONUNBUFFERED": "1"},
                secrets={"HF_TOKEN": token}, flavor=self.flavor, timeout=self.timeout, namespace=self.namespace,
                labels={"app": "instruct-studio"})
        except HfHubHTTPError as error:
            from curation.publish import explain_hub_error

            raise LaunchError(f"Hugging Face Jobs refused the job: {explain_hub_error(error, api.endpoint)}") from None
        return f"{info.owner.name}/{info.id}"

    def poll(self, external_id: str, *, token: str | None = None) -> JobState:
        namespace, job_id = external_id.split("/", 1)
        api = self._api(token)
        info = api.inspect_job(job_id=job_id, namespace=namespace)
        lines = list(api.fetch_job_logs(job_id=job_id, namespace=namespace))
        metrics, revision = parse_log(lines)
        status = HF_STAGES.get(str(info.status.stage.value if hasattr(info.status.stage, "value") else info.status.stage), "running")
        message = info.status.message if status in ("failed", "cancelled") else None
        if status == "failed":
            last = next((line for line in reversed(lines) if line.strip()), "")
            message = f"{message or 'the job failed'}: {last[:300]}"
        return JobState(status, "\n".join(lines[-LOG_TAIL_LINES:]), metrics, message, revision)

    def cancel(self, external_id: str, *, token: str | None = None) -> None:
        namespace, job_id = external_id.split("/", 1)
        self._api(token).cancel_job(job_id=job_id, namespace=namespace)


def launcher_for(name: str, *, root: str | Path = "data/jobs", flavor: str = "a10g-small",
                 num_processes: int = 1) -> Launcher:
    if name == "local":
        return LocalLauncher(root, num_processes=num_processes)
    if name == "hf-jobs":
        return HFJobsLauncher(flavor=flavor)
    raise LaunchError(f"unknown launcher {name!r}: local or hf-jobs")


def start_supervised(work: Path, command: list[str], *, token: str | None, env: dict[str, str] | None) -> str:
    """Start `command` in the job folder `work` under supervise(), in its own process group (command.json,
    log.txt, pid); LocalLauncher's poll and cancel then follow it. Returns the folder (the job's id)."""
    (work / "command.json").write_text(json.dumps(command))
    child_env = dict(os.environ if env is None else env)
    child_env.pop("HF_TOKEN", None)
    if token:
        child_env["HF_TOKEN"] = token  # the child's environment only: never on disk
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    project = str(Path(__file__).resolve().parents[2])
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (project, child_env.get("PYTHONPATH")) if p)
    with open(work / "log.txt", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "curation.training.launchers", "supervise", str(work), "--", *command],
            cwd=work, env=child_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    (work / "pid").write_text(str(process.pid))
    LocalLauncher._children[str(work)] = process
    return str(work)


def supervise(work: Path, command: list[str]) -> int:
    """Run `command`, forward SIGTERM to it, and write its exit code (the record a restarted app reads)."""
    child = subprocess.Popen(command, cwd=work)

    def forward(signum, _frame):
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    code = child.wait()
    (work / "exit_code").write_text(str(code))
    return code


if __name__ == "__main__":  # python -m curation.training.launchers supervise WORKDIR -- COMMAND...
    if len(sys.argv) > 3 and sys.argv[1] == "supervise" and sys.argv[3] == "--":
        sys.exit(supervise(Path(sys.argv[2]), sys.argv[4:]))
    sys.exit("usage: python -m curation.training.launchers supervise WORKDIR -- COMMAND...")
