"""The editors' live near-duplicate hint: while someone types, the existing records their text already matches.

Wiring it into an editor (inside that editor's `build(ctx)`, where the form's components exist):

    from curation.ui.near_duplicate_hint import (attach_near_duplicate_hint, duplicate_warning, index_ready,
                                                 near_duplicates_for, remember_saved)

    hint = attach_near_duplicate_hint(ctx, dataset=dataset, instruction=instruction, input=input_,
                                      output=output, record_id=record_id)
        # a gr.HTML placed where it is called; it refreshes (trigger_mode="always_last") as the fields
        # change and its "Open #ID" buttons open that record through ctx.open_request / ctx.tabs.

    # in the save handler, for a NEW record (or changed text), once the save has passed every check
    # (validation, permission, version) and before it is committed; index_ready never waits:
    if not confirmed and index_ready(ctx, dataset):   # `confirmed`: e.g. set by a "Save anyway" button
        matches = near_duplicates_for(ctx, dataset, instruction, input_text, output_text, exclude_id=record_id)
        if matches:
            raise gr.Error(duplicate_warning(matches))   # rolls the save back; offer "Save anyway"
    ... commit ...
    remember_saved(ctx, dataset, saved_id, instruction, input_text, output_text)   # later hints see it

The index of a dataset is built once per process (vectors come from the embedding cache, so a restart embeds
only texts it lacks), in the background: until it answers, a line beside the hint says it is still being built
and how far it got. It is then kept current, never rebuilt per keystroke: a save in this process is one
embedding and a row written into it (remember_saved), records changed elsewhere are taken in every
REFRESH_SECONDS (those stamped since the last look), and it is built again every REBUILD_SECONDS. A query is one
embedding of the typed text and a matrix product over the first part's vectors (bench/ui_latency.py --hint:
at 500,000 records). Text a large share of the records carry (a preamble, a closing line) is found when the
index is built, and cut from the records and from what is typed, as a search cuts it
(curation.services.dedup.shared_parts).

Nothing is indexed when someone signs in: at 100k records that is minutes of embedding on a small machine.
A dataset is indexed when someone starts writing in it (choosing it in the editor, entering the instruction
box, typing: the hint builds what is missing) or, up to BUILD_UP_TO records, on its first save; builds run
at a low CPU priority, stop when the process ends, and a save never waits for one (see index_ready).
"""
from __future__ import annotations

import html
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from curation.dedup import DEFAULT_THRESHOLD
from curation.embeddings import DEFAULT_FIELDS, Embedder
from curation.services import coverage as coverage_service
from curation.services.annotation import InvalidInput
from curation.ui.background import Closing, low_priority, stop_if_closing
from curation.ui.context import AppContext, open_item

log = logging.getLogger("instruct_studio.ui")
REFRESH_SECONDS = 30  # a hint this old first takes in, beside it, the records changed elsewhere since
REBUILD_SECONDS = 3600  # and one this old is built again from the cache (a refresh sees only stamped changes)
POLL_SECONDS = 1.0  # while an index is being built, how often the hint says how far it got
SHOWN = 3
BUILD_UP_TO = 5_000  # records: a dataset this small is indexed in moments, without anyone asking
_nonce = itertools.count(1)


@dataclass
class _Warm:
    hint: Any = None
    built_at: float = 0.0  # time.monotonic() of the last full build
    checked_at: float = 0.0  # ... and of the last look for records changed elsewhere
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the index: reads and additions
    building: threading.Lock = field(default_factory=threading.Lock)  # one build or refresh at a time
    ready: threading.Event = field(default_factory=threading.Event)
    progress: tuple[int, int] = (0, 0)  # (records indexed, records) of the build under way; (0, 0) before it counts
    # Saves taken in while a build or refresh runs: put back (a build) or left as they are (a refresh) at its end.
    saved: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    builds: int = 0  # full builds done: a save or an edit is taken in without one


_indexes: dict[tuple[int, str, str], _Warm] = {}
_indexes_lock = threading.Lock()
_model_lock = threading.Lock()
_embedder: Embedder | None = None


