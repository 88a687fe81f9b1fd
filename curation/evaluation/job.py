"""The evaluation job: a trained model and its base on the published test split, stage by stage.

    python -m curation.evaluation.job --spec spec.json --out DIR

Stages: data (the test split), loss (loss and perplexity of tuned and base on the reference outputs), answers
(greedy answers to the test prompts through a curation.llm backend: by default a `transformers serve` started
here on loopback, serving local folders; a LoRA adapter is merged into a folder first), scores (ROUGE-L and exact
match), judge (pairwise, both orders, tuned-vs-base and tuned-vs-reference), harness (lm-evaluation-harness
tasks against the served models). Each stage prints `EVAL_PROGRESS {"stage", "done", "total"}`, the stage one of
data, loss:base, loss:tuned, answers:tuned, answers:base, scores, judge:vs_base, judge:vs_reference,
harness:tuned, harness:base (the service stores "done" at the end); the end prints
`EVAL_RESULT {...}` and writes DIR/results.json; a failure prints `EVAL_ERROR {"message"}` in words and exits 1.
The spec never holds a secret: the judge's key and HF_TOKEN are read from the environment.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PROGRESS, RESULT, ERROR = "EVAL_PROGRESS ", "EVAL_RESULT ", "EVAL_ERROR "
STAGES = ("data", "loss", "answers", "scores", "judge", "harness")
LOCAL_TASK = "local"


class EvaluationFailed(Exception):
    """A stage that cannot go on, said in the user's words."""


def progress(stage: str, done: int, total: int) -> None:
    print(PROGRESS + json.dumps({"stage": stage, "done": done, "total": total}), flush=True)


def parse_log(lines: list[str]) -> tuple[dict, dict | None, str | None]:
    """(the latest progress, the result, the error message) that a job's log says."""
    latest, result, error = {}, None, None
    for line in lines:
        for prefix in (PROGRESS, RESULT, ERROR):
            if line.startswith(prefix):
                try:
                    value = json.loads(line[len(prefix):])
                except json.JSONDecodeError:
                    continue
                if prefix == PROGRESS:
                    latest = value
                elif prefix == RESULT:
                    result = value
                else:
                    error = value.get("message")
    return latest, result, error


# The test split ---------------------------------------------------------------------------------------------

def to_example(row: dict) -> dict | None:
    """{"messages": the prompt, "prompt": its text, "reference": the output} of a published row of any config."""
    if "messages" in row and row["messages"]:
        chat = list(row["messages"])
        last = max((i for i, m in enumerate(chat) if m.get("role") == "assistant"), default=None)
        if last is None:
            return None
        prompt, reference = chat[:last], chat[last]["content"]
    elif "prompt" in row and "completion" in row:
        prompt, reference = list(row["prompt"]), row["completion"][-1]["content"]
    elif "instruction" in row:
        user = f"{row['instruction']}\n\n{row['input']}" if row.get("input") else row["instruction"]
        system = [{"role": "system", "content": row["system"]}] if row.get("system") else []
        prompt, reference = system + [{"role": "user", "content": user}], row.get("output") or ""
    else:
        return None
    prompt = [{"role": m["role"], "content": m.get("content") or ""} for m in prompt]
    if not prompt or any(m["role"] not in ("system", "user", "assistant") for m in prompt):
        return None  # tool turns do not go through a plain chat request
    text = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), prompt[-1]["content"])
    return {"messages": prompt, "prompt": text, "reference": reference}


