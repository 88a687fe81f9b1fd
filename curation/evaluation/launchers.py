"""Evaluations on Hugging Face Jobs: the code goes up as a zip, the job runs it, the results come back the same way.

The evaluation job imports the curation package, and that package zips to ~400 KB: too big for the job's
environment (values of about 128 KB each on Linux, and every inspect_job would carry it back), so `start` uploads
curation/ as jobs/<folder>/code.zip to the user's private dataset repo NAMESPACE/instruct-studio-jobs and pins the
job to that commit. The job is a small PEP 723 script (base64 in its environment, as the SFT launcher ships sft.py):
uv installs the dependencies, the script downloads the zip, puts it on sys.path, runs curation.evaluation.job and
uploads output/results.json beside the zip; the log carries EVAL_PROGRESS, EVAL_RESULT and EVAL_ERROR lines as a
local run's does. Tokens and API keys travel only in the job's secrets, never in its environment, spec or log.
"""
from __future__ import annotations

import base64
import io
import ipaddress
import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from curation.training.launchers import HF_STAGES, LOG_TAIL_LINES, LaunchError

PACKAGE = Path(__file__).resolve().parents[1]  # curation/
JOBS_REPO = "instruct-studio-jobs"
BOOTSTRAP = 'printf %s "$EVAL_BOOTSTRAP_B64" | base64 -d > evaluate.py && exec uv run evaluate.py'
SCRIPT = '''# /// script
# requires-python = ">=3.10"
# dependencies = [
#     "torch>=2.4",
#     "transformers[serving]==5.23.0",
#     "datasets==5.2.0",
#     "peft==0.21.2",
#     "accelerate==1.15.0",
#     "huggingface_hub==2.4.0",
#     "openai==3.51.0",
#     "rapidfuzz==3.14.6",
#     "numpy",
#     "lm_eval[api]==0.4.13",
# ]
# ///
"""An Instruct Studio evaluation on Hugging Face Jobs: fetch the shipped code, evaluate, upload results.json."""
import json, os, sys, zipfile

from huggingface_hub import HfApi, hf_hub_download

repo, folder = os.environ["EVAL_JOBS_REPO"], os.environ["EVAL_JOBS_FOLDER"]
code = hf_hub_download(repo, f"{folder}/code.zip", repo_type="dataset", revision=os.environ["EVAL_CODE_REVISION"])
zipfile.ZipFile(code).extractall("code")
sys.path.insert(0, os.path.abspath("code"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath("code"), os.environ.get("PYTHONPATH")]))
with open("spec.json", "w") as out:
    out.write(os.environ["EVAL_SPEC"])
from curation.evaluation.job import ERROR, main

status = main(["--spec", "spec.json", "--out", "output"])
if status == 0:
    try:
        HfApi().upload_file(path_or_fileobj="output/results.json", path_in_repo=f"{folder}/results.json",
                            repo_id=repo, repo_type="dataset", commit_message=f"Evaluation results {folder}")
    except Exception as error:
        print(ERROR + json.dumps({"message": f"the results could not be uploaded to {repo}: "
                                             f"{type(error).__name__}: {str(error)[:300]}"}), flush=True)
        status = 1
sys.exit(status)
'''


@dataclass
class RemoteState:
    status: str  # queued | running | completed | failed | cancelled
    lines: list[str] = field(default_factory=list)
    message: str | None = None

    @property
    def log_tail(self) -> str:
        return "\n".join(self.lines[-LOG_TAIL_LINES:])


def code_zip() -> bytes:
    """The curation package as a zip (sources and data files, no caches)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(PACKAGE.parent).as_posix())
    return buffer.getvalue()


def _loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_local_path(name: str | None) -> bool:
    return bool(name) and (Path(name).is_dir() or Path(name).is_absolute() or name.startswith("."))


def remote_secrets(spec: dict, *, token: str | None, env: dict[str, str] | None, endpoint: str) -> dict[str, str]:
    """The job's secrets (HF_TOKEN, and each endpoint key by its variable's name); LaunchError, in words, for a spec
    that a job on Hugging Face's machines could not run: a model or base model in a local folder, a judge or server
    with no base URL, or on this machine's loopback while the Hub is not."""
    if not token:
        raise LaunchError("Hugging Face Jobs needs a token: set HF_TOKEN or type one")
    for what, name in (("model", spec.get("model")), ("base model", spec.get("base_model"))):
        if _is_local_path(name):
            raise LaunchError(f"an evaluation on Hugging Face Jobs needs the {what} on the Hub: {name} is a folder "
                              f"on this machine; push it to the Hub, or evaluate with the local launcher")
    source = os.environ if env is None else env
    secrets = {"HF_TOKEN": token}
    endpoints = [("the judge", spec.get("judge"))] + [(f"the {side} model's server", given)
                                                        for side, given in (spec.get("serve") or {}).items()]
    for what, given in endpoints:
        if not given:
            continue
        if given.get("kind") == "local":
            if _is_local_path(given.get("model")):
                raise LaunchError(f"{what} runs inside the job: its model must be on the Hub, not the folder "
                                  f"{given['model']}")
            continue
        url = given.get("base_url") or ""
        if not url and given.get("kind") != "hf":
            raise LaunchError(f"{what} has no base URL: a job on Hugging Face Jobs can only reach a server by its "
                              f"address")
        if url and _loopback(url) and not _loopback(endpoint):
            raise LaunchError(f"{what} answers at {url}, on this machine's loopback: a job on Hugging Face Jobs "
                              f"cannot reach it; give it an address the job can reach")
        variable = given.get("api_key_env") or "LLM_API_KEY"
        if source.get(variable) and variable != "HF_TOKEN":
            secrets[variable] = source[variable]
    return secrets


