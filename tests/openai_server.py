"""A loopback OpenAI chat-completions server with scripted replies, for tests and bench/generate.py.

    with OpenAIServer(latency=0.05, api_key="sk-test") as server:      # server.url is the base URL (.../v1)
        server.script(Failure(429, headers={"Retry-After": "1"}), Reply("Paris."))
        ...                                                         # the real openai client talks to it
        server.requests                                             # every chat request body, in arrival order
        server.peak_in_flight                                       # most requests it held at once

A request takes the next scripted item, else `replies(body)` (by default a reply that names the last user
message). Items: Reply (text, finish reason, usage), Failure (status, JSON error body, headers), Garbage (a body
that is not JSON), CutOff (a reply that stops part-way and drops the connection), or a function of the body that
returns one. Streaming (`"stream": true`) sends server-sent events, `data: {...}` chunks and `data: [DONE]`, with a
usage chunk when `stream_options.include_usage` asks for it. With `api_key`, other keys get 401 (and the message
echoes the key, as some providers do, so tests can check that it never reaches the user); with `models`, other
models get 404.
"""
from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Union


@dataclass
class Reply:
    text: str
    finish_reason: str = "stop"
    prompt_tokens: int | None = None  # None: counted as words of the messages
    completion_tokens: int | None = None  # None: counted as words of the text
    chunk_delay: float = 0.0  # seconds between streamed chunks (a long draft, for cancelling)


@dataclass
class Failure:
    status: int
    message: str = ""
    headers: dict = field(default_factory=dict)
    code: str | None = None


@dataclass
class Garbage:
    body: bytes = b"<html><body>502 Bad Gateway</body></html>"
    status: int = 200
    content_type: str = "text/html"


@dataclass
class CutOff:
    text: str
    after: int = 2  # content chunks sent (streaming) before the connection drops; else half the JSON body


Item = Union[Reply, Failure, Garbage, CutOff]
Script = Union[Item, Callable[[dict], Item]]


def default_reply(body: dict) -> Reply:
    last = next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
    return Reply(f"A draft answer to: {last}")


def words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text) or [text]