def shared_embedder(ctx: AppContext) -> Embedder:
    """One embedding model per process, loaded once, shared by the hint and the diversity tab (it takes seconds)."""
    global _embedder
    with _indexes_lock:
        if _embedder is None:
            _embedder = Embedder(ctx.settings.embed_model)
        embedder = _embedder
    with _model_lock:  # two threads asking at once load it once
        embedder.model
    return embedder


def _slot(ctx: AppContext, dataset: str, fields: str) -> _Warm:
    with _indexes_lock:
        return _indexes.setdefault((id(ctx.engine), dataset, fields), _Warm())


def _existing_slot(ctx: AppContext, dataset: str | None, fields: str) -> _Warm | None:
    with _indexes_lock:
        return _indexes.get((id(ctx.engine), dataset, fields))


def _build(ctx: AppContext, dataset: str, fields: str, slot: _Warm) -> None:
    """Build the dataset's index in full (vectors from the cache, the rest embedded), then put in the saves
    made meanwhile; the index it replaces answers until then."""
    with slot.lock:
        slot.saved = {}

    def progress(done: int, total: int) -> None:
        stop_if_closing(done, total)
        slot.progress = (done, total)

    with ctx.session() as session:
        hint = coverage_service.near_duplicate_hint(session, dataset=dataset, fields=fields,
                                                 embedder=shared_embedder(ctx), progress=progress)
    hint.encode(hint.compared("Warm up the model's first answer (a second on a small machine).", "", ""))
    with slot.lock:
        for record_id, texts in slot.saved.items():
            coverage_service.remember_record(hint, record_id=record_id, instruction=texts[0], input=texts[1],
                                          output=texts[2])
        slot.hint, slot.built_at, slot.checked_at = hint, time.monotonic(), time.monotonic()
        slot.builds += 1
    slot.ready.set()


def _refresh(ctx: AppContext, dataset: str, fields: str, slot: _Warm) -> None:
    """Take in the records changed elsewhere (another process, an import, a review) since the last look."""
    with slot.lock:
        hint, slot.saved = slot.hint, {}
    with ctx.session() as session:
        changes, next_from = coverage_service.hint_changes(session, hint)
    with slot.lock:
        if slot.hint is hint:
            coverage_service.take_in_changes(hint, changes, next_from, skip=set(slot.saved))
        slot.checked_at = time.monotonic()


def _in_background(job, ctx: AppContext, dataset: str, fields: str, slot: _Warm) -> None:
    """Run a build or refresh of the slot in a thread of its own, unless one is under way."""
    if not slot.building.acquire(blocking=False):
        return  # a build is under way

    def run():
        low_priority()
        try:
            job(ctx, dataset, fields, slot)
        except Closing:
            pass
        except Exception:  # the old index (if any) keeps answering
            log.exception("near-duplicate index of %s could not be built", dataset)
            slot.checked_at = time.monotonic()  # a refresh that fails is tried again later, not on every keystroke
        finally:
            slot.building.release()

    threading.Thread(target=run, name=f"near-duplicate-index-{dataset}", daemon=False).start()


def _build_in_background(ctx: AppContext, dataset: str, fields: str, slot: _Warm) -> None:
    _in_background(_build, ctx, dataset, fields, slot)


def warm_index(ctx: AppContext, dataset: str, fields: str = DEFAULT_FIELDS, *, wait: bool = True):
    """The dataset's in-memory index, built on first use (wait=False: start building, return what there is).

    Once built it is kept current: saves in this process are taken in as they happen (remember_saved), the
    records changed elsewhere every REFRESH_SECONDS, and it is built again every REBUILD_SECONDS, each time
    in the background while the index in hand answers.
    """
    slot = _slot(ctx, dataset, fields)
    if not slot.ready.is_set():
        if not wait:
            _build_in_background(ctx, dataset, fields, slot)
            return None
        with slot.building:
            if not slot.ready.is_set():
                _build(ctx, dataset, fields, slot)
    elif time.monotonic() - slot.built_at > REBUILD_SECONDS:
        _build_in_background(ctx, dataset, fields, slot)
    elif time.monotonic() - slot.checked_at > REFRESH_SECONDS:
        _in_background(_refresh, ctx, dataset, fields, slot)
    return slot.hint


