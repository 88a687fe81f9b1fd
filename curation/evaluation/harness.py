"""Standard benchmarks through lm-evaluation-harness against a served model, and small local tasks it runs offline.

    name = local_task(folder, name="held_out", examples=[{"instruction": ..., "input": ..., "output": ...}])
    scores = run_harness(base_url="http://127.0.0.1:8000/v1", model="my-model", tasks=[name], include_path=folder)
    scores["held_out"]  # {"samples": 5.0, "exact_match": 0.4, "exact_match_stderr": 0.24, "bleu": 12.1, ...}

The model is reached through its OpenAI-compatible /chat/completions (`transformers serve`, vLLM, the Hub's
Inference Providers), so only generate_until tasks run. Log-likelihood (multiple-choice) tasks need /completions with
`echo` and prompt logprobs: `transformers serve` 5.23 accepts neither (its /v1/completions drops both fields and
answers `logprobs: null`), and chat APIs give no prompt logprobs, so such tasks are refused in words before any
request. A task must find its data on this machine: a task whose dataset is not cached is refused in words too.
"""
from __future__ import annotations

import difflib
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

HUB_HOSTS = ("huggingface.co", "hf.co", "huggingface.cloud", "hf.space")  # where HF_TOKEN may go
GENERATION = "generate_until"


class HarnessError(ValueError):
    """A benchmark that cannot run, said in words: unknown task, data not on this machine, silent endpoint."""


def local_task(folder: str | Path, *, name: str, examples: list[dict], max_new_tokens: int = 256) -> str:
    """Write a generate_until task of `examples` ({instruction, input, output}) into `folder`; returns its name.

    The task reads a JSON-lines file beside its YAML (the `json` builder, no download) and scores the answers by
    exact match and corpus BLEU against `output`; run it with `run_harness(..., include_path=folder)`. Answers end
    where the model ends its turn (no stop string), or after `max_new_tokens`.
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise HarnessError(f"a task name takes letters, digits and underscores, starting with a letter: {name!r}")
    if not examples:
        raise HarnessError(f"the task {name} has no examples")
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.jsonl"
    with data.open("w", encoding="utf-8") as out:
        for example in examples:
            row = {key: str(example.get(key) or "") for key in ("instruction", "input", "output")}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    config = {
        "task": name,
        "dataset_path": "json",
        # The cache sits with the task, so evaluating never writes to (or reads stale rows from) the user's cache.
        "dataset_kwargs": {"data_files": {"test": str(data)}, "cache_dir": str(folder / ".datasets-cache")},
        "test_split": "test",
        "output_type": GENERATION,
        "doc_to_text": "{{instruction}}{% if input %}\n\n{{input}}{% endif %}",
        "doc_to_target": "{{output}}",
        # No stop string: an answer may hold blank lines, and a chat endpoint ends the turn itself.
        "generation_kwargs": {"until": [], "max_gen_toks": max_new_tokens, "do_sample": False},
        "metric_list": [
            {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True},
            # lm-eval's own corpus BLEU (sacrebleu): no metric script to download, unlike evaluate's rouge
            {"metric": "bleu", "aggregation": "bleu", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }
    import yaml

    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return name


def run_harness(*, base_url: str, model: str, tasks: list[str], include_path: str | None = None,
                limit: int | None = None, api_key_env: str | None = None, num_concurrent: int = 1,
                timeout: float = 120) -> dict[str, dict[str, float]]:
    """Scores {task: {metric: value}} of `model` served at `base_url` on lm-eval `tasks` (generate_until only).

    `include_path` is a folder of extra task YAMLs (see `local_task`); `limit` caps the examples per task. The key
    sent is read from the variable `api_key_env` and nowhere else (no HF_TOKEN, no OPENAI_API_KEY by default).
    """
    if not tasks:
        raise HarnessError("no tasks given")
    header = _request_header(base_url, api_key_env)
    manager = _task_manager(include_path, tuple(tasks))
    loaded = [_load(manager, name) for name in tasks]
    _refuse_loglikelihood(loaded)

    import lm_eval

    served = _chat_endpoint(base_url=_chat_url(base_url), model=model, header=header, num_concurrent=num_concurrent,
                            timeout=timeout)
    try:
        results = lm_eval.simple_evaluate(
            model=served, tasks=[obj for objs in loaded for obj in objs], task_manager=manager, limit=limit,
            apply_chat_template=True, log_samples=False, bootstrap_iters=1000,
        )
    except Exception as error:  # noqa: BLE001 - network failures come from requests, aiohttp or asyncio
        key = header.get("Authorization", "").removeprefix("Bearer ")
        raise _endpoint_error(error, base_url, key) from error
    return _scores(results)


# Tasks --------------------------------------------------------------------------------------------------------

def _folder_fingerprint(include_path: str | None) -> tuple:
    if not include_path:
        return ()
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in Path(include_path).rglob("*.yaml")))


def _task_manager(include_path: str | None, names: tuple[str, ...]):
    """The task index that knows `names`: `include_path` alone when it holds them all (fast), else lm-eval's too."""
    fingerprint = _folder_fingerprint(include_path)
    if include_path:
        local = _cached_manager(str(include_path), fingerprint, False)
        if all(name in local.all_tasks for name in names):
            return local
    manager = _cached_manager(str(include_path) if include_path else None, fingerprint, True)
    unknown = [name for name in names if name not in manager.all_tasks]
    if unknown:
        hints = {name: difflib.get_close_matches(name, manager.all_tasks, n=3) for name in unknown}
        said = "; ".join(f"{name} (did you mean {', '.join(near)}?)" if near else name for name, near in hints.items())
        raise HarnessError(f"unknown task: {said}. lm-evaluation-harness has no task, group or tag by that name"
                           + (f", nor does {include_path}" if include_path else ""))
    return manager


