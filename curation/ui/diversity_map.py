"""The Diversity tab's map: laid out in the background and read back from the database after, and its lasso,
which lists the records it encloses in Browse.

A dataset's map is laid out once per content (curation.services.maps keeps it by a fingerprint of the texts),
so opening it again reads it. When there is none yet, a build starts in a background thread at a low CPU
priority (one at a time: two cores) and the view says, in words, what it waits for ("The map is being computed:
52,002 records, about 40 s"); a gr.Timer asks every POLL_SECONDS until the map is there. A map expected within
WAIT_SECONDS is waited for, so a small dataset (and a script through gradio_client) gets it in one answer.

The lasso: plotly's plotly_selected event is not a Gradio event, so assets/map_lasso.js hands the selected points'
record ids (their customdata) to a hidden gr.HTML; "Show these N in Browse" then writes them into Browse's
request box (ctx.browse_filter) and selects the Browse tab.
"""
from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from curation.embeddings import Embedder
from curation.services import maps as maps_service
from curation.services.annotation import InvalidInput
from curation.ui import diversity_plots as plots
from curation.ui.background import Closing, closing, low_priority
from curation.ui.context import AppContext
from curation.ui.near_duplicate_hint import shared_embedder

log = logging.getLogger("instruct_studio.ui")
POLL_SECONDS = 2.0
WAIT_SECONDS = 20.0  # a map expected this soon is waited for in the request
LASSO_JS = (Path(__file__).parent / "assets" / "map_lasso.js").read_text(encoding="utf-8")
BROWSE_TAB = "browse_tab"
_nonce = itertools.count(1)


@dataclass
class _Build:
    records: int
    estimate: float  # seconds of layout, from maps_service.estimated_seconds
    by: str | None = None  # who asked: kept with the map
    phase: str = "waiting"  # waiting (for another map) | embedding | layout | done | failed
    embedded: tuple[int, int] = (0, 0)
    layout_started: float | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


_builds: dict[tuple[int, str, str], _Build] = {}
_builds_lock = threading.Lock()
_one_at_a_time = threading.Lock()


def _key(ctx: AppContext, dataset: str) -> tuple[int, str, str]:
    return id(ctx.engine), dataset, maps_service.MAP_FIELDS


def building_line(build: _Build) -> str:
    """What the view says while the map is being computed."""
    head = f"The map is being computed: {build.records:,} records"
    if build.phase == "layout" and build.layout_started is not None:
        left = build.estimate - (time.monotonic() - build.layout_started)
        return f"{head}, about {max(1, round(left))} s." if left > 0 else f"{head}, nearly done."
    if build.phase == "embedding" and build.embedded[1]:
        done, total = build.embedded
        return f"{head}, about {round(build.estimate)} s once they are embedded (embedding {done:,} of {total:,})."
    if build.phase == "waiting":
        return f"{head}, about {round(build.estimate)} s after the map being computed for another dataset."
    return f"{head}, about {round(build.estimate)} s."


def _run(ctx: AppContext, dataset: str, build: _Build) -> None:
    def embedded(done: int, total: int) -> None:
        if closing.is_set():
            raise Closing()
        build.embedded = (done, total)

    def laying_out() -> None:
        build.phase, build.layout_started = "layout", time.monotonic()

    low_priority()
    try:
        with _one_at_a_time:
            build.phase = "embedding"
            with ctx.session() as session:
                maps_service.map_report(session, dataset=dataset, embedder=shared_embedder(ctx), progress=embedded,
                                        laying_out=laying_out, by=build.by)
        build.phase = "done"
    except Closing:
        build.phase, build.error = "failed", "the app is stopping"
    except Exception as exc:  # said in the view; the next request starts again
        log.exception("the map of %s could not be computed", dataset)
        build.phase, build.error = "failed", str(exc) if isinstance(exc, InvalidInput) else "see the log"
    finally:
        build.done.set()


def _start(ctx: AppContext, dataset: str, by: str | None) -> _Build:
    """The build of the dataset's map under way, or a new one started in the background."""
    with _builds_lock:
        build = _builds.get(_key(ctx, dataset))
        if build is not None and not build.done.is_set():
            return build
        with ctx.session() as session:
            records = maps_service.map_size(session, dataset=dataset)
            build = _Build(records, maps_service.estimated_seconds(session, records), by)
        _builds[_key(ctx, dataset)] = build
    threading.Thread(target=_run, args=(ctx, dataset, build), name=f"map-{dataset}", daemon=False).start()
    return build


def _stored(ctx: AppContext, dataset: str) -> dict[str, Any] | None:
    # The model's name and precision make the fingerprint: no need to load the model to read a stored map.
    with ctx.session() as session:
        return maps_service.map_report(session, dataset=dataset, embedder=Embedder(ctx.settings.embed_model),
                                       stored_only=True)


def drawn(report: dict[str, Any], color: str) -> tuple:
    """(map, summary, the five coverage plots, report, timer) of a map that is there."""
    return (plots.map_figure(report, color), plots.coverage_summary(report), *plots.coverage_figures(report), report,
            gr.Timer(active=False))


