"""A loopback Hugging Face Hub: the HTTP API that huggingface_hub and datasets call, plus the Jobs API.

    with HubServer(tokens={"hf_good": "tester"}) as hub:
        env = hub.client_env(token="hf_good")   # HF_ENDPOINT, HF_HUB_DISABLE_XET=1, offline flags off
        subprocess.run([...], env=env)          # the real libraries do the real HTTP calls

Repositories live in memory as git-like commits (every commit a full file map, ids are sha1). Binary or
large files go through the git-LFS batch API and a PUT of the object; text files are committed inline.
Branches and tags (create_tag) name commits; a revision is a branch, a tag or a commit id.
Jobs run their command here as a subprocess in its own process group, with a `uv` shim on PATH that runs
`uv run [--with X] SCRIPT ARGS` with this interpreter (the packages are installed; nothing can download).
`fail(method, pattern, status)` makes matching requests answer an error, to test failure paths.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".zip", ".gz", ".npy")
REGULAR_MAX = 10 * 1024 * 1024
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class StoredFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def entry(self, path: str) -> dict:
        if self.lfs:
            pointer = lfs_pointer(self.sha256, len(self.data))
            return {"type": "file", "path": path, "size": len(self.data), "oid": git_blob_sha(pointer),
                    "lfs": {"oid": self.sha256, "size": len(self.data), "pointerSize": len(pointer)}}
        return {"type": "file", "path": path, "size": len(self.data), "oid": git_blob_sha(self.data)}


@dataclass
class Commit:
    sha: str
    parent: str | None
    title: str
    files: dict[str, StoredFile]
    date: str = field(default_factory=now_iso)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    owner: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        sha = self.branches.get(revision) or self.tags.get(revision) or revision
        return self.commits.get(sha)


@dataclass
class Job:
    id: str
    namespace: str
    spec: dict
    process: subprocess.Popen | None = None
    stage: str = "RUNNING"
    message: str | None = None
    lines: list[tuple[str, str]] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    finished_at: str | None = None


class HubState:
    def __init__(self, tokens: dict[str, str]):
        self.tokens = dict(tokens)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.jobs: dict[str, Job] = {}
        self.failures: list[tuple[str, re.Pattern, int]] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()


class HubServer:
    """Serve the Hub API on 127.0.0.1 in a background thread."""

    def __init__(self, tokens: dict[str, str] | None = None, port: int = 0):
        self.state = HubState(tokens or {"hf_test_token": "tester"})
        self.workdir = Path(tempfile.mkdtemp(prefix="hub-jobs-"))
        self._shim_dir = self.workdir / "bin"
        self._write_uv_shim()
        handler = type("BoundHandler", (HubHandler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "HubServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for job in list(self.state.jobs.values()):
            if job.process and job.process.poll() is None:
                os.killpg(job.process.pid, signal.SIGKILL)
        self.httpd.shutdown()
        self.httpd.server_close()

    def client_env(self, token: str | None = None, base: dict | None = None) -> dict[str, str]:
        """The environment for a process whose huggingface_hub / datasets talk to this server."""
        env = dict(os.environ if base is None else base)
        for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
            env.pop(key, None)
        env.update(HF_ENDPOINT=self.url, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1",
                   HF_HUB_DISABLE_UPDATE_CHECK="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
        if token:
            env["HF_TOKEN"] = token
        return env

    def fail(self, method: str, pattern: str, status: int = 500) -> None:
        """Answer `status` to every request whose method and path match, until `clear_failures()`."""
        self.state.failures.append((method.upper(), re.compile(pattern), status))

    def clear_failures(self) -> None:
        self.state.failures.clear()

    def seed_repo(self, repo_type: str, repo_id: str, files: dict[str, bytes], *, owner: str = "tester") -> str:
        """Create a repository holding `files` directly (test set-up, not an API path); returns its commit id."""
        sha = hashlib.sha1(f"{repo_id}{time.time_ns()}".encode()).hexdigest()
        stored = {path: StoredFile(data, path.endswith(LFS_SUFFIXES) or b"\0" in data[:1024])
                  for path, data in files.items()}
        repo = Repo(repo_type, repo_id, False, owner)
        repo.commits[sha] = Commit(sha=sha, parent=None, title="seed", files=stored)
        repo.branches["main"] = sha
        self.state.repos[(repo_type, repo_id)] = repo
        return sha

    def repo(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.state.repos.get((repo_type, repo_id))

    def _write_uv_shim(self) -> None:
        self._shim_dir.mkdir(parents=True, exist_ok=True)
        shim = self._shim_dir / "uv"
        shim.write_text(f"""#!{sys.executable}