@lru_cache(maxsize=4)
def _cached_manager(include_path: str | None, fingerprint: tuple, include_defaults: bool):
    # Indexing lm-eval's ~15,000 task YAMLs takes seconds; the fingerprint makes a rewritten folder a new index.
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path, include_defaults=include_defaults)


def _load(manager, name: str) -> list:
    """The task, group or tag `name`, its data read from this machine; HarnessError when that would need a download."""
    try:
        built = manager.load([name])
    except Exception as error:  # noqa: BLE001 - datasets raises ConnectionError, FileNotFoundError, HubError...
        if _needs_download(error):
            raise HarnessError(f"the task {name} needs its dataset downloaded; it is not in the local cache") from error
        raise HarnessError(f"the task {name} could not be loaded: {error}") from error
    group = built["groups"].get(name)
    return [group] if group is not None else list(built["tasks"].values())


def _needs_download(error: BaseException) -> bool:
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    seen = error
    while seen is not None:
        if isinstance(seen, (OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError)):
            return True
        text = str(seen)
        if "OfflineModeIsEnabled" in text or "is not cached" in text or "Couldn't reach" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _refuse_loglikelihood(loaded: list[list]) -> None:
    from lm_eval.api.group import Group

    leaves = [task for objs in loaded for obj in objs
              for task in (obj.get_all_tasks() if isinstance(obj, Group) else [obj])]
    refused = sorted({task.task_name for task in leaves if task.OUTPUT_TYPE != GENERATION})
    if refused:
        raise HarnessError(
            f"the task{'s' if len(refused) > 1 else ''} {', '.join(refused)} score{'' if len(refused) > 1 else 's'} "
            "log-likelihoods (multiple choice), which a chat endpoint does not give; only generate_until tasks run "
            "against a served model")


# The endpoint -------------------------------------------------------------------------------------------------

def _chat_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


def _chat_endpoint(**settings):
    """lm-eval's local-chat-completions model, sending no `stop` field when a task has no stop string."""
    from lm_eval.models.openai_completions import LocalChatCompletion

    class ChatEndpoint(LocalChatCompletion):
        def _create_payload(self, *args, **kwargs) -> dict:
            payload = super()._create_payload(*args, **kwargs)
            if not payload.get("stop"):  # `transformers serve` 5.23 answers 500 to an empty stop list
                payload.pop("stop", None)
            return payload

    return ChatEndpoint(**settings, max_retries=3, tokenizer_backend=None)


def _request_header(base_url: str, api_key_env: str | None) -> dict[str, str]:
    # Always a header of our own: an empty one would make lm-eval fall back to sending OPENAI_API_KEY.
    header = {"Content-Type": "application/json"}
    if not api_key_env:
        return header
    host = (urlparse(base_url).hostname or "").lower()
    if api_key_env == "HF_TOKEN" and not any(host == h or host.endswith("." + h) for h in HUB_HOSTS):
        raise HarnessError(f"HF_TOKEN goes to Hugging Face endpoints only, not to {host or base_url}; "
                           "name another variable in api_key_env")
    key = os.environ.get(api_key_env)
    if not key:
        raise HarnessError(f"the API key variable {api_key_env} is not set")
    header["Authorization"] = f"Bearer {key}"
    return header


def _endpoint_error(error: BaseException, base_url: str, key: str) -> BaseException:
    """The failure in words when the endpoint did not answer or answered an error; others pass through unchanged."""
    import asyncio

    import aiohttp
    import requests

    def said(text: str) -> str:
        try:  # OpenAI-style {"error": {"message"}} or FastAPI's {"detail"} (transformers serve, vLLM)
            body = json.loads(text)
            text = str(body["error"]["message"] if isinstance(body.get("error"), dict) else body["detail"])
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        return (text.replace(key, "[the key]") if key else text)[:300]  # some providers echo the key they refused

    if isinstance(error, requests.HTTPError) and error.response is not None:
        return HarnessError(f"the endpoint {base_url} answered {error.response.status_code} to the requests: "
                            f"{said(error.response.text)}")
    if isinstance(error, aiohttp.ClientResponseError):
        return HarnessError(f"the endpoint {base_url} answered {error.status} to the requests: {said(error.message)}")
    if isinstance(error, (requests.ConnectionError, requests.Timeout, aiohttp.ClientError, asyncio.TimeoutError,
                          ConnectionError, TimeoutError)):
        return HarnessError(f"the endpoint {base_url} did not answer ({type(error).__name__})")
    return error


# Scores -------------------------------------------------------------------------------------------------------

def _scores(results: dict) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} from lm-eval's results ("exact_match,none" read as "exact_match", N/A left out), with
    "samples": how many examples were scored."""
    scores: dict[str, dict[str, float]] = {}
    for task, values in results["results"].items():
        metrics = {"samples": float(results["n-samples"][task]["effective"])} if task in results["n-samples"] else {}
        for key, value in values.items():
            if key in ("alias", "sample_len") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            metric, _, filter_name = key.partition(",")
            metrics[metric if filter_name in ("", "none") else f"{metric},{filter_name}"] = float(value)
        scores[task] = metrics
    return scores