def waiting(build: _Build) -> tuple:
    """The same outputs while the map is being computed: the words in place of the map, the timer on."""
    line = building_line(build)
    return (plots.empty_figure(line, 560), f"⏳ {line}", *plots.coverage_figures(None), None,
            gr.Timer(active=True))


def coverage_view(ctx: AppContext, dataset: str, color: str, *, by: str | None) -> tuple:
    """The map and coverage of the dataset: the stored map, or a build started (and waited for if it is short)."""
    report = _stored(ctx, dataset)
    if report is not None:
        return drawn(report, color)
    build = _start(ctx, dataset, by)
    if build.estimate <= WAIT_SECONDS and build.phase != "waiting":
        build.done.wait(WAIT_SECONDS)
    if not build.done.is_set():
        return waiting(build)
    return finished(ctx, dataset, color, build)


def finished(ctx: AppContext, dataset: str, color: str, build: _Build) -> tuple:
    if build.error:
        with _builds_lock:
            _builds.pop(_key(ctx, dataset), None)
        raise InvalidInput(f"the map could not be computed ({build.error}); press Map and coverage to try again")
    report = _stored(ctx, dataset)
    if report is None:  # the records changed while it was laid out: once more, with them
        return waiting(_start(ctx, dataset, build.by))
    return drawn(report, color)


def poll_view(ctx: AppContext, dataset: str | None, color: str) -> tuple:
    """What the timer brings: the words again while the build runs, the map once it is there."""
    build = _builds.get(_key(ctx, dataset)) if dataset else None
    if build is None:
        return (*(gr.skip() for _ in range(8)), gr.Timer(active=False))
    if not build.done.is_set():
        return (gr.skip(), f"⏳ {building_line(build)}", *(gr.skip() for _ in range(6)), gr.skip())
    return finished(ctx, dataset, color, build)


def stored_view(ctx: AppContext, dataset: str | None, color: str, shown: dict | None) -> tuple:
    """When a dataset is opened: its stored map if it has one (nothing is computed), else what is shown stays."""
    if not dataset or (shown and shown.get("dataset") == dataset):
        return tuple(gr.skip() for _ in range(9))
    build = _builds.get(_key(ctx, dataset))
    if build is not None and not build.done.is_set():
        return waiting(build)
    report = _stored(ctx, dataset)
    return drawn(report, color) if report is not None else tuple(gr.skip() for _ in range(9))


# ---- the lasso -----------------------------------------------------------------------------------

def selected_ids(value: str | None) -> list[int]:
    """The record ids the bridge sent ('{"ids": [...], "nonce": n}'), distinct, in the order given."""
    try:
        ids = json.loads(value or "{}").get("ids") or []
        return list(dict.fromkeys(int(i) for i in ids))
    except (ValueError, TypeError, AttributeError):
        return []


def browse_request(dataset: str, ids: list[int]) -> str:
    """The JSON Browse's lasso_filter reads: only these records of this dataset."""
    return json.dumps({"dataset": dataset, "ids": ids, "label": "lasso on the map", "nonce": next(_nonce)})


def attach_lasso(ctx: AppContext, *, dataset, curator) -> None:
    """The row under the map that appears when points are lassoed: how many, and "Show these N in Browse".

    `curator(request)` raises unless the request comes from a curator (or admin)."""
    selection = gr.State([])
    with gr.Row(visible=False, equal_height=True, elem_id="diversity-lasso") as row:
        note = gr.Markdown(elem_id="diversity-lasso-note")
        show = gr.Button("Show these in Browse", variant="primary", scale=0, min_width=220,
                         elem_id="diversity-lasso-browse")
    bridge = gr.HTML("", html_template="<span></span>", js_on_load=LASSO_JS, visible="hidden",
                     elem_id="diversity-lasso-bridge")

    @ctx.friendly
    def map_selected(value, request: gr.Request):
        curator(request)
        ids = selected_ids(value)
        if not ids:
            return [], gr.update(visible=False), "", gr.update()
        many = f"{len(ids):,} record{'s' * (len(ids) != 1)}"
        return (ids, gr.update(visible=True), f"**{many}** inside the lasso.",
                gr.update(value=f"Show these {len(ids):,} in Browse"))

    @ctx.friendly
    def map_to_browse(dataset_v, ids, request: gr.Request):
        curator(request)
        if not dataset_v or not ids:
            raise InvalidInput("draw a lasso around some points of the map first")
        return browse_request(dataset_v, [int(i) for i in ids]), gr.Tabs(selected=BROWSE_TAB)

    private = dict(api_visibility="private", show_progress="hidden")
    bridge.click(map_selected, [bridge], [selection, row, note, show], **private)
    if ctx.browse_filter is not None and ctx.tabs is not None:
        show.click(map_to_browse, [dataset, selection], [ctx.browse_filter, ctx.tabs], **private)
    # another dataset, another map: the lasso's records are left behind
    dataset.change(lambda: ([], gr.update(visible=False)), None, [selection, row], **private)