# `uv run [--with DEP]... [--python V] SCRIPT ARGS...` with the test interpreter (no downloads here).
import os, sys
args = sys.argv[1:]
assert args and args[0] == "run", "the uv shim only does `uv run`"
args = args[1:]
while args and args[0] in ("--with", "--python"):
    args = args[2:]
os.execv({sys.executable!r}, [{sys.executable!r}, *args])
""")
        shim.chmod(0o755)

    # Jobs ------------------------------------------------------------------------------------------
    def start_job(self, namespace: str, spec: dict) -> Job:
        job = Job(id=uuid.uuid4().hex[:24], namespace=namespace, spec=spec)
        env = self.client_env(base=os.environ)
        env.update({k: str(v) for k, v in (spec.get("environment") or {}).items()})
        env.update({k: str(v) for k, v in (spec.get("secrets") or {}).items()})
        env["PATH"] = f"{self._shim_dir}{os.pathsep}{env.get('PATH', '')}"
        env["JOB_ID"] = job.id
        cwd = self.workdir / job.id
        cwd.mkdir()
        command = list(spec.get("command") or []) + list(spec.get("arguments") or [])
        try:
            job.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as error:
            job.stage, job.message, job.finished_at = "ERROR", str(error), now_iso()
            self.state.jobs[job.id] = job
            return job
        self.state.jobs[job.id] = job
        threading.Thread(target=self._pump, args=(job,), daemon=True).start()
        return job

    def _pump(self, job: Job) -> None:
        assert job.process and job.process.stdout
        for raw in job.process.stdout:
            job.lines.append((now_iso(), raw.decode("utf-8", "replace").rstrip("\n")))
        code = job.process.wait()
        with self.state.lock:
            if job.stage == "RUNNING":
                job.stage = "COMPLETED" if code == 0 else "ERROR"
                job.message = None if code == 0 else f"exit code {code}"
            job.finished_at = now_iso()

    def cancel_job(self, job: Job) -> None:
        with self.state.lock:
            if job.stage != "RUNNING":
                return
            job.stage, job.message = "CANCELED", "canceled by user"
        if job.process and job.process.poll() is None:
            os.killpg(job.process.pid, signal.SIGTERM)
            try:
                job.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(job.process.pid, signal.SIGKILL)

    def job_json(self, job: Job) -> dict:
        spec = job.spec
        return {
            "id": job.id, "createdAt": job.created_at, "startedAt": job.created_at, "finishedAt": job.finished_at,
            "dockerImage": spec.get("dockerImage"), "spaceId": spec.get("spaceId"),
            "command": spec.get("command"), "arguments": spec.get("arguments", []),
            "environment": spec.get("environment", {}), "secrets": {k: "*****" for k in spec.get("secrets") or {}},
            "flavor": spec.get("flavor"), "labels": spec.get("labels"),
            "status": {"stage": job.stage, "message": job.message},
            "owner": {"id": f"id-{job.namespace}", "name": job.namespace, "type": "user"},
            "initiator": {"type": "user", "id": f"id-{job.namespace}", "name": job.namespace},
        }


HARDWARE = [
    {"name": "cpu-basic", "prettyName": "CPU Basic", "cpu": "2 vCPU", "ram": "16 GB", "accelerator": None,
     "unitCostMicroUSD": 167, "unitCostUSD": 0.000167, "unitLabel": "minute"},
    {"name": "t4-small", "prettyName": "Nvidia T4 - small", "cpu": "4 vCPU", "ram": "15 GB",
     "accelerator": {"type": "gpu", "model": "T4", "quantity": "1", "vram": "16 GB", "manufacturer": "Nvidia"},
     "unitCostMicroUSD": 6667, "unitCostUSD": 0.006667, "unitLabel": "minute"},
    {"name": "a10g-small", "prettyName": "Nvidia A10G - small", "cpu": "4 vCPU", "ram": "15 GB",
     "accelerator": {"type": "gpu", "model": "A10G", "quantity": "1", "vram": "24 GB", "manufacturer": "Nvidia"},
     "unitCostMicroUSD": 16667, "unitCostUSD": 0.016667, "unitLabel": "minute"},
    {"name": "a100-large", "prettyName": "Nvidia A100 - large", "cpu": "12 vCPU", "ram": "142 GB",
     "accelerator": {"type": "gpu", "model": "A100", "quantity": "1", "vram": "80 GB", "manufacturer": "Nvidia"},
     "unitCostMicroUSD": 41667, "unitCostUSD": 0.041667, "unitLabel": "minute"},
]


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubHandler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # Plumbing ----------------------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        path = split.path
        state = self.hub.state
        state.requests.append((method, path))
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        for fail_method, pattern, status in list(state.failures):
            if fail_method == method and pattern.search(path):
                return self._send_json({"error": f"Injected failure {status}"}, status)
        try:
            for route_method, regex, name in ROUTES:
                if route_method == method or (route_method == "GET" and method == "HEAD"):
                    match = regex.fullmatch(path)
                    if match:
                        return getattr(self, name)(**{k: unquote(v) for k, v in match.groupdict().items() if v is not None})
            raise HubError(404, f"No route for {method} {path}")
        except HubError as error:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send_json({"error": error.message}, error.status, headers)
        except Exception as error:  # a server bug must answer, not drop the connection
            self._send_json({"error": f"test hub bug: {type(error).__name__}: {error}"}, 500)

    def _send(self, body: bytes, status: int = 200, headers: dict | None = None, content_type: str = "application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, payload, status: int = 200, headers: dict | None = None):
        self._send(json.dumps(payload).encode(), status, headers)

    def _json_body(self) -> dict:
        return json.loads(self.body or b"{}")

    def _user(self, required: bool = True) -> str | None:
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        user = self.hub.state.tokens.get(token) if token else None
        if token and user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        if required and user is None:
            raise HubError(401, "Invalid username or password.")
        return user

    def _repo(self, kind: str, repo_id: str, write: bool = False) -> Repo:
        repo_type = kind.rstrip("s") if kind else "model"
        user = self._user(required=write)
        repo = self.hub.state.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and user != repo.owner) or (write and user != repo.owner):
            raise HubError(404 if not write or repo is None else 403,
                           "Repository not found" if not write or repo is None else "You don't have the rights",
                           "RepoNotFound" if not write or repo is None else None)
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # Account and repositories -------------------------------------------------------------------------
    def whoami(self):
        user = self._user()
        self._send_json({"type": "user", "id": f"id-{user}", "name": user, "fullname": user, "orgs": [],
                         "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})

    def create_repo(self):
        user = self._user()
        body = self._json_body()
        repo_type = body.get("type") or "model"
        namespace = body.get("organization") or user
        if namespace != user:
            raise HubError(403, f"You don't have the rights to create a repo under {namespace}")
        repo_id = f"{namespace}/{body['name']}"
        url = f"{self.hub.url}/{PREFIX[repo_type]}{repo_id}"
        with self.hub.state.lock:
            if (repo_type, repo_id) in self.hub.state.repos:
                return self._send_json({"error": "You already created this repo", "url": url}, 409)
            private = body.get("visibility") == "private" if "visibility" in body else bool(body.get("private"))
            repo = Repo(repo_type, repo_id, private, user)
            first = Commit(sha=uuid.uuid4().hex + uuid.uuid4().hex[:8], parent=None, title="initial commit",
                           files={".gitattributes": StoredFile(b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
                                                               b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
                                                               False)})
            repo.commits[first.sha] = first
            repo.branches["main"] = first.sha
            self.hub.state.repos[(repo_type, repo_id)] = repo
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self):
        user = self._user()
        body = self._json_body()
        repo_id = f"{body.get('organization') or user}/{body['name']}"
        if self.hub.state.repos.pop((body.get("type") or "model", repo_id), None) is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        self._send_json({})

    def validate_yaml(self):
        import yaml

        content = self._json_body().get("content", "")
        match = re.match(r"^---\n(.*?)\n---", content, re.S)
        try:
            if match:
                yaml.safe_load(match.group(1))
        except yaml.YAMLError as error:
            return self._send_json({"errors": [{"message": str(error)}]}, 400)
        self._send_json({"errors": [], "warnings": []})

    def repo_info(self, kind: str, repo_id: str, revision: str = "main"):
        repo = self._repo(kind, repo_id)
        commit = self._commit(repo, revision)
        namespace, name = repo_id.split("/")
        info = {"_id": f"id-{repo_id}", "id": repo_id, "author": namespace, "sha": commit.sha,
                "lastModified": commit.date, "createdAt": next(iter(repo.commits.values())).date,
                "private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
                "tags": [], "siblings": [{"rfilename": path} for path in sorted(commit.files)]}
        if repo.repo_type == "model":
            info["modelId"] = repo_id
        self._send_json(info)

    def refs(self, kind: str, repo_id: str):
        repo = self._repo(kind, repo_id)
        self._send_json({"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s}
                                      for b, s in repo.branches.items()],
                         "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": s}
                                  for t, s in repo.tags.items()],
                         "converts": []})

    def create_tag(self, kind: str, repo_id: str, revision: str):
        repo = self._repo(kind, repo_id, write=True)
        commit = self._commit(repo, revision)
        tag = self._json_body().get("tag", "")
        with self.hub.state.lock:
            if tag in repo.tags:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = commit.sha
        self._send_json({})

    def list_commits(self, kind: str, repo_id: str, revision: str):
        repo = self._repo(kind, repo_id)
        commit, out = self._commit(repo, revision), []
        while commit is not None:
            out.append({"id": commit.sha, "title": commit.title, "message": "", "date": commit.date,
                        "authors": [{"user": repo.owner}]})
            commit = repo.commits.get(commit.parent) if commit.parent else None
        self._send_json(out)

    def _entries(self, commit: Commit, prefix: str, recursive: bool) -> list[dict]:
        prefix = prefix.strip("/")
        files, folders = [], set()
        for path, stored in sorted(commit.files.items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1:] if prefix else path
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(([prefix] if prefix else []) + parts[:depth])
                if recursive or depth == 1:
                    folders.add(folder)
            if recursive or len(parts) == 1:
                files.append(stored.entry(path))
        dirs = [{"type": "directory", "path": f, "size": 0, "oid": hashlib.sha1(f.encode()).hexdigest()}
                for f in sorted(folders)]
        return dirs + files

    def tree(self, kind: str, repo_id: str, revision: str, path: str = ""):
        repo = self._repo(kind, repo_id)
        commit = self._commit(repo, revision)
        if path and path.strip("/") not in {p.rsplit("/", i)[0] for p in commit.files for i in range(p.count("/") + 1)}:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        self._send_json(self._entries(commit, path, recursive=self.query.get("recursive", ["false"])[0] in ("1", "true", "True")))

    def paths_info(self, kind: str, repo_id: str, revision: str):
        repo = self._repo(kind, repo_id)
        commit = self._commit(repo, revision)
        content_type = self.headers.get("Content-Type", "")
        if "json" in content_type:
            paths = self._json_body().get("paths", [])
        else:
            paths = parse_qs(self.body.decode()).get("paths", [])
        out = []
        folders = {p.rsplit("/", i)[0] for p in commit.files for i in range(1, p.count("/") + 1)}
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                out.append(commit.files[path].entry(path))
            elif path in folders:
                out.append({"type": "directory", "path": path, "size": 0, "oid": hashlib.sha1(path.encode()).hexdigest()})
        self._send_json(out)

    # Uploads ------------------------------------------------------------------------------------------
    def preupload(self, kind: str, repo_id: str, revision: str):
        repo = self._repo(kind, repo_id, write=True)
        commit = repo.resolve(revision)
        out = []
        for item in self._json_body().get("files", []):
            sample = base64.b64decode(item.get("sample", ""))
            binary = b"\0" in sample or item["path"].endswith(LFS_SUFFIXES)
            lfs = binary or item.get("size", 0) > REGULAR_MAX
            existing = commit.files.get(item["path"]) if commit else None
            out.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                        "oid": existing.entry(item["path"])["oid"] if existing else None})
        self._send_json({"files": out, "commitOid": commit.sha if commit else None})

    def lfs_batch(self, repo_id: str, kind: str = ""):
        self._repo(kind, repo_id, write=True)
        body = self._json_body()
        objects = []
        for obj in body.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.state.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/lfs-objects/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.hub.url}/lfs-verify", "header": {}},
                }
            objects.append(entry)
        self._send(json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def lfs_put(self, oid: str):
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, "sha256 of the uploaded object does not match its oid")
        self.hub.state.lfs_objects[oid] = self.body
        self._send(b"", 200)

    def lfs_verify(self):
        body = self._json_body()
        stored = self.hub.state.lfs_objects.get(body.get("oid"))
        if stored is None or len(stored) != body.get("size"):
            raise HubError(404, "Object not found")
        self._send_json({})

    def commit(self, kind: str, repo_id: str, revision: str):
        repo = self._repo(kind, repo_id, write=True)
        lines = [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]
        with self.hub.state.lock:
            parent = self._commit(repo, revision)
            header = next(item["value"] for item in lines if item["key"] == "header")
            if header.get("parentCommit") and header["parentCommit"] != parent.sha:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(parent.files)
            for item in lines:
                key, value = item["key"], item["value"]
                if key == "file":
                    files[value["path"]] = StoredFile(base64.b64decode(value["content"]), False)
                elif key == "lfsFile":
                    data = self.hub.state.lfs_objects.get(value["oid"])
                    if data is None:
                        raise HubError(422, f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = StoredFile(data, True)
                elif key == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    files = {p: f for p, f in files.items() if not p.startswith(folder)}
            sha = hashlib.sha1(f"{parent.sha}{time.time_ns()}{uuid.uuid4()}".encode()).hexdigest()
            repo.commits[sha] = Commit(sha=sha, parent=parent.sha, title=header.get("summary", ""), files=files)
            branch = revision if revision in repo.branches else "main"
            repo.branches[branch] = sha
        self._send_json({"success": True, "commitOid": sha, "pullRequestUrl": None,
                         "commitUrl": f"{self.hub.url}/{PREFIX[repo.repo_type]}{repo_id}/commit/{sha}"})

    # Downloads ----------------------------------------------------------------------------------------
    def resolve(self, repo_id: str, revision: str, path: str, kind: str = ""):
        repo = self._repo(kind, repo_id)
        commit = self._commit(repo, revision)
        stored = commit.files.get(path)
        if stored is None:
            raise HubError(404, "Entry not found", "EntryNotFound")
        data = stored.data
        headers = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        entry = stored.entry(path)
        if stored.lfs:
            headers.update({"X-Linked-Etag": f'"{stored.sha256}"', "X-Linked-Size": str(len(data)),
                            "ETag": f'"{stored.sha256}"'})
        else:
            headers["ETag"] = f'"{entry["oid"]}"'
        status, byte_range = 200, self.headers.get("Range")
        if byte_range and byte_range.startswith("bytes="):
            start_text, _, end_text = byte_range[6:].partition("-")
            start = int(start_text) if start_text else max(0, len(data) - int(end_text))
            end = int(end_text) if (end_text and start_text) else len(data) - 1
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        self._send(data, status, headers, content_type="application/octet-stream")

    # Jobs ---------------------------------------------------------------------------------------------
    def _job(self, namespace: str, job_id: str) -> Job:
        user = self._user()
        job = self.hub.state.jobs.get(job_id)
        if job is None or job.namespace != namespace or user != namespace:
            raise HubError(404, "Job not found")
        return job

    def jobs_hardware(self):
        self._send_json(HARDWARE)

    def create_job(self, namespace: str):
        user = self._user()
        if namespace != user:
            raise HubError(403, f"You cannot run jobs under {namespace}")
        spec = self._json_body()
        if spec.get("flavor") not in {h["name"] for h in HARDWARE}:
            raise HubError(400, f"Unknown flavor {spec.get('flavor')!r}")
        job = self.hub.start_job(namespace, spec)
        self._send_json(self.hub.job_json(job))

    def list_jobs(self, namespace: str):
        self._user()
        self._send_json([self.hub.job_json(j) for j in self.hub.state.jobs.values() if j.namespace == namespace])

    def get_job(self, namespace: str, job_id: str):
        self._send_json(self.hub.job_json(self._job(namespace, job_id)))

    def cancel(self, namespace: str, job_id: str):
        job = self._job(namespace, job_id)
        self.hub.cancel_job(job)
        self._send_json(self.hub.job_json(job))

    def job_logs(self, namespace: str, job_id: str):
        """Server-sent events: every log line so far, then new ones until the job ends."""
        job = self._job(namespace, job_id)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        tail = self.query.get("tail", [None])[0]
        sent = max(0, len(job.lines) - int(tail)) if tail else 0
        try:
            self.wfile.write(f"data: {json.dumps({'timestamp': job.created_at, 'data': '===== Job started ====='})}\n\n".encode())
            while True:
                finished = job.stage != "RUNNING" and (job.process is None or job.process.poll() is not None)
                while sent < len(job.lines):
                    stamp, line = job.lines[sent]
                    self.wfile.write(f"data: {json.dumps({'timestamp': stamp, 'data': line})}\n\n".encode())
                    sent += 1
                self.wfile.flush()
                if finished and sent >= len(job.lines):
                    break
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass


_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
_KIND = r"(?P<kind>models|datasets|spaces)"
ROUTES = [(m, re.compile(p), n) for m, p, n in [
    ("GET", r"/api/whoami-v2", "whoami"),
    ("POST", r"/api/repos/create", "create_repo"),
    ("DELETE", r"/api/repos/delete", "delete_repo"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("GET", r"/api/jobs/hardware", "jobs_hardware"),
    ("POST", r"/api/jobs/(?P<namespace>[^/]+)", "create_job"),
    ("GET", r"/api/jobs/(?P<namespace>[^/]+)", "list_jobs"),
    ("GET", r"/api/jobs/(?P<namespace>[^/]+)/(?P<job_id>[^/]+)", "get_job"),
    ("POST", r"/api/jobs/(?P<namespace>[^/]+)/(?P<job_id>[^/]+)/cancel", "cancel"),
    ("GET", r"/api/jobs/(?P<namespace>[^/]+)/(?P<job_id>[^/]+)/logs", "job_logs"),
    ("GET", rf"/api/{_KIND}/{_REPO}", "repo_info"),
    ("GET", rf"/api/{_KIND}/{_REPO}/revision/(?P<revision>[^/]+)", "repo_info"),
    ("GET", rf"/api/{_KIND}/{_REPO}/refs", "refs"),
    ("POST", rf"/api/{_KIND}/{_REPO}/tag/(?P<revision>[^/]+)", "create_tag"),
    ("GET", rf"/api/{_KIND}/{_REPO}/commits/(?P<revision>[^/]+)", "list_commits"),
    ("GET", rf"/api/{_KIND}/{_REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.*))?", "tree"),
    ("POST", rf"/api/{_KIND}/{_REPO}/paths-info/(?P<revision>[^/]+)", "paths_info"),
    ("POST", rf"/api/{_KIND}/{_REPO}/preupload/(?P<revision>[^/]+)", "preupload"),
    ("POST", rf"/api/{_KIND}/{_REPO}/commit/(?P<revision>[^/]+)", "commit"),
    ("POST", r"/(?:(?P<kind>datasets|spaces)/)?(?P<repo_id>[^/]+/[^/]+)\.git/info/lfs/objects/batch", "lfs_batch"),
    ("PUT", r"/lfs-objects/(?P<oid>[0-9a-f]{64})", "lfs_put"),
    ("POST", r"/lfs-verify", "lfs_verify"),
    ("GET", r"/(?:(?P<kind>datasets|spaces)/)?(?P<repo_id>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<path>.+)", "resolve"),
]]


def main() -> None:  # python -m tests.hub_server [PORT]: serve until interrupted, token hf_test_token -> tester
    server = HubServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(server.url, flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