def test_examples(spec: dict) -> list[dict]:
    """The evaluable examples of the published test split; EvaluationFailed when there is none."""
    from datasets import load_dataset

    repo, config, revision = spec["dataset_repo"], spec.get("dataset_config") or "messages", spec.get("dataset_revision")
    where = f"{repo} (config {config}, revision {revision or 'main'})"
    try:
        rows = load_dataset(repo, config, revision=revision, split="test")
    except ValueError as error:
        if "split" in str(error).lower():
            raise EvaluationFailed(f"the dataset {where} has no test split: publish it with a test fraction "
                                   f"above 0") from None
        raise EvaluationFailed(f"the dataset {where} cannot be loaded: {str(error)[:300]}") from None
    except Exception as error:  # noqa: BLE001 - a missing repo, a network refusal: said, not a stack trace
        raise EvaluationFailed(f"the dataset {where} cannot be loaded: {type(error).__name__}: "
                               f"{str(error)[:300]}") from None
    if len(rows) == 0:
        raise EvaluationFailed(f"the test split of {where} is empty: publish it with a test fraction above 0")
    examples = [e for e in (to_example(row) for row in rows) if e is not None]
    if spec.get("limit"):
        examples = examples[:int(spec["limit"])]
    if not examples:
        raise EvaluationFailed(f"the test split of {where} has no example with a prompt and a reference output")
    return examples


# The models -------------------------------------------------------------------------------------------------

def model_folder(name: str, revision: str | None) -> Path:
    """A local folder holding the model or adapter `name` (a folder already, or a Hub repo at `revision`)."""
    if Path(name).is_dir():
        return Path(name)
    if Path(name).is_absolute() or name.startswith("."):
        raise EvaluationFailed(f"the model {name} cannot be loaded: there is no such folder")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision))
    except Exception as error:  # noqa: BLE001
        raise EvaluationFailed(f"the model {name}@{revision or 'main'} cannot be downloaded: "
                               f"{type(error).__name__}: {str(error)[:300]}") from None


def adapter_base(folder: Path) -> str | None:
    """The base model a LoRA adapter folder names, or None when the folder holds a whole model."""
    config = folder / "adapter_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("base_model_name_or_path")


def load(name: str, device: str | None):
    from curation.evaluation.perplexity import load_model

    if (Path(name).is_absolute() or name.startswith(".")) and not Path(name).is_dir():
        raise EvaluationFailed(f"the model {name} cannot be loaded: there is no such folder")
    try:
        return load_model(name, device)
    except Exception as error:  # noqa: BLE001 - any loader failure becomes words
        raise EvaluationFailed(f"the model {name} cannot be loaded: {type(error).__name__}: "
                               f"{str(error)[:300]}") from None


def load_tuned(folder: Path, base: str | None, device: str | None, merged: Path):
    """(model, tokenizer, device, servable folder): an adapter loads onto its base and is merged into `merged`."""
    if adapter_base(folder) is None:
        model, tokenizer, device = load(str(folder), device)
        return model, tokenizer, device, folder
    from peft import PeftModel
    from transformers import AutoTokenizer

    if not base:
        raise EvaluationFailed(f"the adapter in {folder} names no base model to load it onto: give the base model")
    model, tokenizer, device = load(base, device)
    try:
        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload().eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder))  # the run saved its tokenizer (and template) beside
    except Exception as error:  # noqa: BLE001
        raise EvaluationFailed(f"the adapter in {folder} does not load onto {base}: {type(error).__name__}: "
                               f"{str(error)[:300]}") from None
    model.save_pretrained(merged)
    tokenizer.save_pretrained(merged)
    return model, tokenizer, device, merged


def measure_loss(spec: dict, examples: list[dict], work: Path) -> tuple[dict, dict[str, Path]]:
    """({"tuned": {...}, "base": {...}} loss metrics, {"tuned": folder, "base": folder} to serve)."""
    import torch

    from curation.evaluation.perplexity import test_loss

    pairs = [(e["messages"], e["reference"]) for e in examples]
    folder = model_folder(spec["model"], spec.get("model_revision"))
    base = spec.get("base_model") or adapter_base(folder)
    metrics, folders = {}, {}
    for side in ("base", "tuned"):
        if side == "base":
            if not base:
                continue
            model, tokenizer, device = load(base, spec.get("device"))
            folders["base"] = Path(base) if Path(base).is_dir() else model_folder(base, None)
        else:
            model, tokenizer, device, folders["tuned"] = load_tuned(folder, base, spec.get("device"),
                                                                    work / "merged-tuned")
        result = test_loss(model, tokenizer, pairs, device=device, batch_size=int(spec.get("batch_size") or 8),
                           max_length=int(spec.get("max_length") or 1024),
                           progress=lambda done, total: progress(f"loss:{side}", done, total))
        metrics[side] = {"loss": result.loss, "perplexity": result.perplexity, "tokens": result.tokens,
                         "per_example_loss": result.per_example}
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return metrics, folders


