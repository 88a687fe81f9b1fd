"""A causal LM in this process through transformers (CPU or GPU): for small models, and for tests.

One generation runs at a time (a lock): the model is one set of weights, and the runner's threads simply queue.
The prompt is the tokenizer's chat template when it has one, else the messages joined as "role: content" lines.
"""
from __future__ import annotations

import threading
import time
from functools import cached_property
from pathlib import Path
from typing import Generator

from curation.llm import errors
from curation.llm.backend import ReplyStream
from curation.llm.chat import BackendIdentity, ChatReply, ChatRequest, Usage

DEFAULT_MAX_TOKENS = 256


class LocalBackend:
    def __init__(self, model: str, *, device: str | None = None, timeout: float | None = None):
        path = Path(model).expanduser()
        self.model_name = str(path.resolve()) if path.exists() else model
        self.identity = BackendIdentity("local", "", self.model_name)
        self.device = device
        self.timeout = timeout
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalBackend(model={self.model_name!r}, device={self.device!r})"

    @cached_property
    def _loaded(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_name)
            model = AutoModelForCausalLM.from_pretrained(self.model_name, dtype="auto").to(device).eval()
        except (OSError, ValueError, KeyError) as error:
            raise errors.ModelUnavailable(f"cannot load the local model {self.model_name}: "
                                          f"{errors.scrub(str(error), (), limit=120)}") from None
        return tokenizer, model, device

    def complete(self, request: ChatRequest) -> ChatReply:
        with self._lock:
            tokenizer, model, _ = self._loaded
            started = time.perf_counter()
            prompt = self._prompt_ids(request)
            output = model.generate(**prompt, **self._generate_kwargs(request))
            return self._reply(request, prompt, output, time.perf_counter() - started)

    def stream(self, request: ChatRequest) -> ReplyStream:
        if request.n != 1:
            raise ValueError("a stream carries one reply; use complete() for n > 1")
        return ReplyStream(self._deltas(request))

    def _deltas(self, request: ChatRequest) -> Generator[str, None, ChatReply]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        cancelled = threading.Event()

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return cancelled.is_set()

        with self._lock:
            tokenizer, model, _ = self._loaded
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        result: dict = {}

        def generate() -> None:
            with self._lock:
                try:
                    result["started"] = time.perf_counter()
                    result["prompt"] = prompt = self._prompt_ids(request)
                    result["output"] = model.generate(**prompt, **self._generate_kwargs(request), streamer=streamer,
                                                      stopping_criteria=StoppingCriteriaList([Cancelled()]))
                except Exception as error:  # surfaced to the reader below
                    result["error"] = error
                    streamer.end()

        worker = threading.Thread(target=generate, daemon=True)
        worker.start()
        emitted: list[str] = []
        held = ""
        hold = max((len(s) for s in request.stop), default=1) - 1
        try:
            for piece in streamer:
                held += piece
                cut = _first_stop(held, request.stop)
                if cut is not None:
                    held = held[:cut]
                    cancelled.set()
                    break
                ready, held = (held[:len(held) - hold], held[len(held) - hold:]) if hold else (held, "")
                if ready:
                    emitted.append(ready)
                    yield ready
            if held:
                emitted.append(held)
                yield held
        finally:
            cancelled.set()
            worker.join()
        if "error" in result:
            raise errors.BackendError(f"the local model failed ({type(result['error']).__name__})")
        reply = self._reply(request, result["prompt"], result["output"], time.perf_counter() - result["started"])
        if not emitted:
            raise errors.EmptyReply("the model returned an empty reply")
        return ChatReply(texts=["".join(emitted)], finish_reasons=reply.finish_reasons, usage=reply.usage,
                         latency_s=reply.latency_s, logprobs=reply.logprobs)

    def _prompt_ids(self, request: ChatRequest):
        tokenizer, _, device = self._loaded
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
            encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        else:
            text = "\n".join(f"{m['role']}: {m['content']}" for m in request.messages) + "\nassistant:"
            encoded = tokenizer(text, return_tensors="pt")
        return {name: tensor.to(device) for name, tensor in encoded.items()}

    def _generate_kwargs(self, request: ChatRequest) -> dict:
        import torch

        tokenizer, _, _ = self._loaded
        sample = request.temperature is None or request.temperature > 0
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        kwargs = dict(max_new_tokens=request.max_tokens or DEFAULT_MAX_TOKENS, do_sample=sample,
                      num_return_sequences=request.n, return_dict_in_generate=True,
                      output_logits=request.logprobs is not None, pad_token_id=pad)
        if sample:
            kwargs.update(temperature=request.temperature or 1.0, top_p=request.top_p or 1.0, top_k=0)
        if request.stop:
            kwargs.update(stop_strings=list(request.stop), tokenizer=tokenizer)
        if self.timeout:
            kwargs["max_time"] = self.timeout
        if request.seed is not None:
            torch.manual_seed(request.seed)
        return kwargs

    def _reply(self, request: ChatRequest, prompt, output, latency: float) -> ChatReply:
        import torch

        tokenizer, _, _ = self._loaded
        prompt_length = prompt["input_ids"].shape[1]
        max_new = request.max_tokens or DEFAULT_MAX_TOKENS
        ends = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        texts, reasons, logprobs, completion_tokens = [], [], [], 0
        for row, sequence in enumerate(output.sequences):
            ids = sequence[prompt_length:].tolist()
            end = next((i for i, token in enumerate(ids) if token in ends), None)
            kept = ids if end is None else ids[:end]
            completion_tokens += len(kept) + (end is not None)
            text = tokenizer.decode(kept, skip_special_tokens=True)
            cut = _first_stop(text, request.stop)
            stopped = end is not None or cut is not None
            texts.append(text if cut is None else text[:cut])
            reasons.append("stop" if stopped or len(ids) < max_new else "length")
            if request.logprobs is not None and output.logits:
                logprobs.append(_token_logprobs(torch, tokenizer, output.logits, row, kept, request.logprobs))
        if not any(texts):
            raise errors.EmptyReply("the model returned an empty reply")
        return ChatReply(texts=texts, finish_reasons=reasons,
                         usage=Usage(prompt_tokens=prompt_length, completion_tokens=completion_tokens),
                         latency_s=latency, logprobs=logprobs or None)


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _token_logprobs(torch, tokenizer, logits, row: int, ids: list[int], top: int) -> list[dict]:
    entries = []
    for step, token in enumerate(ids[:len(logits)]):
        scores = torch.log_softmax(logits[step][row].float(), dim=-1)
        alternatives = torch.topk(scores, top) if top > 0 else None
        entries.append({"token": tokenizer.decode([token]), "logprob": float(scores[token]),
                        "top": [] if alternatives is None else
                        [{"token": tokenizer.decode([int(i)]), "logprob": float(v)}
                         for v, i in zip(alternatives.values, alternatives.indices)]})
    return entries
