"""Standard benchmarks through the real lm-evaluation-harness against served models: the scripted loopback
chat server (exact scores), `transformers serve` on the tiny offline model, and the failures said in words."""
from __future__ import annotations

import json
import math
import os
import re
import socket
import urllib.request

import pytest

from curation.evaluation.harness import HarnessError, local_task, run_harness
from tests.openai_server import OpenAIServer, Reply
from tests.tiny_model import build_tiny_model, served_tiny_model

EXAMPLES = [
    {"instruction": "What is the capital of France?", "input": "", "output": "Paris."},
    {"instruction": "Translate into French.", "input": "Good morning", "output": "Bonjour"},
    {"instruction": "Name the largest planet.", "input": "", "output": "Jupiter is the largest planet."},
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {"instruction": "Give the opposite word.", "input": "hot", "output": "cold"},
]
PROMPTS = ["What is the capital of France?", "Translate into French.\n\nGood morning", "Name the largest planet.",
           "Add the numbers.\n\n2 and 3", "Give the opposite word.\n\nhot"]
RIGHT = {0, 2, 4}  # the scripted model answers these three exactly and the other two wrongly
WRONG = "I do not know."


def scripted_answer(body: dict) -> Reply:
    prompt = body["messages"][-1]["content"]
    index = PROMPTS.index(prompt)
    return Reply(EXAMPLES[index]["output"] if index in RIGHT else WRONG)


@pytest.fixture
def tasks(tmp_path):
    folder = tmp_path / "tasks"
    assert local_task(folder, name="held_out", examples=EXAMPLES, max_new_tokens=8) == "held_out"
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Scores through the loopback chat server ----------------------------------------------------------------------

def test_every_example_is_asked_once_and_scored_by_exact_match_and_bleu(tasks):
    import sacrebleu

    with OpenAIServer(replies=scripted_answer) as server:
        scores = run_harness(base_url=server.url, model="loopback-model", tasks=["held_out"], include_path=str(tasks))

    assert sorted(body["messages"][-1]["content"] for body in server.requests) == sorted(PROMPTS)
    assert all(body["messages"] == [{"role": "user", "content": body["messages"][-1]["content"]}]
               and body["model"] == "loopback-model" and body["temperature"] == 0 and body["max_tokens"] == 8
               and "stop" not in body for body in server.requests)  # an empty stop list makes transformers serve fail
    answers = [EXAMPLES[i]["output"] if i in RIGHT else WRONG for i in range(5)]
    expected_bleu = sacrebleu.corpus_bleu(answers, [[example["output"] for example in EXAMPLES]]).score
    held_out = scores["held_out"]
    assert set(scores) == {"held_out"}
    assert set(held_out) == {"samples", "exact_match", "exact_match_stderr", "bleu", "bleu_stderr"}
    assert held_out["samples"] == 5
    assert held_out["exact_match"] == pytest.approx(0.6)
    assert held_out["exact_match_stderr"] == pytest.approx(math.sqrt(0.3 / 5))  # sample std of 3 of 5, over sqrt(5)
    assert held_out["bleu"] == pytest.approx(expected_bleu) and 0 < expected_bleu < 100


def test_limit_asks_only_that_many_examples_with_concurrent_requests(tasks):
    with OpenAIServer(replies=scripted_answer, latency=0.2) as server:
        scores = run_harness(base_url=server.url, model="loopback-model", tasks=["held_out"], include_path=str(tasks),
                             limit=3, num_concurrent=3)

    assert len(server.requests) == 3 and scores["held_out"]["samples"] == 3
    assert server.peak_in_flight > 1


def test_the_key_comes_from_api_key_env_and_nowhere_else(tasks, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_SECRET_token")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-SECRET")
    monkeypatch.setenv("EVAL_API_KEY", "sk-eval-key")
    with OpenAIServer(replies=scripted_answer, api_key="sk-eval-key") as server:
        run_harness(base_url=server.url, model="m", tasks=["held_out"], include_path=str(tasks), limit=2,
                    api_key_env="EVAL_API_KEY")
    assert server.authorizations == ["Bearer sk-eval-key"] * 2

    with OpenAIServer(replies=scripted_answer) as server:
        run_harness(base_url=server.url, model="m", tasks=["held_out"], include_path=str(tasks), limit=2)
    assert server.authorizations == [None, None]  # neither HF_TOKEN nor lm-eval's own OPENAI_API_KEY fallback