class HFJobsEvaluations:
    """An evaluation spec as a Hugging Face Job on the uv image; the external id is "NAMESPACE/JOB_ID"."""

    name = "hf-jobs"

    def __init__(self, *, flavor: str = "a10g-small", timeout: str = "4h", namespace: str | None = None,
                 image: str | None = None):
        from huggingface_hub._jobs_api import DEFAULT_UV_IMAGE

        self.flavor, self.timeout, self.namespace = flavor, timeout, namespace
        self.image = image or DEFAULT_UV_IMAGE

    @staticmethod
    def _api(token: str | None):
        from huggingface_hub import HfApi

        if not token:
            raise LaunchError("Hugging Face Jobs needs a token: set HF_TOKEN or type one")
        return HfApi(token=token)

    @staticmethod
    def endpoint() -> str:
        from huggingface_hub import constants

        return constants.ENDPOINT

    def start(self, spec: dict, *, token: str | None, secrets: dict[str, str]) -> tuple[str, dict]:
        """Upload the code, start the job; returns (external id, {"repo", "folder", "code_revision"})."""
        from huggingface_hub.errors import HfHubHTTPError

        from curation.publish import explain_hub_error

        api = self._api(token)
        try:
            namespace = self.namespace or api.whoami()["name"]
            repo = f"{namespace}/{JOBS_REPO}"
            folder = f"jobs/eval-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
            api.create_repo(repo, repo_type="dataset", private=True, exist_ok=True)
            commit = api.upload_file(path_or_fileobj=code_zip(), path_in_repo=f"{folder}/code.zip", repo_id=repo,
                                     repo_type="dataset", commit_message=f"Evaluation code {folder}")
        except HfHubHTTPError as error:
            raise LaunchError(f"the evaluation code could not be uploaded: {explain_hub_error(error, api.endpoint)}"
                              ) from None
        where = {"repo": repo, "folder": folder, "code_revision": commit.oid}
        environment = {"EVAL_BOOTSTRAP_B64": base64.b64encode(SCRIPT.encode()).decode(), "EVAL_JOBS_REPO": repo,
                       "EVAL_JOBS_FOLDER": folder, "EVAL_CODE_REVISION": commit.oid, "EVAL_SPEC": json.dumps(spec),
                       "PYTHONUNBUFFERED": "1"}
        try:
            info = api.run_job(image=self.image, command=["bash", "-c", BOOTSTRAP], env=environment,
                               secrets=secrets, flavor=self.flavor, timeout=self.timeout, namespace=self.namespace,
                               labels={"app": "instruct-studio", "kind": "evaluation"})
        except HfHubHTTPError as error:
            raise LaunchError(f"Hugging Face Jobs refused the job: {explain_hub_error(error, api.endpoint)}") from None
        return f"{info.owner.name}/{info.id}", where

    def poll(self, external_id: str, *, token: str | None) -> RemoteState:
        """The job's state and whole log so far; "failed" when the Jobs API no longer knows the job."""
        from huggingface_hub.errors import HfHubHTTPError

        from curation.publish import explain_hub_error

        namespace, job_id = external_id.split("/", 1)
        api = self._api(token)
        try:
            info = api.inspect_job(job_id=job_id, namespace=namespace)
            lines = list(api.fetch_job_logs(job_id=job_id, namespace=namespace))
        except HfHubHTTPError as error:
            if getattr(error.response, "status_code", None) == 404:
                return RemoteState("failed", message=f"the job {external_id} is gone from Hugging Face Jobs")
            raise LaunchError(f"Hugging Face Jobs could not be asked about the job: "
                              f"{explain_hub_error(error, api.endpoint)}") from None
        stage = info.status.stage
        status = HF_STAGES.get(str(getattr(stage, "value", stage)), "running")
        message = info.status.message if status in ("failed", "cancelled") else None
        return RemoteState(status, lines, message)

    def results(self, where: dict, *, token: str | None) -> dict:
        """The results.json the job uploaded; LaunchError when it is not there."""
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(where["repo"], f"{where['folder']}/results.json", repo_type="dataset", token=token)
        except Exception as error:  # noqa: BLE001 - missing or unreachable: said, the evaluation fails
            raise LaunchError(f"the job's results could not be downloaded from {where['repo']}: "
                              f"{type(error).__name__}") from None
        return json.loads(Path(path).read_text())

    def cancel(self, external_id: str, *, token: str | None) -> None:
        namespace, job_id = external_id.split("/", 1)
        self._api(token).cancel_job(job_id=job_id, namespace=namespace)