def index_ready(ctx: AppContext, dataset: str, fields: str = DEFAULT_FIELDS, *,
                build_up_to: int = BUILD_UP_TO) -> bool:
    """Whether the dataset's index can answer now. Never waits: a save asks this, and saves without asking
    about near-duplicates while there is no index.

    When there is none and no build is under way, a small dataset (up to `build_up_to` records) starts being
    indexed in the background for the next save; a larger one is indexed when someone starts writing in it.
    """
    slot = _existing_slot(ctx, dataset, fields)
    if slot is not None and slot.ready.is_set():
        return True
    if slot is None or not slot.building.locked():
        with ctx.session() as session:
            size = coverage_service.dataset_sizes(session, dataset).get(dataset, 0)
        if 0 < size <= build_up_to:
            _build_in_background(ctx, dataset, fields, _slot(ctx, dataset, fields))
    return False


def build_progress(ctx: AppContext, dataset: str | None, fields: str = DEFAULT_FIELDS) -> tuple[int, int] | None:
    """None when the dataset's index answers (or none is asked for); else (records indexed, records) of its
    first build, (0, 0) until it has counted them."""
    slot = _existing_slot(ctx, dataset, fields)
    if slot is None or slot.ready.is_set():
        return None
    return slot.progress


def forget_indexes(ctx: AppContext, dataset: str) -> None:
    """After decisions changed which records are live: the dataset's indexes take the changes in on next use
    (in the background; the index in hand answers meanwhile)."""
    with _indexes_lock:
        for key in [k for k in _indexes if k[0] == id(ctx.engine) and k[1] == dataset]:
            _indexes[key].checked_at = 0.0


def near_duplicates_for(ctx: AppContext, dataset: str | None, instruction: str | None, input: str | None = "",
                        output: str | None = "", *, exclude_id: int | None = None,
                        threshold: float = DEFAULT_THRESHOLD, k: int = 5, fields: str = DEFAULT_FIELDS,
                        wait: bool = True) -> list[dict[str, Any]] | None:
    """Existing live records at or above `threshold` to this text, most similar first (id, score, instruction,
    input, status); with wait=False, None while the dataset's index is still being built (started if need be)."""
    if not dataset or not (instruction or "").strip():
        return []
    hint = warm_index(ctx, dataset, fields, wait=wait)
    if hint is None:
        return None
    slot = _slot(ctx, dataset, fields)
    with ctx.session() as session, slot.lock:
        return coverage_service.closest_records(session, hint, instruction=instruction or "", input=input or "",
                                             output=output or "", threshold=threshold, k=k,
                                             exclude_id=int(exclude_id) if exclude_id else None)


def similar_to(ctx: AppContext, dataset: str | None, record_id: int | None, *, k: int = 10,
               fields: str = DEFAULT_FIELDS) -> list[dict[str, Any]] | None:
    """Find similar: the k records nearest in meaning to a saved record, or None while the dataset's index is
    still being built (the build is started, never waited for: at 52k records it is a minute of embedding)."""
    hint = warm_index(ctx, dataset, fields, wait=False)
    if hint is None:
        return None
    slot = _slot(ctx, dataset, fields)
    with ctx.session() as session, slot.lock:
        return coverage_service.similar_records(session, hint, record_id=int(record_id), k=k)


def nearest_by_meaning(ctx: AppContext, dataset: str, text: str, *, k: int = 500,
                       fields: str = DEFAULT_FIELDS) -> list[tuple[int, float]] | None:
    """Browse's search by meaning: (id, score) of the k records closest to `text`, or None while the dataset's
    index is still being built (the build is started, never waited for)."""
    hint = warm_index(ctx, dataset, fields, wait=False)
    if hint is None:
        return None
    with _slot(ctx, dataset, fields).lock:
        return coverage_service.records_by_meaning(hint, text, k)


