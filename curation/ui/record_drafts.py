"""The model beside the record editor: pick a model, test it, draft an output (streamed), draft another, suggest
a clearer instruction; a session's tokens and cost.

The page holds, in a hidden JSON box, which field was filled from which draft (its cache key); the save sends
it along and the server reads what the model wrote from its own cache (curation/services/drafting.py).
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass

import gradio as gr

from curation.drafting import DRAFT_OUTPUT, SUGGEST_INSTRUCTION, DraftUnusable, Sampling, draft_output_request, \
    suggest_instruction_request
from curation.llm.choices import model_choices
from curation.services import drafting
from curation.services.history import word_diff
from curation.ui.context import AppContext
from curation.ui.panels import _runs_html
from curation.ui.safe import esc

MARK_ID = "record-output-mark"
SHOW_EVERY_SECONDS = 0.25  # a streamed draft reaches the page at most this often
_SEPARATOR = re.compile(r"^\s*---\s*$", re.MULTILINE)


def other_outputs(more: str | None) -> list[str]:
    """The blocks of "other acceptable outputs" (separated by a line holding only ---), blanks left out."""
    return [b for b in (block.strip("\n") for block in _SEPARATOR.split(more or "")) if b.strip()]


@dataclass
class ModelPanel:
    model: gr.Dropdown
    drafted: gr.Textbox  # JSON {field: cache key}: what the save sends along
    mark: gr.HTML
    usage: gr.Markdown
    filled: list  # the events after which a field holds a model's text (the editor remembers the form then)


def parse_drafted(value: str | None) -> dict[str, str]:
    """The {field: cache key} the page holds ({} for anything else)."""
    try:
        drafted = json.loads(value or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in drafted.items() if v} if isinstance(drafted, dict) else {}


def mark_html(models: list[str], state: str | None = "unreviewed") -> str:
    """The note above the output while machine-written text in it has not been reviewed."""
    if not models or state not in ("unreviewed", "draft"):
        return ""
    return (f'<div class="machine-mark" id="{MARK_ID}-text">🤖 Machine-drafted by {esc(", ".join(models))}: '
            "read it, fix it, then save. It stays marked until a person edits or approves it.</div>")


def usage_line(usage: dict) -> str:
    if not usage.get("requests"):
        return "No model requests in this session yet."
    line = (f"This session: {usage['requests']} draft{'s' if usage['requests'] != 1 else ''} · "
            f"{usage.get('prompt', 0):,} prompt + {usage.get('completion', 0):,} completion tokens")
    if usage.get("cached"):
        line += f" · {usage['cached']} from the cache"
    if usage.get("cost") is not None:
        line += f" · ${usage['cost']:.4f}"
    return line


def _counted(usage: dict | None, choice, result: drafting.Drafted) -> dict:
    usage = dict(usage or {})
    usage["requests"] = usage.get("requests", 0) + 1
    usage["cached"] = usage.get("cached", 0) + int(result.cached)
    usage["prompt"] = usage.get("prompt", 0) + result.prompt_tokens
    usage["completion"] = usage.get("completion", 0) + result.completion_tokens
    cost = choice.cost(result.prompt_tokens, result.completion_tokens)
    if cost is not None:
        usage["cost"] = (usage.get("cost") or 0.0) + cost
    return usage


def build_model_panel(ctx: AppContext, *, dataset, instruction, input_, output, more, system) -> ModelPanel:
    """The model panel's components and listeners; call inside the editor's layout."""
    labels = [c.label for c in model_choices(ctx.settings)]
    mark = gr.HTML("", elem_id=MARK_ID)
    with gr.Accordion("Write with a model", open=bool(labels), elem_id="record-model-panel"):
        with gr.Row():
            model = gr.Dropdown(label="Model", choices=labels, value=labels[0] if labels else None,
                                elem_id="record-model", scale=3,
                                info=None if labels else "No model is configured: an admin sets LLM_MODEL or LLM_MODELS.")
            test_btn = gr.Button("Test", size="sm", elem_id="record-test-model", scale=1)
        with gr.Row():
            temperature = gr.Slider(0, 2, value=0.7, step=0.1, label="Temperature", elem_id="record-temperature")
            max_tokens = gr.Number(512, precision=0, minimum=1, maximum=32768, label="Max tokens",
                                   elem_id="record-max-tokens")
        with gr.Row():
            draft_btn = gr.Button("Draft output", variant="primary", size="sm", elem_id="record-draft-output")
            another_btn = gr.Button("Draft another", size="sm", elem_id="record-draft-another")
            suggest_btn = gr.Button("Suggest an instruction", size="sm", elem_id="record-suggest-instruction")
            stop_btn = gr.Button("Stop", size="sm", variant="stop", elem_id="record-draft-stop")
        status = gr.Markdown("", elem_id="record-model-status")
        suggestion_view = gr.HTML("", elem_id="record-suggestion")
        with gr.Row(visible=False) as suggestion_row:
            use_btn = gr.Button("Use this instruction", size="sm", elem_id="record-use-suggestion")
            keep_btn = gr.Button("Keep mine", size="sm", elem_id="record-keep-instruction")
        usage = gr.Markdown(usage_line({}), elem_id="record-usage")
    drafted = gr.Textbox(visible=False, label="drafted fields", value="{}")
    suggestion = gr.State(None)
    usage_state = gr.State({})
    drafts_running: dict[str | None, threading.Event] = {}  # by browser session: the running draft's stop

    def draft_into(field: str, model_v, temperature_v, max_tokens_v, dataset_v, instruction_v, input_v, system_v,
                   current_v, drafted_v, usage_v, request: gr.Request, seed: int | None = 0):
        """Stream the model's answer into `field` (output, or one more block of the other outputs).

        Yields (the field's text, drafted, mark, status, usage line, usage).
        """
        actor = ctx.actor(request)
        choice, backend = drafting.backend_of(ctx.settings, model_v)
        sampling = Sampling(temperature=float(temperature_v if temperature_v is not None else 0.7),
                            max_tokens=int(max_tokens_v or 512), seed=seed)
        try:
            chat = draft_output_request(instruction_v or "", input_v or "", system_prompt=system_v or None,
                                        sampling=sampling)
        except DraftUnusable as error:
            raise drafting.InvalidInput(str(error)) from None
        others = other_outputs(current_v) if field == "more" else []
        prefix = "".join(f"{block}\n---\n" for block in others)
        name = "output" if field == "output" else f"output {len(others) + 2}"
        skip = gr.skip()
        session_hash = getattr(request, "session_hash", None)
        stop = drafts_running[session_hash] = threading.Event()
        try:
            with ctx.session() as session:
                language = drafting.dataset_language(session, dataset_v)
                stream = drafting.stream_draft(session, actor, backend, chat, DRAFT_OUTPUT, language=language)
                try:
                    shown_at = 0.0
                    for text in stream:
                        if stop.is_set():
                            break
                        # Each update costs the page a pass over its components (Gradio 6.31): a fast model's
                        # dozens of pieces a second would leave the page seconds behind, Stop included. Every
                        # update holds the whole text so far, so skipping some loses nothing; the last is below.
                        if time.monotonic() - shown_at >= SHOW_EVERY_SECONDS:
                            shown_at = time.monotonic()
                            yield prefix + text, skip, skip, "Drafting…", skip, skip
                finally:
                    stream.close()  # on Stop, this drops the connection: the model stops writing
        finally:
            if drafts_running.get(session_hash) is stop:
                drafts_running.pop(session_hash)
        if stop.is_set():
            # The field as it was: half a model's text must not pass for a person's. The last word is this
            # generator's own, so no late piece of the draft can arrive after it.
            yield current_v or "", skip, skip, "Stopped: the request was cancelled and the draft was not kept.", skip, skip
            return
        result = stream.result
        held = parse_drafted(drafted_v)
        held[name] = result.key
        note = f"Drafted by {choice.label}" + (" · from the cache" if result.cached else "")
        if result.warnings:
            note += " · ⚠ " + "; ".join(result.warnings)
        used = _counted(usage_v, choice, result)
        yield prefix + result.text, json.dumps(held), mark_html([result.machine.model]), note, usage_line(used), used

    @ctx.friendly
    def record_draft_output(model, temperature, max_tokens, dataset, instruction, input, system_prompt, output,
                            drafted_fields, usage_v, request: gr.Request):
        """Stream a model's output for the instruction and input into the output box (a suggestion to edit)."""
        yield from draft_into("output", model, temperature, max_tokens, dataset, instruction, input, system_prompt,
                              output, drafted_fields, usage_v, request)

    @ctx.friendly
    def record_draft_another(model, temperature, max_tokens, dataset, instruction, input, system_prompt, output,
                             more_outputs, drafted_fields, usage_v, request: gr.Request):
        """Stream an alternative output (another seed) into "other acceptable outputs"."""
        ctx.actor(request)
        if not (output or "").strip():
            # The other outputs are numbered after the first: without one, the draft would take its place.
            raise drafting.InvalidInput("write or draft the output first: Draft another adds an alternative to it")
        yield from draft_into("more", model, temperature, max_tokens, dataset, instruction, input, system_prompt,
                              more_outputs, drafted_fields, usage_v, request, seed=secrets.randbelow(2 ** 31))

    tail = [drafted, mark, status, usage, usage_state]
    common = [model, temperature, max_tokens, dataset, instruction, input_, system]
    draft_event = draft_btn.click(record_draft_output, [*common, output, drafted, usage_state], [output, *tail],
                                  api_name="record_draft_output", show_progress="minimal")
    another_event = another_btn.click(record_draft_another, [*common, output, more, drafted, usage_state], [more, *tail],
                                      api_name="record_draft_another", show_progress="minimal")

    @ctx.friendly
    def record_suggest_instruction(model, temperature, max_tokens, instruction, input, usage_v, request: gr.Request):
        """A clearer wording of the instruction, shown beside the original with the differences marked."""
        actor = ctx.actor(request)
        choice, backend = drafting.backend_of(ctx.settings, model)
        try:
            chat = suggest_instruction_request(instruction or "", input or "", sampling=Sampling(
                temperature=float(temperature if temperature is not None else 0.7), max_tokens=int(max_tokens or 512)))
        except DraftUnusable as error:
            raise drafting.InvalidInput(str(error)) from None
        with ctx.session() as session:
            result, _ = drafting.complete_draft(session, actor, backend, chat, SUGGEST_INSTRUCTION)
        view = (f'<div class="suggestion"><div class="rev-label">Suggested by {esc(choice.label)}</div>'
                f'<div class="rev-diff">{_runs_html(word_diff(instruction or "", result.text))}</div></div>')
        used = _counted(usage_v, choice, result)
        note = "⚠ " + "; ".join(result.warnings) if result.warnings else ""
        return (view, {"text": result.text, "key": result.key}, gr.update(visible=True), note, usage_line(used),
                used)

    suggest_btn.click(record_suggest_instruction, [model, temperature, max_tokens, instruction, input_, usage_state],
                      [suggestion_view, suggestion, suggestion_row, status, usage, usage_state],
                      api_name="record_suggest_instruction", show_progress="minimal")

    def use_suggestion(held_suggestion, drafted_v, request: gr.Request):
        ctx.actor(request)
        if not held_suggestion:
            return gr.skip(), gr.skip(), "", gr.update(visible=False)
        held = parse_drafted(drafted_v)
        held["instruction"] = held_suggestion["key"]
        return held_suggestion["text"], json.dumps(held), "", gr.update(visible=False)

    use_event = use_btn.click(use_suggestion, [suggestion, drafted], [instruction, drafted, suggestion_view, suggestion_row],
                  api_visibility="private", show_progress="hidden")
    keep_btn.click(lambda: ("", gr.update(visible=False)), None, [suggestion_view, suggestion_row],
                   api_visibility="private", show_progress="hidden")

    @ctx.friendly
    def record_test_model(model, request: gr.Request):
        """Whether the chosen model's endpoint answers, in words."""
        actor = ctx.actor(request)
        choice, backend = drafting.backend_of(ctx.settings, model)
        return "✓ " + drafting.check_model(actor, choice, backend)

    test_btn.click(record_test_model, [model], [status], api_name="record_test_model", show_progress="minimal")
    def stop_draft(request: gr.Request) -> None:
        """Ask this browser's running draft to stop; it puts the field back and says so itself.

        Nothing is shown from here: a word from this handler could arrive after the draft's own last one.
        """
        ctx.actor(request)
        running = drafts_running.get(getattr(request, "session_hash", None))
        if running is not None:
            running.set()

    stop_btn.click(stop_draft, None, None, api_visibility="private", show_progress="hidden", queue=False)
    return ModelPanel(model, drafted, mark, usage, [draft_event, another_event, use_event])
