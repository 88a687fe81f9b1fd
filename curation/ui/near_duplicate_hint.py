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

The index of a dataset is built once per process (vectors come from the embedding cache, so only texts
it lacks are embedded), kept in memory, and rebuilt in the background every REFRESH_SECONDS to take in
edits made elsewhere; a query is one embedding of the typed text and a matrix product. Text a large share
of the records carry (a preamble, a closing line) is found once, when the index is built, and cut from the
records and from what is typed, as a search cuts it (curation.services.dedup.shared_parts).

Nothing is indexed when someone signs in: at 100k records that is minutes of embedding on a small machine.
A dataset is indexed when someone starts writing in it (choosing it in the editor, entering the instruction
box, typing: the hint builds what is missing) or, up to BUILD_UP_TO records, on its first save; builds run
at a low CPU priority, stop when the process ends, and a save never waits for one (see index_ready).
"""
from __future__ import annotations

import html
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from curation.dedup import DEFAULT_THRESHOLD
from curation.embeddings import DEFAULT_FIELDS, Embedder
from curation.services import coverage as coverage_service
from curation.services.annotation import InvalidInput
from curation.ui.context import AppContext, open_item

log = logging.getLogger("instruct_studio.ui")
REFRESH_SECONDS = 300
SHOWN = 3
BUILD_UP_TO = 5_000  # records: a dataset this small is indexed in moments, without anyone asking
_nonce = itertools.count(1)


@dataclass
class _Warm:
    hint: Any = None
    built_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the index: reads and additions
    building: threading.Lock = field(default_factory=threading.Lock)  # one build at a time
    ready: threading.Event = field(default_factory=threading.Event)


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


def _low_priority() -> None:
    """Lower the calling thread's CPU priority (Linux sets it per thread), so requests are served first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: the build runs at normal priority
        pass


def _slot(ctx: AppContext, dataset: str, fields: str) -> _Warm:
    with _indexes_lock:
        return _indexes.setdefault((id(ctx.engine), dataset, fields), _Warm())


def _existing_slot(ctx: AppContext, dataset: str | None, fields: str) -> _Warm | None:
    with _indexes_lock:
        return _indexes.get((id(ctx.engine), dataset, fields))


class _Closing(Exception):
    """The process is ending: a build in the background stops between two chunks of embeddings."""


# Set when the interpreter starts shutting down, before it waits for the build threads (non-daemon ones):
# a daemon thread still inside torch when the process exits aborts it ("terminate called without an active
# exception"), so builds are waited for, and stop at their next chunk (what they embedded stays cached).
_closing = threading.Event()
threading._register_atexit(_closing.set)  # the stdlib's hook run before non-daemon threads are joined


def _stop_if_closing(done: int, total: int) -> None:
    if _closing.is_set():
        raise _Closing()


def _build(ctx: AppContext, dataset: str, fields: str, slot: _Warm) -> None:
    with ctx.session() as session:
        hint = coverage_service.near_duplicate_hint(session, dataset=dataset, fields=fields,
                                                 embedder=shared_embedder(ctx), progress=_stop_if_closing)
    with slot.lock:
        slot.hint, slot.built_at = hint, time.monotonic()
    slot.ready.set()


def _build_in_background(ctx: AppContext, dataset: str, fields: str, slot: _Warm) -> None:
    if not slot.building.acquire(blocking=False):
        return  # a build is under way

    def run():
        _low_priority()
        try:
            _build(ctx, dataset, fields, slot)
        except _Closing:
            pass
        except Exception:  # the old index (if any) keeps answering
            log.exception("near-duplicate index of %s could not be built", dataset)
        finally:
            slot.building.release()

    threading.Thread(target=run, name=f"near-duplicate-index-{dataset}", daemon=False).start()