def similar_html(matches: list[dict[str, Any]] | None, dataset: str | None = None) -> str:
    """The Find similar list: each neighbour with its score, status and an Open button; or why there is none."""
    if matches is None:
        return (f'<div class="nd-similar nd-wait">The meaning index of {html.escape(dataset or "")} is still being '
                "built: press <b>Find similar</b> again in a moment.</div>")
    if not matches:
        return '<div class="nd-similar">No other live record in this dataset yet.</div>'
    rows = [_match_item(m) for m in matches]
    return f'<div class="nd-similar"><ul>{"".join(rows)}</ul></div>'


SIMILAR_CSS = """
.nd-similar { font-size: .9rem; }
.nd-similar ul { list-style: none; margin: 0; padding: 0; }
.nd-similar li { display: flex; gap: 8px; align-items: baseline; padding: 3px 0; border-bottom: 1px solid var(--border-color-primary); }
.nd-score { font-family: var(--font-mono); background: var(--background-fill-secondary); border-radius: 4px; padding: 0 5px; }
.nd-text { flex: 1; }
.nd-status { font-size: .75rem; text-transform: uppercase; opacity: .75; }
.nd-open { border: 1px solid var(--border-color-accent); border-radius: 6px; padding: 0 8px; background: transparent; cursor: pointer; font-size: .8rem; }
.nd-wait { font-style: italic; }
"""


def attach_find_similar(ctx: AppContext, *, dataset, record_id) -> gr.HTML:
    """A "Find similar" button and its list (placed here): the open record's nearest neighbours by meaning."""
    button = gr.Button("Find similar", size="sm", elem_id="record-find-similar")
    scope_id = f"find-similar-{next(_nonce)}"
    box = gr.HTML("", elem_id=scope_id, css_template=SIMILAR_CSS, elem_classes=["find-similar"])
    open_record_on_click(ctx, f"#{scope_id}")

    @ctx.friendly
    def find(dataset_v, record_id_v, request: gr.Request):
        ctx.actor(request)  # anyone signed in may see what already exists
        if not dataset_v or not record_id_v:
            raise InvalidInput("save the record first, or open one: Find similar looks from a saved record")
        return similar_html(similar_to(ctx, dataset_v, int(record_id_v)), dataset_v)

    button.click(find, [dataset, record_id], [box], api_name="record_find_similar", show_progress="minimal")
    return box


def remember_saved(ctx: AppContext, dataset: str | None, record_id: int, instruction: str, input: str = "",
                   output: str = "", fields: str = DEFAULT_FIELDS) -> None:
    """Take a just-saved record (new, or its text edited) into the dataset's index, so the next hint finds it:
    one embedding and a row written, at any size; while a build runs, also kept for the index it builds."""
    slot = _existing_slot(ctx, dataset, fields)
    if slot is None or not (instruction or "").strip():
        return
    with slot.lock:
        if slot.building.locked():
            slot.saved[int(record_id)] = (instruction, input or "", output or "")
        if slot.ready.is_set():
            coverage_service.remember_record(slot.hint, record_id=int(record_id), instruction=instruction,
                                          input=input or "", output=output or "")


def duplicate_warning(matches: list[dict[str, Any]]) -> str:
    """One line for a save confirmation: which records this one repeats (plain text, escaped for a toast)."""
    listed = ", ".join(f"#{m['id']} ({m['score']:.2f})" for m in matches[:SHOWN])
    return html.escape(f"This looks like a near-duplicate of record {listed}. Save anyway?", quote=False)


def _match_item(m: dict[str, Any]) -> str:
    """One matching record as a list item: its score, instruction, status and an Open button."""
    text = m["instruction"] if len(m["instruction"]) <= 160 else m["instruction"][:157] + "…"
    return (f'<li><span class="nd-score">{m["score"]:.2f}</span> <span class="nd-text">{html.escape(text)}</span> '
            f'<span class="nd-status">{html.escape(m["status"])}</span> <button type="button" class="nd-open" '
            f'data-open-record="{int(m["id"])}">Open #{int(m["id"])}</button></li>')


