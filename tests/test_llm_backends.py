"""Model backends through the real openai client against a loopback chat-completions server, the runner's
concurrency, retries and cache, and the local transformers backend on the tiny offline model."""
from __future__ import annotations

import socket
import threading
import time
import traceback

import pytest
from sqlalchemy import select

from curation.llm import ChatRequest, RetryPolicy, make_backend, run_requests
from curation.llm import errors
from db.llm_cache import DatabaseReplyCache, cached_reply_counts, clear_replies
from db.llm_tables import LLMReply
from tests.tiny_model import served_tiny_model
from tests.openai_server import CutOff, Failure, Garbage, OpenAIServer, Reply

SECRET = "sk-loopback-SECRET-7f3a9c"
NO_RETRY = RetryPolicy(attempts=1)


def ask(text: str, **parameters) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": text}], **parameters)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", SECRET)
    with OpenAIServer(api_key=SECRET, models=["loopback-model", "other-model"]) as running:
        yield running


@pytest.fixture
def backend(server):
    return make_backend("openai", model="loopback-model", base_url=server.url, timeout=5)


@pytest.fixture
def sqlite_session(sqlite_url):
    """The failure matrix runs on SQLite alone; the cache tests below run on PostgreSQL too."""
    from db.engine import open_database, session_for

    engine = open_database(sqlite_url)
    with session_for(engine) as session:
        yield session
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def row_count(session) -> int:
    return len(session.execute(select(LLMReply.id)).all())


# Replies ----------------------------------------------------------------------------------------------------

