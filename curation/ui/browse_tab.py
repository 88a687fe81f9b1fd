"""Browse: a server-side paginated table of records or tasks, filtered and sorted; a click opens the item.

Curators also get the bulk review panel (curation/ui/bulk_panel.py), and the map's lasso filters the table to
the records it selected (ctx.browse_filter).
"""
from __future__ import annotations

import json

import gradio as gr
import pandas as pd

from curation.quality.records import CHECKS
from curation.services import browse
from curation.services.annotation import InvalidInput
from curation.services.permissions import authorize
from curation.ui import near_duplicate_hint
from curation.ui.bulk_panel import attach_bulk_panel, open_row
from curation.ui.inputs import WholeNumber
from curation.ui.context import AppContext

TAB_TITLE = "Browse"
TAB_ORDER = 10
STATUSES = ["draft", "submitted", "approved", "rejected", "discarded"]
FLAG_CHOICES = [("Flagged or not", ""), ("Any flag", browse.ANY_FLAG)] + [
    (name.replace("_", " "), name) for name in CHECKS]  # named as the editor's checks panel names them
WRITTEN_BY_CHOICES = [("Anyone or any model", "")] + [(label, key) for key, label in browse.WRITTEN_BY.items()]


def build(ctx: AppContext) -> dict:
    with gr.Row():
        kind = gr.Radio(["Records", "Tasks"], value="Records", label="Show", scale=1, elem_id="browse-kind")
        dataset = gr.Dropdown(label="Dataset", choices=[("All datasets", "")], value="", scale=2,
                              allow_custom_value=True, elem_id="browse-dataset")
        status = gr.Dropdown(label="Status", choices=[("Any status", "")] + [(s, s) for s in STATUSES], value="",
                             scale=1, elem_id="browse-status")
        category = gr.Dropdown(label="Category", choices=[("Any category", "")], value="", allow_custom_value=True,
                               scale=2, elem_id="browse-category")
        author = gr.Dropdown(label="Author", choices=[("Anyone", "")], value="", scale=1,
                             allow_custom_value=True, elem_id="browse-author")
        flag = gr.Dropdown(label="Quality flag", choices=FLAG_CHOICES, value="", scale=1, elem_id="browse-flag")
        written_by = gr.Dropdown(label="Written by", choices=WRITTEN_BY_CHOICES, value="", scale=1,
                                 elem_id="browse-written-by")
    with gr.Row(elem_classes=["pager"]):
        text = gr.Textbox(label="Search text", placeholder="words in the instruction, input or output", scale=3,
                          elem_id="browse-text")
        meaning = gr.Checkbox(label="By meaning", value=False, scale=1, min_width=120, elem_id="browse-meaning",
                              info="closest first, in one dataset")
        sort = gr.Dropdown(label="Sort by", choices=list(browse.SORTS), value="Last updated", scale=1,
                           elem_id="browse-sort")
        tag_filter = gr.Dropdown(label="Tag", choices=[("Any tag", "")], value="", allow_custom_value=True, scale=1,
                                 elem_id="browse-tag")
        page = WholeNumber(label="Page", value=1, precision=0, minimum=1, scale=1, elem_id="browse-page")
        with gr.Column(scale=1, min_width=160):
            previous_btn = gr.Button("◀ Previous", size="sm")
            next_btn = gr.Button("Next ▶", size="sm")
    # The map's lasso asks for its records here: JSON {"dataset", "ids", "label", "nonce"} (see lasso_filter).
    ctx.browse_filter = gr.Textbox(visible=False, elem_id="browse-filter-request", label="browse filter request")
    only = gr.State(None)  # the ids the lasso selected, or None
    with gr.Row(visible=False, elem_id="browse-only", equal_height=True) as only_row:
        only_note = gr.Markdown(elem_id="browse-only-note")
        only_clear = gr.Button("Clear", size="sm", scale=0, min_width=90, elem_id="browse-only-clear")
    bulk = attach_bulk_panel(ctx)
    info = gr.Markdown(elem_classes=["page-info"], elem_id="browse-info")
    table = gr.Dataframe(interactive=False, wrap=True, max_height=640, elem_id="browse-table",
                         column_widths=["5%", "30%", "22%", "8%", "8%", "8%", "7%", "7%", "5%"])
    gr.Markdown("Click a row to open it in the editor.", elem_classes=["hint"])

    def query_of(kind, dataset, status, category, author, text, sort, page, flag, written_by="", meaning=False,
                 tag="", only_ids=None) -> browse.BrowseQuery | None:
        """The BrowseQuery of the filters; None while the dataset's meaning index is still being built."""
        nearest = None
        if meaning and (text or "").strip() and kind != "Tasks":
            if not dataset:
                raise InvalidInput("choose a dataset to search it by meaning")
            nearest = near_duplicate_hint.nearest_by_meaning(ctx, dataset, text)
            if nearest is None:
                return None
        return browse.BrowseQuery(kind="tasks" if kind == "Tasks" else "records", dataset=dataset or None,
                                  status=status or None, category=category or None, author=author or None,
                                  text=text or None, flag=flag or None, written_by=written_by or None,
                                  sort=sort or "Last updated", page=int(page or 1), nearest=nearest,
                                  tag=tag or None, ids=only_ids)

    def bulk_query(*values) -> browse.BrowseQuery:
        query = query_of(*values)
        if query is None:
            raise InvalidInput(f"the meaning index of {values[1]} is still being built: try again in a moment")
        return query

    @ctx.friendly
    def browse_page(kind, dataset, status, category, author, text, sort, page, flag, written_by="", meaning=False,
                    tag="", only_ids=None, request: gr.Request = None):
        """One page (50 rows) of records or tasks that match the filters, with how many match in all.

        flag: a quality check's name, "any" for records failing any check (tasks: with such an instance).
        written_by: people, machine (any machine-drafted text), unreviewed, edited or imported; "" for all.
        tag: records carrying this tag; "" for all."""
        authorize(ctx.actor(request), "view")
        query = query_of(kind, dataset, status, category, author, text, sort, page, flag, written_by, meaning, tag,
                         only_ids)
        if query is None:
            return (pd.DataFrame(), 1, f"The meaning index of {dataset} is still being built: search again in a "
                    "moment (at 50,000 records, about a minute the first time).")
        nearest = query.nearest
        with ctx.session() as session:
            result = browse.browse(session, query)
        first = (result.page - 1) * query.page_size + 1 if result.total else 0
        last = first + len(result.rows) - 1 if result.rows else 0
        summary = (f"**{first:,}–{last:,}** of **{result.total:,}** {query.kind}"
                   f" · page {result.page:,} of {result.pages:,}")
        if nearest is not None:
            summary += f" · the {len(nearest):,} closest in meaning to the search text, closest first"
        if result.past_end:
            summary += f" · page {result.asked:,} does not exist; showing the last page, {result.page:,}"
        frame = pd.DataFrame(result.rows, columns=result.columns)
        return frame, result.page, summary

    @ctx.friendly
    def filter_choices(request: gr.Request):
        ctx.actor(request)
        with ctx.session() as session:
            cats = browse.categories(session)
            people = browse.authors(session)
            tags = browse.tags_in_use(session)
        datasets = ctx.datasets()
        return (gr.update(choices=[("All datasets", "")] + [(d, d) for d in datasets]),
                gr.update(choices=[("Any category", "")] + [(c, c) for c in cats]),
                gr.update(choices=[("Anyone", "")] + [(p, p) for p in people]),
                gr.update(choices=[("Any tag", "")] + [(t, t) for t in tags]))

    @ctx.friendly
    def lasso_filter(request_value, request: gr.Request):
        """The map asks for its lasso's records: switch to that dataset, only those records, page 1."""
        ctx.actor(request)
        try:
            asked = json.loads(request_value or "")
            ids = [int(i) for i in asked["ids"]]
            dataset_name = str(asked["dataset"])
        except (ValueError, TypeError, KeyError):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        label = str(asked.get("label") or "lasso on the map")
        where = "selected on the map" if "map" in label else f"selected ({label})"
        note = f"Only the **{len(ids):,}** record{'s' * (len(ids) != 1)} {where}"
        return (gr.update(value=dataset_name), ids, gr.update(visible=True), note, 1)

    # The flag, then who wrote it, then the tag come last so that scripts written before them still call /browse
    # with eight (or nine, ...) values; the lasso's ids are the page's own state.
    inputs = [kind, dataset, status, category, author, text, sort, page, flag, written_by, meaning, tag_filter, only]
    outputs = [table, page, info]
    private = dict(api_visibility="private", show_progress="hidden")
    bulk.wire(query_of=bulk_query, filters=inputs, refresh=(browse_page, inputs, outputs))
    for control in (kind, status, category, author, flag, written_by, sort, meaning, tag_filter):
        control.input(lambda *a: 1, None, page, **private).then(browse_page, inputs, outputs, **private)
    # another dataset leaves the lasso's records behind
    dataset.input(lambda *a: (1, None, gr.update(visible=False)), None, [page, only, only_row], **private).then(
        browse_page, inputs, outputs, **private)
    only_clear.click(lambda: (1, None, gr.update(visible=False)), None, [page, only, only_row], **private).then(
        browse_page, inputs, outputs, **private)
    ctx.browse_filter.change(lasso_filter, [ctx.browse_filter], [dataset, only, only_row, only_note, page],
                             **private).then(browse_page, inputs, outputs, **private)
    text.submit(lambda: 1, None, page, **private).then(browse_page, inputs, outputs, **private)
    page.submit(browse_page, inputs, outputs, api_name="browse", show_progress="hidden", queue=False)
    previous_btn.click(lambda p: max(1, int(p or 1) - 1), page, page, **private).then(
        browse_page, inputs, outputs, **private)
    next_btn.click(lambda p: int(p or 1) + 1, page, page, **private).then(browse_page, inputs, outputs, **private)
    outputs_open = [ctx.open_request, ctx.tabs]
    table.select(open_row, [kind, bulk.select_mode, bulk.selection],
                 [bulk.selection, bulk.selection_note, *outputs_open], **private)
    ctx.on_load(filter_choices, None, [dataset, category, author, tag_filter])
    if ctx.tab is not None:  # a tag or dataset made since the page loaded is there when Browse is opened again
        ctx.tab.select(filter_choices, None, [dataset, category, author, tag_filter], **private)
    ctx.on_load(browse_page, inputs, outputs)
    return {}