def hint_html(matches: list[dict[str, Any]]) -> str:
    """The hint box: nothing when there is no match, else each match with its similarity and an Open button."""
    if not matches:
        return ""
    rows = [_match_item(m) for m in matches[:SHOWN]]
    many = "a similar record exists" if len(matches) == 1 else f"{len(matches)} similar records exist"
    return (f'<div class="nd-hint"><div class="nd-title">⚠ Possible duplicate: {many}</div>'
            f'<ul>{"".join(rows)}</ul></div>')


HINT_CSS = """
.nd-hint { border: 1px solid #fcd34d; background: #fffbeb; color: #78350f; border-radius: 8px; padding: 8px 12px; font-size: .9rem; }
.nd-title { font-weight: 600; font-size: .9rem; margin-bottom: 4px; }
.nd-hint ul { list-style: none; margin: 0; padding: 0; }
.nd-hint li { display: flex; gap: 8px; align-items: baseline; padding: 2px 0; }
.nd-score { font-family: var(--font-mono); background: #fde68a; border-radius: 4px; padding: 0 5px; }
.nd-text { flex: 1; }
.nd-status { font-size: .75rem; text-transform: uppercase; color: #92400e; }
.nd-open { border: 1px solid #d97706; border-radius: 6px; padding: 0 8px; background: white; cursor: pointer; font-size: .8rem; font-weight: 500; }
"""

_OPEN_JS = """
const scope = %s;
document.addEventListener('click', (event) => {
  const button = event.target.closest(scope + ' [data-open-record]');
  if (!button) return;
  event.preventDefault();
  props.value = button.dataset.openRecord + ':' + Date.now();
  trigger('click');
});
const hook = () => {
  document.querySelectorAll(scope + ' .js-plotly-plot').forEach((plot) => {
    if (plot.__opensRecords || typeof plot.on !== 'function') return;
    plot.__opensRecords = true;
    plot.on('plotly_click', (event) => {
      const point = event && event.points && event.points[0];
      if (!point || point.customdata == null) return;
      const id = Array.isArray(point.customdata) ? point.customdata[0] : point.customdata;
      props.value = String(id) + ':' + Date.now();
      trigger('click');
    });
  });
};
new MutationObserver(hook).observe(document.body, {childList: true, subtree: true});
hook();
"""


def open_record_on_click(ctx: AppContext, scope: str) -> gr.HTML:
    """A hidden bridge: a click on `[data-open-record=ID]` or on a plotly point (customdata = id) inside the
    element matching CSS selector `scope` opens that record in the editor (ctx.open_request + ctx.tabs)."""
    import json

    bridge = gr.HTML("", html_template="<span></span>", js_on_load=_OPEN_JS % json.dumps(scope), visible="hidden")

    def open_clicked(value):
        record_id = (value or "").split(":")[0]
        if not record_id.isdigit() or ctx.open_request is None:
            return gr.skip(), gr.skip()
        return open_item("record", record_id)

    if ctx.open_request is not None and ctx.tabs is not None:
        bridge.click(open_clicked, [bridge], [ctx.open_request, ctx.tabs], api_visibility="private",
                     show_progress="hidden")
    return bridge


def building_html(dataset: str | None, progress: tuple[int, int] | None, record_id: int | None = None) -> str:
    """The line beside the hint while the dataset's index is being built, saying how far it got ("" once it
    answers), after a hidden mark of the open record (the typing path leaves it out of the matches)."""
    mark = f'<span class="nd-context" data-record="{int(record_id)}" hidden></span>' if record_id else ""
    if progress is None or not dataset:
        return mark
    done, total = progress
    counted = f"{done:,} of {total:,} records" if total else "reading its records"
    return (f'{mark}<div class="nd-building">Checking for near-duplicates: the index of {html.escape(dataset)} is '
            f"still being built ({counted}). Matches will show here when it is ready.</div>")


BUILDING_CSS = ".nd-building { font-size: .85rem; font-style: italic; opacity: .8; padding: 2px 0; }"