# Serving and answers ------------------------------------------------------------------------------------------

class Served:
    """`transformers serve` on a free loopback port, loading each requested folder on demand."""

    def __init__(self, log_path: Path, device: str | None):
        self.log_path, self.device, self.process, self.url = log_path, device, None, ""

    def __enter__(self) -> "Served":
        command = Path(sys.executable).with_name("transformers")
        if not command.exists():
            raise EvaluationFailed("the `transformers` command is not installed: pip install 'transformers[serving]'"
                                   ", or give the evaluation a base URL of a running server")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.log = open(self.log_path, "w+")
        self.process = subprocess.Popen(
            [str(command), "serve", "--host", "127.0.0.1", "--port", str(port), "--device", self.device or "auto"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.log.seek(0)
                    last = self.log.read()[-400:]
                    self.__exit__()
                    raise EvaluationFailed(f"transformers serve did not start: {last}") from None
                time.sleep(0.5)
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def answers_of(backend, examples: list[dict], side: str, max_new_tokens: int, concurrency: int) -> list[str | None]:
    """Greedy answers to each example's prompt (None where the backend failed); EvaluationFailed on a fatal error."""
    from curation.llm import ChatRequest, run_requests

    requests = [ChatRequest(e["messages"], temperature=0.0, max_tokens=max_new_tokens) for e in examples]
    report = run_requests(backend, requests, concurrency=concurrency,
                          progress=lambda done, total: progress(f"answers:{side}", done, total))
    if report.fatal is not None:
        raise EvaluationFailed(f"the {side} model did not answer: {report.fatal}")
    return [reply.text if reply is not None else None for reply in report.replies]


def endpoint(spec: dict, side: str, served: Served | None, folders: dict[str, Path]):
    """(backend, (base URL, model name, key variable)) that answer for `side`: as the spec gives, else the local
    server."""
    from curation.llm import make_backend

    given = (spec.get("serve") or {}).get(side)
    if given:
        backend = make_backend(given.get("kind", "openai"), model=given["model"], base_url=given.get("base_url", ""),
                               api_key_env=given.get("api_key_env") or "LLM_API_KEY", timeout=600)
        return backend, (given.get("base_url", ""), given["model"], given.get("api_key_env"))
    name = str(Path(folders[side]).resolve())
    return make_backend("openai", model=name, base_url=served.url, timeout=600), (served.url, name, None)


# Judge and harness ------------------------------------------------------------------------------------------

def judge(spec: dict, examples: list[dict], tuned: list, base: list) -> tuple[dict, list[dict]]:
    """({"vs_base": rates, "vs_reference": rates}, per example {"vs_base": ..., "vs_reference": ...})."""
    from curation.evaluation.pairwise import JudgeStopped, judge_pairs, length_controlled_win_rate, preference, win_rate
    from curation.llm import make_backend

    given = spec["judge"]
    backend = make_backend(given.get("kind", "openai"), model=given["model"], base_url=given.get("base_url", ""),
                           api_key_env=given.get("api_key_env") or "LLM_API_KEY", timeout=120)
    per_example = [{} for _ in examples]
    metrics = {"model": given["model"]}
    against = {"vs_base": base, "vs_reference": [e["reference"] for e in examples]}
    for name, others in against.items():
        positions = [i for i, (a, b) in enumerate(zip(tuned, others)) if a is not None and b is not None]
        if not positions:
            continue
        items = [(examples[i]["prompt"], examples[i]["reference"] if name == "vs_base" else None, tuned[i], others[i])
                 for i in positions]
        try:
            judgements = judge_pairs(backend, items, concurrency=int(spec.get("concurrency") or 4),
                                     progress=lambda done, total: progress(f"judge:{name}", done, total))
        except JudgeStopped as error:
            raise EvaluationFailed(str(error)) from None
        preferences = [preference(j) for j in judgements]
        unreadable = sum(p is None for p in preferences)
        unread_orders = sum((j.a_first is None) + (j.b_first is None) for j in judgements)
        rates = {"pairs": len(items), "judged": len(items) - unreadable, "unreadable": unreadable,
                 "unreadable_verdicts": unread_orders, "win_rate": None, "length_controlled_win_rate": None}
        if unreadable < len(items):
            rates["win_rate"] = win_rate(preferences)
            rates["length_controlled_win_rate"] = length_controlled_win_rate(
                preferences, [len(tuned[i]) for i in positions], [len(others[i]) for i in positions])
        if unread_orders:
            rates["note"] = (f"judge {name.replace('_', ' ')}: {unread_orders} of {2 * len(items)} verdicts could "
                             f"not be read (kept as None); {unreadable} pairs with neither order read are left out "
                             f"of the win rates")
        metrics[name] = rates
        for i, j, p in zip(positions, judgements, preferences):
            per_example[i][name] = {"a_first": j.a_first, "b_first": j.b_first, "preference": p,
                                    "replies": {"a_first": j.a_first_reply, "b_first": j.b_first_reply},
                                    "errors": {"a_first": j.a_first_error, "b_first": j.b_first_error}}
    return metrics, per_example


def harness(spec: dict, examples: list[dict], work: Path, targets: dict[str, tuple]) -> dict:
    """{"tuned": {task: {metric: value}}, "base": ...} from lm-evaluation-harness against the served models."""
    from curation.evaluation.harness import HarnessError, local_task, run_harness

    tasks, include = [], None
    for task in spec["harness"]:
        if task == LOCAL_TASK:
            include = work / "harness-tasks"
            tasks.append(local_task(include, name="instruct_studio_test",
                                    max_new_tokens=int(spec.get("max_new_tokens") or 128), examples=[
                {"instruction": e["prompt"], "input": "", "output": e["reference"]} for e in examples]))
        else:
            tasks.append(task)
    found = {}
    for side, (url, model, key_env) in targets.items():
        progress(f"harness:{side}", 0, 1)
        try:
            found[side] = run_harness(base_url=url, model=model, tasks=tasks,
                                      include_path=str(include) if include else None, limit=spec.get("limit"),
                                      api_key_env=key_env)
        except HarnessError as error:
            raise EvaluationFailed(f"the harness could not run on the {side} model: {error}") from None
        progress(f"harness:{side}", 1, 1)
    return found


# The job ------------------------------------------------------------------------------------------------------

def evaluate(spec: dict, work: Path) -> dict:
    """Every stage the spec asks for; returns {"metrics", "answers", "notes"}."""
    from curation.evaluation.metrics import answer_scores, exact_match, rouge_l

    progress("data", 0, 1)
    examples = test_examples(spec)
    progress("data", 1, 1)
    notes: list[str] = []
    loss, folders = measure_loss(spec, examples, work)
    metrics: dict = {side: dict(values) for side, values in loss.items()}
    if "base" not in folders:
        notes.append("no base model is known for this model: only the tuned model was evaluated")
    answers = {}
    needs_server = any(not (spec.get("serve") or {}).get(side) for side in folders)
    with (Served(work / "serve.log", spec.get("device")) if needs_server else _Nothing()) as served:
        targets = {}
        for side in ("tuned", "base"):
            if side not in folders:
                continue
            backend, targets[side] = endpoint(spec, side, served, folders)
            answers[side] = answers_of(backend, examples, side, int(spec.get("max_new_tokens") or 128),
                                       int(spec.get("concurrency") or 4))
            failed = sum(a is None for a in answers[side])
            if failed:
                notes.append(f"the {side} model gave no answer to {failed} of {len(examples)} prompts")
        progress("scores", 0, 1)
        for side, given in answers.items():
            kept = [(a, e["reference"]) for a, e in zip(given, examples) if a is not None]
            metrics[side].update(answer_scores([a for a, _ in kept], [r for _, r in kept]))
        progress("scores", 1, 1)
        judged = [{} for _ in examples]
        if spec.get("judge") and "tuned" in answers:
            metrics["judge"], judged = judge(spec, examples, answers["tuned"], answers.get("base") or
                                             [None] * len(examples))
            notes += [r["note"] for r in metrics["judge"].values() if isinstance(r, dict) and r.get("note")]
        if spec.get("harness"):
            metrics["harness"] = harness(spec, examples, work, targets)
    rows = []
    for i, example in enumerate(examples):
        row = {"position": i, "prompt": example["prompt"], "reference": example["reference"]}
        for side in ("tuned", "base"):
            answer = answers.get(side, [None] * len(examples))[i]
            row[f"{side}_answer"] = answer
            row[f"rouge_l_{side}"] = rouge_l(answer, example["reference"]) if answer is not None else None
            row[f"exact_match_{side}"] = exact_match(answer, example["reference"]) if answer is not None else None
            row[f"loss_{side}"] = loss.get(side, {}).get("per_example_loss", [None] * len(examples))[i]
        row.update(judged[i])
        rows.append(row)
    for side in loss:
        metrics[side].pop("per_example_loss", None)
    return {"metrics": metrics, "answers": rows, "notes": notes}


class _Nothing:
    url = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _finite(value):
    """JSON has no NaN or infinity: such a number is written as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="the evaluation spec (JSON, no secrets)")
    parser.add_argument("--out", required=True, help="folder for results.json, the merged model and the server log")
    args = parser.parse_args(argv)
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    try:
        spec = json.loads(Path(args.spec).read_text())
        found = _finite(evaluate(spec, work))
    except EvaluationFailed as error:
        print(ERROR + json.dumps({"message": str(error)}), flush=True)
        return 1
    except Exception as error:  # noqa: BLE001 - the log keeps the trace; the user reads the words
        import traceback

        traceback.print_exc()
        print(ERROR + json.dumps({"message": f"the evaluation stopped on an unexpected error: "
                                             f"{type(error).__name__}: {str(error)[:300]}"}), flush=True)
        return 1
    finally:  # the merged copy of a LoRA model is as big as the base: it only lived to be served
        shutil.rmtree(work / "merged-tuned", ignore_errors=True)
    (work / "results.json").write_text(json.dumps(found, indent=1))
    print(RESULT + json.dumps({"metrics": found["metrics"], "notes": found["notes"],
                               "answers": len(found["answers"])}), flush=True)
    return 0


# Launching on this machine: the training launchers' supervisor, so exit codes and cancel work the same way ----

def start_local(root: str | Path, spec: dict, *, token: str | None = None, env: dict[str, str] | None = None) -> str:
    """Start the job in a new folder under `root` (spec.json, log.txt, output/); returns the folder (its id)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    work = root / f"eval-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
    work.mkdir()
    (work / "spec.json").write_text(json.dumps(spec, indent=1))
    command = [sys.executable, "-m", "curation.evaluation.job", "--spec", str(work / "spec.json"),
               "--out", str(work / "output")]
    from curation.training.launchers import start_supervised

    return start_supervised(work, command, token=token, env=env)  # poll and cancel as the training jobs


if __name__ == "__main__":
    sys.exit(main())