def test_a_reply_carries_its_text_finish_reason_and_usage(server, backend):
    server.script(Reply("Paris is the capital of France.", prompt_tokens=12, completion_tokens=7))
    reply = backend.complete(ask("What is the capital of France?", temperature=0.2, top_p=0.9, max_tokens=64,
                                 stop=["\n\n"], seed=3))

    assert (reply.text, reply.finish_reason, reply.truncated) == ("Paris is the capital of France.", "stop", False)
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 7)
    assert reply.latency_s > 0
    sent = server.requests[0]
    assert sent["model"] == "loopback-model"
    assert sent["messages"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert {k: sent[k] for k in ("temperature", "top_p", "max_tokens", "stop", "seed")} == {
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "stop": ["\n\n"], "seed": 3}
    assert server.authorizations == [f"Bearer {SECRET}"]


def test_n_choices_and_logprobs_come_back_per_choice(server, backend):
    reply = backend.complete(ask("Name a fruit.", n=2, logprobs=1))
    assert reply.texts == ["A draft answer to: Name a fruit.", "A draft answer to: Name a fruit. (choice 2)"]
    assert reply.finish_reasons == ["stop", "stop"]
    assert [t["token"] for t in reply.logprobs[0]] == ["A ", "draft ", "answer ", "to: ", "Name ", "a ", "fruit."]
    assert reply.logprobs[0][0]["top"] == [{"token": "A ", "logprob": -0.5}]


def test_streamed_deltas_join_to_the_whole_reply(server, backend):
    server.script(Reply("Eat well, move daily and sleep eight hours."))
    with backend.stream(ask("Give three tips for staying healthy.")) as deltas:
        pieces = list(deltas)

    assert len(pieces) == 8
    assert "".join(pieces) == deltas.reply.text == "Eat well, move daily and sleep eight hours."
    assert deltas.reply.finish_reason == "stop"
    assert (deltas.reply.usage.prompt_tokens, deltas.reply.usage.completion_tokens) == (6, 8)
    assert server.requests[0]["stream"] is True


def test_closing_a_stream_cancels_the_request(server, backend):
    server.script(Reply(" ".join(["word"] * 200), chunk_delay=0.02))
    with backend.stream(ask("Write a long story.")) as deltas:
        assert [next(deltas), next(deltas)] == ["word ", "word "]
    deadline = time.monotonic() + 3
    while server.dropped_by_client == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.dropped_by_client == 1 and deltas.reply is None


def test_a_reply_cut_at_max_tokens_is_reported_not_refused(server, backend, session):
    server.script(Reply("The three primary colors are", finish_reason="length"))
    report = run_requests(backend, [ask("What are the three primary colors?", max_tokens=5)],
                          cache=DatabaseReplyCache(session))
    assert report.replies[0].text == "The three primary colors are"
    assert (report.replies[0].truncated, report.truncated, report.errors) == (True, 1, {})
    assert row_count(session) == 1


# Failures: each a short message, nothing cached -------------------------------------------------------------

def failure_cases(url: str, port: int):
    down = f"http://127.0.0.1:{port}/v1"
    return {
        "401": (dict(key="sk-wrong"), None, errors.Unauthorized,
                "the endpoint refused the API key in LLM_API_KEY (401)"),
        "no key": (dict(key=None), None, errors.Unauthorized, "the endpoint wants an API key (401): set LLM_API_KEY"),
        "404 model": (dict(model="no-such-model"), None, errors.ModelNotFound,
                      f"model 'no-such-model' not found at {url} (404)"),
        "wrong URL": (dict(url=url.removesuffix("/v1") + "/api"), None, errors.WrongURL,
                      f"no chat-completions API at {url.removesuffix('/v1')}/api (404): check the base URL"),
        "endpoint down": (dict(url=down), None, errors.EndpointUnreachable,
                          f"cannot reach 127.0.0.1:{port}: is the server running and the URL right?"),
        "429": ({}, Failure(429, headers={"Retry-After": "3"}), errors.RateLimited,
                "rate limited by the endpoint (429)"),
        "500": ({}, Failure(500), errors.ServerError, "server error (500): Internal server error"),
        "503": ({}, Failure(503, "model is loading"), errors.ServerError, "server error (503): model is loading"),
        "400": ({}, Failure(400, "prompt is too long: 9000 tokens > 4096"), errors.BadRequest,
                "request refused (400): prompt is too long: 9000 tokens > 4096"),
        "not JSON": ({}, Garbage(), errors.NotJSON, "the reply is not a JSON chat completion"),
        "broken JSON": ({}, Garbage(b'{"choices": [', content_type="application/json"), errors.NotJSON,
                        "the reply is not JSON"),
        "cut off": ({}, CutOff("one two three four five six"), errors.StreamCutOff,
                    "the reply was cut off before it finished"),
        "empty": ({}, Reply(""), errors.EmptyReply, "the model returned an empty reply"),
    }


@pytest.mark.parametrize("case", list(failure_cases("u", 1)))
def test_each_failure_gives_its_short_message_and_caches_nothing(case, server, monkeypatch, sqlite_session):
    session = sqlite_session
    port = free_port()
    setup, item, kind, message = failure_cases(server.url, port)[case]
    if "key" in setup:
        if setup["key"] is None:
            monkeypatch.delenv("LLM_API_KEY")
        else:
            monkeypatch.setenv("LLM_API_KEY", setup["key"])
    backend = make_backend("openai", model=setup.get("model", "loopback-model"), base_url=setup.get("url", server.url))
    if item is not None:
        server.script(item)

    report = run_requests(backend, [ask("Describe the structure of an atom.")], cache=DatabaseReplyCache(session),
                          retry=NO_RETRY)

    error = report.errors[0]
    assert (type(error), str(error)) == (kind, message)
    assert report.replies == [None]
    assert row_count(session) == 0
    assert (report.fatal is error) == kind.fatal
    if case == "429":
        assert error.retry_after == 3.0


@pytest.mark.parametrize("item, kind, message", [
    (Failure(500), errors.ServerError, "server error (500): Internal server error"),
    (Garbage(), errors.NotJSON, "the reply is not a stream of JSON events"),
    (Garbage(b"data: {oops\n\n", content_type="text/event-stream"), errors.NotJSON, "the stream is not JSON"),
    (CutOff("one two three four five six", after=2), errors.StreamCutOff,
     "the stream was cut off before the reply finished"),
    (Reply(""), errors.EmptyReply, "the model returned an empty reply"),
])
def test_a_failed_stream_says_why_after_the_text_it_gave(item, kind, message, server, backend):
    server.script(item)
    pieces = []
    with pytest.raises(kind) as raised:
        for piece in backend.stream(ask("Write a short poem about the sea.")):
            pieces.append(piece)
    assert str(raised.value) == message
    assert pieces == (["one ", "two "] if isinstance(item, CutOff) else [])


def test_a_slow_endpoint_times_out(monkeypatch):
    with OpenAIServer(latency=2.0) as slow:
        backend = make_backend("openai", model="loopback-model", base_url=slow.url, timeout=0.3)
        started = time.perf_counter()
        report = run_requests(backend, [ask("Explain why the sky is blue.")], retry=NO_RETRY)
    assert time.perf_counter() - started < 1.5
    port = slow.url.split(":")[2].split("/")[0]
    assert str(report.errors[0]) == f"no reply from 127.0.0.1:{port} within 0.3 s"


# Retries ----------------------------------------------------------------------------------------------------

def test_a_429_is_retried_after_what_retry_after_says(server, backend):
    server.script(Failure(429, headers={"Retry-After": "1"}), Reply("Red, blue and yellow."))
    waits = []
    report = run_requests(backend, [ask("What are the three primary colors?")], sleep=waits.append)

    assert report.replies[0].text == "Red, blue and yellow."
    assert (len(server.requests), report.requested, report.retries) == (2, 1, 1)
    assert len(waits) == 1 and 1.0 <= waits[0] <= 1.5


def test_5xx_are_retried_with_growing_jittered_backoff_then_given_up(server, backend):
    server.script(*[Failure(503)] * 4)
    waits = []
    report = run_requests(backend, [ask("List five fruits.")], sleep=waits.append,
                          retry=RetryPolicy(attempts=4, base_s=0.5, cap_s=30), seed=1)

    assert type(report.errors[0]) is errors.ServerError
    assert (len(server.requests), report.retries) == (4, 3)
    assert [0 <= w <= 0.5 * 2 ** i for i, w in enumerate(waits)] == [True, True, True]


def test_a_fatal_error_stops_the_run_instead_of_failing_every_request(server, monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", "sk-wrong")
    backend = make_backend("openai", model="loopback-model", base_url=server.url)
    report = run_requests(backend, [ask(f"Question {i}") for i in range(50)], concurrency=4)
    assert type(report.fatal) is errors.Unauthorized and report.stopped
    assert len(server.requests) <= 4 and report.done == 0


# Concurrency ------------------------------------------------------------------------------------------------

def test_32_requests_at_concurrency_16_never_have_more_than_16_in_flight(monkeypatch):
    with OpenAIServer(latency=0.05) as server:
        backend = make_backend("openai", model="loopback-model", base_url=server.url)
        seen = []
        report = run_requests(backend, [ask(f"Count to {i}.") for i in range(32)], concurrency=16,
                              progress=lambda done, total: seen.append((done, total)))
        peak = server.peak_in_flight

    assert report.done == 32 and len(server.requests) == 32
    assert 8 <= peak <= 16
    assert seen[-1] == (32, 32) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert [r.text for r in report.replies] == [f"A draft answer to: Count to {i}." for i in range(32)]


def test_concurrency_1_sends_one_request_at_a_time():
    with OpenAIServer(latency=0.02) as server:
        backend = make_backend("openai", model="loopback-model", base_url=server.url)
        run_requests(backend, [ask(f"Count to {i}.") for i in range(6)], concurrency=1)
        assert server.peak_in_flight == 1


# Cache ------------------------------------------------------------------------------------------------------

def test_a_rerun_of_the_same_20_requests_sends_nothing(server, backend, session):
    requests = [ask(f"Translate sentence {i} into French.", temperature=0.7, seed=i) for i in range(20)]
    first = run_requests(backend, requests, concurrency=8, cache=DatabaseReplyCache(session))
    assert (first.requested, first.cached, len(server.requests)) == (20, 0, 20)

    again = run_requests(backend, requests, concurrency=8, cache=DatabaseReplyCache(session))
    assert (again.requested, again.cached, len(server.requests)) == (0, 20, 20)
    assert [r.text for r in again.replies] == [r.text for r in first.replies]
    assert all(r.cached for r in again.replies) and not any(r.cached for r in first.replies)
    assert (again.prompt_tokens, again.completion_tokens) == (0, 0)  # nothing paid for this time

    other_parameters = run_requests(backend, [ask("Translate sentence 0 into French.", temperature=0.7, seed=99)],
                                    cache=DatabaseReplyCache(session))
    assert other_parameters.requested == 1


def test_the_same_request_twice_in_one_run_is_sent_once(server, backend):
    report = run_requests(backend, [ask("Summarize the article.")] * 3)
    assert len(server.requests) == 1 and report.done == 3


class Crash(Exception):
    pass


def test_a_run_killed_after_5_replies_resumes_with_only_the_rest(server, backend, session, engine):
    requests = [ask(f"Write instruction number {i}.") for i in range(20)]
    got = []

    def crash_after_five(index, reply):
        got.append(index)
        if len(got) == 5:
            raise Crash()

    with pytest.raises(Crash):
        run_requests(backend, requests, concurrency=1, cache=DatabaseReplyCache(session), on_reply=crash_after_five)
    from db.engine import session_for

    with session_for(engine) as elsewhere:  # committed as they arrived, not at the end
        assert row_count(elsewhere) == 5

    resumed = run_requests(backend, requests, concurrency=4, cache=DatabaseReplyCache(session))
    assert (resumed.cached, resumed.requested, resumed.done) == (5, 15, 20)
    asked = [r["messages"][0]["content"] for r in server.requests]
    assert sorted(asked) == sorted(r.messages[0]["content"] for r in requests)  # each one exactly once


def test_a_stopped_run_keeps_what_was_in_flight_and_resumes(server, backend, session):
    requests = [ask(f"Give example {i}.") for i in range(20)]
    stop = threading.Event()
    first = run_requests(backend, requests, concurrency=3, cache=DatabaseReplyCache(session), stop=stop,
                         progress=lambda done, total: stop.set() if done >= 5 else None)
    assert first.stopped and 5 <= first.done < 20 and row_count(session) == first.done

    resumed = run_requests(backend, requests, concurrency=3, cache=DatabaseReplyCache(session))
    assert (resumed.cached, resumed.requested) == (first.done, 20 - first.done)
    assert len(server.requests) == 20 and len({r["messages"][0]["content"] for r in server.requests}) == 20


def test_the_cache_is_cleared_per_model(server, session):
    a = make_backend("openai", model="loopback-model", base_url=server.url)
    b = make_backend("openai", model="other-model", base_url=server.url)
    requests = [ask(f"Classify animal {i}.") for i in range(3)]
    for backend in (a, b):
        run_requests(backend, requests, cache=DatabaseReplyCache(session))
    assert cached_reply_counts(session) == [("openai", server.url, "loopback-model", 3),
                                            ("openai", server.url, "other-model", 3)]

    assert clear_replies(session, model="loopback-model") == 3
    session.commit()
    assert (run_requests(a, requests, cache=DatabaseReplyCache(session)).requested,
            run_requests(b, requests, cache=DatabaseReplyCache(session)).requested) == (3, 0)


def test_the_api_key_is_in_no_cache_row_repr_or_message(server, backend, session, monkeypatch):
    report = run_requests(backend, [ask("Answer the question below.")], cache=DatabaseReplyCache(session))
    server.script(Failure(500, f"upstream rejected {SECRET}"), Failure(400, f"bad key {SECRET} in body"))
    failed = run_requests(backend, [ask("One."), ask("Two.")], concurrency=1, retry=NO_RETRY)
    with OpenAIServer(api_key="sk-another") as echoing:  # its 401 echoes the key it was sent: ours
        refused = run_requests(make_backend("openai", model="m", base_url=echoing.url), [ask("Three.")])

    rows = session.execute(select(LLMReply.__table__)).all()
    seen = [repr(rows), repr(backend), repr(report), repr(failed), repr(refused)]
    for error in [*failed.errors.values(), *refused.errors.values()]:
        seen += [str(error), repr(error), "".join(traceback.format_exception(error))]
    assert len(rows) == 1 and len(failed.errors) == 2 and type(refused.errors[0]) is errors.Unauthorized
    assert [str(e) for e in failed.errors.values()] == ["server error (500): upstream rejected ***",
                                                        "request refused (400): bad key *** in body"]
    assert not [text for text in seen if SECRET in text]
    assert SECRET not in str(vars(backend))


# Settings ---------------------------------------------------------------------------------------------------

def test_settings_name_the_default_backend_and_the_key_by_its_variable(monkeypatch):
    from curation.config import Settings
    from curation.llm import backend_from_settings

    monkeypatch.setenv("LLM_BACKEND", "openai")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9999/v1/")
    monkeypatch.setenv("LLM_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    monkeypatch.setenv("LLM_API_KEY_ENV", "MY_VLLM_KEY")
    monkeypatch.setenv("MY_VLLM_KEY", SECRET)
    monkeypatch.setenv("LLM_CONCURRENCY", "16")
    monkeypatch.setenv("LLM_TIMEOUT", "12.5")
    settings = Settings.from_env()
    assert (settings.llm_concurrency, settings.llm_timeout, settings.llm_api_key_env) == (16, 12.5, "MY_VLLM_KEY")
    backend = backend_from_settings(settings)
    assert repr(backend) == ("OpenAICompatibleBackend(kind='openai', base_url='http://127.0.0.1:9999/v1', "
                             "model='Qwen/Qwen2.5-0.5B-Instruct', api_key_env='MY_VLLM_KEY')")
    assert SECRET not in repr(settings)

    monkeypatch.delenv("LLM_API_KEY", raising=False)
    hf = make_backend("hf", model="meta-llama/Llama-3.1-8B-Instruct")
    assert (hf.identity.base_url, hf.api_key_env) == ("https://router.huggingface.co/v1", "HF_TOKEN")


# The local transformers backend -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_the_local_model_generates_the_same_text_for_the_same_seed(tiny_model_dir):
    local = make_backend("local", model=str(tiny_model_dir))
    request = ask("Give three tips for staying healthy.", temperature=1.0, max_tokens=8, seed=7, logprobs=2)
    first, again = local.complete(request), local.complete(request)
    other = local.complete(ask("Give three tips for staying healthy.", temperature=1.0, max_tokens=8, seed=8))

    assert first.text and first.texts == again.texts and other.text != first.text
    assert first.finish_reason in ("stop", "length")
    from transformers import AutoTokenizer

    prompt = AutoTokenizer.from_pretrained(tiny_model_dir).apply_chat_template(
        request.messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert first.usage.prompt_tokens == len(prompt) and 1 <= first.usage.completion_tokens <= 8
    assert len(first.logprobs[0]) >= 1 and len(first.logprobs[0][0]["top"]) == 2

    with local.stream(request) as deltas:
        streamed = "".join(deltas)
    assert streamed == deltas.reply.text == first.text

    assert run_requests(local, [request, request]).replies[0].text == first.text


def test_a_local_model_that_is_not_there_says_so(tmp_path):
    missing = tmp_path / "no-model"
    report = run_requests(make_backend("local", model=str(missing)), [ask("Hello.")])
    assert type(report.fatal) is errors.ModelUnavailable
    assert str(report.fatal).startswith(f"cannot load the local model {missing}")


# A real OpenAI-compatible server: `transformers serve` with the tiny model -----------------------------------

@pytest.mark.slow
def test_transformers_serve_answers_the_real_client(tiny_model_dir, tmp_path):
    with served_tiny_model(tiny_model_dir, tmp_path / "serve.log") as url:
        backend = make_backend("openai", model=str(tiny_model_dir), base_url=url, timeout=60)
        request = ask("Give three tips for staying healthy.", max_tokens=8, temperature=1.0, seed=1)
        reply = backend.complete(request)
        assert reply.text and reply.finish_reason in ("stop", "length")
        with backend.stream(request) as deltas:
            assert "".join(deltas) == deltas.reply.text
        report = run_requests(backend, [ask(f"Count to {i}.", max_tokens=4) for i in range(4)], concurrency=4)
        assert report.done == 4, report.errors