# The typing path. Gradio's page spends a few hundred milliseconds on every event it sends (on a 2-core machine,
# with this app's hundreds of components), and a keystroke in the editor sends several: a hint that waited its
# turn among them showed seconds after the keystroke (bench/ui_latency.py --hint). So the box asks the server
# itself (a server function: one POST, no queue, no event), as soon as a watched field is typed into, one
# question at a time and the last one again when it answers; it shows an answer only if the fields still hold
# what it asked about. The listeners still answer for what typing does not do (a record opened, a form
# cleared), and an answer of theirs about text the box has already answered for is put back to the box's.
_TYPING_JS = """
const config = %s;
const field = (id) => id ? document.querySelector('#' + id + ' textarea, #' + id + ' input') : null;
const valueOf = (id) => { const el = field(id); return el ? el.value : ''; };
const openRecord = () => {
  const mark = document.querySelector('#' + config.context + ' [data-record]');
  return mark ? Number(mark.dataset.record) : null;
};
const question = () => ({dataset: valueOf(config.dataset), instruction: valueOf(config.instruction),
                         input: valueOf(config.input), output: valueOf(config.output), record_id: openRecord()});
let answered = {key: null, html: null}, asking = false, again = false;
const ask = async () => {
  if (asking) { again = true; return; }
  asking = true;
  try {
    do {
      again = false;
      const asked = question(), key = JSON.stringify(asked);
      let html = null;
      try { html = await server.typed_hint(asked); } catch (error) { html = null; }
      if (typeof html === 'string' && key === JSON.stringify(question())) {
        answered = {key, html};
        if (props.value !== html) props.value = html;
      }
    } while (again);
  } finally { asking = false; }
};
const typedInto = [config.instruction, config.input, config.output].filter(Boolean);
document.addEventListener('input', (event) => {
  const target = event.target;
  if (target && target.closest && typedInto.some((id) => target.closest('#' + id))) ask();
}, true);
watch('value', () => {
  if (answered.key === JSON.stringify(question()) && props.value !== answered.html) props.value = answered.html;
});
"""


def _signed_in_name(request) -> str | None:
    """Who sent a server-function call. Gradio's /component_server checks the sign-in but hands the function the
    bare HTTP request, without the name (6.31), so it is read from the session cookie as Gradio's own routes read
    it (App.tokens)."""
    if isinstance(request, gr.Request):
        if request.username:
            return request.username
        request = request.__dict__.get("request")
    scope, cookies = getattr(request, "scope", None), getattr(request, "cookies", None)
    if not isinstance(scope, dict) or cookies is None:
        return None
    app = scope.get("app")
    tokens, cookie_id = getattr(app, "tokens", None), getattr(app, "cookie_id", None)
    if not isinstance(tokens, dict) or cookie_id is None:
        return None
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return tokens.get(token)