def test_hf_token_never_goes_to_an_endpoint_that_is_not_the_hub(tasks, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_SECRET_token")
    with OpenAIServer(replies=scripted_answer) as server:
        with pytest.raises(HarnessError, match="HF_TOKEN goes to Hugging Face endpoints only, not to 127.0.0.1"):
            run_harness(base_url=server.url, model="m", tasks=["held_out"], include_path=str(tasks),
                        api_key_env="HF_TOKEN")
    assert server.requests == []


# Failures in words ----------------------------------------------------------------------------------------------

def test_a_refused_key_is_said_in_words_without_repeating_the_key(tasks, monkeypatch):
    monkeypatch.setenv("EVAL_API_KEY", "sk-wrong-SECRET")
    with OpenAIServer(replies=scripted_answer, api_key="sk-right") as server:
        with pytest.raises(HarnessError) as refused:
            run_harness(base_url=server.url, model="m", tasks=["held_out"], include_path=str(tasks), limit=1,
                        api_key_env="EVAL_API_KEY")
    assert str(refused.value) == (f"the endpoint {server.url} answered 401 to the requests: "
                                  "Incorrect API key provided: [the key]")


@pytest.mark.parametrize("num_concurrent", [1, 2])
def test_an_endpoint_that_does_not_answer_is_said_in_words(tasks, num_concurrent):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(HarnessError, match=re.escape(f"the endpoint {url} did not answer")):
        run_harness(base_url=url, model="m", tasks=["held_out"], include_path=str(tasks), limit=1,
                    num_concurrent=num_concurrent, timeout=5)


def test_a_multiple_choice_task_is_refused_before_any_request(tmp_path):
    data = tmp_path / "choice.jsonl"
    data.write_text(json.dumps({"question": "Which is a fruit?", "choices": ["apple", "chair"], "answer": 0}) + "\n")
    (tmp_path / "choice.yaml").write_text(
        "task: tiny_choice\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n  cache_dir: {tmp_path / 'cache'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{question}}'\n"
        "doc_to_choice: '{{choices}}'\ndoc_to_target: '{{answer}}'\nmetric_list:\n  - metric: acc\n")
    with OpenAIServer(replies=scripted_answer) as server:
        with pytest.raises(HarnessError, match="the task tiny_choice scores log-likelihoods .multiple choice., which a "
                                               "chat endpoint does not give; only generate_until tasks run"):
            run_harness(base_url=server.url, model="m", tasks=["tiny_choice"], include_path=str(tmp_path))
    assert server.requests == []


def test_a_local_task_name_must_be_a_plain_word(tmp_path):
    with pytest.raises(HarnessError, match="a task name takes letters, digits and underscores"):
        local_task(tmp_path, name="held out/../x", examples=EXAMPLES)


@pytest.mark.slow
def test_an_unknown_task_is_said_in_words_with_the_near_names():
    with pytest.raises(HarnessError, match=r"unknown task: hellaswog \(did you mean hellaswag"):
        run_harness(base_url="http://127.0.0.1:9/v1", model="m", tasks=["hellaswog"])


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HF_DATASETS_OFFLINE") != "1", reason="would download hellaswag when online")
def test_a_task_whose_dataset_is_not_on_this_machine_is_said_in_words():
    with pytest.raises(HarnessError) as refused:
        run_harness(base_url="http://127.0.0.1:9/v1", model="m", tasks=["hellaswag"], limit=2)
    assert str(refused.value) == "the task hellaswag needs its dataset downloaded; it is not in the local cache"


# `transformers serve` on the tiny offline model ---------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    model_dir = build_tiny_model(root / "model")
    log = root / "serve.log"
    with served_tiny_model(model_dir, log) as url:
        yield url, str(model_dir), log


def chat_posts(log) -> int:
    return log.read_text().count('"POST /v1/chat/completions HTTP/1.1" 200')


@pytest.mark.slow
def test_the_served_tiny_model_is_asked_every_example_and_scored(served, tasks):
    url, model, log = served
    before = chat_posts(log)
    scores = run_harness(base_url=url, model=model, tasks=["held_out"], include_path=str(tasks), limit=4)

    assert chat_posts(log) - before == 4
    held_out = scores["held_out"]
    assert held_out["samples"] == 4
    assert {"exact_match", "bleu"} <= set(held_out)
    assert all(isinstance(value, float) and math.isfinite(value) for value in held_out.values())
    assert 0 <= held_out["exact_match"] <= 1 and 0 <= held_out["bleu"] <= 100


@pytest.mark.slow
def test_transformers_serve_gives_no_prompt_logprobs_so_loglikelihood_tasks_cannot_run_on_it(served):
    url, model, _ = served
    body = {"model": model, "prompt": "The sky is", "max_tokens": 1, "logprobs": 1, "echo": True, "temperature": 0}
    request = urllib.request.Request(f"{url}/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        choice = json.load(response)["choices"][0]
    assert choice.get("logprobs") is None  # lm-eval's loglikelihood needs echo + token_logprobs of the prompt


@pytest.mark.slow
def test_a_model_the_server_does_not_serve_is_said_in_words(served, tasks):
    url, model, _ = served
    with pytest.raises(HarnessError) as refused:
        run_harness(base_url=url, model="another-model", tasks=["held_out"], include_path=str(tasks), limit=1)
    assert str(refused.value) == (f"the endpoint {url} answered 400 to the requests: "
                                  f"Server is pinned to '{model}'; requested 'another-model'.")