def warm_index(ctx: AppContext, dataset: str, fields: str = DEFAULT_FIELDS, *, wait: bool = True):
    """The dataset's in-memory index, built on first use (wait=False: start building, return what there is)."""
    slot = _slot(ctx, dataset, fields)
    if not slot.ready.is_set():
        if not wait:
            _build_in_background(ctx, dataset, fields, slot)
            return None
        with slot.building:
            if not slot.ready.is_set():
                _build(ctx, dataset, fields, slot)
    elif time.monotonic() - slot.built_at > REFRESH_SECONDS:
        _build_in_background(ctx, dataset, fields, slot)
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


def forget_indexes(ctx: AppContext, dataset: str) -> None:
    """Drop the warm indexes of a dataset (after decisions changed which records are live): rebuilt on next use."""
    with _indexes_lock:
        for key in [k for k in _indexes if k[0] == id(ctx.engine) and k[1] == dataset]:
            slot = _indexes[key]
            slot.built_at = 0.0  # the next query rebuilds in the background, the old index answers meanwhile


def near_duplicates_for(ctx: AppContext, dataset: str | None, instruction: str | None, input: str | None = "",
                        output: str | None = "", *, exclude_id: int | None = None,
                        threshold: float = DEFAULT_THRESHOLD, k: int = 5,
                        fields: str = DEFAULT_FIELDS) -> list[dict[str, Any]]:
    """Existing live records at or above `threshold` to this text, most similar first (id, score, instruction, input, status)."""
    if not dataset or not (instruction or "").strip():
        return []
    hint = warm_index(ctx, dataset, fields)
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
    """Add a just-saved record to the warm index (if there is one), so the next hint finds it."""
    slot = _existing_slot(ctx, dataset, fields)
    if slot is None or not slot.ready.is_set() or not (instruction or "").strip():
        return
    with slot.lock:
        if record_id not in set(slot.hint.index.ids.tolist()):
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


def attach_near_duplicate_hint(ctx: AppContext, *, dataset: gr.components.Component, instruction, input=None,
                               output=None, record_id=None, threshold: float = DEFAULT_THRESHOLD) -> gr.HTML:
    """A gr.HTML (placed here) that shows, as the fields change, the closest live records at or above `threshold`.

    input, output and record_id may be None (e.g. a task definition has only an instruction-like text).
    """
    # the record id too: once a new record is saved, the hint must stop listing that record as its own duplicate
    watched = [c for c in (instruction, input, output, record_id) if c is not None]
    input, output, record_id = (c if c is not None else gr.State(None) for c in (input, output, record_id))
    scope_id = f"near-duplicate-hint-{next(_nonce)}"
    box = gr.HTML("", elem_id=scope_id, css_template=HINT_CSS, elem_classes=["near-duplicate-hint"])
    open_record_on_click(ctx, f"#{scope_id}")
    inputs = [dataset, instruction, input, output, record_id]

    def matches_html(dataset_v, instruction_v, input_v, output_v, record_id_v, request):
        try:
            ctx.actor(request)  # any signed-in user may see what already exists
            matches = near_duplicates_for(ctx, dataset_v, instruction_v, input_v, output_v,
                                          exclude_id=record_id_v, threshold=threshold)
        except Exception:  # a hint that fails must never get in the way of writing
            log.exception("near-duplicate hint failed")
            return ""
        return hint_html(matches)

    def show(dataset_v, instruction_v, input_v, output_v, record_id_v, request: gr.Request):
        return matches_html(dataset_v, instruction_v, input_v, output_v, record_id_v, request)

    @ctx.friendly
    def warm(dataset_v, request: gr.Request):
        ctx.actor(request)  # indexing is minutes of CPU at 100k records: only for someone signed in
        if dataset_v and dataset_v in ctx.datasets():  # not a name still being typed
            try:
                warm_index(ctx, dataset_v, wait=False)
            except Exception:
                log.exception("near-duplicate index of %s could not be built", dataset_v)

    private = dict(api_visibility="private", show_progress="hidden", trigger_mode="always_last")
    for component in watched:
        component.change(show, inputs, [box], **private)
    # Indexing starts when someone is about to write, not when a page load fills the dataset in.
    dataset.input(warm, [dataset], None, **private)
    instruction.focus(warm, [dataset], None, **private)
    return box