def attach_near_duplicate_hint(ctx: AppContext, *, dataset: gr.components.Component, instruction, input=None,
                               output=None, record_id=None, threshold: float = DEFAULT_THRESHOLD) -> gr.HTML:
    """A gr.HTML (placed here) that shows, as the fields change, the closest live records at or above `threshold`.

    What is typed is answered by the box itself (_TYPING_JS), other changes by listeners. Beside the box, while
    the dataset's index is being built, a line says so and how far it got (polled every POLL_SECONDS); the
    matches show once it is ready, without another keystroke. The box itself stays empty meanwhile, so what
    follows its being shown (a "save anyway" button) does not.
    input, output and record_id may be None (e.g. a task definition has only an instruction-like text).
    """
    import json

    # the record id too: once a new record is saved, the hint must stop listing that record as its own duplicate
    watched = [c for c in (instruction, input, output, record_id) if c is not None]
    typed = {"instruction": instruction, "input": input, "output": output, "dataset": dataset}
    input, output, record_id = (c if c is not None else gr.State(None) for c in (input, output, record_id))
    number = next(_nonce)
    scope_id, building_id = f"near-duplicate-hint-{number}", f"near-duplicate-building-{number}"
    inputs = [dataset, instruction, input, output, record_id]

    def known(dataset_v) -> bool:
        """A dataset that exists (not a name still being typed into the dropdown)."""
        return bool(dataset_v) and (_existing_slot(ctx, dataset_v, DEFAULT_FIELDS) is not None
                                    or dataset_v in ctx.datasets())

    def matches_html(dataset_v, instruction_v, input_v, output_v, record_id_v, request):
        try:
            ctx.actor(request)  # any signed-in user may see what already exists
            if not known(dataset_v):
                return ""
            matches = near_duplicates_for(ctx, dataset_v, instruction_v, input_v, output_v,
                                          exclude_id=record_id_v, threshold=threshold, wait=False)
        except Exception:  # a hint that fails must never get in the way of writing
            log.exception("near-duplicate hint failed")
            return ""
        # None: the index is still being built (index_progress says so), and nothing is known yet
        return None if matches is None else hint_html(matches)

    def typed_hint(question, request: gr.Request):
        """The hint box's own question (_TYPING_JS): the fields' values as typed, and the open record. None while
        the index is built: the page must not keep "nothing" as this text's answer, or it would blank the hint that
        the poll shows once the build ends."""
        question = question if isinstance(question, dict) else {}
        record = question.get("record_id")
        return matches_html(*(str(question.get(k) or "") for k in ("dataset", "instruction", "input", "output")),
                            int(record) if isinstance(record, (int, float)) and record > 0 else None,
                            gr.Request(username=_signed_in_name(request)))

    config = {"context": building_id, **{name: getattr(c, "elem_id", None) for name, c in typed.items()}}
    box = gr.HTML("", elem_id=scope_id, css_template=HINT_CSS, elem_classes=["near-duplicate-hint"],
                  js_on_load=_TYPING_JS % json.dumps(config), server_functions=[typed_hint])
    building = gr.HTML("", elem_id=building_id, css_template=BUILDING_CSS, elem_classes=["near-duplicate-building"])
    poll = gr.Timer(POLL_SECONDS, active=False)
    open_record_on_click(ctx, f"#{scope_id}")

    def show(dataset_v, instruction_v, input_v, output_v, record_id_v, request: gr.Request):
        return matches_html(dataset_v, instruction_v, input_v, output_v, record_id_v, request) or ""

    def progress_line(dataset_v, record_id_v, start: bool):
        progress = None
        try:
            if known(dataset_v):
                if start:
                    warm_index(ctx, dataset_v, wait=False)
                progress = build_progress(ctx, dataset_v)
        except Exception:
            log.exception("near-duplicate index of %s could not be built", dataset_v)
        return building_html(dataset_v, progress, record_id_v), gr.Timer(active=progress is not None)

    @ctx.friendly
    def warm(dataset_v, record_id_v, request: gr.Request):
        """Start indexing the dataset if need be; the line saying how far its build got, and whether to poll on."""
        ctx.actor(request)  # indexing is minutes of CPU at 100k records: only for someone signed in
        return progress_line(dataset_v, record_id_v, start=True)

    @ctx.friendly
    def index_progress(dataset_v, record_id_v, request: gr.Request):
        """The line saying how far the dataset's index build got (none started), and whether to poll on."""
        ctx.actor(request)
        return progress_line(dataset_v, record_id_v, start=False)

    private = dict(api_visibility="private", show_progress="hidden", trigger_mode="always_last")
    for component in watched:
        component.change(show, inputs, [box], **private)
    line = [building, poll]
    # Indexing starts when someone is about to write, not when a page load fills the dataset in. On the
    # dataset's select, not its input: in Gradio 6.31 a dropdown with three always_last input listeners (the
    # editor has two) fires input again after each answer, forever, and the page then spends its time on them.
    dataset.select(warm, [dataset, record_id], line, **private)
    instruction.focus(warm, [dataset, record_id], line, **private)
    if isinstance(record_id, gr.components.Component) and not isinstance(record_id, gr.State):
        record_id.change(index_progress, [dataset, record_id], line, **private)
    poll.tick(index_progress, [dataset, record_id], line, **private).then(show, inputs, [box], **private)
    return box