class QuietServer(ThreadingHTTPServer):
    request_queue_size = 256  # 16+ clients connecting at once must not wait on a full listen backlog
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that went away (a timeout, a cancelled stream) is expected here, not a traceback."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class OpenAIServer:
    def __init__(self, *, replies: Callable[[dict], Item] = default_reply, latency: float = 0.0,
                 api_key: str | None = None, models: list[str] | None = None, port: int = 0):
        self.replies, self.latency, self.api_key, self.models = replies, latency, api_key, models
        self.queue: deque[Script] = deque()
        self.requests: list[dict] = []
        self.authorizations: list[str | None] = []
        self.in_flight = self.peak_in_flight = 0
        self.dropped_by_client = 0  # replies the client stopped reading (a cancelled stream)
        self.lock = threading.Lock()
        handler = type("BoundHandler", (OpenAIHandler,), {"server_state": self})
        server_class = type("Server", (QuietServer,), {})
        self.httpd = server_class(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "OpenAIServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def script(self, *items: Script) -> None:
        """Answer the next requests with `items`, in order; after them, `replies` answers again."""
        with self.lock:
            self.queue.extend(items)

    def reset(self) -> None:
        with self.lock:
            self.queue.clear()
            self.requests.clear()
            self.authorizations.clear()
            self.peak_in_flight = 0

    def next_item(self, body: dict) -> Item:
        with self.lock:
            item = self.queue.popleft() if self.queue else self.replies
        return item(body) if callable(item) else item


class OpenAIHandler(BaseHTTPRequestHandler):
    server_state: OpenAIServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each reply would wait ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            models = self.server_state.models or ["loopback-model"]
            return self._json({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "loopback"}
                                                          for m in models]})
        self._json({"error": {"message": f"No route for GET {self.path}", "type": "not_found"}}, 404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send(b"<html><body>404 Not Found</body></html>", 404, "text/html")
        state = self.server_state
        body = json.loads(raw or b"{}")
        with state.lock:
            state.requests.append(body)
            state.authorizations.append(self.headers.get("Authorization"))
            state.in_flight += 1
            state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            if state.latency:
                time.sleep(state.latency)
            self._answer(state, body)
        except (BrokenPipeError, ConnectionResetError):
            with state.lock:
                state.dropped_by_client += 1
        finally:
            with state.lock:
                state.in_flight -= 1

    def _answer(self, state: OpenAIServer, body: dict) -> None:
        given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if state.api_key is not None and given != state.api_key:
            return self._error(Failure(401, f"Incorrect API key provided: {given}", code="invalid_api_key"))
        if state.models is not None and body.get("model") not in state.models:
            return self._error(Failure(404, f"The model `{body.get('model')}` does not exist", code="model_not_found"))
        item = state.next_item(body)
        if isinstance(item, Failure):
            return self._error(item)
        if isinstance(item, Garbage):
            return self._send(item.body, item.status, item.content_type)
        if body.get("stream"):
            return self._stream(body, item)
        completion = self._completion(body, item)
        if isinstance(item, CutOff):
            data = json.dumps(completion).encode()
            self._headers(200, "application/json", {"Content-Length": str(len(data))})
            self.wfile.write(data[:len(data) // 2])
            return self._drop()
        self._json(completion)

    def _completion(self, body: dict, item: Reply | CutOff) -> dict:
        n = int(body.get("n") or 1)
        texts = [item.text if i == 0 else f"{item.text} (choice {i + 1})" for i in range(n)]
        choices = [{"index": i, "message": {"role": "assistant", "content": text},
                    "finish_reason": getattr(item, "finish_reason", "stop"),
                    "logprobs": self._logprobs(body, text)} for i, text in enumerate(texts)]
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "choices": choices, "usage": self._usage(body, item, texts)}

    def _stream(self, body: dict, item: Reply | CutOff) -> None:
        self._headers(200, "text/event-stream", {"Transfer-Encoding": "chunked", "Cache-Control": "no-cache"})
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model")}

        def event(payload) -> None:
            data = b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode()) + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}]})
        pieces = words(item.text) if item.text else []
        for count, piece in enumerate(pieces):
            if isinstance(item, CutOff) and count == item.after:
                return self._drop()
            if getattr(item, "chunk_delay", 0):
                time.sleep(item.chunk_delay)
            event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None,
                                        "logprobs": self._logprobs(body, piece)}]})
        if isinstance(item, CutOff):
            return self._drop()
        event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": item.finish_reason}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            event({**base, "choices": [], "usage": self._usage(body, item, [item.text])})
        event(b"[DONE]")
        self.wfile.write(b"0\r\n\r\n")

    @staticmethod
    def _usage(body: dict, item, texts: list[str]) -> dict:
        prompt = getattr(item, "prompt_tokens", None)
        completion = getattr(item, "completion_tokens", None)
        prompt = prompt if prompt is not None else sum(len(m.get("content", "").split()) for m in body["messages"])
        completion = completion if completion is not None else sum(len(t.split()) for t in texts)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    @staticmethod
    def _logprobs(body: dict, text: str) -> dict | None:
        if not body.get("logprobs"):
            return None
        top = int(body.get("top_logprobs") or 0)
        return {"content": [{"token": w, "logprob": -0.5, "bytes": list(w.encode()),
                             "top_logprobs": [{"token": w, "logprob": -0.5, "bytes": list(w.encode())}][:top]}
                            for w in (words(text) if text else [])]}

    def _error(self, failure: Failure) -> None:
        message = failure.message or {429: "Rate limit reached", 500: "Internal server error",
                                      503: "Service unavailable"}.get(failure.status, "Error")
        payload = {"error": {"message": message, "type": "error", "param": None, "code": failure.code}}
        self._json(payload, failure.status, failure.headers)

    def _json(self, payload, status: int = 200, headers: dict | None = None) -> None:
        self._send(json.dumps(payload).encode(), status, "application/json", headers)

    def _send(self, data: bytes, status: int, content_type: str, headers: dict | None = None) -> None:
        self._headers(status, content_type, {"Content-Length": str(len(data)), **(headers or {})})
        self.wfile.write(data)

    def _headers(self, status: int, content_type: str, headers: dict) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _drop(self) -> None:
        """Close the connection mid-reply, as a crashed server or a dropped proxy does."""
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
